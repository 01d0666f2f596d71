"""Releases, packs, installs, pushes and bisects: what happens after the gate.

- :func:`release` merges a gated candidate into the release branch (first parent: the
  previous release), tags it ``vX.Y.Z`` and moves the branch and the tag in one
  compare-and-swap transaction. Nothing is checked out; a release branch that is
  checked out in a worktree is left for its owner to fast-forward.
- :func:`pack` writes ``dist/<name>-<version>.zip`` and ``.tar.gz`` (one top-level
  ``<name>/`` folder), the eval JSON and ``SHA256SUMS``; the bytes depend only on the
  packed commit and its note.
- :func:`install` copies a released skill into ``.claude/skills/<name>`` (or
  ``.agents/skills/``, or any folder) and records where it came from.
- :func:`push` sends a run's branches, its run record, the notes and the tags.
- :func:`bisect` drives ``git bisect run`` with ``t2s eval`` in a private linked
  worktree, so the user's working tree, index, HEAD and bisect state stay untouched.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

from t2s.config import Config
from t2s.errors import RefConflict, T2SError, UsageError
from t2s.gitstore import ZERO_SHA, GitStore, RefUpdate, TagRef, clone
from t2s.notes import NoteFormatError, read_eval_note, write_eval_note

#: vX.Y.Z, strict semantic versioning: decimal numbers without leading zeros, nothing after.
VERSION_TAG_RE = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
BUMPS = ("major", "minor", "patch")
RELEASE_TAG_RULE = ("an annotated tag vX.Y.Z (no leading zeros) on a release merge made by `t2s release` "
                    "(two parents, trailers T2S-Release: vX.Y.Z and T2S-Candidate: its second parent)")


# ---------------------------------------------------------------------- versions
def parse_version(name: str) -> tuple[int, int, int] | None:
    m = VERSION_TAG_RE.match(name)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def release_tag_problem(store: GitStore, tag: TagRef) -> str | None:
    """Why ``tag`` is not a t2s release tag, or None when it is one.

    A t2s release tag, and nothing else, counts as a release (for the next version,
    the default baseline, ``pack``, ``install``, ``push`` and the pre-push hook):

    1. its name is ``vX.Y.Z`` with X, Y, Z decimal numbers without leading zeros;
    2. it is annotated: the ref points at a tag object that carries the same name;
    3. it tags a commit that ``t2s release`` made: a merge of two parents whose
       message has the trailers ``T2S-Release: <the tag's name>`` and
       ``T2S-Candidate: <the second parent>``.
    """
    if parse_version(tag.name) is None:
        return "its name is not vX.Y.Z (numbers without leading zeros)"
    if not tag.annotated:
        return "it is a lightweight tag, not an annotated one"
    if tag.tagged_name != tag.name:
        return f"its tag object is named {tag.tagged_name!r}"
    if tag.target_type != "commit":
        return f"it tags a {tag.target_type}, not a commit"
    trailers = store.trailers(tag.target)
    if len(tag.parents) != 2 or _trailer(trailers, "T2S-Release") != tag.name:
        return f"{tag.target[:12]} is not a release merge made by `t2s release` for {tag.name}"
    if _trailer(trailers, "T2S-Candidate") != tag.parents[1]:
        return f"{tag.target[:12]} does not merge the candidate its T2S-Candidate trailer names"
    return None


def release_tags(store: GitStore) -> list[tuple[tuple[int, int, int], str]]:
    """The t2s release tags (see :func:`release_tag_problem`), oldest version first.
    Other ``v*`` tags, e.g. a lightweight one on a patch commit, are ignored."""
    found = []
    for tag in store.tag_refs("v*"):
        if release_tag_problem(store, tag) is None:
            found.append((parse_version(tag.name), tag.name))
    return sorted(found)


def latest_release_tag(store: GitStore) -> str | None:
    tags = release_tags(store)
    return tags[-1][1] if tags else None


def require_release_tag(store: GitStore, name: str, where: str = "") -> str:
    """The commit of release tag ``name``; a :class:`UsageError` saying why when
    ``name`` is not a t2s release tag."""
    found = [t for t in store.tag_refs(name) if t.name == name] if parse_version(name) else []
    problem = release_tag_problem(store, found[0]) if found else None
    if found and problem is None:
        return found[0].target
    if problem is None:
        problem = ("there is no such tag" if parse_version(name) else
                   "its name is not vX.Y.Z (numbers without leading zeros)")
    raise UsageError(f"{name!r}{where} is not a t2s release: {problem}",
                     hint=f"a release is {RELEASE_TAG_RULE}; list them with `git tag -l 'v*'`")


def bump_version(current: tuple[int, int, int] | None, bump: str) -> str:
    """The next ``vX.Y.Z`` after ``current`` (None: 0.0.0)."""
    if bump not in BUMPS:
        raise UsageError(f"--bump must be one of {', '.join(BUMPS)}")
    major, minor, patch = current or (0, 0, 0)
    if bump == "major":
        return f"v{major + 1}.0.0"
    if bump == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


# ---------------------------------------------------------------------- changelog
def _run_json(store: GitStore, run: str, path: str) -> Any:
    from t2s.runs import RunRecord

    try:
        record = RunRecord(store, run)
        return record.read_json(path) if record.exists() else None
    except (T2SError, ValueError):
        return None


def branches_at(store: GitStore, commit: str) -> list[str]:
    """t2s branch names (``t2s/<run>/...``) that point at ``commit``."""
    return [ref[len("refs/heads/"):] for ref, sha in store.refs("refs/heads/t2s/").items() if sha == commit]


def _trailer(trailers: Sequence[tuple[str, str]], key: str) -> str | None:
    for k, v in trailers:
        if k == key:
            return v
    return None


def _support_count(value: Any) -> int | None:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def changelog(store: GitStore, previous: str | None, candidate: str) -> list[dict]:
    """The lessons a release adds, with their support, best source first:

    1. the run's merge report for the candidate (``merges/<L-group>.json`` with a
       ``lessons`` list), found through the branch that points at the candidate;
    2. the accepted patches' lessons (``patches/*.json``) of the run;
    3. the subjects of the commits between the previous release and the candidate,
       with their ``T2S-Support`` / ``T2S-Task`` trailers.
    """
    from t2s.evaluate import run_of

    run = run_of(store, candidate)
    if run:
        groups = [g for g in [_trailer(store.trailers(candidate), "T2S-Merge-Group")] if g]
        for branch in branches_at(store, candidate):
            m = re.match(rf"^t2s/{re.escape(run)}/merge/(.+)$", branch)
            if m:
                groups.append(m[1])
        for group in dict.fromkeys(groups):
            report = _run_json(store, run, f"merges/{group}.json")
            lessons = report.get("lessons") if isinstance(report, dict) else None
            if isinstance(lessons, list) and lessons:
                return [_lesson_entry(lesson, "merge") for lesson in lessons if isinstance(lesson, dict)]
        entries = []
        from t2s.runs import RunRecord

        record = RunRecord(store, run)
        for path in record.list("patches") if record.exists() else []:
            data = _run_json(store, run, path)
            if isinstance(data, dict) and data.get("status") == "accepted":
                for lesson in data.get("lessons") or []:
                    if isinstance(lesson, dict):
                        entries.append(_lesson_entry(lesson, f"patch {data.get('patch', '')}".strip()))
        if entries:
            return entries
    revs = store.run("rev-list", "--no-merges", "--reverse", candidate, *([f"^{previous}"] if previous else [])).split()
    entries = []
    for rev in revs[-200:]:
        message = store.commit_message(rev)
        trailers = store.trailers(rev)
        entries.append({
            "text": message.splitlines()[0] if message else rev[:12],
            "support": _support_count(_trailer(trailers, "T2S-Support")),
            "task": _trailer(trailers, "T2S-Task"),
            "source": rev[:12],
        })
    return entries


def _lesson_entry(lesson: dict, source: str) -> dict:
    return {
        "text": str(lesson.get("text", "")).strip(),
        "support": _support_count(lesson.get("support")),
        "placement": lesson.get("placement") or None,
        "source": source,
    }


def changelog_markdown(entries: list[dict]) -> str:
    if not entries:
        return "- (no lessons recorded)"
    lines = []
    for e in entries:
        extra = []
        if e.get("support") is not None:
            extra.append(f"support {e['support']}")
        if e.get("task"):
            extra.append(f"task {e['task']}")
        if e.get("placement") == "reference":
            extra.append("in references/")
        text = " ".join(str(e.get("text", "")).split())
        lines.append(f"- {text}" + (f" ({', '.join(extra)})" if extra else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------------- release
@dataclass
class ReleaseResult:
    version: str
    commit: str
    candidate: str
    previous: str
    branch: str
    tag_object: str
    branch_moved: bool
    checked_out_in: Path | None
    changelog: list[dict]
    message: str
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "tag": self.version,
            "commit": self.commit,
            "candidate": self.candidate,
            "previous": self.previous,
            "branch": self.branch,
            "branch_moved": self.branch_moved,
            "checked_out_in": str(self.checked_out_in) if self.checked_out_in else None,
            "changelog": self.changelog,
            "warnings": self.warnings,
        }


def release(
    store: GitStore,
    config: Config,
    candidate: str,
    *,
    bump: str = "minor",
    branch: str | None = None,
) -> ReleaseResult:
    """Merge the gated ``candidate`` into the release branch and tag it.

    Refuses without a passing gate note on the candidate. The release commit's parents
    are [release branch head, candidate]; its tree is the branch's tree with the skill
    folder replaced by the candidate's. The candidate's eval note (with the gate) is
    copied onto the release commit, so the pre-push hook accepts the tag. The branch
    and the tag move together with compare-and-swap; if the branch is checked out in a
    worktree it is not moved (t2s never touches a working tree) and the result says
    how to fast-forward it.
    """
    from t2s.evaluate import eval_table_markdown, run_of
    from t2s.skillrepo import skill_dir_of

    branch = branch or config.release.branch
    branch_ref = f"refs/heads/{branch}"
    cand = store.resolve(candidate)
    try:
        note = read_eval_note(store, cand)
    except NoteFormatError as err:
        raise T2SError(f"refusing to release {candidate}: {err.message}") from None
    if note is None or note.gate is None:
        raise T2SError(f"refusing to release {candidate} ({cand[:12]}): it has no gate verdict in refs/notes/t2s/eval",
                       hint=f"run `t2s gate {candidate}` first")
    if not note.gate.passed:
        raise T2SError(f"refusing to release {candidate} ({cand[:12]}): its gate failed "
                       f"(delta {note.gate.delta:+.3f}, {note.gate.regressions} regression(s))")
    if note.gate.candidate != cand:
        raise T2SError(f"refusing to release {candidate}: its gate note is for {note.gate.candidate[:12]}")
    old = store.rev_parse(branch_ref)
    if not old:
        raise UsageError(f"there is no branch {branch} to release onto")
    if store.is_ancestor(cand, old):
        raise UsageError(f"{candidate} ({cand[:12]}) is already part of {branch}")
    tags = release_tags(store)
    if tags:
        latest_commit = store.resolve(tags[-1][1])
        if not store.is_ancestor(latest_commit, old):
            raise UsageError(f"{branch} does not contain the latest release {tags[-1][1]}",
                             hint=f"fast-forward it first: `git merge --ff-only {tags[-1][1]}` on {branch}")
    version = bump_version(tags[-1][0] if tags else None, bump)
    if store.rev_parse(f"refs/tags/{version}"):
        raise RefConflict(f"tag {version} already exists")

    skill_dir = skill_dir_of(store, config, cand)
    skill_tree = store.subtree(cand, skill_dir)
    tree = store.replace_subtree(old, skill_dir, skill_tree)
    entries = changelog(store, tags[-1][1] if tags else old, cand)
    name = PurePosixPath(skill_dir).name
    table = eval_table_markdown(note.gate, candidate_label=f"{version}", baseline_label="baseline")
    body = f"{table}\n\nChangelog:\n{changelog_markdown(entries)}"
    trailers = [("T2S-Release", version), ("T2S-Candidate", cand), ("T2S-Baseline", note.gate.baseline)]
    run = run_of(store, cand)
    if run:
        trailers.insert(0, ("T2S-Run", run))
    subject = f"Release {version}: {name}" + (f" from run {run}" if run else "")
    commit = store.commit(tree, [old, cand], subject, body, trailers)
    write_eval_note(store, commit, note)
    tag_message = f"{name} {version}\n\n{body}\n"
    tag_obj = store.tag_object(version, commit, tag_message)

    checked = store.checked_out().get(branch_ref)
    updates = [RefUpdate(f"refs/tags/{version}", tag_obj, ZERO_SHA)]
    if checked is None:
        updates.append(RefUpdate(branch_ref, commit, old))
    store.drop_tag_reflogs()  # earlier t2s versions made them, and `git gc` printed errors
    try:
        store.update_refs(updates, reason=f"t2s release {version}")
    except RefConflict as err:
        raise RefConflict(f"release {version} not made: {branch} or the tag moved meanwhile ({err.message})") from None
    warnings = []
    latest = tags[-1][1] if tags else None
    if latest and note.gate.baseline != store.resolve(latest):
        warnings.append(f"the gate compared against {note.gate.baseline[:12]}, not the latest release {latest}")
    return ReleaseResult(version, commit, cand, old, branch, tag_obj, checked is None, checked, entries, body, warnings)


# ---------------------------------------------------------------------- pack
@dataclass
class PackResult:
    name: str
    version: str
    commit: str
    archives: list[Path]
    eval_json: Path | None
    sums: Path

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "commit": self.commit,
            "files": [str(p) for p in [*self.archives, *( [self.eval_json] if self.eval_json else []), self.sums]],
        }


def _zip_time(ts: int) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(max(ts, 315532800))  # zip cannot store times before 1980
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def build_archives(name: str, files: list[tuple[str, bytes, bool]], mtime: int) -> tuple[bytes, bytes]:
    """Deterministic (zip bytes, tar.gz bytes) holding ``<name>/`` + files.

    ``files`` is ``(relative path, data, executable)``; entries are sorted, owners,
    permissions and times fixed, the gzip header carries no name and time 0.
    """
    files = sorted(files)
    dirs = sorted({str(PurePosixPath(name, *PurePosixPath(p).parts[:i])) for p, _, _ in files for i in range(len(PurePosixPath(p).parts))})
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        for d in dirs:
            info = zipfile.ZipInfo(d + "/", _zip_time(mtime))
            info.create_system = 3
            info.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(info, b"")
        for path, data, exe in files:
            info = zipfile.ZipInfo(f"{name}/{path}", _zip_time(mtime))
            info.create_system = 3
            info.external_attr = (0o100755 if exe else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tf.addfile(info)
        for path, data, exe in files:
            info = tarfile.TarInfo(f"{name}/{path}")
            info.size, info.mode, info.mtime = len(data), (0o755 if exe else 0o644), mtime
            tf.addfile(info, io.BytesIO(data))
    gbuf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gbuf, mtime=0, compresslevel=9) as gz:
        gz.write(tbuf.getvalue())
    return zbuf.getvalue(), gbuf.getvalue()


def pack(store: GitStore, config: Config, rev: str | None = None, *, out_dir: Path | None = None) -> PackResult:
    """Write the skill at ``rev`` (default: the latest release tag) as release assets."""
    from t2s.skillrepo import skill_dir_of

    rev = rev or latest_release_tag(store)
    if not rev:
        raise UsageError("there is no t2s release tag vX.Y.Z to pack", hint="run `t2s release CANDIDATE` first")
    commit = require_release_tag(store, rev)
    version = rev[1:]
    skill_dir = skill_dir_of(store, config, commit)
    name = PurePosixPath(skill_dir).name
    prefix = skill_dir.rstrip("/") + "/"
    entries = [e for e in store.list_tree(commit, skill_dir) if e.type == "blob" and e.mode != "120000"]
    blobs = store.read_objects(e.sha for e in entries)
    files = [(e.path[len(prefix):], blobs[e.sha], e.mode == "100755") for e in entries]
    zip_bytes, tgz_bytes = build_archives(name, files, store.commit_time(commit))
    out = Path(out_dir) if out_dir else store.root / "dist"
    stem = f"{name}-{version}"
    outputs: dict[str, bytes] = {f"{stem}.zip": zip_bytes, f"{stem}.tar.gz": tgz_bytes}
    note = read_eval_note(store, commit)
    if note is not None:
        outputs[f"{stem}.eval.json"] = (json.dumps(note.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {fname}\n" for fname, data in sorted(outputs.items()))
    outputs["SHA256SUMS"] = sums.encode()
    write_files(out, outputs)
    return PackResult(
        name, version, commit,
        [out / f"{stem}.zip", out / f"{stem}.tar.gz"],
        out / f"{stem}.eval.json" if note is not None else None,
        out / "SHA256SUMS",
    )


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into ``folder`` (created if needed) all or nothing: each goes to
    a temporary name first and is renamed into place only when every one is written.
    A folder that cannot be made or written is a :class:`UsageError`."""
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    temps: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for fname, data in files.items():
            temp = folder / f".{fname}.{os.getpid()}.tmp"
            temp.unlink(missing_ok=True)  # left by a crashed pack of this pid number
            temps.append(temp)
            temp.write_bytes(data)  # the usual mode (umask), unlike a mkstemp file
        for temp, fname in zip(temps, files):
            os.replace(temp, folder / fname)
    except OSError as err:
        for temp in temps:
            temp.unlink(missing_ok=True)
        for path in made:  # only the folders made here, deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise UsageError(f"cannot write into {folder}: {err.strerror or err}") from None


