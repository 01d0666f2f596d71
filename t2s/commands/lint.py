"""``t2s lint``: check skills against the Agent Skills format and t2s's limits."""

from __future__ import annotations

from pathlib import Path

import click

from t2s.commands._common import console, json_option, print_json, repo_option, setting_type
from t2s.config import CONFIG_FILE, LintSection, load_config
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.skill.format import SKILL_FILE, Finding, Limits, lint_dir
from t2s.skill.repo import SKILLS_DIR, limits_of, lint_skills_at


@click.command()
@click.argument("target", required=False, default=".")
@click.option("--lenient", is_flag=True, help="Accept unknown frontmatter keys (kept byte for byte).")
@click.option(
    "--strict",
    "force_strict",
    is_flag=True,
    help="Follow the public spec exactly (default unless t2s.toml says otherwise).",
)
@click.option("--staged", is_flag=True, help="Lint the skills as staged in the index (what the pre-commit hook runs).")
@click.option(
    "--max-skill-lines",
    type=setting_type(LintSection, "max_skill_lines"),
    default=None,
    help="Line limit for SKILL.md (default 500).",
)
@click.option(
    "--max-reference-lines",
    type=setting_type(LintSection, "max_reference_lines"),
    default=None,
    help="Line limit for each reference (default 300).",
)
@repo_option
@json_option
def lint(target, lenient, force_strict, staged, max_skill_lines, max_reference_lines, repo_dir, as_json):
    """Lint a skill folder, or every skill of a repository at a revision.

    TARGET is a skill folder (holding SKILL.md), a repository folder (its skills/*
    as they are on disk), or a git revision of the current repository. Exit status:
    0 clean, 1 findings, 2 usage error.

    \b
    Examples:
      t2s lint skill-repos/xlsx          # a folder
      t2s lint                            # the repository here, on disk
      t2s lint HEAD~3 --json              # the skills as committed three commits ago
      t2s lint --lenient .claude/skills/my-skill
    """
    if lenient and force_strict:
        raise UsageError("--lenient and --strict contradict each other")
    results = _lint_target(target, repo_dir, staged, lenient, force_strict, max_skill_lines, max_reference_lines)
    total = sum(len(findings) for _, findings in results)
    if as_json:
        print_json(
            {
                "ok": total == 0,
                "skills": [{"path": path, "findings": [f.to_dict() for f in findings]} for path, findings in results],
            }
        )
    else:
        _print_human(results)
    raise SystemExit(1 if total else 0)


def _strictness(lenient: bool, force_strict: bool, default: bool) -> bool:
    if lenient:
        return False
    return True if force_strict else default


def _override(limits: Limits, skill: int | None, reference: int | None) -> Limits:
    return Limits(skill or limits.max_skill_lines, reference or limits.max_reference_lines)


def _lint_target(
    target, repo_dir, staged, lenient, force_strict, max_skill, max_ref
) -> list[tuple[str, list[Finding]]]:
    base = Path(repo_dir) if repo_dir else Path(".")
    path = base / target  # like `git -C`: a relative TARGET is relative to --repo
    if staged:
        store = GitStore.discover(repo_dir or Path.cwd())
        return _lint_rev(store, store.index_tree(), lenient, force_strict, max_skill, max_ref)
    if path.is_file() and path.name == SKILL_FILE:
        path = path.parent
    if path.is_dir():
        return _lint_folder(path, lenient, force_strict, max_skill, max_ref)
    store = GitStore.discover(repo_dir or Path.cwd())
    if not store.rev_parse(f"{target}^{{commit}}"):
        raise UsageError(f"{target!r} is neither a folder nor a revision of {store.root}")
    return _lint_rev(store, target, lenient, force_strict, max_skill, max_ref)


def _lint_folder(path: Path, lenient, force_strict, max_skill, max_ref):
    config = load_config(path / CONFIG_FILE)
    strict = _strictness(lenient, force_strict, config.lint.strict)
    limits = _override(limits_of(config), max_skill, max_ref)
    if (path / SKILL_FILE).is_file():
        return [(str(path), lint_dir(path, strict=strict, limits=limits))]
    if config.skill.name or config.skill.path:
        dirs = [path / config.skill.dir]
    else:
        dirs = sorted(p.parent for p in (path / SKILLS_DIR).glob(f"*/{SKILL_FILE}"))
    if not dirs:
        raise UsageError(f"{path}: no SKILL.md here and no {SKILLS_DIR}/*/{SKILL_FILE} below it")
    return [
        (str(d.relative_to(path)) if d.is_relative_to(path) else str(d), lint_dir(d, strict=strict, limits=limits))
        for d in dirs
    ]


def _lint_rev(store: GitStore, rev: str, lenient, force_strict, max_skill, max_ref):
    from t2s.skill.repo import config_at

    config = config_at(store, rev)
    strict = _strictness(lenient, force_strict, config.lint.strict)
    limits = _override(limits_of(config), max_skill, max_ref)
    results = lint_skills_at(store, rev, strict=strict, limits=limits)
    if not results:
        raise UsageError(f"no skill found under {SKILLS_DIR}/ at {rev}")
    return results


def _print_human(results) -> None:
    for path, findings in results:
        if not findings:
            console.print(f"[green]✓[/green] {path}: clean")
            continue
        for finding in findings:
            console.print(finding.render(prefix=f"{path}/"), markup=False)
    total = sum(len(f) for _, f in results)
    if total:
        console.print(f"[red]{total} finding(s)[/red] in {sum(1 for _, f in results if f)} of {len(results)} skill(s)")
