"""``t2s doctor``: what this machine can do (python, git, LibreOffice, sandbox)."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from t2s import __version__
from t2s.commands._common import json_option, print_json


def _git_version() -> str | None:
    git = shutil.which("git")
    if not git:
        return None
    try:
        out = subprocess.run([git, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def gather(smoke: bool = True) -> dict:
    from t2s.sandbox.run import availability, isolation_report
    from t2s.tasks.recalc import find_soffice, soffice_version

    try:
        import openpyxl

        openpyxl_version = openpyxl.__version__
    except ImportError:  # pragma: no cover - a dependency
        openpyxl_version = None
    soffice = find_soffice()
    avail = availability()
    info: dict[str, Any] = {
        "t2s": __version__,
        "python": {
            "version": platform.python_version(),
            "executable": sys.executable,
            "ok": sys.version_info >= (3, 11),
        },
        "git": {"version": _git_version()},
        "openpyxl": {"version": openpyxl_version},
        "libreoffice": {"path": soffice, "version": soffice_version() if soffice else None},
        "sandbox": {**isolation_report(), "ok": avail.ok, "missing": avail.missing},
    }
    info["git"]["ok"] = info["git"]["version"] is not None
    info["openpyxl"]["ok"] = openpyxl_version is not None
    info["libreoffice"]["ok"] = info["libreoffice"]["version"] is not None
    if smoke and avail.ok:
        info["sandbox"].update(_smoke_test())
    info["ok"] = all(info[k]["ok"] for k in ("python", "git", "openpyxl")) and info["sandbox"]["ok"]
    return info


def _smoke_test() -> dict:
    """openpyxl in the sandbox, and a file written there comes back."""
    from t2s.sandbox.run import run_code

    with tempfile.TemporaryDirectory(prefix="t2s-doctor-") as tmp:
        res = run_code("import openpyxl; open('ok.txt', 'w').write('ok'); print('ok')", Path(tmp), timeout=60)
        back = (Path(tmp) / "ok.txt").is_file()
    return {
        "smoke_test": res.verdict + ("" if back else "; the work folder did not come back"),
        "ok": res.ok and res.stdout.strip() == "ok" and back,
    }


@click.command("doctor")
@click.option("--no-smoke", is_flag=True, help="Skip running a tiny program in the sandbox.")
@json_option
def doctor(no_smoke: bool, as_json: bool) -> None:
    """Report python, git, LibreOffice and the sandbox model code runs in.

    Exit 1 if something t2s needs is missing (python >= 3.11, git, openpyxl, a working
    sandbox: bubblewrap with its namespaces); LibreOffice is optional (needed only to
    recalculate formulas). Without a sandbox it says exactly what is missing; rollout,
    eval, gate, analyze and evolve then refuse to run model code unless given
    --unsafe-no-sandbox.

    \b
    Examples:
      t2s doctor
      t2s doctor --json
    """
    info = gather(smoke=not no_smoke)
    if as_json:
        print_json(info)
    else:
        _print(info)
    sys.exit(0 if info["ok"] else 1)


def _print(info: dict) -> None:
    def mark(ok: bool) -> str:
        return "ok  " if ok else "MISSING"

    py = info["python"]
    click.echo(f"{mark(py['ok'])} python {py['version']} ({py['executable']})")
    click.echo(f"{mark(info['git']['ok'])} git: {info['git']['version'] or 'not found'}")
    click.echo(f"{mark(info['openpyxl']['ok'])} openpyxl {info['openpyxl']['version']}")
    lo = info["libreoffice"]
    click.echo(
        ("ok  " if lo["ok"] else "warn")
        + " LibreOffice: "
        + (f"{lo['version']} ({lo['path']})" if lo["ok"] else "not found (formula recalculation unavailable)")
    )
    sb = info["sandbox"]
    click.echo(f"{mark(sb['ok'])} sandbox")
    for problem in sb["missing"]:
        click.echo(f"       missing: {problem}")
    for key, value in sb.items():
        if key not in ("ok", "missing"):
            click.echo(f"       {key}: {value}")
