"""``t2s evolve --rounds N``: each round starts from the last accepted candidate, stops
at the first failing gate, and resumes after a ``kill -9`` in the round it was in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

from click.testing import CliRunner

from t2s.cli import main
from t2s.demo.simulation import agent_responder
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.lineage import rounds_of
from tests.test_estimates import demo_repo, t2s  # noqa: F401 - the fixture


def test_rounds_stop_at_the_first_failing_gate_and_chain_their_s0(demo_repo, tmp_path):  # noqa: F811
    store = GitStore.discover(demo_repo)
    head = store.resolve("HEAD")
    out = CliRunner().invoke(main, ["evolve", "-C", str(demo_repo), "--run", "ev", "--rounds", "3", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    lineage = data["lineage"]
    # Round 1 learns the demo's lessons and passes; round 2 has nothing left to gain:
    # an unchanged held-out score fails the (strict) gate, so round 3 never starts.
    assert [r["run"] for r in lineage] == ["ev-r1", "ev-r2"]
    assert data["stopped_by"] == "gate" and "round 2's gate failed (early stopping)" in data["summary"]
    assert lineage[0]["s0"] == head and lineage[0]["gate"]["passed"]
    assert lineage[1]["s0"] == lineage[0]["candidate"]  # each round's S0 is the previous candidate
    assert lineage[1]["gate"]["passed"] is False
    assert data["accepted"] == lineage[0]["candidate"]
    assert lineage[0]["added"]  # what round 1 added: its merged lessons
    assert not store.rev_parse(refs.run_record("ev-r3"))
    log = t2s(["log", "-C", str(demo_repo), "--run", "ev"])
    assert f"round 1 ev-r1: {head[:12]} -> {lineage[0]['candidate'][:12]} (gate passed" in log
    assert "round 2 ev-r2:" in log and "gate FAILED" in log
    report = tmp_path / "report.html"
    t2s(["report", "-C", str(demo_repo), "--run", "ev", "-o", str(report)])
    html = report.read_text()
    assert 'class="rounds-chart"' in html and "<svg" in html and "ev-r2" in html


def test_a_killed_round_resumes_in_that_round_with_the_same_lineage(demo_repo, scripted_server):  # noqa: F811
    store = GitStore.discover(demo_repo)
    in_round_2 = threading.Event()
    release = threading.Event()
    seen = []

    def agent(request):
        # Round 2's run record exists once its rollout has started: hold its 16th request
        # until the test has killed the process.
        if store.rev_parse(refs.run_record("ev-r2")):
            seen.append(1)
            if len(seen) == 16:
                in_round_2.set()
                release.wait(60)
        return agent_responder(request)

    scripted_server.reset()
    scripted_server.on(agent, role="agent")
    from t2s.demo.simulation import analyst_responder
    from t2s.testing.simulated import merger_responder

    scripted_server.on(analyst_responder, role="analyst")
    scripted_server.on(merger_responder, role="merger")
    cmd = [sys.executable, "-m", "t2s", "evolve", "-C", str(demo_repo), "--run", "ev", "--rounds", "3", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    try:
        assert in_round_2.wait(600), proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    before = rounds_of(store, "ev")
    assert [r.run for r in before] == ["ev-r1", "ev-r2"] and before[1].candidate is None
    done_before = len(store.list_tree(store.resolve(refs.run_record("ev-r2")), "trajectories"))

    out = CliRunner().invoke(main, ["evolve", "-C", str(demo_repo), "--run", "ev", "--rounds", "3", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    after = data["lineage"]
    assert [r["run"] for r in after] == ["ev-r1", "ev-r2"]  # resumed in round 2, not restarted
    assert after[0]["s0"] == before[0].s0 and after[0]["candidate"] == before[0].candidate
    assert after[1]["s0"] == before[1].s0 == before[0].candidate
    assert done_before > 0  # round 2's finished tasks were kept ...
    assert data["evolves"][1]["rollout"]["skipped"] == done_before  # ... and not run again
