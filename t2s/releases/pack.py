"""``t2s pack``: a release as ``dist/<name>-<version>.zip`` and ``.tar.gz`` (one top-level
``<name>/`` folder), its eval JSON and ``SHA256SUMS``; the bytes depend only on the
packed commit and its note.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from t2s.config import Config
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.record.notes import read_eval_note
from t2s.record.tags import latest_release_tag, require_release_tag
from t2s.skill.repo import skill_dir_of


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
            "files": [str(p) for p in [*self.archives, *([self.eval_json] if self.eval_json else []), self.sums]],
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
    dirs = sorted(
        {
            str(PurePosixPath(name, *PurePosixPath(p).parts[:i]))
            for p, _, _ in files
            for i in range(len(PurePosixPath(p).parts))
        }
    )
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        for d in dirs:
            zinfo = zipfile.ZipInfo(d + "/", _zip_time(mtime))
            zinfo.create_system = 3
            zinfo.external_attr = (0o40755 << 16) | 0x10
            zf.writestr(zinfo, b"")
        for path, data, exe in files:
            zinfo = zipfile.ZipInfo(f"{name}/{path}", _zip_time(mtime))
            zinfo.create_system = 3
            zinfo.external_attr = (0o100755 if exe else 0o100644) << 16
            zinfo.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zinfo, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for d in dirs:
            tinfo = tarfile.TarInfo(d)
            tinfo.type, tinfo.mode, tinfo.mtime = tarfile.DIRTYPE, 0o755, mtime
            tf.addfile(tinfo)
        for path, data, exe in files:
            tinfo = tarfile.TarInfo(f"{name}/{path}")
            tinfo.size, tinfo.mode, tinfo.mtime = len(data), (0o755 if exe else 0o644), mtime
            tf.addfile(tinfo, io.BytesIO(data))
    gbuf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gbuf, mtime=0, compresslevel=9) as gz:
        gz.write(tbuf.getvalue())
    return zbuf.getvalue(), gbuf.getvalue()


def pack(store: GitStore, config: Config, rev: str | None = None, *, out_dir: Path | None = None) -> PackResult:
    """Write the skill at ``rev`` (default: the latest release tag) as release assets."""

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
    files = [(e.path[len(prefix) :], blobs[e.sha], e.mode == "100755") for e in entries]
    zip_bytes, tgz_bytes = build_archives(name, files, store.commit_time(commit))
    out = Path(out_dir) if out_dir else store.root / "dist"
    stem = f"{name}-{version}"
    outputs: dict[str, bytes] = {f"{stem}.zip": zip_bytes, f"{stem}.tar.gz": tgz_bytes}
    note = read_eval_note(store, commit)
    if note is not None:
        outputs[f"{stem}.eval.json"] = (
            json.dumps(note.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
        ).encode()
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {fname}\n" for fname, data in sorted(outputs.items()))
    outputs["SHA256SUMS"] = sums.encode()
    write_files(out, outputs)
    return PackResult(
        name,
        version,
        commit,
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
        for temp, fname in zip(temps, files, strict=True):
            os.replace(temp, folder / fname)
    except OSError as err:
        for temp in temps:
            temp.unlink(missing_ok=True)
        for path in made:  # only the folders made here, deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        raise UsageError(f"cannot write into {folder}: {err.strerror or err}") from None
