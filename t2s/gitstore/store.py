"""The only module that runs git.

Everything t2s writes goes into git objects and refs: blobs, trees and commits are
written as loose objects in-process (byte for byte what git writes; ``git commit-tree``
when commits must be signed or dates are fixed), patches are checked with ``git apply``
on a *private* index file (``GIT_INDEX_FILE``), and refs move with compare-and-swap
``git update-ref`` transactions. The user's working tree, index and HEAD are never
touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import shutil
import signal
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import git as gitpython

from t2s import redaction
from t2s.errors import GitError, RefConflict, UsageError

ZERO_SHA = "0" * 40

#: Fallback identity for machines where git has none configured (CI runners, containers).
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "t2s",
    "GIT_AUTHOR_EMAIL": "t2s@localhost",
    "GIT_COMMITTER_NAME": "t2s",
    "GIT_COMMITTER_EMAIL": "t2s@localhost",
}

Trailers = Sequence[tuple[str, str]] | Mapping[str, str]
#: Objects computed but not yet written: ``(id, "<type> <size>\\0" + content)``.
HeldObjects = list[tuple[str, bytes]]
_FULL_SHA = re.compile(r"[0-9a-f]{40}")
#: Folder prefix of each diff's copy of the base in a batched ``git apply --check``.
_CHECK_SLOT = "t2s-check-{:05d}"


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str
    sha: str
    path: str


@dataclass(frozen=True)
class TagRef:
    """A tag ref as git stores it (see :meth:`GitStore.tag_refs`)."""

    name: str  # without refs/tags/
    object: str  # what the ref points at: a tag object, or the tagged object itself
    annotated: bool
    #: The annotated tag object's own name (its ``tag`` header); "" for a lightweight tag.
    tagged_name: str
    #: What the tag finally names, and its type ("commit", "tree", ...).
    target: str
    target_type: str
    #: The parents of ``target`` when it is a commit.
    parents: tuple[str, ...]


@dataclass(frozen=True)
class RefUpdate:
    """One ref move inside an all-or-nothing transaction.

    ``old=None`` means "whatever it is now"; ``old=ZERO_SHA`` means "must not exist yet";
    ``new=ZERO_SHA`` deletes the ref.
    """

    ref: str
    new: str
    old: str | None = None


def format_message(subject: str, body: str = "", trailers: Trailers = ()) -> str:
    """A commit message: subject, blank line, body, blank line, ``Key: value`` trailers."""
    items = list(trailers.items()) if isinstance(trailers, Mapping) else list(trailers)
    parts = [subject.strip()]
    if body.strip():
        parts.append(body.strip())
    if items:
        for key, value in items:
            if "\n" in str(value) or ":" in key or not key:
                raise ValueError(f"invalid trailer {key!r}: {value!r}")
        parts.append("\n".join(f"{key}: {value}" for key, value in items))
    return "\n\n".join(parts) + "\n"


def parse_trailers(message: str) -> list[tuple[str, str]]:
    """The ``Key: value`` lines of a message's last paragraph, in order.

    Only a final paragraph made entirely of trailer lines counts, as in git.
    """
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return []
    lines = paragraphs[-1].splitlines()
    trailers = []
    for line in lines:
        key, sep, value = line.partition(": ")
        if not sep or not key or " " in key:
            return []
        trailers.append((key, value.strip()))
    return trailers


class _ObjectReader:
    """One long-lived ``git cat-file --batch-command`` process answering object queries.

    Reading objects is the hot path of merges and records; a subprocess per read
    costs milliseconds, a line on this pipe microseconds. Names are resolved afresh
    on every query (git reads refs and loose objects from disk each time), so refs
    and objects written by other processes are seen. Thread-safe.
    """

    def __init__(self, root: Path, env: Mapping[str, str]):
        self._proc = subprocess.Popen(
            ["git", "cat-file", "--batch-command"],
            cwd=root,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None  # both pipes
        self._stdin: IO[bytes] = self._proc.stdin
        self._stdout: IO[bytes] = self._proc.stdout
        self._lock = threading.Lock()
        weakref.finalize(self, _ObjectReader._close, self._proc)

    @staticmethod
    def _close(proc: subprocess.Popen) -> None:
        with contextlib.suppress(Exception):
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=5)

    def query(self, command: str, name: str) -> tuple[str, str, bytes | None] | None:
        """``(oid, type, content-or-None)`` for ``name``, or None if it names nothing."""
        if "\n" in name or not name:
            return None
        with self._lock:
            self._send([f"{command} {name}"])
            return self._answer(with_content=command == "contents")

    def contents(self, names: Sequence[str]) -> list[bytes | None]:
        """The contents of many objects, pipelined: commands go out in chunks small
        enough for the pipe, so neither side blocks on the other."""
        out: list[bytes | None] = []
        with self._lock:
            for start in range(0, len(names), 128):
                chunk = names[start : start + 128]
                self._send([f"contents {name}" for name in chunk])
                for _ in chunk:
                    found = self._answer(with_content=True)
                    out.append(found[2] if found else None)
        return out

    def _send(self, commands: Sequence[str]) -> None:
        self._stdin.write("".join(f"{command}\n" for command in commands).encode())
        self._stdin.flush()

    def _answer(self, *, with_content: bool) -> tuple[str, str, bytes | None] | None:
        """One reply: ``(oid, type, content-or-None)``, or None where git found nothing."""
        parts = self._stdout.readline().decode(errors="replace").split()
        if len(parts) != 3 or parts[-1] in ("missing", "ambiguous"):
            return None
        oid, kind, size = parts
        content = None
        if with_content:
            content = self._stdout.read(int(size))
            self._stdout.read(1)  # the newline after the content
        return oid, kind, content


#: From this many held objects on, they go to git as one pack (3 files, written by
#: git on another core) rather than a file each.
_PACK_AT = 32
_PACK_TYPES = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}


def _pack(held: HeldObjects) -> bytes:
    """A version-2 packfile holding ``held`` whole (no deltas), for ``git index-pack``."""
    unique = dict(held)
    out = bytearray(b"PACK" + struct.pack(">II", 2, len(unique)))
    for data in unique.values():
        kind, _, rest = data.partition(b" ")
        content = rest.partition(b"\0")[2]
        size = len(content)
        byte = (_PACK_TYPES[kind] << 4) | (size & 0x0F)
        size >>= 4
        while size:
            out.append(byte | 0x80)
            byte = size & 0x7F
            size >>= 7
        out.append(byte)
        out += zlib.compress(content, 1)
    out += hashlib.sha1(out).digest()
    return bytes(out)


def _write_loose(path: Path, data: bytes) -> None:
    """One loose object file: zlib-deflated header and content, read-only, renamed
    into place (atomic; a concurrent writer of the same object writes the same bytes)."""
    path.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="tmp_obj_", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(zlib.compress(data, 1))  # git's core.loosecompression default
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_HUNK = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def _prefix_diff(diff: str, prefix: str) -> tuple[str, list[str]] | None:
    """``diff`` with ``prefix`` put before every path it names, and those paths.

    Only header lines are rewritten: hunk lines are counted off by their ``@@``
    header, so a removed line that reads ``--- a/x`` stays content. None for what
    this does not rewrite (quoted names, renames, copies, binary patches).
    """
    out: list[str] = []
    paths: list[str] = []
    old_left = new_left = 0
    for line in diff.splitlines(keepends=True):
        if old_left > 0 or new_left > 0:
            kind = line[:1]
            if kind in (" ", "\n"):
                old_left, new_left = old_left - 1, new_left - 1
            elif kind == "-":
                old_left -= 1
            elif kind == "+":
                new_left -= 1
            elif kind != "\\":
                return None
            out.append(line)
            continue
        if line.startswith("\\"):  # "\ No newline at end of file" after a hunk's last line
            out.append(line)
        elif line.startswith("@@"):
            match = _HUNK.match(line)
            if not match:
                return None
            old_left = int(match.group(1) or 1)
            new_left = int(match.group(2) or 1)
            out.append(line)
        elif line.startswith("diff --git "):
            match = re.fullmatch(r"diff --git a/(\S+) b/(\S+)\n?", line)
            if not match:
                return None
            paths += [match.group(1), match.group(2)]
            out.append(f"diff --git a/{prefix}{match.group(1)} b/{prefix}{match.group(2)}\n")
        elif line.startswith(("--- a/", "+++ b/")):
            paths.append(line[6:].rstrip("\n").split("\t", 1)[0])
            out.append(line[:6] + prefix + line[6:])
        elif line.startswith(
            ("--- /dev/null", "+++ /dev/null", "new file mode", "deleted file mode", "index ", "old mode", "new mode")
        ):
            out.append(line)
        else:
            return None
    return "".join(out), paths


def _git_version() -> tuple[int, ...]:
    out = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    match = re.search(r"(\d+)\.(\d+)", out)
    return tuple(int(x) for x in match.groups()) if match else (0, 0)


_BATCH_COMMAND = _git_version() >= (2, 36)


class GitStore:
    """A git repository, seen through plumbing only."""

    def __init__(self, root: Path, git_dir: Path):
        self.root = Path(root)
        self.git_dir = Path(git_dir)
        self._identity_env: dict[str, str] | None = None
        self._reader: _ObjectReader | None = None
        self._reader_lock = threading.Lock()
        self._objects_dir: Path | None = None
        self._common_dir: Path | None = None
        #: Immutable facts memoised per process: a commit's tree, a tree's entries.
        self._trees_of: dict[str, str] = {}
        self._entries: dict[str, dict[str, tuple[str, str]]] = {}
        self._t2s_dir_made = False
        #: (author, committer) idents for in-process commits; None: let git write them.
        self._idents: tuple[str, str] | None = None
        self._idents_read = False

    def _object(self, command: str, name: str) -> tuple[str, str, bytes | None] | None:
        """Look ``name`` up through the persistent reader (None where git lacks it)."""
        reader = self._object_reader()
        return reader.query(command, name) if reader else None

    def _object_reader(self) -> _ObjectReader | None:
        """The persistent ``cat-file --batch-command`` (None where git is too old)."""
        if not _BATCH_COMMAND:
            return None
        with self._reader_lock:
            if self._reader is None:
                self._reader = _ObjectReader(self.root, self._env())
        return self._reader

    # ----------------------------------------------------------------- opening
    @classmethod
    def discover(cls, start: Path | str = ".") -> GitStore:
        """The repository containing ``start``."""
        try:
            repo = gitpython.Repo(Path(start), search_parent_directories=True)
        except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
            raise UsageError(
                f"{start}: not inside a git repository",
                hint="run `t2s init` first, or pass -C DIR",
            ) from None
        if repo.bare or repo.working_tree_dir is None:  # gitpython: None exactly when bare
            return cls(Path(repo.git_dir), Path(repo.git_dir))
        return cls(Path(repo.working_tree_dir), Path(repo.git_dir).resolve())

    @classmethod
    def init(cls, path: Path | str, *, branch: str = "main") -> GitStore:
        """Create a repository at ``path`` (or open it if it already is one)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if (path / ".git").exists():
            return cls.discover(path)
        repo = gitpython.Repo.init(path, initial_branch=branch)
        return cls(Path(repo.working_tree_dir or path), Path(repo.git_dir).resolve())

    @property
    def common_dir(self) -> Path:
        """The git directory every worktree of this repository shares (``.git`` of the
        main worktree): refs live there, so t2s's caches and locks do too."""
        if self._common_dir is None:
            out = self._git("rev-parse", "--git-common-dir", env_ok=False).strip()
            self._common_dir = (self.root / out).resolve() if out else self.git_dir
        return self._common_dir

    @property
    def t2s_dir(self) -> Path:
        """``<common git dir>/t2s``: private state (locks, caches, temp indexes), never
        committed, and shared by all worktrees (as the refs it guards are)."""
        path = self.common_dir / "t2s"
        if not self._t2s_dir_made:
            path.mkdir(parents=True, exist_ok=True)
            self._t2s_dir_made = True
        return path

    # ----------------------------------------------------------------- running
    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self._identity())
        env["GIT_TERMINAL_PROMPT"] = "0"
        if extra:
            env.update(extra)
        return env

    def _identity(self) -> dict[str, str]:
        """Fallback author/committer only where git has no identity configured."""
        if self._identity_env is None:
            self._identity_env = {}
            for kind, var in (("name", "NAME"), ("email", "EMAIL")):
                configured = self._git("config", f"user.{kind}", check=False, env_ok=False).strip()
                for who in ("AUTHOR", "COMMITTER"):
                    key = f"GIT_{who}_{var}"
                    if not configured and not os.environ.get(key):
                        self._identity_env[key] = _FALLBACK_IDENTITY[key]
        return self._identity_env

    def _git(
        self,
        *args: str,
        input: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        binary: bool = False,
        env_ok: bool = True,
    ):
        """Run ``git args...`` in this repository and return stdout (str, or bytes)."""
        data = input.encode() if isinstance(input, str) else input
        full_env = self._env(env) if env_ok else {**os.environ, **(env or {})}
        proc = subprocess.run(
            ["git", *args],
            cwd=self.root,
            input=data,
            capture_output=True,
            env=full_env,
            check=False,
        )
        if check and proc.returncode != 0:
            said = (proc.stderr or proc.stdout).decode(errors="replace").strip()
            raise GitError(f"git {' '.join(args[:3])} failed: {said}")
        return proc.stdout if binary else proc.stdout.decode(errors="replace")

    # ----------------------------------------------------------------- reading
    def rev_parse(self, rev: str) -> str | None:
        """The object id ``rev`` names, or None when it names nothing."""
        if _BATCH_COMMAND and not rev.startswith("-"):
            found = self._object("info", rev)
            return found[0] if found else None
        out = self._git("rev-parse", "--verify", "--quiet", "--end-of-options", rev, check=False)
        return out.strip() or None

    def resolve(self, rev: str) -> str:
        """The commit ``rev`` names; a clear error if it names none."""
        sha = self.rev_parse(f"{rev}^{{commit}}")
        if not sha:
            raise UsageError(f"{rev!r} does not name a commit in {self.root}")
        return sha

    def tree_of(self, rev: str) -> str:
        cached = self._trees_of.get(rev)
        if cached:
            return cached
        sha = self.rev_parse(f"{rev}^{{tree}}")
        if not sha:
            raise UsageError(f"{rev!r} does not name a commit or tree in {self.root}")
        if _FULL_SHA.fullmatch(rev):  # an object id's tree never changes; a ref's can
            self._trees_of[rev] = sha
        return sha

    def subtree(self, rev: str, path: str) -> str | None:
        """The tree id of folder ``path`` at ``rev`` (None if absent): a skill's identity."""
        return self.rev_parse(f"{rev}:{path}") if path else self.tree_of(rev)

    def read_blob(self, rev: str, path: str) -> bytes | None:
        """The bytes of ``path`` at ``rev``, or None if there is no such file."""
        if _BATCH_COMMAND:
            found = self._object("contents", f"{rev}:{path}")
            return found[2] if found and found[1] == "blob" else None
        sha = self.rev_parse(f"{rev}:{path}")
        if not sha:
            return None
        return self._git("cat-file", "blob", sha, binary=True)

    def list_tree(self, rev: str, path: str = "") -> list[TreeEntry]:
        """Files (recursively) under ``path`` at ``rev``; paths relative to the repo root."""
        args = ["ls-tree", "-r", "-z", "--full-tree", rev]
        if path:
            args += ["--", path.rstrip("/") + "/"]
        out = self._git(*args)
        entries = []
        for record in filter(None, out.split("\0")):
            meta, name = record.split("\t", 1)
            mode, kind, sha = meta.split()
            entries.append(TreeEntry(mode, kind, sha, name))
        return entries

    def read_files(self, rev: str, path: str) -> dict[str, bytes]:
        """Every file under ``path`` at ``rev``, keyed by path relative to ``path``."""
        prefix = path.rstrip("/") + "/" if path else ""
        blobs = [entry for entry in self.list_tree(rev, path) if entry.type == "blob"]
        return {
            entry.path[len(prefix) :]: data
            for entry, data in zip(blobs, self.read_blobs([e.sha for e in blobs]), strict=True)
        }

    def read_blobs(self, shas: Sequence[str]) -> list[bytes]:
        """The contents of many blobs, in one pipelined exchange with git."""
        reader = self._object_reader()
        if reader is None:
            return [self._git("cat-file", "blob", sha, binary=True) for sha in shas]
        found = reader.contents(list(shas))
        missing = [sha for sha, data in zip(shas, found, strict=True) if data is None]
        if missing:
            raise GitError(f"objects missing from the repository: {', '.join(missing[:3])}")
        return found  # type: ignore[return-value]

    def identity(self) -> str:
        """``Name <email>`` of whoever uses this repository: git config ``user.name`` and
        ``user.email``, else git's author identity (environment or fallback)."""
        name = self._git("config", "user.name", check=False, env_ok=False).strip()
        email = self._git("config", "user.email", check=False, env_ok=False).strip()
        if name and email:
            return f"{name} <{email}>"
        ident = self._git("var", "GIT_AUTHOR_IDENT", check=False).strip()
        who = ident.rsplit(" ", 2)[0] if ident.count(" ") >= 2 else ident
        return who or name or email or "unknown"

    def commit_message(self, rev: str) -> str:
        return self._git("log", "-1", "--format=%B", self.resolve(rev))

    def trailers(self, rev: str) -> list[tuple[str, str]]:
        return parse_trailers(self.commit_message(rev))

    def parents(self, rev: str) -> list[str]:
        return self._git("rev-list", "--parents", "-n", "1", self.resolve(rev)).split()[1:]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._succeeds("merge-base", "--is-ancestor", ancestor, descendant)

    def _succeeds(self, *args: str) -> bool:
        """True when ``git args...`` exits 0 (for git's yes/no questions)."""
        proc = subprocess.run(["git", *args], cwd=self.root, capture_output=True, env=self._env())
        return proc.returncode == 0

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of ``a`` and ``b``, or None when they share none."""
        return self._git("merge-base", self.resolve(a), self.resolve(b), check=False).strip() or None

    def rev_list(
        self, include: str, exclude: Sequence[str] = (), *, no_merges: bool = False, reverse: bool = False
    ) -> list[str]:
        """Commits reachable from ``include`` but from none of ``exclude``, newest first
        (oldest first with ``reverse``)."""
        args = [
            "rev-list",
            *(["--no-merges"] if no_merges else []),
            *(["--reverse"] if reverse else []),
            include,
            *(f"^{rev}" for rev in exclude),
        ]
        return self._git(*args).split()

    def trailer_values(self, include: str, exclude: Sequence[str], key: str) -> list[str]:
        """The values of trailer ``key`` on the commits of ``include`` not in ``exclude``
        (comma-separated values split), newest commit first."""
        out = self._git(
            "log", f"--format=%(trailers:key={key},valueonly,separator=%x2C)", include, *(f"^{rev}" for rev in exclude)
        )
        return [value.strip() for line in out.splitlines() for value in line.split(",") if value.strip()]

    def graph(self, revs: Sequence[str] = (), *, glob: str | None = None, max_count: int | None = None) -> str:
        """``git log --graph --decorate`` of ``revs`` (or of the refs matching ``glob``;
        by default HEAD, every branch and tag), one line a commit."""
        args = ["log", "--graph", "--decorate", "--format=%h%d %s"]
        if max_count:
            args.append(f"-n{max_count}")
        if revs:
            args += list(revs)
        elif glob:
            args.append(f"--glob={glob}")
        else:
            args += ["HEAD", "--branches", "--tags"]
        return self._git(*args)

    def fsck(self) -> str:
        """``git fsck --strict``'s report (empty when the object store is sound)."""
        return self._git("fsck", "--strict", check=False)

    # ----------------------------------------------------------------- the user's index and branch
    # t2s writes only objects and refs; ``t2s init`` and the demo, acting for the user,
    # are the two places that commit files of the working tree, through these.
    def index_tree(self) -> str:
        """The index as a tree object (what the next commit would hold); the index
        itself is unchanged."""
        return self._git("write-tree").strip()

    def commit_paths(self, paths: Sequence[str], message: str) -> str:
        """Commit exactly ``paths`` of the working tree on the current branch (other
        staged work stays staged) and return HEAD; nothing new to commit is no error."""
        self._git("add", "--", *paths)
        if self.rev_parse("HEAD") and self._succeeds("diff", "--cached", "--quiet", "HEAD", "--", *paths):
            return self.resolve("HEAD")
        self._git("commit", "--no-verify", "--only", "-q", "-m", message, "--", *paths)
        return self.resolve("HEAD")

    def fast_forward(self, rev: str) -> None:
        """``git merge --ff-only rev`` in the working tree (what t2s tells users to run)."""
        self._git("merge", "--ff-only", "-q", rev)

    def diff(self, a: str, b: str, *paths: str) -> str:
        """``git diff a b -- paths`` as text (trees or commits)."""
        return self._git("diff", "--no-color", "--no-ext-diff", a, b, "--", *paths)

    def blame(self, rev: str, path: str) -> list[tuple[str, str]]:
        """``(commit, line)`` for every line of ``path`` at ``rev`` (``git blame``)."""
        out = self._git("blame", "--line-porcelain", self.resolve(rev), "--", path)
        lines: list[tuple[str, str]] = []
        commit = ""
        for row in out.splitlines():
            if row.startswith("\t"):
                lines.append((commit, row[1:]))
            elif len(row) > 40 and row[40] == " " and all(c in "0123456789abcdef" for c in row[:40]):
                commit = row[:40]
        return lines

    def refs(self, prefix: str) -> dict[str, str]:
        """Refs under ``prefix`` (e.g. ``refs/heads/t2s/r1/``) -> object id, sorted by name."""
        out = self._git("for-each-ref", "--format=%(refname) %(objectname)", prefix)
        pairs = (line.split(" ", 1) for line in out.splitlines() if line)
        return {name: sha for name, sha in sorted(pairs)}

    # ----------------------------------------------------------------- writing
    def write_blob(self, data: bytes | str, *, hold: HeldObjects | None = None) -> str:
        """Store ``data`` as a blob and return its id (see :meth:`write_held` for ``hold``).
        The values of API-key variables are redacted (:mod:`t2s.redaction`)."""
        raw = data.encode() if isinstance(data, str) else data
        return self._store_object(b"blob", redaction.redact_bytes(raw), hold)

    def _store_object(self, kind: bytes, raw: bytes, hold: HeldObjects | None = None) -> str:
        """Write one loose object in-process, as git does, and return its id.

        A ``git hash-object`` process per object dominated record writes, and gitdb's
        writer took about 1 ms an object here; this takes 0.05-0.5 ms (creating a file
        is slow on some disks), and nothing when the object already exists. With
        ``hold``, the object is only computed and appended there, to be written later.
        """
        data = b"%s %d\0" % (kind, len(raw)) + raw
        sha = hashlib.sha1(data).hexdigest()
        if hold is not None:
            hold.append((sha, data))
        else:
            self._write_if_absent(sha, data)
        return sha

    def write_held(self, held: HeldObjects) -> None:
        """Write objects held back with ``hold=`` (by build_tree, commit, write_blob).

        Holding lets a caller compute trees and commits on a busy thread and create
        their files later, elsewhere; it must write them before anything can see
        them: before a ref points at them or git is asked about them.
        """
        if len(held) >= _PACK_AT:
            self._git("index-pack", "--stdin", input=_pack(held))
            return
        for sha, data in held:
            self._write_if_absent(sha, data)

    def _write_if_absent(self, sha: str, data: bytes) -> None:
        path = self._objects() / sha[:2] / sha[2:]
        if not path.exists():
            _write_loose(path, data)

    def _objects(self) -> Path:
        if self._objects_dir is None:
            objects = self._git("rev-parse", "--git-path", "objects").strip()
            self._objects_dir = (self.root / objects).resolve()
        return self._objects_dir

    @contextlib.contextmanager
    def private_index(self, base: str | None = None, *, cache: bool = True) -> Iterator[dict[str, str]]:
        """A throwaway index file (env mapping), loaded with ``base``'s tree if given.

        Loading a tree into an index is the costly part, so one loaded index per tree
        is kept under ``<common git dir>/t2s/index-cache/`` and copied (tree ids never change
        meaning, so a cached index never goes stale). ``cache=False`` is for one-off
        trees, which would only fill the cache.
        """
        fd, name = tempfile.mkstemp(prefix="index-", dir=self.t2s_dir)
        os.close(fd)
        env = {"GIT_INDEX_FILE": name}
        try:
            if base and not cache:
                os.unlink(name)  # git wants to create it itself
                self._git("read-tree", self.tree_of(base), env=env)
            elif base:
                shutil.copyfile(self._cached_index(self.tree_of(base)), name)
            else:
                os.unlink(name)  # git wants to create it itself
                self._git("read-tree", "--empty", env=env)
            yield env
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def _cached_index(self, tree: str) -> Path:
        cache = self.t2s_dir / "index-cache"
        path = cache / tree
        if not path.exists():
            cache.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f"{tree}-", dir=cache)
            os.close(fd)
            os.unlink(tmp)
            self._git("read-tree", tree, env={"GIT_INDEX_FILE": tmp})
            os.replace(tmp, path)  # atomic: concurrent builders agree on the content
        return path

    def build_tree(
        self, base: str | None, changes: Mapping[str, bytes | str | None], *, hold: HeldObjects | None = None
    ) -> str:
        """A tree: ``base`` (commit or tree, or None for empty) with files set or removed.

        ``changes`` maps repo-relative POSIX paths to new contents, or None to remove.
        Trees are written in-process (only the folders on a changed path are
        rewritten); without ``cat-file --batch-command`` git's index does it (and
        nothing is held). ``hold``: see :meth:`write_held`.
        """
        clean = {_safe_repo_path(path): content for path, content in changes.items()}
        if not _BATCH_COMMAND:
            return self._build_tree_with_index(base, clean)
        root = self.tree_of(base) if base else None
        return self._edit_tree(root, clean, hold) or self._write_tree({}, hold)

    def tree_of_entries(self, entries: Iterable[tuple[str, str, bytes]]) -> str:
        """A tree holding exactly ``entries`` (repo-relative path, mode, content), each
        with its mode (plain, executable, symlink): a copy of a folder from another
        repository, e.g. S0's skill folder in a Ray worker's scratch repository."""
        root: dict[str, Any] = {}
        for path, mode, data in entries:
            *folders, name = _safe_repo_path(path).split("/")
            node = root
            for folder in folders:
                node = node.setdefault(folder, {})
            node[name] = (mode, self.write_blob(data))

        def write(node: dict[str, Any]) -> str:
            return self._write_tree({k: ("40000", write(v)) if isinstance(v, dict) else v for k, v in node.items()})

        return write(root)

    def _build_tree_with_index(self, base: str | None, changes: Mapping[str, bytes | str | None]) -> str:
        lines = []
        for path, content in changes.items():
            if content is None:
                lines.append(f"0 {ZERO_SHA}\t{path}")
            else:
                lines.append(f"100644 {self.write_blob(content)}\t{path}")
        with self.private_index(base) as env:
            if lines:
                self._git("update-index", "--index-info", input="\n".join(lines) + "\n", env=env)
            return self._git("write-tree", env=env).strip()

    def _edit_tree(
        self, tree: str | None, changes: Mapping[str, bytes | str | None], hold: HeldObjects | None = None
    ) -> str | None:
        """``tree`` with ``changes`` (paths relative to it); None if the result is empty."""
        entries = self._tree_entries(tree) if tree else {}
        files: dict[str, bytes | str | None] = {}
        folders: dict[str, dict[str, bytes | str | None]] = {}
        for path, content in changes.items():
            head, sep, rest = path.partition("/")
            if sep:
                folders.setdefault(head, {})[rest] = content
            else:
                files[head] = content
        for name, content in files.items():
            if content is None:
                entries.pop(name, None)
            else:
                mode = entries.get(name, ("100644", ""))[0]
                keep = mode if mode in ("100644", "100755") else "100644"
                entries[name] = (keep, self.write_blob(content, hold=hold))
        for name, sub_changes in folders.items():
            mode, sha = entries.get(name, ("", ""))
            subtree = self._edit_tree(sha if mode == "40000" else None, sub_changes, hold)
            if subtree is None:
                entries.pop(name, None)
            else:
                entries[name] = ("40000", subtree)
        return self._write_tree(entries, hold) if entries else None

    def _tree_entries(self, tree: str) -> dict[str, tuple[str, str]]:
        """name -> (mode, sha) of a tree object (a fresh dict the caller may change)."""
        entries = self._entries.get(tree)
        if entries is None:
            entries = self._read_tree_entries(tree)
            if len(self._entries) > 4096:  # a bound, not a policy: trees are small
                self._entries.clear()
            self._entries[tree] = entries
        return dict(entries)

    def _read_tree_entries(self, tree: str) -> dict[str, tuple[str, str]]:
        found = self._object("contents", tree)
        if found is None or found[1] != "tree" or found[2] is None:
            raise GitError(f"{tree} is not a tree")
        raw, pos = found[2], 0
        entries: dict[str, tuple[str, str]] = {}
        while pos < len(raw):
            space = raw.index(b" ", pos)
            nul = raw.index(b"\0", space)
            mode = raw[pos:space].decode()
            name = raw[space + 1 : nul].decode("utf-8", "surrogateescape")
            entries[name] = (mode, raw[nul + 1 : nul + 21].hex())
            pos = nul + 21
        return entries

    def _write_tree(self, entries: Mapping[str, tuple[str, str]], hold: HeldObjects | None = None) -> str:
        """Store a tree object; entries sorted as git sorts them (folders as ``name/``)."""
        order = sorted(
            entries, key=lambda n: (n + "/" if entries[n][0] == "40000" else n).encode("utf-8", "surrogateescape")
        )
        raw = b"".join(
            f"{entries[n][0]} ".encode() + n.encode("utf-8", "surrogateescape") + b"\0" + bytes.fromhex(entries[n][1])
            for n in order
        )
        sha = self._store_object(b"tree", raw, hold)
        self._entries.setdefault(sha, dict(entries))
        return sha

    def commit(
        self,
        tree: str,
        parents: Sequence[str],
        subject: str,
        body: str = "",
        trailers: Trailers = (),
        *,
        hold: HeldObjects | None = None,
    ) -> str:
        """A commit object (no ref moves) with any number of parents, in the given order.

        Written in-process (as git would write it) when nothing asks for git's own
        handling: no signing configured and no fixed dates in the environment.
        Otherwise, and to learn the identity, ``git commit-tree`` / ``git var`` decide
        (and git must see the tree first, so ``hold`` is written out then).
        """
        message = redaction.redact_text(format_message(subject, body, trailers))
        idents = self._commit_idents()
        if idents is None:
            if hold:
                self.write_held(hold)
            args = ["commit-tree", tree]
            for parent in parents:
                args += ["-p", parent]
            return self._git(*args, input=message).strip()
        stamp = f"{int(time.time())} {time.strftime('%z')}"
        lines = [f"tree {tree}"] + [f"parent {p}" for p in parents]
        lines += [f"author {idents[0]} {stamp}", f"committer {idents[1]} {stamp}"]
        raw = ("\n".join(lines) + "\n\n" + message).encode()
        sha = self._store_object(b"commit", raw, hold)
        self._trees_of[sha] = tree
        return sha

    def _commit_idents(self) -> tuple[str, str] | None:
        """``("Name <email>", ...)`` for author and committer, or None to let git write.

        Read once per store from ``git var`` (which applies config and environment);
        None when commits must be signed or dates are fixed by the environment.
        """
        if any(os.environ.get(k) for k in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")):
            return None
        if not self._idents_read:
            signing = self._git("config", "--bool", "commit.gpgSign", check=False).strip() == "true"
            if signing:
                self._idents = None
            else:
                author = self._git("var", "GIT_AUTHOR_IDENT").strip().rsplit(" ", 2)[0]
                committer = self._git("var", "GIT_COMMITTER_IDENT").strip().rsplit(" ", 2)[0]
                self._idents = (author, committer)
            self._idents_read = True
        return self._idents

    def apply_check(self, base: str, diff_text: str, *, cache_index: bool = True) -> str | None:
        """None if ``diff_text`` applies to ``base``'s tree, else git's reason."""
        with self.private_index(base, cache=cache_index) as env:
            proc = subprocess.run(
                ["git", "apply", "--check", "--cached", "--whitespace=nowarn", "-"],
                cwd=self.root,
                input=diff_text.encode(),
                capture_output=True,
                env=self._env(env),
            )
        return None if proc.returncode == 0 else proc.stderr.decode(errors="replace").strip()

    def apply_check_many(self, base: str, diffs: Sequence[str]) -> list[str | None]:
        """:meth:`apply_check` for several diffs against one base, in one ``git apply``.

        Each diff is checked against its own copy of the folders it touches (under
        ``t2s-check-<n>/`` in a private index), so one process answers for all of
        them. When git refuses the batch, each diff is checked alone for its own reason.
        """
        if len(diffs) < 2:
            return [self.apply_check(base, diff) for diff in diffs]
        prefixed = [_prefix_diff(diff, _CHECK_SLOT.format(n) + "/") for n, diff in enumerate(diffs)]
        moved = [m for m in prefixed if m is not None]
        if len(moved) < len(prefixed):  # a diff this batching does not understand
            return [self.apply_check(base, diff) for diff in diffs]
        base_entries = self._tree_entries(self.tree_of(base))
        tops = {path.split("/", 1)[0] for _, paths in moved for path in paths}
        slot = {name: base_entries[name] for name in tops if name in base_entries}
        slot_tree = self._write_tree(slot)
        stacked = self._write_tree({_CHECK_SLOT.format(n): ("40000", slot_tree) for n in range(len(diffs))})
        combined = "".join(text for text, _ in moved)
        if self.apply_check(stacked, combined, cache_index=False) is None:
            return [None] * len(diffs)
        return [self.apply_check(base, diff) for diff in diffs]

    def apply_to_tree(self, base: str, diff_text: str) -> str:
        """The tree that results from applying ``diff_text`` to ``base``."""
        tree, reason = self.try_apply(base, diff_text)
        if tree is None:
            raise GitError(f"git apply failed: {reason}")
        return tree

    def try_apply(self, base: str, diff_text: str) -> tuple[str | None, str | None]:
        """``(tree, None)`` if ``diff_text`` applies to ``base``, else ``(None, git's reason)``.

        One ``git apply --cached`` both checks and applies (it changes nothing when any
        hunk fails), so this is ``apply --check`` and ``apply_to_tree`` in one step.
        """
        diff_text = redaction.redact_text(diff_text)  # git writes the blobs of what it applies
        with self.private_index(base) as env:
            proc = subprocess.run(
                ["git", "apply", "--cached", "--whitespace=nowarn", "-"],
                cwd=self.root,
                input=diff_text.encode(),
                capture_output=True,
                env=self._env(env),
            )
            if proc.returncode != 0:
                return None, proc.stderr.decode(errors="replace").strip()
            return self._git("write-tree", env=env).strip(), None

    # ----------------------------------------------------------------- refs
    def update_ref(self, ref: str, new: str, old: str | None = None, *, reason: str = "t2s") -> None:
        """Move ``ref`` to ``new`` only if it currently is ``old`` (ZERO_SHA: must not exist)."""
        self.update_refs([RefUpdate(ref, new, old)], reason=reason)

    def create_ref(self, ref: str, new: str, *, reason: str = "t2s") -> None:
        self.update_ref(ref, new, ZERO_SHA, reason=reason)

    def delete_ref(self, ref: str, old: str | None = None) -> None:
        self.update_refs([RefUpdate(ref, ZERO_SHA, old)])

    def update_refs(self, updates: Iterable[RefUpdate], *, reason: str = "t2s") -> None:
        """Apply all updates or none (a ``git update-ref --stdin`` transaction)."""
        updates = list(updates)
        if not updates:
            return
        lines = ["start"]
        for u in updates:
            _check_ref_name(u.ref)
            if u.new == ZERO_SHA:
                lines.append(f"delete {u.ref}" + (f" {u.old}" if u.old else ""))
            else:
                lines.append(f"update {u.ref} {u.new}" + (f" {u.old}" if u.old else ""))
        lines += ["prepare", "commit"]
        # Tags get no reflog: `git reflog expire` (run by `git gc`) reads a reflog's
        # entries as commits and complains about a tag object. Branches and notes keep
        # theirs through core.logAllRefUpdates; t2s's own refs get one explicitly.
        tags = any(u.ref.startswith("refs/tags/") for u in updates)
        reflog = ["-c", "core.logAllRefUpdates=true"] if tags else []
        proc = subprocess.run(
            ["git", *reflog, "update-ref", *([] if tags else ["--create-reflog"]), "-m", reason, "--stdin"],
            cwd=self.root,
            input=("\n".join(lines) + "\n").encode(),
            capture_output=True,
            env=self._env(),
        )
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace").strip()
            names = ", ".join(u.ref for u in updates)
            if (
                "but expected" in stderr
                or "already exists" in stderr
                or "unable to resolve" in stderr
                or "cannot lock ref" in stderr
            ):
                raise RefConflict(f"refs not updated ({names}): {stderr}")
            raise GitError(f"refs not updated ({names}): {stderr}")

    def append_commit(
        self,
        ref: str,
        changes: Mapping[str, bytes | str | None],
        subject: str,
        body: str = "",
        trailers: Trailers = (),
    ) -> str:
        """Commit ``changes`` on top of ``ref`` (creating it) and move ``ref`` with CAS.

        This is how append-only records (the run record) grow: a concurrent writer
        makes this raise :class:`RefConflict` instead of losing either write.
        """
        old = self.rev_parse(ref)
        tree = self.build_tree(old, changes)
        commit = self.commit(tree, [old] if old else [], subject, body, trailers)
        self.update_ref(ref, commit, old or ZERO_SHA)
        return commit

    # ----------------------------------------------------------------- notes
    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        """An exclusive inter-process lock in ``<git-dir>/t2s/<name>.lock``."""
        with open(self.t2s_dir / f"{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def exclusive(
        self, name: str, busy: str, hint: str = "", *, wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold the inter-process lock ``name`` for the block, or fail at once with
        ``busy``; with ``wait``, call ``wait(busy)`` and wait for the holder instead.
        The system drops the lock when its process ends, so a crash leaves none behind."""
        with open(self.t2s_dir / f"{name}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if wait is None:
                    raise UsageError(busy, hint=hint or None) from None
                wait(busy)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def add_note(self, notes_ref: str, rev: str, text: str) -> None:
        """Set the note on ``rev`` in the notes ref ``notes_ref`` (replacing any).

        Serialised with a lock: parallel unguarded ``git notes add`` silently loses notes.
        """
        commit = self.resolve(rev)
        with self._notes_lock(notes_ref):
            self._git("notes", "--ref", notes_ref, "add", "-f", "-F", "-", commit, input=redaction.redact_text(text))

    def update_note(self, notes_ref: str, rev: str, change: Callable[[str | None], str]) -> str:
        """Read-modify-write the note on ``rev``: ``change(old_text_or_None)`` gives the
        new text, under the namespace's lock, so concurrent updaters lose nothing."""
        commit = self.resolve(rev)
        with self._notes_lock(notes_ref):
            text = redaction.redact_text(change(self.read_note(notes_ref, commit)))
            self._git("notes", "--ref", notes_ref, "add", "-f", "-F", "-", commit, input=text)
        return text

    def read_note(self, notes_ref: str, rev: str) -> str | None:
        commit = self.rev_parse(f"{rev}^{{commit}}")
        if not commit:
            return None
        out = self._git("notes", "--ref", notes_ref, "show", commit, check=False)
        return out or None

    def list_notes(self, notes_ref: str) -> dict[str, str]:
        """Annotated commit -> note blob id, for every note in ``notes_ref``."""
        out = self._git("notes", "--ref", notes_ref, "list", check=False)
        pairs = (line.split() for line in out.splitlines() if line)
        return {commit: blob for blob, commit in pairs}

    def _notes_lock(self, notes_ref: str):
        # named by the ref's last part, as the lock always was (``notes-eval``)
        return self._lock(f"notes-{notes_ref.rsplit('/', 1)[-1]}")

    # ----------------------------------------------------------------- tags
    def create_tag(self, name: str, rev: str, message: str) -> str:
        """An annotated tag; refuses to move an existing one."""
        _check_ref_name(f"refs/tags/{name}")
        commit = self.resolve(rev)
        if self.rev_parse(f"refs/tags/{name}"):
            raise RefConflict(f"tag {name} already exists")
        self._git("tag", "-a", name, "-F", "-", commit, input=redaction.redact_text(message))
        sha = self.rev_parse(f"refs/tags/{name}")
        if sha is None:
            raise GitError(f"git tag made no tag {name}")
        return sha

    def drop_tag_reflogs(self, message_prefix: str = "t2s") -> list[str]:
        """Remove the reflogs of tags whose every entry was written by t2s, or that are
        empty (earlier versions made one for each release tag, and `git gc` then printed
        errors). Returns the tags repaired. Reflogs of other tags are left alone."""
        logs = self.common_dir / "logs" / "refs" / "tags"
        repaired = []
        for path in sorted(p for p in logs.rglob("*") if p.is_file()) if logs.is_dir() else []:
            entries = [line.split("\t", 1) for line in path.read_text(errors="replace").splitlines()]
            if all(len(e) == 2 and e[1].startswith(message_prefix) for e in entries):  # or empty
                path.unlink()
                repaired.append(path.relative_to(logs).as_posix())
        return repaired

    def tag_message(self, name: str) -> str:
        return self._git("tag", "-l", "--format=%(contents)", name)

    def tags(self, pattern: str = "v*") -> list[str]:
        return [t for t in self._git("tag", "-l", pattern).splitlines() if t]

    def tag_refs(self, pattern: str = "v*") -> list[TagRef]:
        """Every tag matching ``pattern`` with what it points at, in one ``for-each-ref``."""
        fields = [
            "%(refname:strip=2)",
            "%(objectname)",
            "%(objecttype)",
            "%(tag)",
            "%(*objectname)",
            "%(*objecttype)",
            "%(parent)",
            "%(*parent)",
        ]
        out = self._git("for-each-ref", "--format=" + "%00".join(fields), f"refs/tags/{pattern}")
        found = []
        for line in out.splitlines():
            name, oid, kind, tagged, peeled, peeled_kind, parents, peeled_parents = line.split("\0")
            annotated = kind == "tag"
            found.append(
                TagRef(
                    name=name,
                    object=oid,
                    annotated=annotated,
                    tagged_name=tagged if annotated else "",
                    target=peeled if annotated else oid,
                    target_type=peeled_kind if annotated else kind,
                    parents=tuple((peeled_parents if annotated else parents).split()),
                )
            )
        return found

    # ----------------------------------------------------------------- batch reads
    def read_objects(self, shas: Iterable[str]) -> dict[str, bytes]:
        """The contents of many objects in one ``git cat-file --batch`` call."""
        shas = list(dict.fromkeys(shas))
        if not shas:
            return {}
        out = self._git("cat-file", "--batch", input="\n".join(shas) + "\n", binary=True)
        result: dict[str, bytes] = {}
        pos = 0
        for sha in shas:
            end = out.index(b"\n", pos)
            header = out[pos:end].decode()
            pos = end + 1
            if header.endswith(" missing"):
                continue
            _oid, _kind, size = header.split()
            result[sha] = out[pos : pos + int(size)]
            pos += int(size) + 1
        return result

    def commit_time(self, rev: str) -> int:
        """The committer timestamp (seconds since the epoch) of ``rev``."""
        return int(self._git("log", "-1", "--format=%ct", self.resolve(rev)).strip())

    def replace_subtree(self, base: str, path: str, source: str | None) -> str:
        """A tree: ``base``'s tree with folder ``path`` replaced by tree ``source``
        (or removed, with None). Built in a private index."""
        path = _safe_repo_path(path)
        gone = [f"0 {ZERO_SHA}\t{e.path}" for e in self.list_tree(self.tree_of(base), path)]
        with self.private_index(base) as env:
            if gone:
                self._git("update-index", "--index-info", input="\n".join(gone) + "\n", env=env)
            if source:
                self._git("read-tree", f"--prefix={path}/", source, env=env)
            return self._git("write-tree", env=env).strip()

    def tag_object(self, name: str, rev: str, message: str) -> str:
        """An annotated tag *object* for ``rev`` with no ref yet (``git mktag``), so the
        tag ref can move in the same transaction as a branch."""
        _check_ref_name(f"refs/tags/{name}")
        commit = self.resolve(rev)
        ident = self._git("var", "GIT_COMMITTER_IDENT").strip()
        body = (
            f"object {commit}\ntype commit\ntag {name}\ntagger {ident}\n\n{redaction.redact_text(message).rstrip()}\n"
        )
        return self._git("mktag", input=body).strip()

    def checked_out(self) -> dict[str, Path]:
        """Branch ref -> the worktree that has it checked out (main and linked worktrees)."""
        out = self._git("worktree", "list", "--porcelain")
        found: dict[str, Path] = {}
        current: Path | None = None
        for line in out.splitlines():
            if line.startswith("worktree "):
                current = Path(line[len("worktree ") :])
            elif line.startswith("branch ") and current is not None:
                found[line[len("branch ") :]] = current
        return found

    def worktree_add(self, path: Path, rev: str) -> GitStore:
        """A detached, *unpopulated* linked worktree at ``path`` (no files written);
        its HEAD, index and bisect state are its own."""
        self._git("worktree", "add", "--detach", "--no-checkout", str(path), self.resolve(rev))
        return GitStore(Path(path), Path(self._git("-C", str(path), "rev-parse", "--absolute-git-dir").strip()))

    def worktree_remove(self, path: Path) -> None:
        """Remove a linked worktree made by :meth:`worktree_add` (and prune its record)."""
        self._git("worktree", "remove", "--force", str(path), check=False)
        self._git("worktree", "prune", check=False)

    def bisect_run(
        self,
        good: Sequence[str],
        bad: str,
        command: Sequence[str],
        *,
        first_parent: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> tuple[str | None, str]:
        """``git bisect start --no-checkout`` + ``git bisect run COMMAND`` here (use it in
        a linked worktree), always followed by ``git bisect reset``.

        The command sees the commit to test as ``BISECT_HEAD``. Returns the first bad
        commit (None if bisect could not tell, e.g. only skipped commits were left)
        and bisect's own output.

        ``git bisect run`` and everything it starts live in a process group of their
        own, killed when this returns or raises. The read end of a pipe whose only
        writer is this process is passed down as ``$T2S_BISECT_LIFELINE`` (a file
        descriptor): it reaches end-of-file when this process dies, even by SIGKILL,
        and :mod:`t2s.commands.bisect_step` then kills the group.
        """
        args = ["bisect", "start", "--no-checkout"] + (["--first-parent"] if first_parent else [])
        lifeline, keep_alive = os.pipe()  # both ends close-on-exec; the read end is passed on
        try:
            self._git(*args, self.resolve(bad), *(self.resolve(g) for g in good))
            proc = subprocess.Popen(
                ["git", "bisect", "run", *command],
                cwd=self.root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(lifeline,),
                env=self._env({**(env or {}), LIFELINE_ENV: str(lifeline)}),
            )
            os.close(lifeline)
            lifeline = -1
            try:
                output = proc.communicate()[0].decode(errors="replace")
            finally:
                _kill_group(proc)
            first_bad = self.rev_parse("refs/bisect/bad") if "is the first bad commit" in output else None
            return first_bad, output
        finally:
            for fd in (lifeline, keep_alive):
                if fd >= 0:
                    os.close(fd)
            self._git("bisect", "reset", check=False)

    def push(self, remote: str, refspecs: Sequence[str], *, dry_run: bool = False) -> str:
        """``git push --porcelain REMOTE REFSPECS...``; returns git's porcelain report."""
        args = ["push", "--porcelain"] + (["--dry-run"] if dry_run else []) + [remote, *refspecs]
        proc = subprocess.run(["git", *args], cwd=self.root, capture_output=True, env=self._env())
        out = proc.stdout.decode(errors="replace")
        if proc.returncode != 0:
            said = (proc.stderr.decode(errors="replace") + out).strip()
            raise GitError(f"git push {remote} failed: {said}")
        return out

    # ----------------------------------------------------------------- export
    def archive(self, rev: str, path: str, dest: Path, *, strip: bool = True) -> Path:
        """Write the files under ``path`` at ``rev`` into ``dest`` (``git archive``).

        With ``strip``, ``path``'s own components are dropped, so ``dest`` holds the
        folder's contents directly.
        """
        commit = self.resolve(rev)
        if path and not self.subtree(commit, path):
            raise UsageError(f"{path} does not exist at {rev}")
        data = self._git("archive", "--format=tar", commit, *([path] if path else []), binary=True)
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        depth = len(PurePosixPath(path).parts) if (path and strip) else 0
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                parts = PurePosixPath(member.name).parts[depth:]
                if not parts or not (member.isfile() or member.isdir()):
                    continue
                target = dest.joinpath(*parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file: tarfile gives it a reader
                target.write_bytes(source.read())
                if member.mode & 0o111:
                    target.chmod(0o755)
        return dest


#: The environment variable naming the lifeline descriptor of a ``git bisect run`` step.
LIFELINE_ENV = "T2S_BISECT_LIFELINE"


def _kill_group(proc: subprocess.Popen) -> None:
    """If ``proc`` still runs (an exception, Ctrl-C), kill the process group it leads
    (its own session: everything it started) and reap it. A finished ``proc`` has been
    reaped, so its number may name another process by now: it is left alone."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def clone(source: str, dest: Path, *, bare: bool = True) -> GitStore:
    """``git clone`` ``source`` (a URL or a path) into ``dest``; bare by default (no
    working tree is written). Tags come along."""
    dest = Path(dest)
    args = ["git", "clone", "--quiet"] + (["--bare"] if bare else ["--no-checkout"]) + ["--", source, str(dest)]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(args, capture_output=True, env=env)
    if proc.returncode != 0:
        raise GitError(f"git clone {source} failed: {proc.stderr.decode(errors='replace').strip()}")
    return GitStore(dest, dest) if bare else GitStore(dest, dest / ".git")


def _safe_repo_path(path: str) -> str:
    """A normalised repo-relative path; refuses absolute paths and ``..``."""
    posix = PurePosixPath(path)
    if posix.is_absolute() or ".." in posix.parts or not posix.parts or path.startswith("/"):
        raise UsageError(f"refusing path {path!r}: must be relative and inside the repository")
    if posix.parts[0] == ".git":
        raise UsageError(f"refusing path {path!r}: inside .git")
    return posix.as_posix()


_PLAIN_REF = re.compile(r"^refs/[A-Za-z0-9_][A-Za-z0-9_./-]*$")


def _check_ref_name(ref: str) -> None:
    """Refuse what ``git check-ref-format`` refuses (plain names are checked in-process)."""
    parts = ref.split("/")
    plain = (
        _PLAIN_REF.match(ref)
        and ".." not in ref
        and all(p and not p.startswith(".") and not p.endswith(".lock") for p in parts)
        and not ref.endswith(".")
    )
    if plain:
        return
    proc = subprocess.run(["git", "check-ref-format", ref], capture_output=True)
    if proc.returncode != 0:
        raise UsageError(f"{ref!r} is not a valid git ref name")
