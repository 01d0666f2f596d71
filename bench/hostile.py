"""The hostile battery against the sandbox: "N attempts, 0 escaped".

    python bench/hostile.py [--as-nobody] [--per-call N] [ATTEMPT...]

Runs every attempt of :mod:`t2s.testing.hostile` (issue 13, section A: reading the
API key from /proc/*/environ, the user's repository through /proc/*/cwd, /etc/shadow,
planting a git hook or a .pth, leaving the cgroup, outliving the call, exceeding the
process, memory and disk limits as a whole, host sockets, symlinked outputs, ...)
through ``t2s.sandbox.run.run_code`` for real, in a process started with the key in its
environment and the user's repository as its current directory. Prints each
attempt, then "N attempts, K escaped" (and which), and whether the repository, home
folder or virtualenv changed. Exit status 1 when anything escaped or changed.

``--as-nobody`` (as root) runs the battery again as uid 65534 with the system
python, the way an ordinary user runs t2s (a user namespace instead of the uid
drop). ``--per-call N`` also times ``run_code('pass')`` N times (median, min, max),
the sandbox's overhead per call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from t2s.sandbox.run import availability, run_code  # noqa: E402
from t2s.testing.hostile import run_battery, summary_line  # noqa: E402


def _print(title: str, outcomes, changed) -> None:
    print(f"== {title}")
    for o in outcomes:
        state = "ESCAPED" if o.escaped else "n/a" if o.skipped else "blocked"
        print(f"  {state:8} {o.name:14} {o.what}")
        if o.escaped:
            print(f"           -> {o.escaped}")
    print(summary_line(outcomes, changed))


def per_call(n: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        run_code("pass", Path(tmp))
        times = []
        for _ in range(n):
            start = time.perf_counter()
            run_code("pass", Path(tmp))
            times.append(time.perf_counter() - start)
    ms = [t * 1000 for t in times]
    return f"run_code('pass') x {n}: median {statistics.median(ms):.1f} ms, min {min(ms):.1f} ms, max {max(ms):.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-nobody", action="store_true", help="also run it as uid 65534 (needs root)")
    parser.add_argument("--per-call", type=int, default=0, metavar="N", help="time run_code('pass') N times")
    parser.add_argument("names", nargs="*", help="only these attempts")
    args = parser.parse_args()
    avail = availability()
    if not avail.ok:
        print("no sandbox here: " + "; ".join(avail.missing))
        return 1
    print(f"sandbox: bubblewrap {avail.version}")
    bad = False
    outcomes, changed = run_battery(args.names or None)
    _print("as this user", outcomes, changed)
    bad |= bool(changed) or any(o.escaped for o in outcomes)
    if args.as_nobody:
        outcomes, changed = run_battery(
            args.names or None, python="/usr/bin/python3", as_user=65534, extra_path=str(ROOT)
        )
        _print("as nobody (uid 65534, system python)", outcomes, changed)
        bad |= bool(changed) or any(o.escaped for o in outcomes)
    if args.per_call:
        print(per_call(args.per_call))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