# ---------------------------------------------------------------------- install
@dataclass
class InstallResult:
    name: str
    version: str
    source: str
    dest: Path
    replaced: bool

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "source": self.source, "dest": str(self.dest), "replaced": self.replaced}


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
    from t2s.skill import split_frontmatter

    frontmatter, body, _ = split_frontmatter(skill_md)
    newline = "\r\n" if "\r\n" in skill_md.split("\n", 1)[0] + "\n" else "\n"
    lines = frontmatter.splitlines(keepends=True)
    quoted = {k: json.dumps(str(v), ensure_ascii=False) for k, v in values.items()}
    start = next((i for i, l in enumerate(lines) if re.match(r"^metadata\s*:", l)), None)
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
            lines[start:start + 1] = [f"metadata:{newline}"] + [f"  {k}: {v}{newline}" for k, v in merged.items()]
        else:
            end = start + 1
            while end < len(lines) and (not lines[end].strip() or lines[end][:1] in (" ", "\t")):
                end += 1
            block = lines[start + 1:end]
            indents = [len(l) - len(l.lstrip(" ")) for l in block if l.strip() and not l.lstrip().startswith("#")]
            indent = " " * (min(indents) if indents else 2)
            for key, value in quoted.items():
                pos = next((i for i, l in enumerate(block) if re.match(rf"^{indent}{re.escape(key)}\s*:", l)), None)
                line = f"{indent}{key}: {value}{newline}"
                if pos is None:
                    last = max((i for i, l in enumerate(block) if l.strip()), default=-1)
                    block.insert(last + 1, line)
                else:
                    stop = pos + 1  # drop a multi-line value's continuation lines
                    while stop < len(block) and block[stop].strip() and len(block[stop]) - len(block[stop].lstrip(" ")) > len(indent):
                        stop += 1
                    block[pos:stop] = [line]
            lines[start + 1:end] = block
    return f"---{newline}{''.join(lines)}---{newline}{body}"


