"""Moving a work folder across the sandbox boundary, as tar streams.

The sandbox's work folder is a size-limited tmpfs of its own (that is its disk
limit), so the host's work folder is copied in before a run and the result copied
back after it:

- in: :func:`pack` writes the host folder (regular files and folders only; a link
  is never followed) into an anonymous memory file the sandbox reads;
- back: the sandbox writes a tar of its folder to a pipe, and :func:`copy_back`
  replaces the host folder with it, trusting nothing in it. Only regular files and
  folders with plain relative names are created, each with ``O_NOFOLLOW|O_EXCL`` in
  a fresh staging folder; symlinks, hard links, devices and fifos are skipped (and
  named in the notes), so an output that is a link to ``/etc/shadow`` is never read
  by t2s, which runs as root. Sizes and counts are bounded. A stream that is not
  complete (the sandbox was killed half way) changes nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO

STAGING_PREFIX = ".t2s-copy-back-"


class CopyBackError(Exception):
    """The sandbox's tar stream was refused as a whole (nothing was changed)."""


# ---------------------------------------------------------------------- in
def pack(workdir: Path, *, dirs: tuple[str, ...] = ()) -> int:
    """A memory file holding a tar of ``workdir`` (plus the folders ``dirs``, relative,
    if it has none of that name), positioned at its start. Returns its descriptor;
    the caller closes it."""
    fd = os.memfd_create("t2s-work-in")
    try:
        with os.fdopen(os.dup(fd), "w+b") as handle:
            with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_tree(tar, Path(workdir))
                for rel in dirs:
                    if not (Path(workdir) / rel).is_dir():
                        info = tarfile.TarInfo(rel)
                        info.type, info.mode = tarfile.DIRTYPE, 0o755
                        tar.addfile(info)
            handle.flush()
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _add_tree(tar: tarfile.TarFile, root: Path) -> None:
    for current, dirs, files in os.walk(root, followlinks=False):
        base = Path(current)
        for name in sorted(dirs + files):
            path = base / name
            rel = path.relative_to(root).as_posix()
            try:
                st = os.lstat(path)
            except OSError:
                continue
            info = tarfile.TarInfo(rel)
            info.mtime = int(st.st_mtime)
            if stat.S_ISDIR(st.st_mode):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                try:
                    handle = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")
                except OSError:
                    continue
                with handle:
                    info.size = os.fstat(handle.fileno()).st_size
                    tar.addfile(info, handle)
        dirs[:] = [d for d in dirs if not os.path.islink(base / d)]


# ---------------------------------------------------------------------- back
def _clean_name(name: str) -> str | None:
    """A safe relative POSIX path, or None for anything else."""
    if not name or "\0" in name or "\\" in name:
        return None
    path = PurePosixPath(name)
    if path.is_absolute():
        return None
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or parts[0].startswith(STAGING_PREFIX):
        return None
    return "/".join(parts)


def copy_back(stream: IO[bytes], workdir: Path, *, max_bytes: int, max_entries: int = 100_000) -> list[str]:
    """Replace the contents of ``workdir`` with the tar read from ``stream``.

    Returns notes on what was skipped. Raises :class:`CopyBackError` (and leaves
    ``workdir`` as it was) when the stream is incomplete, malformed or too large.
    """
    workdir = Path(workdir)
    staging = workdir / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
    staging.mkdir()
    try:
        notes = _extract(stream, staging, max_bytes=max_bytes, max_entries=max_entries)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _replace_contents(workdir, staging)
    return notes


def _extract(stream: IO[bytes], staging: Path, *, max_bytes: int, max_entries: int) -> list[str]:
    notes: list[str] = []
    total = entries = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # closing it leaves the caller's stream open
            for member in tar:
                entries += 1
                if entries > max_entries:
                    raise CopyBackError(f"more than {max_entries} entries")
                name = _clean_name(member.name)
                if name is None:
                    if member.name.strip("./"):
                        notes.append(f"skipped {member.name!r}: not a plain relative path")
                    continue
                if member.isdir():
                    _make_dirs(staging, name)
                elif member.isreg():
                    total += member.size
                    if total > max_bytes:
                        raise CopyBackError(f"more than {max_bytes} bytes")
                    _write_file(tar, member, staging, name, notes)
                else:
                    kind = (
                        "symlink"
                        if member.issym()
                        else "hard link"
                        if member.islnk()
                        else "device"
                        if member.isdev()
                        else "special file"
                    )
                    target = f" -> {member.linkname}" if member.issym() or member.islnk() else ""
                    notes.append(f"{name}: a {kind}{target} is not copied out of the sandbox")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise CopyBackError(f"unreadable ({type(err).__name__}: {err})") from None
    return notes


def _make_dirs(staging: Path, name: str) -> Path:
    path = staging
    for part in name.split("/"):
        path = path / part
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            if not path.is_dir() or path.is_symlink():
                raise CopyBackError(f"{name}: a file and a folder of the same name") from None
    return path


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path, name: str, notes: list[str]) -> None:
    parent, _, leaf = name.rpartition("/")
    folder = _make_dirs(staging, parent) if parent else staging
    path = folder / leaf
    mode = 0o755 if member.mode & 0o111 else 0o644
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        notes.append(f"{name}: listed twice; the first copy is kept")
        return
    source = tar.extractfile(member)
    with os.fdopen(fd, "wb") as out:
        if source is not None:
            shutil.copyfileobj(source, out, 1 << 20)
    os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)


def _replace_contents(workdir: Path, staging: Path) -> None:
    for entry in os.scandir(workdir):
        if entry.path == str(staging):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
    for entry in os.scandir(staging):
        os.rename(entry.path, workdir / entry.name)
    staging.rmdir()
