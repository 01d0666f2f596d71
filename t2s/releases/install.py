"""``t2s install``: a released skill copied into ``.claude/skills/<name>`` (or
``.agents/skills/``, or any folder), from a git repository, a path or a packed zip,
with where it came from recorded in its frontmatter.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from t2s.errors import T2SError, UsageError
from t2s.gitstore.store import clone
from t2s.record.refs import parse_version
from t2s.record.tags import latest_release_tag, require_release_tag
from t2s.skill.format import NAME_RE, SKILL_FILE, parse_skill_md, split_frontmatter
from t2s.skill.repo import config_at, skill_dir_of


@dataclass
class InstallResult:
    name: str
    version: str
    source: str
    dest: Path
    replaced: bool

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "dest": str(self.dest),
            "replaced": self.replaced,
        }


def split_source(source: str) -> tuple[str, str | None]:
    """``SOURCE[@TAG]`` -> (source, tag); the ``@`` of ``git@host:...`` is not a tag."""
    if "@" in source:
        head, tail = source.rsplit("@", 1)
        if head and tail and "/" not in tail and ":" not in tail:
            return head, tail
    return source, None


def set_metadata(skill_md: str, values: dict[str, str]) -> str:
    """SKILL.md with ``metadata.<key>`` set for each of ``values``, editing the YAML
    text minimally: other lines (unknown keys, comments) survive byte for byte."""

    frontmatter, body, _ = split_frontmatter(skill_md)
    newline = "\r\n" if "\r\n" in skill_md.split("\n", 1)[0] + "\n" else "\n"
    lines = frontmatter.splitlines(keepends=True)
    quoted = {k: json.dumps(str(v), ensure_ascii=False) for k, v in values.items()}
    start = next((i for i, line in enumerate(lines) if re.match(r"^metadata\s*:", line)), None)
    if start is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += newline
        lines.append(f"metadata:{newline}")
        lines += [f"  {k}: {v}{newline}" for k, v in quoted.items()]
    else:
        rest = lines[start].split(":", 1)[1].strip()
        if rest and not rest.startswith("#"):
            # flow style (``metadata: {a: b}``): rewrite this one key as a block
            import yaml

            existing = yaml.safe_load(rest) or {}
            if not isinstance(existing, dict):
                raise UsageError("SKILL.md: metadata is not a mapping")
            merged = {str(k): json.dumps(str(v), ensure_ascii=False) for k, v in existing.items()}
            merged.update(quoted)
            lines[start : start + 1] = [f"metadata:{newline}"] + [f"  {k}: {v}{newline}" for k, v in merged.items()]
        else:
            end = start + 1
            while end < len(lines) and (not lines[end].strip() or lines[end][:1] in (" ", "\t")):
                end += 1
            block = lines[start + 1 : end]
            indents = [
                len(line) - len(line.lstrip(" "))
                for line in block
                if line.strip() and not line.lstrip().startswith("#")
            ]
            indent = " " * (min(indents) if indents else 2)
            for key, value in quoted.items():
                pos = next(
                    (i for i, line in enumerate(block) if re.match(rf"^{indent}{re.escape(key)}\s*:", line)), None
                )
                line = f"{indent}{key}: {value}{newline}"
                if pos is None:
                    last = max((i for i, line in enumerate(block) if line.strip()), default=-1)
                    block.insert(last + 1, line)
                else:
                    stop = pos + 1  # drop a multi-line value's continuation lines
                    while (
                        stop < len(block)
                        and block[stop].strip()
                        and len(block[stop]) - len(block[stop].lstrip(" ")) > len(indent)
                    ):
                        stop += 1
                    block[pos:stop] = [line]
            lines[start + 1 : end] = block
    return f"---{newline}{''.join(lines)}---{newline}{body}"


def _installed_source(skill_md: Path) -> str | None:

    try:
        meta = parse_skill_md(skill_md.read_text(encoding="utf-8")).meta.get("metadata")
    except (T2SError, OSError, UnicodeDecodeError):
        return None
    return str(meta.get("source")) if isinstance(meta, dict) and meta.get("source") else None


def _from_git(source: str, tag: str | None) -> tuple[str, str, dict[str, tuple[bytes, bool]], str]:

    with tempfile.TemporaryDirectory(prefix="t2s-install-") as tmp:
        path = Path(source)
        url = str(path.resolve()) if path.exists() else source
        repo = clone(url, Path(tmp) / "repo.git")
        if tag:
            commit = require_release_tag(repo, tag, where=f" in {source}")
            rev = tag
        else:
            rev = latest_release_tag(repo) or "HEAD"
            if not repo.rev_parse(f"{rev}^{{commit}}"):
                raise UsageError(f"{source} has no release tag and no commit to install")
            commit = repo.resolve(rev)
        skill_dir = skill_dir_of(repo, config_at(repo, commit), commit)
        prefix = skill_dir.rstrip("/") + "/"
        entries = [e for e in repo.list_tree(commit, skill_dir) if e.type == "blob" and e.mode != "120000"]
        blobs = repo.read_objects(e.sha for e in entries)
        files = {e.path[len(prefix) :]: (blobs[e.sha], e.mode == "100755") for e in entries}
        version = rev[1:] if parse_version(rev) else commit[:12]
        return PurePosixPath(skill_dir).name, version, files, url


def _from_zip(path: Path) -> tuple[str, str, dict[str, tuple[bytes, bool]], str]:
    try:
        return _read_zip(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as err:
        raise UsageError(
            f"{path}: not a readable zip archive ({err})", hint="install a zip made by `t2s pack`, or a git repository"
        ) from None
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror or err}") from None


def _read_zip(path: Path) -> tuple[str, str, dict[str, tuple[bytes, bool]], str]:
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        tops = {PurePosixPath(n).parts[0] for n in names}
        if len(tops) != 1:
            raise UsageError(f"{path}: expected one top-level skill folder, found {', '.join(sorted(tops)) or 'none'}")
        name = tops.pop()
        files = {}
        for n in names:
            rel = PurePosixPath(*PurePosixPath(n).parts[1:])
            if PurePosixPath(n).is_absolute() or ".." in PurePosixPath(n).parts:
                raise UsageError(f"{path}: unsafe path {n!r}")
            mode = (zf.getinfo(n).external_attr >> 16) & 0o777
            files[rel.as_posix()] = (zf.read(n), bool(mode & 0o111))
    if "SKILL.md" not in files:
        raise UsageError(f"{path}: {name}/SKILL.md is missing")
    m = re.match(rf"^{re.escape(name)}-(.+)\.zip$", path.name)
    return name, m[1] if m else "unknown", files, str(path.resolve())


def install(
    source: str,
    *,
    dest: Path | None = None,
    agents: bool = False,
    force: bool = False,
    cwd: Path | None = None,
) -> InstallResult:
    """Install a released skill where agents look for skills.

    ``source`` is ``SOURCE[@TAG]`` with SOURCE a git URL or path (default tag: the
    latest ``vX.Y.Z``, else HEAD) or a zip made by :func:`pack`. The skill goes into
    ``DEST/<name>`` (default ``.claude/skills``, or ``.agents/skills`` with ``agents``),
    relative to ``cwd``. SKILL.md gets ``metadata.source`` and ``metadata.version``.
    An installed skill from a different source is replaced only with ``force``.
    """

    cwd = Path(cwd or Path.cwd())
    src, tag = split_source(source)
    if src.endswith(".zip") and Path(src).is_file():
        if tag:
            raise UsageError("a packed zip holds one version; drop the @TAG")
        name, version, files, origin = _from_zip(Path(src))
    else:
        name, version, files, origin = _from_git(src, tag)
    if not NAME_RE.match(name):
        raise UsageError(f"refusing to install a skill named {name!r}")
    if SKILL_FILE not in files:
        raise UsageError(f"{source}: the skill {name} has no {SKILL_FILE}")
    base = Path(dest) if dest else Path(".agents/skills" if agents else ".claude/skills")
    base = base if base.is_absolute() else cwd / base
    target = base / name
    replaced = False
    if target.exists():
        existing = _installed_source(target / SKILL_FILE)
        if existing != origin and not force:
            what = f"from {existing}" if existing else "not installed by t2s"
            raise UsageError(f"{target} already holds a different skill ({what})", hint="pass --force to replace it")
        replaced = True
    try:
        text = files[SKILL_FILE][0].decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(
            f"{source}: {name}/{SKILL_FILE} is not UTF-8 text ({err.reason} at byte {err.start})"
        ) from None
    files[SKILL_FILE] = (set_metadata(text, {"source": origin, "version": version}).encode(), files[SKILL_FILE][1])
    try:
        _place(base, name, target, files)
    except OSError as err:
        raise UsageError(f"cannot install into {base}: {err.strerror or err}") from None
    return InstallResult(name, version, origin, target, replaced)


def _place(base: Path, name: str, target: Path, files: dict[str, tuple[bytes, bool]]) -> None:
    """Write the skill into a staging folder next to ``target``, then swap it in."""
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=base))
    try:
        for rel, (data, exe) in files.items():
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            out.chmod(0o755 if exe else 0o644)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