def _installed_source(skill_md: Path) -> str | None:
    from t2s.skill import parse_skill_md

    try:
        meta = parse_skill_md(skill_md.read_text(encoding="utf-8")).meta.get("metadata")
    except (T2SError, OSError, UnicodeDecodeError):
        return None
    return str(meta.get("source")) if isinstance(meta, dict) and meta.get("source") else None


def _from_git(source: str, tag: str | None) -> tuple[str, str, dict[str, tuple[bytes, bool]], str]:
    from t2s.skillrepo import config_at, skill_dir_of

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
        files = {e.path[len(prefix):]: (blobs[e.sha], e.mode == "100755") for e in entries}
        version = rev[1:] if VERSION_TAG_RE.match(rev) else commit[:12]
        return PurePosixPath(skill_dir).name, version, files, url


def _from_zip(path: Path) -> tuple[str, str, dict[str, tuple[bytes, bool]], str]:
    try:
        return _read_zip(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as err:
        raise UsageError(f"{path}: not a readable zip archive ({err})",
                         hint="install a zip made by `t2s pack`, or a git repository") from None
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
    from t2s.skill import SKILL_FILE, NAME_RE

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
        raise UsageError(f"{source}: {name}/{SKILL_FILE} is not UTF-8 text ({err.reason} at byte {err.start})") from None
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


# ---------------------------------------------------------------------- push
@dataclass
class PushResult:
    remote: str
    refspecs: list[str]
    updated: list[dict]

    def to_json(self) -> dict:
        return {"remote": self.remote, "refspecs": self.refspecs, "updated": self.updated}


def push_refspecs(store: GitStore, run: str | None = None, *, release_branch: str | None = None) -> list[str]:
    """Explicit refspecs for what reviewers need, only for refs that exist locally."""
    from t2s.runs import RUNS_PREFIX, check_run_name

    specs = []
    if run:
        check_run_name(run)
        if not store.rev_parse(RUNS_PREFIX + run):
            raise UsageError(f"run {run!r} does not exist")
        branches, runs = f"refs/heads/t2s/{run}/", RUNS_PREFIX + run
        if store.refs(branches):
            specs.append(f"{branches}*:{branches}*")
        specs.append(f"{runs}:{runs}")
    else:
        if store.refs("refs/heads/t2s/"):
            specs.append("refs/heads/t2s/*:refs/heads/t2s/*")
        if store.refs(RUNS_PREFIX):
            specs.append(f"{RUNS_PREFIX}*:{RUNS_PREFIX}*")
    if store.refs("refs/notes/t2s/"):
        specs.append("refs/notes/t2s/*:refs/notes/t2s/*")
    # Each release tag by name: a stray v* tag that is not a release stays local.
    specs += [f"refs/tags/{name}:refs/tags/{name}" for _, name in release_tags(store)]
    if release_branch:
        specs.append(f"refs/heads/{release_branch}:refs/heads/{release_branch}")
    return specs


def push(store: GitStore, remote: str, *, run: str | None = None, release_branch: str | None = None, dry_run: bool = False) -> PushResult:
    specs = push_refspecs(store, run, release_branch=release_branch)
    if not specs:
        raise UsageError("nothing to push: no t2s branches, run records, notes or release tags")
    report = store.push(remote, specs, dry_run=dry_run)
    updated = []
    for line in report.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and ":" in parts[1]:
            flag, refs, summary = parts[0], parts[1], parts[2]
            local, remote_ref = refs.split(":", 1)
            updated.append({"flag": flag.strip() or " ", "ref": remote_ref, "summary": summary.strip(), "up_to_date": flag.strip() == "="})
    return PushResult(remote, specs, updated)


# ---------------------------------------------------------------------- bisect
@dataclass
class BisectResult:
    good: str
    bad: str
    threshold: float
    first_bad: str | None
    kind: str  # patch | merge | release | commit | unknown
    subject: str = ""
    branches: list[str] = field(default_factory=list)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)
    endpoints: list[dict] = field(default_factory=list)
    log: str = ""

    @property
    def evaluations(self) -> int:
        """Agent runs during bisection (cache hits excluded, endpoints excluded)."""
        return sum(1 for s in self.steps if s.get("ran"))

    def to_json(self) -> dict:
        return {
            "good": self.good, "bad": self.bad, "threshold": self.threshold,
            "first_bad": self.first_bad, "kind": self.kind, "subject": self.subject,
            "branches": self.branches, "trailers": [list(t) for t in self.trailers],
            "details": self.details, "steps": self.steps, "endpoints": self.endpoints,
            "evaluations": self.evaluations,
        }


