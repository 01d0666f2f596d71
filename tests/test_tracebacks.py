"""Bad input that once raised a Python traceback now gets a clear error, through the
real CLI, and leaves no refs, notes or files behind (issue 13, section C)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from t2s.cli import main
from t2s.record.notes import REVIEW_NOTES
from tests.conftest import git
from tests.test_eval_support import make_repo
from tests.test_release import fake_gate


def snapshot(repo: Path, *others: Path) -> tuple:
    """Refs (notes included), the working tree, t2s's private folder and other places."""
    files = tuple(sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if ".git" not in p.relative_to(repo).parts))
    private = (
        tuple(sorted(p.name for p in (repo / ".git" / "t2s").iterdir() if p.suffix != ".lock"))
        if (repo / ".git" / "t2s").exists()
        else ()
    )
    elsewhere = tuple(tuple(sorted(str(p) for p in o.rglob("*"))) if o.exists() else None for o in others)
    return git(repo, "for-each-ref"), files, private, elsewhere


def run_cli(args: list[str]):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def repo(tmp_path, scripted_server):
    return make_repo(tmp_path, scripted_server).root


# ---------------------------------------------------------------------- a binary t2s.toml
BINARY_CONFIG_COMMANDS = [
    ["rollout", "--run", "r1"],
    ["analyze", "--run", "r1"],
    ["merge", "--run", "r1"],
    ["eval", "HEAD"],
    ["gate", "HEAD"],
    ["release", "HEAD"],
    ["pack"],
    ["bisect", "--good", "HEAD~1", "--bad", "HEAD"],
    ["evolve", "--run", "r1"],
    ["models"],
    ["models", "check"],
    ["lint"],
    ["suites"],
]


