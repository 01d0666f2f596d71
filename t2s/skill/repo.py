"""Skill repositories: where a skill lives in a repo, linting it at a revision, ``t2s init``."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from t2s.config import CONFIG_FILE, Config, decode_config, load_config, parse_config
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.skill.format import (
    NAME_RE,
    SKILL_FILE,
    Finding,
    Limits,
    lint_files,
    lint_rev,
    parse_skill_md,
    read_skill_dir,
)
from t2s.skill.hooks import install_hooks
from t2s.tasks.registry import configure_suite

SKILLS_DIR = "skills"
WORKFLOW_PATH = ".github/workflows/t2s.yml"
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
#: Bundled data (links to the project's top-level hooks/ and skill-repos/; copied into wheels).
BUNDLED = Path(__file__).resolve().parents[1] / "_data"


def limits_of(config: Config) -> Limits:
    return Limits(config.lint.max_skill_lines, config.lint.max_reference_lines)


def config_at(store: GitStore, rev: str) -> Config:
    """The ``t2s.toml`` committed at ``rev`` (defaults if there is none)."""
    raw = store.read_blob(rev, CONFIG_FILE)
    if raw is None:
        return Config()
    where = Path(f"{rev[:12]}:{CONFIG_FILE}")
    return parse_config(decode_config(raw, where), where)


def skill_dirs_at(store: GitStore, rev: str, config: Config | None = None) -> list[str]:
    """Skill folders at ``rev``: the configured one, else every ``skills/*/`` with a SKILL.md."""
    config = config or config_at(store, rev)
    if config.skill.name or config.skill.path:
        return [config.skill.dir]
    dirs = {
        str(PurePosixPath(e.path).parent)
        for e in store.list_tree(rev, SKILLS_DIR)
        if PurePosixPath(e.path).name == SKILL_FILE and len(PurePosixPath(e.path).parts) == 3
    }
    return sorted(dirs)


def lint_skills_at(
    store: GitStore, rev: str, *, strict: bool | None = None, limits: Limits | None = None
) -> list[tuple[str, list[Finding]]]:
    """Lint every skill of the repository at ``rev`` (a commit or a tree)."""
    config = config_at(store, rev)
    strict = config.lint.strict if strict is None else strict
    limits = limits or limits_of(config)
    return [
        (skill_dir, lint_rev(store, rev, skill_dir, strict=strict, limits=limits))
        for skill_dir in skill_dirs_at(store, rev, config)
    ]


class BrokenSkill(UsageError):
    """The committed skill is missing or does not lint, so no agent may run with it."""


def require_clean_skill(store: GitStore, config: Config, rev: str, skill_dir: str) -> str:
    """The skill folder's tree at ``rev`` if the skill lints by ``config``'s rules,
    else :class:`BrokenSkill`.

    The one check every command that runs a skill makes first (``rollout``, ``eval``,
    ``analyze``, and so ``evolve``), so they agree on what may run: a symlinked or
    malformed SKILL.md never reaches a model.
    """
    commit = store.resolve(rev)
    tree = store.subtree(commit, skill_dir)
    if not tree:
        raise BrokenSkill(f"{commit[:12]} has no skill folder {skill_dir}")
    findings = lint_rev(store, commit, skill_dir, strict=config.lint.strict, limits=limits_of(config))
    if findings:
        listing = "; ".join(f.render(prefix=f"{skill_dir}/") for f in findings[:5])
        raise BrokenSkill(
            f"the skill at {commit[:12]} does not lint ({len(findings)} finding(s)): {listing}",
            hint=f"see `t2s lint {commit[:12]}`; fix the skill and commit it",
        )
    return tree


def skill_dir_of(store: GitStore, config: Config, rev: str = "HEAD") -> str:
    """The one skill folder t2s works on; a clear error when it is ambiguous."""
    dirs = skill_dirs_at(store, rev, config)
    if len(dirs) != 1:
        found = ", ".join(dirs) or "none"
        raise UsageError(
            f"expected exactly one skill under {SKILLS_DIR}/ at {rev}, found {found}",
            hint="set [skill] name in t2s.toml",
        )
    return dirs[0]


# ---------------------------------------------------------------------- init
@dataclass
class InitResult:
    repo: Path
    skill_dir: str
    commit: str
    created_repo: bool
    hooks: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def resolve_seed(seed: str) -> Path:
    """A seed given as a path, or as the name of one of the project's ``skill-repos/``."""
    path = Path(seed)
    if path.is_dir():
        return path
    for bundled in (BUNDLED / "skill-repos" / seed, BUNDLED / seed):
        if bundled.is_dir():
            return bundled
    raise UsageError(f"seed {seed!r} not found (neither a folder nor one of skill-repos/)")


def empty_skill(name: str, description: str) -> dict[str, bytes]:
    title = name.replace("-", " ").capitalize()
    text = (
        "---\n"
        f"name: {name}\n"
        f"description: {_yaml_scalar(description)}\n"
        "---\n\n"
        f"# {title}\n\n"
        "This skill starts empty; t2s fills it with lessons from agent trajectories.\n"
    )
    return {SKILL_FILE: text.encode()}


def _yaml_scalar(text: str) -> str:
    """A YAML double-quoted scalar that survives any punctuation in ``text``."""
    import json

    return json.dumps(" ".join(text.split()), ensure_ascii=False)


def init_skill_repo(
    directory: Path,
    *,
    seed: str | None = None,
    name: str | None = None,
    description: str | None = None,
    force: bool = False,
    install_git_hooks: bool = True,
    files: dict[str, bytes] | None = None,
    suite: tuple[str, str] | None = None,
) -> InitResult:
    """Create (or extend) a skill repository and make one commit with the skill.

    ``files`` (with ``name``): the skill's files instead of an empty skill, e.g. a draft
    from :func:`t2s.analysis.analysts.create_skill_files`; they are linted like any other.
    """
    if files is not None and name and not seed:
        _skill_source(None, name, description or "-")  # validates the name
        skill_files, skill_name = dict(files), name
    else:
        skill_files, skill_name = _skill_source(seed, name, description)
    directory = Path(directory)
    config_text = (TEMPLATES / "t2s.toml").read_text().format(name=skill_name)
    if suite is not None:  # ``suite = (type, path)``: [suites.<name>] + [rollout] suite (t2s.tasks)
        if (directory / CONFIG_FILE).exists() and not force:
            raise UsageError(
                f"{CONFIG_FILE} already exists; add the [suites] section yourself",
                hint="or use --force to rewrite t2s.toml",
            )
        config_text = configure_suite(config_text, suite_type=suite[0], path=suite[1], repo_root=directory)
    created = not (directory / ".git").exists()
    if not created:
        GitStore.discover(directory)  # a clear error if it is something odd
    store = GitStore.init(directory)
    skill_dir = f"{SKILLS_DIR}/{skill_name}"
    _refuse_overwrite(store, skill_dir, force)

    to_write: dict[str, bytes] = {f"{skill_dir}/{rel}": data for rel, data in skill_files.items()}
    config_path = store.root / CONFIG_FILE
    if config_path.exists() and not force:
        existing = load_config(config_path)
        if existing.skill.name and existing.skill.name != skill_name:
            raise UsageError(
                f"{CONFIG_FILE} already configures skill {existing.skill.name!r}",
                hint="one skill per repository; use --force to reconfigure",
            )
    else:
        to_write[CONFIG_FILE] = config_text.encode()
    if not (store.root / WORKFLOW_PATH).exists() or force:
        to_write[WORKFLOW_PATH] = (TEMPLATES / "workflow-t2s.yml").read_bytes()

    findings = lint_files(skill_name, skill_files, strict=True, limits=Limits())
    if findings:
        listing = "\n".join(f.render(prefix=f"{skill_dir}/") for f in findings)
        raise UsageError(f"the skill does not pass lint; nothing was written:\n{listing}")

    hooks = install_hooks_into(store) if install_git_hooks else []
    for rel, data in to_write.items():
        target = store.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    commit = store.commit_paths(sorted(to_write), f"t2s init: add skill {skill_name}")
    return InitResult(store.root, skill_dir, commit, created, hooks, sorted(to_write))


def install_hooks_into(store: GitStore) -> list[str]:

    return install_hooks(store, sys.executable)


def _skill_source(seed: str | None, name: str | None, description: str | None) -> tuple[dict[str, bytes], str]:
    if seed and (name or description):
        raise UsageError("give either --seed or --name/--description, not both")
    if seed:
        path = resolve_seed(seed)
        files, symlinks = read_skill_dir(path)
        if symlinks:
            raise UsageError(f"seed {path} contains symlinks: {', '.join(sorted(symlinks))}")
        if SKILL_FILE not in files:
            raise UsageError(f"seed {path} has no {SKILL_FILE}")
        doc = parse_skill_md(files[SKILL_FILE].decode("utf-8"))
        return files, doc.name or path.resolve().name
    if not name or not description:
        raise UsageError("give --seed PATH, or both --name and --description")
    if not NAME_RE.match(name) or len(name) > 64:
        raise UsageError(f"skill name {name!r} must be 1-64 characters of a-z, 0-9 and single hyphens")
    return empty_skill(name, description), name


def _refuse_overwrite(store: GitStore, skill_dir: str, force: bool) -> None:
    if force:
        return
    on_disk = (store.root / skill_dir).exists()
    committed = store.rev_parse("HEAD") and store.subtree("HEAD", skill_dir)
    if on_disk or committed:
        raise UsageError(f"{skill_dir} already exists in {store.root}", hint="use --force to replace it")