def _describe(store: GitStore, commit: str) -> tuple[str, str, list[str], list[tuple[str, str]], dict]:
    """(kind, subject, branches, trailers, details) of a commit bisect named."""
    from t2s.evaluate import run_of

    message = store.commit_message(commit)
    subject = message.splitlines()[0] if message else ""
    trailers = store.trailers(commit)
    keys = {k for k, _ in trailers}
    branches = branches_at(store, commit)
    run = run_of(store, commit)
    details: dict = {}
    if "T2S-Release" in keys:
        return "release", subject, branches, trailers, details
    if "T2S-Patch" in keys or any("/patch/" in b for b in branches):
        kind = "patch"
        for key in ("T2S-Patch", "T2S-Task", "T2S-Trajectory", "T2S-Outcome", "T2S-Analyst"):
            if (v := _trailer(trailers, key)) is not None:
                details[key[4:].lower()] = v
        number = details.get("patch") or next((b.rsplit("/", 1)[1] for b in branches if "/patch/" in b), None)
        record = _run_json(store, run, f"patches/{number}.json") if run and number else None
        if isinstance(record, dict):
            details["lessons"] = [str(l.get("text", "")) for l in record.get("lessons") or [] if isinstance(l, dict)]
            details.setdefault("task", record.get("task"))
            details.setdefault("trajectory", record.get("trajectory"))
        if details.get("trajectory") and run:
            details["trajectory_path"] = f"refs/t2s/runs/{run}:trajectories/{details['trajectory']}.json"
        if not details.get("lessons"):
            body = message.split("\n\n", 1)[1] if "\n\n" in message else ""
            body_lines = [l for l in body.splitlines() if l.strip() and not re.match(r"^[A-Za-z0-9-]+: ", l)]
            details["lessons"] = [subject] + body_lines[:10]
        return kind, subject, branches, trailers, details
    if len(store.parents(commit)) > 1 or "T2S-Merge-Level" in keys:
        group = _trailer(trailers, "T2S-Merge-Group") or next((b.rsplit("/", 1)[1] for b in branches if "/merge/" in b), None)
        report = _run_json(store, run, f"merges/{group}.json") if run and group else None
        if report is not None:
            details["merge_report"] = report
        details["level"] = _trailer(trailers, "T2S-Merge-Level")
        details["parents"] = store.parents(commit)
        return "merge", subject, branches, trailers, details
    return "commit", subject, branches, trailers, details