@pytest.mark.parametrize("args", BINARY_CONFIG_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_binary_config_file_is_a_clear_error(repo, args):
    (repo / "t2s.toml").write_bytes(b"\xbc\x9f\x00\xff binary \x80\x81 garbage\n")
    before = snapshot(repo)
    result = run_cli([*args, "-C", str(repo)] if args[0] != "models" else ["models", "-C", str(repo), *args[1:]])
    assert result.exit_code == 2, result.output
    assert "t2s.toml: not a UTF-8 text file (invalid start byte at byte 0)" in result.output
    assert snapshot(repo) == before


def test_a_folder_named_t2s_toml_is_a_clear_error(repo):
    (repo / "t2s.toml").unlink()
    (repo / "t2s.toml").mkdir()
    result = run_cli(["eval", "HEAD", "-C", str(repo)])
    assert result.exit_code == 2 and "t2s.toml: is a directory, not a configuration file" in result.output


# ---------------------------------------------------------------------- t2s import
MESSAGES = [{"role": "user", "content": "Sum A1:A3."}, {"role": "assistant", "content": "Done."}]
DEEP = "[" * 100_000 + "]" * 100_000


def _openai(value: str) -> str:
    if value == "deep":
        return json.dumps({"messages": MESSAGES, "metadata": "@"}).replace('"@"', DEEP)
    return json.dumps({"messages": MESSAGES, "usage": {"prompt_tokens": "@"}}).replace('"@"', value)


def _claude_code(value: str) -> str:
    user = {"type": "user", "sessionId": "s1", "message": {"role": "user", "content": "Sum A1:A3."}}
    reply = {
        "type": "assistant",
        "sessionId": "s1",
        "message": {"id": "m1", "role": "assistant", "content": "Done.", "usage": {"input_tokens": "@"}},
    }
    second = DEEP if value == "deep" else json.dumps(reply).replace('"@"', value)
    return json.dumps(user) + "\n" + second


def _t2s(value: str) -> str:
    if value == "deep":
        return json.dumps({"id": "t1", "task_id": "a", "verdict": "failed", "meta": "@"}).replace('"@"', DEEP)
    return json.dumps({"id": "t1", "task_id": "a", "verdict": "failed", "usage": {"prompt_tokens": "@"}}).replace(
        '"@"', value
    )


IMPORTS = {  # (format, value) -> (writer, line, reason)
    ("openai-jsonl", '"lots"'): (_openai, 1, "usage.prompt_tokens must be a whole number of tokens, not 'lots'"),
    ("openai-jsonl", "NaN"): (_openai, 1, "NaN is not a number JSON allows"),
    ("openai-jsonl", "deep"): (_openai, 1, "JSON nested more than 64 levels deep"),
    ("claude-code", '"lots"'): (
        _claude_code,
        2,
        "message.usage.input_tokens must be a whole number of tokens, not 'lots'",
    ),
    ("claude-code", "NaN"): (_claude_code, 2, "NaN is not a number JSON allows"),
    ("claude-code", "deep"): (_claude_code, 2, "JSON nested more than 64 levels deep"),
    ("t2s", '"lots"'): (_t2s, 1, "not a valid trajectory: usage.prompt_tokens: Input should be a valid integer"),
    ("t2s", "NaN"): (_t2s, 1, "NaN is not a number JSON allows"),
    ("t2s", "deep"): (_t2s, 1, "JSON nested more than 64 levels deep"),
}


@pytest.mark.parametrize("fmt, value", sorted(IMPORTS), ids=lambda v: v.strip('"'))
def test_import_reports_unusable_lines_instead_of_crashing(repo, tmp_path, fmt, value):
    writer, line, reason = IMPORTS[(fmt, value)]
    path = tmp_path / "in.jsonl"
    path.write_text(writer(value) + "\n")
    before = snapshot(repo)
    result = run_cli(["import", "--format", fmt, str(path), "--run", "ext", "-C", str(repo)])
    assert result.exit_code == 1, result.output
    assert f"skipped {path}:{line}: {reason}" in result.output
    assert "nothing imported into run 'ext': 1 bad line(s)" in result.output
    assert snapshot(repo) == before


def test_import_keeps_the_good_lines_of_a_file_with_a_bad_one(repo, tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = json.dumps({"id": "ok1", "messages": MESSAGES, "usage": {"prompt_tokens": 12, "completion_tokens": 3}})
    path.write_text(good + "\n" + _openai("NaN") + "\n")
    result = run_cli(["import", "--format", "openai-jsonl", str(path), "--run", "ext", "-C", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    assert f"skipped {path}:2: NaN is not a number JSON allows" in result.output
    stored = json.loads(git(repo, "show", "refs/t2s/runs/ext:trajectories/ok1.json"))
    assert stored["usage"]["prompt_tokens"] == 12


# ---------------------------------------------------------------------- output paths
def test_gate_checks_the_markdown_path_before_writing_anything(repo, tmp_path):
    before = snapshot(repo, tmp_path / "missing")
    result = run_cli(
        [
            "gate",
            "HEAD",
            "--baseline",
            "HEAD",
            "--markdown",
            str(tmp_path / "missing" / "dir" / "x.md"),
            "-C",
            str(repo),
        ]
    )
    assert result.exit_code == 2, result.output
    assert (
        f"--markdown {tmp_path / 'missing' / 'dir' / 'x.md'}: cannot write: No such file or directory" in result.output
    )
    assert snapshot(repo, tmp_path / "missing") == before  # no eval note, no gate note


@pytest.fixture
def released(repo):
    from t2s.config import load_config
    from t2s.gitstore.store import GitStore
    from t2s.releases.release import release

    store = GitStore.discover(repo)
    git(repo, "checkout", "-q", "--detach")
    s0 = store.resolve("main")
    tree = store.build_tree(
        s0, {"skills/sheet-sums/SKILL.md": (repo / "skills/sheet-sums/SKILL.md").read_text() + "\nTip.\n"}
    )
    cand = store.commit(tree, [s0], "a tip")
    fake_gate(store, cand, s0)
    release(store, load_config(repo / "t2s.toml"), cand)
    return repo


@pytest.mark.parametrize("target", ["/proc/nope", "/proc/self/nope/deeper", "FILE"])
def test_pack_into_a_folder_it_cannot_write_is_a_clear_error(released, tmp_path, target):
    if target == "FILE":  # a file where a folder on the way should be
        (tmp_path / "a-file").write_text("in the way\n")
        target = str(tmp_path / "a-file" / "assets")
    before = snapshot(released, tmp_path)
    result = run_cli(["pack", "-o", target, "-C", str(released)])
    assert result.exit_code == 2, result.output
    assert f"cannot write into {target}: " in result.output
    assert snapshot(released, tmp_path) == before


@pytest.mark.parametrize("content", [b"garbage\n", b"", b"PK\x03\x04 truncated zip"])
def test_install_of_a_file_that_is_not_a_zip_is_a_clear_error(tmp_path, monkeypatch, content):
    archive = tmp_path / "garbage.zip"
    archive.write_bytes(content)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    result = run_cli(["install", str(archive)])
    assert result.exit_code == 2, result.output
    assert f"{archive}: not a readable zip archive" in result.output
    assert list(project.iterdir()) == []


def test_report_and_pr_body_into_a_missing_folder_are_clear_errors(repo, tmp_path):
    from t2s.gitstore.store import GitStore
    from t2s.record.runs import RunManifest, RunRecord

    store = GitStore.discover(repo)
    RunRecord(store, "r1").create(RunManifest(run="r1", s0=store.resolve("HEAD"), skill_dir="skills/sheet-sums"))
    missing = tmp_path / "missing" / "out.html"
    report = run_cli(["report", "--run", "r1", "-o", str(missing), "-C", str(repo)])
    assert report.exit_code == 2 and f"-o {missing}: cannot write: No such file or directory" in report.output
    assert not os.path.exists(missing.parent)


# ---------------------------------------------------------------------- found by the sweep
def _corrupt_run(store, run: str, files: dict[str, bytes]) -> None:
    """A run record whose files were changed outside t2s (a hand edit, a bad merge)."""
    from t2s.record.runs import RunManifest, RunRecord

    record = RunRecord(store, run)
    if not record.exists():
        record.create(RunManifest(run=run, s0=store.resolve("HEAD"), skill_dir="skills/sheet-sums"))
    record.write(files, "changed outside t2s")


@pytest.mark.parametrize(
    "manifest, problem",
    [
        (b"garbage", "manifest.json is not valid JSON (Expecting value"),
        (b'{"run": 5}', "manifest.json is not a t2s run manifest (run: Input should be a valid string"),
    ],
)
@pytest.mark.parametrize(
    "args", [["review"], ["analyze"], ["merge"], ["rollout"], ["report"], ["blame", "1"]], ids=lambda a: a[0]
)
def test_a_corrupt_run_manifest_is_a_clear_error(repo, tmp_path, manifest, problem, args):
    from t2s.gitstore.store import GitStore

    store = GitStore.discover(repo)
    _corrupt_run(store, "bad", {"manifest.json": manifest})
    before = snapshot(repo)
    result = run_cli([*args[:1], "--run", "bad", *args[1:], "-C", str(repo)])
    assert result.exit_code == 1, result.output
    assert f"refs/t2s/runs/bad:{problem}" in result.output
    assert snapshot(repo) == before


def test_merge_names_a_corrupt_patch_record_or_review_note(tmp_path):
    from tests._runfixtures import add_patch, make_skill_repo, start_run

    store = make_skill_repo(tmp_path)
    record = start_run(store)
    add_patch(store, record, 1, "Recalculate formulas before saving.")
    add_patch(store, record, 2, "Read the cells back before finishing.")
    store.add_note(REVIEW_NOTES, "refs/heads/t2s/r1/patch/0001", "not a verdict\n")
    before = snapshot(store.root)
    result = run_cli(["merge", "--run", "r1", "-C", str(store.root)])
    assert result.exit_code == 2, result.output
    assert "the review note on patch 0001" in result.output and "is not a t2s verdict" in result.output
    assert snapshot(store.root) == before

    git(store.root, "notes", "--ref", "t2s/review", "remove", "refs/heads/t2s/r1/patch/0001")
    record.write({"patches/0002.json": b'{"patch": 7}'}, "changed outside t2s")
    before = snapshot(store.root)
    result = run_cli(["merge", "--run", "r1", "-C", str(store.root)])
    assert result.exit_code == 1, result.output
    assert (
        "refs/t2s/runs/r1:patches/0002.json is not a valid PatchRecord (patch: Input should be a valid string"
        in result.output
    )
    assert snapshot(store.root) == before


def test_import_of_something_that_is_not_a_regular_file(repo, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    result = run_cli(["import", "--format", "t2s", str(fifo), "--run", "ext", "-C", str(repo)])
    assert result.exit_code == 2 and f"{fifo}: not a regular file" in result.output


def test_install_refuses_a_zip_with_an_absolute_path(tmp_path, monkeypatch):
    import zipfile

    archive = tmp_path / "abs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("/etc/SKILL.md", "---\nname: etc\ndescription: d\n---\n")
    monkeypatch.chdir(tmp_path)
    result = run_cli(["install", str(archive)])
    assert result.exit_code == 2 and "unsafe path '/etc/SKILL.md'" in result.output
    assert not (tmp_path / ".claude").exists()
