"""Recalculate a workbook's formulas with LibreOffice Calc (headless).

Official SpreadsheetBench scoring reads cached values only, so a formula written by
openpyxl (which never computes anything) reads as ``None``. Opening the file in
LibreOffice and saving it back as xlsx computes and caches every formula, as the
benchmark's own ``open_spreadsheet.py`` does. Each call uses a private LibreOffice
profile so parallel calls do not fight over one user installation.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import zipfile
from pathlib import Path

from t2s.errors import T2SError

DEFAULT_TIMEOUT = 120.0


def find_soffice() -> str | None:
    """The LibreOffice binary (``$T2S_SOFFICE``, then ``soffice``/``libreoffice`` on PATH)."""
    env = os.environ.get("T2S_SOFFICE")
    if env:
        return env if Path(env).is_file() else None
    for name in ("soffice", "libreoffice"):
        path = shutil.which(name)
        if path:
            return path
    return None


def soffice_version() -> str | None:
    exe = find_soffice()
    if not exe:
        return None
    with tempfile.TemporaryDirectory(prefix="t2s-lo-") as profile:
        try:
            proc = subprocess.run(
                [exe, f"-env:UserInstallation={Path(profile).as_uri()}", "--version"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
    return proc.stdout.strip() or None


def recalculate_workbook(path: Path, out_dir: Path | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Open ``path`` in headless LibreOffice, recalculate, save as xlsx in ``out_dir``
    (default: a new temporary directory) and return the new file's path. The input is
    never modified."""
    path = Path(path)
    if not path.is_file():
        raise T2SError(f"cannot recalculate {path}: no such file")
    if not zipfile.is_zipfile(path):
        raise T2SError(f"cannot recalculate {path}: not an .xlsx workbook (not a zip archive)")
    exe = find_soffice()
    if exe is None:
        raise T2SError(
            "cannot recalculate formulas: LibreOffice (soffice) is not installed",
            hint="apt-get install libreoffice-calc-nogui (or set T2S_SOFFICE)",
        )
    out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="t2s-recalc-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="t2s-lo-profile-") as profile,
        tempfile.TemporaryDirectory(prefix="t2s-lo-in-") as staging,
    ):
        # Convert a copy with a plain name: LibreOffice names its output after the input,
        # and the output must not overwrite the input when out_dir is its folder.
        src = Path(staging) / "workbook.xlsx"
        shutil.copyfile(path, src)
        cmd = [
            exe,
            f"-env:UserInstallation={Path(profile).as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--calc",
            "--convert-to",
            "xlsx:Calc MS Excel 2007 XML",
            "--outdir",
            staging + "/out",
            str(src),
        ]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "SAL_USE_VCLPLUGIN")}
        env["HOME"] = profile
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise T2SError(f"LibreOffice did not finish recalculating {path} within {timeout:g} s") from None
        produced = Path(staging) / "out" / "workbook.xlsx"
        if proc.returncode != 0 or not produced.is_file():
            detail = (stderr or stdout).strip()[-500:] or f"exit code {proc.returncode}"
            raise T2SError(f"LibreOffice could not recalculate {path}: {detail}")
        dest = out_dir / path.name
        if dest.resolve() == path.resolve():
            dest = out_dir / f"{path.stem}.recalculated{path.suffix}"
        shutil.move(str(produced), dest)
    return dest
