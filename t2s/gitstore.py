"""The only module that runs git.

Everything t2s writes goes into git objects and refs through plumbing: blobs and trees
are built in a *private* index file (``GIT_INDEX_FILE``), commits are made with
``git commit-tree`` and refs move with compare-and-swap ``git update-ref``. The user's
working tree, index and HEAD are never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator, Mapping, Sequence

import git as gitpython

from t2s.errors import GitError, RefConflict, UsageError

ZERO_SHA = "0" * 40
NOTES_PREFIX = "refs/notes/t2s/"

#: Fallback identity for machines where git has none configured (CI runners, containers).
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "t2s",
    "GIT_AUTHOR_EMAIL": "t2s@localhost",
    "GIT_COMMITTER_NAME": "t2s",
    "GIT_COMMITTER_EMAIL": "t2s@localhost",
}

Trailers = Sequence[tuple[str, str]] | Mapping[str, str]


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str
    sha: str
    path: str


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


class GitStore:
    """A git repository, seen through plumbing only."""

    def __init__(self, root: Path, git_dir: Path):
        self.root = Path(root)
        self.git_dir = Path(git_dir)
        self._identity_env: dict[str, str] | None = None

    # ----------------------------------------------------------------- opening
    @classmethod
    def discover(cls, start: Path | str = ".") -> "GitStore":
        """The repository containing ``start``."""
        try:
            repo = gitpython.Repo(Path(start), search_parent_directories=True)
        except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
            raise UsageError(
                f"{start}: not inside a git repository",
                hint="run `t2s init` first, or pass -C DIR",
            ) from None
        if repo.bare:
            return cls(Path(repo.git_dir), Path(repo.git_dir))
        return cls(Path(repo.working_tree_dir), Path(repo.git_dir).resolve())

    @classmethod
    def init(cls, path: Path | str, *, branch: str = "main") -> "GitStore":
        """Create a repository at ``path`` (or open it if it already is one)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if (path / ".git").exists():
            return cls.discover(path)
        repo = gitpython.Repo.init(path, initial_branch=branch)
        return cls(Path(repo.working_tree_dir), Path(repo.git_dir).resolve())

    @property
    def t2s_dir(self) -> Path:
        """``<git-dir>/t2s``: private state (locks, caches, temp indexes), never committed."""
        path = self.git_dir / "t2s"
        path.mkdir(parents=True, exist_ok=True)
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
                configured = self.run("config", f"user.{kind}", check=False, env_ok=False).strip()
                for who in ("AUTHOR", "COMMITTER"):
                    key = f"GIT_{who}_{var}"
                    if not configured and not os.environ.get(key):
                        self._identity_env[key] = _FALLBACK_IDENTITY[key]
        return self._identity_env

    def run(
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
        out = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", rev, check=False)
        return out.strip() or None

    def resolve(self, rev: str) -> str:
        """The commit ``rev`` names; a clear error if it names none."""
        sha = self.rev_parse(f"{rev}^{{commit}}")
        if not sha:
            raise UsageError(f"{rev!r} does not name a commit in {self.root}")
        return sha

    def tree_of(self, rev: str) -> str:
        sha = self.rev_parse(f"{rev}^{{tree}}")
        if not sha:
            raise UsageError(f"{rev!r} does not name a commit or tree in {self.root}")
        return sha

    def subtree(self, rev: str, path: str) -> str | None:
        """The tree id of folder ``path`` at ``rev`` (None if absent): a skill's identity."""
        return self.rev_parse(f"{rev}:{path}") if path else self.tree_of(rev)

    def read_blob(self, rev: str, path: str) -> bytes | None:
        """The bytes of ``path`` at ``rev``, or None if there is no such file."""
        sha = self.rev_parse(f"{rev}:{path}")
        if not sha:
            return None
        return self.run("cat-file", "blob", sha, binary=True)

    def list_tree(self, rev: str, path: str = "") -> list[TreeEntry]:
        """Files (recursively) under ``path`` at ``rev``; paths relative to the repo root."""
        args = ["ls-tree", "-r", "-z", "--full-tree", rev]
        if path:
            args += ["--", path.rstrip("/") + "/"]
        out = self.run(*args)
        entries = []
        for record in filter(None, out.split("\0")):
            meta, name = record.split("\t", 1)
            mode, kind, sha = meta.split()
            entries.append(TreeEntry(mode, kind, sha, name))
        return entries

    def read_files(self, rev: str, path: str) -> dict[str, bytes]:
        """Every file under ``path`` at ``rev``, keyed by path relative to ``path``."""
        prefix = path.rstrip("/") + "/" if path else ""
        files = {}
        for entry in self.list_tree(rev, path):
            if entry.type == "blob":
                files[entry.path[len(prefix):]] = self.run("cat-file", "blob", entry.sha, binary=True)
        return files

    def commit_message(self, rev: str) -> str:
        return self.run("log", "-1", "--format=%B", self.resolve(rev))

    def trailers(self, rev: str) -> list[tuple[str, str]]:
        return parse_trailers(self.commit_message(rev))

    def parents(self, rev: str) -> list[str]:
        return self.run("rev-list", "--parents", "-n", "1", self.resolve(rev)).split()[1:]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.succeeds("merge-base", "--is-ancestor", ancestor, descendant)

    def succeeds(self, *args: str) -> bool:
        """True when ``git args...`` exits 0 (for git's yes/no questions)."""
        proc = subprocess.run(["git", *args], cwd=self.root, capture_output=True, env=self._env())
        return proc.returncode == 0

    def diff(self, a: str, b: str, *paths: str) -> str:
        """``git diff a b -- paths`` as text (trees or commits)."""
        return self.run("diff", "--no-color", "--no-ext-diff", a, b, "--", *paths)

    def refs(self, prefix: str) -> dict[str, str]:
        """Refs under ``prefix`` (e.g. ``refs/heads/t2s/r1/``) -> object id, sorted by name."""
        out = self.run("for-each-ref", "--format=%(refname) %(objectname)", prefix)
        pairs = (line.split(" ", 1) for line in out.splitlines() if line)
        return {name: sha for name, sha in sorted(pairs)}

    # ----------------------------------------------------------------- writing
    def write_blob(self, data: bytes | str) -> str:
        return self.run("hash-object", "-w", "--stdin", input=data).strip()

    @contextlib.contextmanager
    def private_index(self, base: str | None = None) -> Iterator[dict[str, str]]:
        """A throwaway index file (env mapping), loaded with ``base``'s tree if given."""
        fd, name = tempfile.mkstemp(prefix="index-", dir=self.t2s_dir)
        os.close(fd)
        os.unlink(name)  # git wants to create it itself
        env = {"GIT_INDEX_FILE": name}
        try:
            if base:
                self.run("read-tree", self.tree_of(base), env=env)
            else:
                self.run("read-tree", "--empty", env=env)
            yield env
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def build_tree(self, base: str | None, changes: Mapping[str, bytes | str | None]) -> str:
        """A tree: ``base`` (commit or tree, or None for empty) with files set or removed.

        ``changes`` maps repo-relative POSIX paths to new contents, or None to remove.
        """
        lines = []
        for path, content in changes.items():
            clean = _safe_repo_path(path)
            if content is None:
                lines.append(f"0 {ZERO_SHA}\t{clean}")
            else:
                lines.append(f"100644 {self.write_blob(content)}\t{clean}")
        with self.private_index(base) as env:
            if lines:
                self.run("update-index", "--index-info", input="\n".join(lines) + "\n", env=env)
            return self.run("write-tree", env=env).strip()

    def commit(
        self,
        tree: str,
        parents: Sequence[str],
        subject: str,
        body: str = "",
        trailers: Trailers = (),
    ) -> str:
        """A commit object (no ref moves) with any number of parents, in the given order."""
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.run(*args, input=format_message(subject, body, trailers)).strip()

    def apply_check(self, base: str, diff_text: str) -> str | None:
        """None if ``diff_text`` applies to ``base``'s tree, else git's reason."""
        with self.private_index(base) as env:
            proc = subprocess.run(
                ["git", "apply", "--check", "--cached", "--whitespace=nowarn", "-"],
                cwd=self.root,
                input=diff_text.encode(),
                capture_output=True,
                env=self._env(env),
            )
        return None if proc.returncode == 0 else proc.stderr.decode(errors="replace").strip()

    def apply_to_tree(self, base: str, diff_text: str) -> str:
        """The tree that results from applying ``diff_text`` to ``base``."""
        with self.private_index(base) as env:
            self.run("apply", "--cached", "--whitespace=nowarn", "-", input=diff_text, env=env)
            return self.run("write-tree", env=env).strip()

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
        proc = subprocess.run(
            ["git", "update-ref", "--create-reflog", "-m", reason, "--stdin"],
            cwd=self.root,
            input=("\n".join(lines) + "\n").encode(),
            capture_output=True,
            env=self._env(),
        )
        if proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace").strip()
            names = ", ".join(u.ref for u in updates)
            if "but expected" in stderr or "already exists" in stderr or "unable to resolve" in stderr or "cannot lock ref" in stderr:
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

    def add_note(self, namespace: str, rev: str, text: str) -> None:
        """Set the note on ``rev`` in ``refs/notes/t2s/<namespace>`` (replacing any).

        Serialised with a lock: parallel unguarded ``git notes add`` silently loses notes.
        """
        commit = self.resolve(rev)
        with self._lock(f"notes-{namespace}"):
            self.run("notes", "--ref", NOTES_PREFIX + namespace, "add", "-f", "-F", "-", commit, input=text)

    def read_note(self, namespace: str, rev: str) -> str | None:
        commit = self.rev_parse(f"{rev}^{{commit}}")
        if not commit:
            return None
        out = self.run("notes", "--ref", NOTES_PREFIX + namespace, "show", commit, check=False)
        return out or None

    def list_notes(self, namespace: str) -> dict[str, str]:
        """Annotated commit -> note blob id, for every note in the namespace."""
        out = self.run("notes", "--ref", NOTES_PREFIX + namespace, "list", check=False)
        pairs = (line.split() for line in out.splitlines() if line)
        return {commit: blob for blob, commit in pairs}

    # ----------------------------------------------------------------- tags
    def create_tag(self, name: str, rev: str, message: str) -> str:
        """An annotated tag; refuses to move an existing one."""
        _check_ref_name(f"refs/tags/{name}")
        commit = self.resolve(rev)
        if self.rev_parse(f"refs/tags/{name}"):
            raise RefConflict(f"tag {name} already exists")
        self.run("tag", "-a", name, "-F", "-", commit, input=message)
        return self.rev_parse(f"refs/tags/{name}")

    def tag_message(self, name: str) -> str:
        return self.run("tag", "-l", "--format=%(contents)", name)

    def tags(self, pattern: str = "v*") -> list[str]:
        return [t for t in self.run("tag", "-l", pattern).splitlines() if t]

    # ----------------------------------------------------------------- export
    def archive(self, rev: str, path: str, dest: Path, *, strip: bool = True) -> Path:
        """Write the files under ``path`` at ``rev`` into ``dest`` (``git archive``).

        With ``strip``, ``path``'s own components are dropped, so ``dest`` holds the
        folder's contents directly.
        """
        commit = self.resolve(rev)
        if path and not self.subtree(commit, path):
            raise UsageError(f"{path} does not exist at {rev}")
        data = self.run("archive", "--format=tar", commit, *([path] if path else []), binary=True)
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
                target.write_bytes(tar.extractfile(member).read())
                if member.mode & 0o111:
                    target.chmod(0o755)
        return dest


def _safe_repo_path(path: str) -> str:
    """A normalised repo-relative path; refuses absolute paths and ``..``."""
    posix = PurePosixPath(path)
    if posix.is_absolute() or ".." in posix.parts or not posix.parts or path.startswith("/"):
        raise UsageError(f"refusing path {path!r}: must be relative and inside the repository")
    if posix.parts[0] == ".git":
        raise UsageError(f"refusing path {path!r}: inside .git")
    return posix.as_posix()


def _check_ref_name(ref: str) -> None:
    proc = subprocess.run(["git", "check-ref-format", ref], capture_output=True)
    if proc.returncode != 0:
        raise UsageError(f"{ref!r} is not a valid git ref name")
