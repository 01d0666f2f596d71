"""Copying a work folder back out of the sandbox trusts nothing in the stream.

The sandboxed code shares a uid with the supervisor that writes the stream, so a
hostile program could craft it: links, absolute or ``..`` names, devices, huge or
cut-off archives. Only regular files and folders with plain relative names come back,
and a refused stream changes nothing.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from t2s.sandbox.workcopy import STAGING_PREFIX, CopyBackError, copy_back, pack


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def _member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = b"x", link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info, data if kind == tarfile.REGTYPE else None


@pytest.fixture
def work(tmp_path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    (d / "old.txt").write_text("before")
    return d


def test_a_plain_folder_comes_back_and_replaces_the_old_contents(work):
    notes = copy_back(
        _tar(_member("./out.txt", data=b"new"), _member("sub", tarfile.DIRTYPE), _member("sub/deep.txt", data=b"deep")),
        work,
        max_bytes=1 << 20,
    )
    assert notes == []
    assert sorted(p.relative_to(work).as_posix() for p in work.rglob("*")) == ["out.txt", "sub", "sub/deep.txt"]
    assert (work / "out.txt").read_bytes() == b"new"


def test_links_devices_and_escaping_names_are_never_created(work, tmp_path):
    outside = tmp_path / "outside.txt"
    stream = _tar(
        _member("out.xlsx", tarfile.SYMTYPE, link="/etc/shadow"),
        _member("root", tarfile.SYMTYPE, link="/"),
        _member("hard", tarfile.LNKTYPE, link="/etc/passwd"),
        _member("tty", tarfile.CHRTYPE),
        _member("/etc/evil", data=b"x"),
        _member("../outside.txt", data=b"x"),
        _member("root/through-the-link.txt", data=b"inside"),
        _member(f"{STAGING_PREFIX}abc/x", data=b"x"),
        _member("kept.txt", data=b"ok"),
    )
    notes = copy_back(stream, work, max_bytes=1 << 20)
    assert not any(p.is_symlink() for p in work.rglob("*")) and not outside.exists()
    assert (work / "kept.txt").read_bytes() == b"ok"
    assert (work / "root" / "through-the-link.txt").read_bytes() == b"inside"  # a real folder now
    assert not (work / "out.xlsx").exists() and not (work / "hard").exists() and not (work / "tty").exists()
    joined = "\n".join(notes)
    assert "out.xlsx: a symlink -> /etc/shadow is not copied out" in joined
    assert "hard: a hard link -> /etc/passwd" in joined and "tty: a device" in joined
    assert "'/etc/evil'" in joined and "'../outside.txt'" in joined


@pytest.mark.parametrize(
    "stream, reason",
    [
        (lambda: _tar(_member("big.bin", data=b"x" * 2048)), "more than 1024 bytes"),  # too large
        (lambda: io.BytesIO(_tar(_member("a.txt", data=b"x" * 900)).getvalue()[:1000]), "unreadable"),  # cut off
        (lambda: _tar(_member("a", data=b"file"), _member("a/b", data=b"x")), "a file and a folder"),
        (lambda: io.BytesIO(b"not a tar at all" * 100), "unreadable"),
    ],
)
def test_a_refused_stream_changes_nothing(work, stream, reason):
    with pytest.raises(CopyBackError, match=reason):
        copy_back(stream(), work, max_bytes=1024)
    assert [p.name for p in work.iterdir()] == ["old.txt"] and (work / "old.txt").read_text() == "before"


def test_pack_takes_regular_files_and_folders_and_never_follows_a_link(tmp_path):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "sub" / "a.txt").write_text("a")
    (work / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(work / "run.sh", 0o755)
    (work / "secret").symlink_to("/etc/passwd")
    (work / "tree").symlink_to("/etc")
    fd = pack(work, dirs=("tmp",))
    with os.fdopen(fd, "rb") as handle, tarfile.open(fileobj=handle) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"sub", "sub/a.txt", "run.sh", "tmp"}
    assert members["run.sh"].mode == 0o755 and members["tmp"].isdir()
