"""What the benches at realistic latencies share: long-tailed model latencies, the
scripted server answering with them in a child process, and a CPU hog.

Model calls take seconds and have a long tail (agent turns about 2-20 s, merges 10-60
s). The benches draw each call's latency from a lognormal distribution (median and
sigma per role), deterministically from a key of the request (so the bench can compute
the ideal schedule of the very latencies the server used), divided by a scale factor
so that a bench runs in under two minutes. t2s's own time (wall minus the ideal) does
not shrink with the factor; it is projected onto the real latencies as
``own / (ideal x factor + own)``.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def draw(key: str, median: float, sigma: float, seed: int = 0) -> float:
    """One lognormal latency (seconds) for ``key``: the same key always draws the same."""
    if sigma <= 0:
        return median
    return random.Random(f"{seed}:{key}").lognormvariate(math.log(median), sigma)


def lognormal(key_of: Callable, median: float, sigma: float, seed: int = 0) -> Callable:
    """A scripted-server latency function: ``draw`` keyed by ``key_of(request)``."""
    return lambda request: draw(key_of(request), median, sigma, seed)


@contextlib.contextmanager
def server_process(module: str, median: float, sigma: float, seed: int) -> Iterator[str]:
    """``module.serve(median, sigma, seed)`` in a child process (a real model is remote
    and does not share t2s's GIL); yields the server's base URL."""
    code = (
        f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'bench')!r}]; "
        f"import {module}; {module}.serve({median!r}, {sigma!r}, {seed!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def serve_forever(server) -> None:
    """Start ``server``, print its URL for the parent, run until terminated."""
    import signal
    import threading

    server.start()
    print(server.base_url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop()


def _spin(deadline: float) -> None:
    x = 0
    while time.monotonic() < deadline:
        x += 1


@contextlib.contextmanager
def cpu_hog(processes: int, limit_s: float = 300.0) -> Iterator[None]:
    """``processes`` busy loops (a busy machine) for the block; each stops by itself
    after ``limit_s`` at the latest."""
    procs = [multiprocessing.Process(target=_spin, args=(time.monotonic() + limit_s,)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def share(own: float, ideal: float, factor: float = 1.0) -> float:
    """t2s's own share of wall time when the model's part is ``ideal x factor``."""
    total = ideal * factor + own
    return own / total if total > 0 else 0.0
