"""Lint rules for Agent Skills, on folders and on git revisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from t2s.cli import main
from t2s.skill.format import Limits, lint_dir, lint_files, parse_skill_md
from tests.conftest import REPO_ROOT, git

GOOD = """---
name: demo-skill
description: Does demo things. Use when testing.
license: MIT
metadata:
  author: someone
---

# Demo

See [the guide](references/guide.md).
"""


def make_skill(root: Path, skill_md: str = GOOD, refs: dict[str, str] | None = None, name: str = "demo-skill") -> Path:
    folder = root / name
    (folder / "references").mkdir(parents=True)
    (folder / "SKILL.md").write_text(skill_md)
    for rel, text in (refs if refs is not None else {"guide.md": "# Guide\n"}).items():
        (folder / "references" / rel).write_text(text)
    return folder


def rules(findings) -> list[str]:
    return [f.rule for f in findings]


def test_seed_skill_is_clean_in_strict_mode():
    assert lint_dir(REPO_ROOT / "skill-repos" / "xlsx", strict=True) == []


def test_good_skill_has_no_findings(tmp_path):
    assert lint_dir(make_skill(tmp_path)) == []


@pytest.mark.parametrize(
    "frontmatter, rule, line",
    [
        ("name: Demo_Skill\ndescription: x\n", "name", 2),
        ("name: demo--skill\ndescription: x\n", "name", 2),
        ("name: other\ndescription: x\n", "name", 2),
        ("name: " + "a" * 65 + "\ndescription: x\n", "name", 2),
        ("name: demo-skill\n", "description", 2),
        ("name: demo-skill\ndescription: use <b>bold</b>\n", "description", 3),
        ("name: demo-skill\ndescription: " + "d" * 1025 + "\n", "description", 3),
        ("name: demo-skill\ndescription: x\ncompatibility: " + "c" * 501 + "\n", "compatibility", 4),
        ("name: demo-skill\ndescription: x\nmetadata:\n  version: 1\n", "metadata", 4),
        ("name: demo-skill\ndescription: x\ndisable-model-invocation: true\n", "unknown-key", 4),
        ("name: demo-skill\ndescription: [unclosed\n", "frontmatter", 3),
    ],
)
def test_frontmatter_findings_name_the_rule_and_line(tmp_path, frontmatter, rule, line):
    folder = make_skill(tmp_path, f"---\n{frontmatter}---\n\n[g](references/guide.md)\n")
    findings = lint_dir(folder, strict=True)
    assert rule in rules(findings), findings
    assert next(f.line for f in findings if f.rule == rule) == line


def test_missing_frontmatter_is_a_finding(tmp_path):
    folder = make_skill(tmp_path, "# no frontmatter\n", refs={})
    assert rules(lint_dir(folder)) == ["frontmatter"]


def test_lenient_keeps_unknown_keys_and_round_trips_bytes(tmp_path):
    text = "---\nname: demo-skill\ndescription: 'x'   # quoted, commented\ndisable-model-invocation: true\nmetadata: {a: 'b'}\n---\nBody\n"
    folder = make_skill(tmp_path, text, refs={})
    assert lint_dir(folder, strict=False) == []
    assert rules(lint_dir(folder, strict=True)) == ["unknown-key"]
    doc = parse_skill_md(text)
    assert doc.meta["disable-model-invocation"] is True
    assert doc.render() == text


def test_size_limits_apply_to_skill_and_references(tmp_path):
    body = "\n".join(f"line {i}" for i in range(30))
    folder = make_skill(tmp_path, GOOD + body + "\n", refs={"guide.md": body + "\n"})
    findings = lint_dir(folder, limits=Limits(max_skill_lines=20, max_reference_lines=10))
    assert sorted((f.file, f.rule) for f in findings) == [("SKILL.md", "size"), ("references/guide.md", "size")]


def test_reference_integrity(tmp_path):
    text = (
        GOOD
        + "\n[missing](references/nope.md)\n[out](../other/SKILL.md)\n[abs](/etc/passwd)\n[web](https://example.com) [anchor](#demo)\n"
    )
    folder = make_skill(tmp_path, text, refs={"guide.md": "# G\n", "orphan.md": "# O\n"})
    findings = lint_dir(folder)
    assert sorted((f.file, f.line, f.rule) for f in findings) == [
        ("SKILL.md", 13, "broken-link"),
        ("SKILL.md", 14, "link-outside"),
        ("SKILL.md", 15, "link-outside"),
        ("references/orphan.md", 1, "unlinked-reference"),
    ]


def test_symlinks_inside_a_skill_are_findings(tmp_path):
    folder = make_skill(tmp_path)
    (folder / "references" / "link.md").symlink_to("/etc/hostname")
    assert "symlink" in rules(lint_dir(folder))


def test_lint_files_without_skill_md():
    assert rules(lint_files("x", {})) == ["missing-skill-md"]


def _commit_skill(repo: Path, text: str) -> None:
    folder = repo / "skills" / "demo-skill"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "skill")


def test_cli_lints_a_revision_with_json_and_exit_codes(git_repo):
    _commit_skill(git_repo, "---\nname: demo-skill\ndescription: ok\n---\nBody\n")
    _commit_skill(git_repo, "---\nname: wrong\ndescription: ok\n---\nBody\n")
    runner = CliRunner()
    clean = runner.invoke(main, ["lint", "-C", str(git_repo), "HEAD~1", "--json"])
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["ok"] is True
    dirty = runner.invoke(main, ["lint", "-C", str(git_repo), "HEAD", "--json"])
    assert dirty.exit_code == 1
    (skill,) = json.loads(dirty.output)["skills"]
    assert skill["path"] == "skills/demo-skill"
    assert skill["findings"][0]["rule"] == "name" and skill["findings"][0]["line"] == 2
    human = runner.invoke(main, ["lint", "-C", str(git_repo), "HEAD"])
    assert "skills/demo-skill/SKILL.md:2: name:" in human.output
    usage = runner.invoke(main, ["lint", "-C", str(git_repo), "no-such-rev"])
    assert usage.exit_code == 2 and "neither a folder nor a revision" in usage.output
    assert "Traceback" not in usage.output


def test_cli_lints_a_folder(tmp_path):
    folder = make_skill(tmp_path)
    result = CliRunner().invoke(main, ["lint", str(folder)])
    assert result.exit_code == 0 and "clean" in result.output