BISECT_PREFIX = "bisect-"


def clean_stale_bisects(store: GitStore) -> list[str]:
    """Remove what a ``t2s bisect`` that did not finish (killed, a crash) left behind:
    its linked worktree under ``<git-dir>/t2s/bisect-*`` (with that worktree's bisect
    state and refs/bisect/*) and its folder. A bisect that still runs holds its lock
    and is left alone; nothing t2s did not create is touched. Returns what was removed."""
    removed = []
    for folder in sorted(store.t2s_dir.glob(f"{BISECT_PREFIX}*")):
        if not folder.is_dir():
            continue
        try:
            with store.exclusive(folder.name, "busy"):
                store.worktree_remove(folder / "wt")
                shutil.rmtree(folder, ignore_errors=True)
                (store.t2s_dir / f"{folder.name}.lock").unlink(missing_ok=True)
        except UsageError:
            continue  # a t2s bisect at work
        removed.append(folder.name)
    return removed


def bisect(
    store: GitStore,
    config: Config,
    *,
    good: str,
    bad: str,
    split: str | None = None,
    threshold: float | None = None,
    seeds: int | None = None,
    suite: str | None = None,
    use_cache: bool = True,
    first_parent: bool = False,
    runner=None,
    python: str = sys.executable,
) -> BisectResult:
    """Find the first commit between ``good`` and ``bad`` whose held-out score falls
    below ``threshold`` (default: the good commit's score).

    The endpoints are evaluated here first (through the cache: after a gate they are
    free) and must straddle the threshold. Then ``git bisect run`` runs
    ``t2s eval BISECT_HEAD --exit-code-below THRESHOLD`` in a private, unpopulated
    linked worktree; the notes (and so the eval cache) are shared with the repository.
    The worktree and its bisect state are removed whatever happens.
    """
    from t2s.evaluate import evaluate, make_context

    if threshold is not None and not (math.isfinite(threshold) and 0 <= threshold <= 1):
        raise UsageError(f"--threshold must be a score from 0 to 1 (got {threshold!r})")
    clean_stale_bisects(store)
    ctx = make_context(store, config, split=split, seeds=seeds, suite=suite, rev_for_skill=bad)
    good_sha, bad_sha = store.resolve(good), store.resolve(bad)
    if not store.is_ancestor(good_sha, bad_sha):
        raise UsageError(f"{good} is not an ancestor of {bad}; bisect needs good before bad")
    ends = []
    outcomes = {}
    for label, rev in (("good", good), ("bad", bad)):
        out = evaluate(ctx, rev, use_cache=use_cache, runner=runner)
        outcomes[label] = out
        ends.append({"label": label, "commit": out.commit, "score": out.record.score, "ran": out.ran})
    if threshold is None:
        threshold = outcomes["good"].record.score
    if outcomes["good"].record.score < threshold:
        raise UsageError(f"good {good} scores {outcomes['good'].record.score:.3f}, below the threshold {threshold:.3f}")
    if outcomes["bad"].record.score >= threshold:
        raise UsageError(f"bad {bad} scores {outcomes['bad'].record.score:.3f}, not below the threshold {threshold:.3f}: nothing to bisect",
                         hint="lower --threshold, or pick another bad revision")
    name = f"{BISECT_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    with store.exclusive(name, f"{name} is in use"):  # held while it runs: see clean_stale_bisects
        workroot = store.t2s_dir / name
        workroot.mkdir()
        wt_path = workroot / "wt"
        report = workroot / "steps.jsonl"
        cmd_args = ["-C", str(store.root), "--split", ctx.split, "--seeds", str(ctx.seeds), "--suite", ctx.suite_name,
                    "--exit-code-below", repr(threshold), "--report-file", str(report), "--quiet"]
        if not use_cache:
            cmd_args.append("--no-cache")
        # The step dies with this process: see t2s.bisect_step.
        script = 'exec "$0" -m t2s.bisect_step "$(git rev-parse BISECT_HEAD)" "$@"'
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH", "")]))}
        try:
            wt = store.worktree_add(wt_path, bad_sha)
            first_bad, log = wt.bisect_run([good_sha], bad_sha, ["sh", "-c", script, python, *cmd_args],
                                           first_parent=first_parent, env=env)
        finally:
            store.worktree_remove(wt_path)
            steps = [json.loads(l) for l in report.read_text().splitlines() if l.strip()] if report.exists() else []
            shutil.rmtree(workroot, ignore_errors=True)
            (store.t2s_dir / f"{name}.lock").unlink(missing_ok=True)
    result = BisectResult(good_sha, bad_sha, threshold, first_bad, "unknown", steps=steps, endpoints=ends, log=log)
    if first_bad is None:
        return result
    result.kind, result.subject, result.branches, result.trailers, result.details = _describe(store, first_bad)
    return result
