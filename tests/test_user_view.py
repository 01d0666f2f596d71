"""What a real run shows its user (issue 21): init flags, escaped markup, progress,
consistent views, ledger totals, kept transcripts, filters."""

from __future__ import annotations

from click.testing import CliRunner

from t2s.cli import main
from t2s.config import load_config


def test_init_writes_model_and_base_url_into_t2s_toml(tmp_path):
    target = tmp_path / "new"
    out = CliRunner().invoke(
        main,
        [
            "init",
            str(target),
            "--seed",
            "xlsx",
            "--no-hooks",
            "--model",
            "qwen2.5-7b",
            "--base-url",
            "http://127.0.0.1:8000/v1",
            "--api-key-env",
            "LOCAL_KEY",
        ],
    )
    assert out.exit_code == 0, out.output
    text = (target / "t2s.toml").read_text()
    config = load_config(target / "t2s.toml")
    for role in ("agent", "analyst", "merger"):
        settings = config.role(role)
        assert (settings.model, settings.base_url, settings.api_key_env) == (
            "qwen2.5-7b",
            "http://127.0.0.1:8000/v1",
            "LOCAL_KEY",
        )
    assert "gpt-4o-mini" not in text.split("[prices]")[0]
    assert "# the variable's name, not the key" in text  # the template's comments stay


def test_init_without_model_flags_keeps_the_template_defaults(tmp_path):
    target = tmp_path / "new"
    out = CliRunner().invoke(main, ["init", str(target), "--seed", "xlsx", "--no-hooks", "--model", "m1"])
    assert out.exit_code == 0, out.output
    config = load_config(target / "t2s.toml")
    assert config.role("merger").model == "m1"
    assert config.role("merger").base_url == "https://api.openai.com/v1"


MARKUP = "See [answer format](references/answer-format.md) and [bold]this[/bold]"


def _captured(fn, *args):
    from t2s.commands._common import console

    width = console.width
    console.width = 400  # no wrapping: the text is compared whole
    try:
        with console.capture() as cap:
            fn(*args)
    finally:
        console.width = width
    return cap.get()


def test_merge_summary_prints_model_text_intact():
    from t2s.commands.merge import print_summary
    from t2s.consolidation.models import MergeSummary

    summary = MergeSummary(
        run="r1",
        strategy="tree",
        levels=[["[x]L1-01"]],
        inputs=2,
        candidate_ref="refs/heads/t2s/r1/candidate",
        candidate="c" * 40,
        merged=1,
        failed=0,
        reused=0,
        excluded={"0002": MARKUP},
        validate_split="val",
        val_scores={"[x]L1-01": 0.5},
        rejected=["[x]L1-01"],
    )
    out = _captured(print_summary, summary)
    assert MARKUP in out
    assert "[x]L1-01" in out


def test_eval_table_prints_task_errors_intact():
    from types import SimpleNamespace

    from t2s.commands.eval_ import _print_tasks
    from t2s.record.notes import TaskVerdict

    verdict = TaskVerdict(task="[t]1", seed=0, passed=False, score=0.0, stop_reason=MARKUP)
    outcome = SimpleNamespace(commit="c" * 40, record=SimpleNamespace(suite="s", split="h", tasks=[verdict]))
    out = _captured(_print_tasks, outcome)
    assert MARKUP in out and "[t]1" in out


def test_stage_tables_and_bisect_print_text_intact():
    from types import SimpleNamespace

    from t2s.commands import bisect
    from t2s.commands._common import print_row_table

    assert "[b]x" in _captured(print_row_table, "t", [("time", "[b]x")])
    result = SimpleNamespace(
        endpoints=[],
        steps=[],
        evaluations=0,
        threshold=0.5,
        first_bad="f" * 40,
        kind="patch",
        subject=MARKUP,
        branches=[],
        details={"lessons": [MARKUP]},
    )
    assert _captured(bisect._print, result).count(MARKUP) == 2


# ---------------------------------------------------------------- live progress (21.2)


def _run_eval_cli(root, args, *, stderr_tty: bool, env_extra=None):
    """``t2s eval`` as a real subprocess; its stderr on a pseudo-terminal or a pipe.
    Returns (stdout, stderr)."""
    import os
    import pty
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update({"COLUMNS": "220", "LINES": "40", "TERM": "xterm-256color"}, **(env_extra or {}))
    env.pop("NO_COLOR", None)
    if not stderr_tty:
        done = subprocess.run(
            [sys.executable, "-m", "t2s", "eval", *args, "-C", str(root)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        return done.stdout, done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "t2s", "eval", *args, "-C", str(root)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    proc.wait(timeout=300)
    return out, b"".join(chunks).decode(errors="replace")


def test_eval_draws_a_live_bar_on_a_terminal_only(tmp_path, scripted_server):
    from tests.test_eval_support import make_repo

    store = make_repo(tmp_path, scripted_server)
    out, err = _run_eval_cli(store.root, ["HEAD", "--no-cache"], stderr_tty=True)
    assert "score 0.500" in out
    assert "eval" in err and "4/4" in err and "ETA" in err and "2 passed" in err and "2 failed" in err

    out, err = _run_eval_cli(store.root, ["HEAD", "--no-cache", "--json"], stderr_tty=True)
    assert '"score": 0.5' in out and "ETA" not in err and "4/4" not in err

    out, err = _run_eval_cli(store.root, ["HEAD", "--no-cache"], stderr_tty=False)
    assert "score 0.500" in out and "ETA" not in err

    out, err = _run_eval_cli(store.root, ["HEAD", "--no-cache"], stderr_tty=True, env_extra={"CI": "true"})
    assert "score 0.500" in out and "ETA" not in err


def test_stage_bar_names_the_running_items_and_counts_outcomes(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from t2s.commands.progress import StageBar

    sink = io.StringIO()
    console = Console(file=sink, force_terminal=True, width=200, color_system=None)
    bar = StageBar("rollout", {"passed": "green", "failed": "red"}, lambda t: t.verdict, console=console)
    assert bar.enabled  # a terminal (outside CI)
    bar.start(5, 2)
    bar.begin("task-[7]")
    bar.begin("task-8")
    bar.bar.refresh()
    bar.done(SimpleNamespace(verdict="passed"), "task-[7]")
    bar.stop()
    text = sink.getvalue()
    assert "now: task-[7], task-8" in text
    assert "3/5" in text and "1 passed" in text and "ETA" in text


def test_stage_bar_stays_off_in_ci_and_off_a_terminal(monkeypatch):
    import io

    from rich.console import Console

    from t2s.commands.progress import StageBar

    def bar(console):
        return StageBar("x", {"passed": "green"}, lambda t: "passed", console=console)

    monkeypatch.setenv("CI", "true")
    assert not bar(Console(file=io.StringIO(), force_terminal=True)).enabled
    monkeypatch.delenv("CI")
    assert not bar(Console(file=io.StringIO())).enabled


# ---------------------------------------------------------------- eval/gate filters (21.10)


def test_a_filtered_eval_runs_only_those_tasks_and_is_never_cached_or_noted(tmp_path, scripted_server):
    import json

    from t2s.record.notes import read_eval_note
    from tests.test_eval_support import HELDOUT, agent_calls, make_repo

    store = make_repo(tmp_path, scripted_server)
    runner = CliRunner()
    out = runner.invoke(main, ["eval", "HEAD", "-C", str(store.root), "--limit", "1", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [t["task"] for t in data["record"]["tasks"]] == HELDOUT[:1]
    assert data["subset"] == f"1 of {len(HELDOUT)} tasks" and data["cached"] is False
    assert read_eval_note(store, "HEAD") is None  # nothing noted: no cache hit can reuse it
    calls = agent_calls(scripted_server)
    assert calls > 0

    picked = HELDOUT[-1]
    out = runner.invoke(main, ["eval", "HEAD", "-C", str(store.root), "--task", picked])
    assert out.exit_code == 0, out.output
    assert picked in out.output and "not cached, not noted" in out.output
    assert agent_calls(scripted_server) > calls  # ran again: never served from a cache
    assert read_eval_note(store, "HEAD") is None

    # The full split afterwards runs every task and is noted as usual.
    full = runner.invoke(main, ["eval", "HEAD", "-C", str(store.root), "--json"])
    assert full.exit_code == 0, full.output
    assert json.loads(full.output)["record"]["total"] == len(HELDOUT)
    assert read_eval_note(store, "HEAD").evals[0].total == len(HELDOUT)
    # ... and a filtered look does not take the full split's cached result either.
    again = runner.invoke(main, ["eval", "HEAD", "-C", str(store.root), "--limit", "2", "--json"])
    assert json.loads(again.output)["cached"] is False and json.loads(again.output)["record"]["total"] == 2

    bad = runner.invoke(main, ["eval", "HEAD", "-C", str(store.root), "--task", "no-such-task"])
    assert bad.exit_code == 2 and "no-such-task" in bad.output and "Traceback" not in bad.output
    judged = runner.invoke(main, ["eval", "HEAD", "-C", str(store.root), "--limit", "1", "--exit-code-below", "0.5"])
    assert judged.exit_code == 2 and "whole split" in judged.output


def test_a_filtered_gate_prints_a_verdict_but_records_none(tmp_path, scripted_server):
    import json

    from t2s.record.notes import read_eval_note
    from tests.test_eval_support import commit_skill, make_repo

    store = make_repo(tmp_path, scripted_server)
    s0 = store.resolve("HEAD")
    cand = commit_skill(store, [s0], ["LESSON hard1", "LESSON hard2"], "two lessons")
    out = CliRunner().invoke(main, ["gate", cand, "--baseline", s0, "-C", str(store.root), "--limit", "2", "--json"])
    data = json.loads(out.output)
    assert data["subset"] == "2 of 4 tasks" and len(data["tasks"]) == 2
    assert "not recorded" in data["markdown"]
    assert read_eval_note(store, cand) is None and read_eval_note(store, s0) is None  # release cannot see it
    release = CliRunner().invoke(main, ["release", cand, "-C", str(store.root)])
    assert release.exit_code != 0


def test_show_prints_the_checker_report_readably_with_clean_paths(tmp_path):
    from t2s.agent.trajectory import Step, Trajectory
    from t2s.tasks.base import AnswerCheck, CheckReport
    from tests._runfixtures import add_patch, make_skill_repo, start_run

    store = make_skill_repo(tmp_path)
    record = start_run(store)
    add_patch(store, record, 1, "Read the answer format first.", task="q7")
    report = CheckReport(
        task_id="q7",
        output_path="work/../work/q7/answer.xlsx",
        answer_path="skills/../wtq-unseen/questions.tsv",
        problems=["wrong answer"],
        answers=AnswerCheck(gold=["3"], predicted=["4"], source="skills/../wtq-unseen/answer.txt"),
    )
    traj = Trajectory(
        id="t001",
        task_id="q7",
        verdict="failed",
        steps=[Step(index=1, turn=1, tool="run_python", arguments={"code": "print(4)"}, exit_code=0)],
        check=report.model_dump(mode="json"),
    )
    record.write({"trajectories/t001.json": traj.to_json()}, "trajectory t001")
    out = CliRunner().invoke(main, ["show", "0001", "-C", str(store.root), "--no-diff"])
    assert out.exit_code == 0, out.output
    assert "--- checker report" in out.output, out.output
    check = out.output.split("--- checker report", 1)[1]
    assert "FAIL  task q7" in check and "problem: wrong answer" in check
    assert "gold (1): '3'" in check and "answer read from: wtq-unseen/answer.txt" in check
    assert "output:  work/q7/answer.xlsx" in check
    assert "{" not in check and "/../" not in check


def test_stage_table_headers_are_never_cut(monkeypatch):
    from types import SimpleNamespace

    from t2s.analysis.analyze import summary_rows
    from t2s.commands._common import console, print_row_table

    summary = SimpleNamespace(
        rejected_by_reason={"leak": 3, "overlap": 2, "guardrail": 1},
        errored=2,
        analyzed=9,
        selected=10,
        validated=4,
        accepted=5,
        unvalidated=1,
        rejected=6,
        tokens=1_234_567,
        new_tokens=34_567,
        skipped=3,
        wall_s=1234.5,
    )
    monkeypatch.setattr(console, "width", 80)
    with console.capture() as cap:
        print_row_table("analyze r1", summary_rows(summary))
    text = cap.get()
    for header in ("analyzed", "validated", "accepted", "unvalidated", "rejected", "errored", "tokens"):
        assert header in text, text


# ---------------------------------------------------------------- views after reject + re-merge (21.3)


def _views(store, tmp_path):
    """What review, report, pr-body and the stage summary say about run r1."""
    import html
    import re

    from t2s.record.runs import RunRecord

    runner = CliRunner()
    review = runner.invoke(main, ["review", "--run", "r1", "-C", str(store.root)], terminal_width=200)
    out = tmp_path / "report.html"
    report = runner.invoke(main, ["report", "--run", "r1", "-o", str(out), "-C", str(store.root)])
    body = runner.invoke(main, ["pr-body", "candidate", "--run", "r1", "-C", str(store.root)])
    assert review.exit_code == report.exit_code == body.exit_code == 0, (review.output, report.output, body.output)
    page = html.unescape(re.sub(r"<[^>]+>", " ", out.read_text()))
    stage = RunRecord(store, "r1").manifest().stages["merge"].summary
    return review.output, " ".join(page.split()), body.output, stage


def _without_fallback(store) -> None:
    """A failed merge stays failed: both patches append to one section, which the union
    fallback would merge ([merge] fallback = false, docs/real-models.md)."""
    config = store.root / "t2s.toml"
    config.write_text(config.read_text().replace("[merge]\n", "[merge]\nfallback = false\n", 1))


def test_views_agree_after_reject_and_re_merge(tmp_path, scripted_server):
    from t2s.testing import Reply
    from t2s.testing.simulated import merger_responder
    from tests._runfixtures import add_patch, make_skill_repo, start_run

    scripted_server.on(lambda request: Reply(content="not JSON"), role="merger")
    store = make_skill_repo(tmp_path)
    _without_fallback(store)
    record = start_run(store)
    add_patch(store, record, 1, "Recalculate formulas before saving.")
    add_patch(store, record, 2, "Strip spaces from text keys.")
    runner = CliRunner()
    args = ["-C", str(store.root), "--base-url", scripted_server.base_url, "--model", "sim-merger"]
    failed = runner.invoke(main, ["merge", "--run", "r1", *args])
    assert failed.exit_code != 0 and "L1-01: failed" in failed.output
    assert runner.invoke(main, ["reject", "0002", "-m", "too narrow", "-C", str(store.root)]).exit_code == 0

    # The failed L1-01 took the rejected patch: a plain merge must not leave it as the current tree.
    plain = runner.invoke(main, ["merge", "--run", "r1", *args])
    assert plain.exit_code == 2 and "--rebuild" in plain.output and "L1-01" in plain.output
    scripted_server.on(merger_responder, role="merger")
    rebuilt = runner.invoke(main, ["merge", "--run", "r1", "--rebuild", *args])
    assert rebuilt.exit_code == 0, rebuilt.output

    review, page, body, stage = _views(store, tmp_path)
    assert review.strip().endswith("1 in the candidate, 1 rejected")
    assert "1 in the candidate, 1 rejected" in page and "merged" not in review.splitlines()[-1]
    assert "L1-01" not in page and "failed merge (inputs" in page  # only the legend mentions a failed merge
    assert "0 level(s)" in page and "level(s), 1 failed" not in page
    assert "1 patches -> no merges" in body and "at L1" not in body
    assert stage["levels"] == [] and stage["failed"] == 0 and stage["merged"] == 0


def test_views_agree_after_rejecting_a_merged_patch(tmp_path, scripted_server):
    from t2s.testing.simulated import merger_responder
    from tests._runfixtures import add_patch, make_skill_repo, start_run

    scripted_server.on(merger_responder, role="merger")
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    for i, text in enumerate(["Recalculate formulas.", "Strip spaces from keys.", "Read values back."], start=1):
        add_patch(store, record, i, text, topic=f"t{i}")
    runner = CliRunner()
    args = ["-C", str(store.root), "--base-url", scripted_server.base_url, "--model", "sim-merger"]
    assert runner.invoke(main, ["merge", "--run", "r1", *args]).exit_code == 0
    assert runner.invoke(main, ["reject", "0003", "-m", "too narrow", "-C", str(store.root)]).exit_code == 0
    assert runner.invoke(main, ["merge", "--run", "r1", *args]).exit_code == 2
    assert runner.invoke(main, ["merge", "--run", "r1", "--rebuild", *args]).exit_code == 0

    review, page, body, stage = _views(store, tmp_path)
    assert review.strip().endswith("2 merged, 1 rejected") and "2 merged, 1 rejected" in page
    assert "1 merges 1 level(s)" in page or "merges 1 1 level(s)" in page
    assert "2 patches -> 1 at L1" in body
    assert stage["levels"] == [["L1-01"]] and stage["merged"] == 1 and stage["inputs"] == 2


# ---------------------------------------------------------------- ledger across a kill -9 (21.4)


def test_ledger_adds_up_after_a_killed_rollout_is_resumed(tmp_path, scripted_server):
    """kill -9 while the third task waits for the model; resume: the rollout ledger,
    the manifest's stage summary and the report count the same tokens and calls as the
    recorded trajectories."""
    import json
    import os
    import subprocess
    import sys
    import threading

    from t2s.agent.trajectory import load_trajectory
    from t2s.record.runs import RunRecord
    from tests.conftest import git
    from tests.test_eval_support import HELDOUT, agent_responder, make_repo

    store = make_repo(tmp_path, scripted_server)
    toml = store.root / "t2s.toml"  # roll out on the four tasks
    text = toml.read_text().replace(f"heldout = {{ ids = {json.dumps(HELDOUT)} }}", 'heldout = { ids = ["evo1"] }')
    toml.write_text(text.replace('evolve = { ids = ["evo1"] }', f"evolve = {{ ids = {json.dumps(HELDOUT)} }}"))
    git(store.root, "commit", "-qam", "roll out on four tasks")
    reached, release = threading.Event(), threading.Event()

    def stall_on_hard1(request):
        if "1_hard1_init.xlsx" in request.text:
            reached.set()
            release.wait(120)
        return agent_responder(request)

    scripted_server.reset()
    scripted_server.on(stall_on_hard1, role="agent")
    env = {**os.environ, "CI": "1"}
    cmd = [sys.executable, "-m", "t2s", "rollout", "--run", "r1", "--concurrency", "1"]
    log = tmp_path / "rollout.log"
    proc = subprocess.Popen([*cmd, "-C", str(store.root)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        while not reached.wait(1):  # not a timing assumption: it waits for either event
            assert proc.poll() is None, log.read_text()
        proc.kill()  # SIGKILL: no finally block, no ledger written at the end
        proc.wait(60)
    finally:
        release.set()
    record = RunRecord(store, "r1")
    assert len(record.list("trajectories")) == 2  # easy1, easy2 were recorded before the kill
    assert record.read_json("ledger/rollout.json")["totals"]["calls"] == 4  # ... and what they cost

    resumed = CliRunner().invoke(main, ["rollout", "--run", "r1", "-C", str(store.root)])
    assert resumed.exit_code == 0, resumed.output
    trajectories = [
        load_trajectory(record.read(path), where=path) for path in record.list("trajectories") if path.endswith(".json")
    ]
    assert sorted(t.task_id for t in trajectories) == sorted(HELDOUT)
    tokens = sum(t.usage.total_tokens for t in trajectories)
    calls = sum(t.usage.calls for t in trajectories)
    ledger = record.read_json("ledger/rollout.json")["totals"]
    stage = record.manifest().stages["rollout"].summary
    assert tokens > 0 and ledger["total_tokens"] == stage["tokens"] == tokens
    assert ledger["calls"] == calls == 8
    out = tmp_path / "report.html"
    assert CliRunner().invoke(main, ["report", "--run", "r1", "-o", str(out), "-C", str(store.root)]).exit_code == 0
    assert f">{tokens}<" in out.read_text().replace(",", "")


# ---------------------------------------------------------------- merger transcripts (21.9)


def test_a_merge_keeps_the_mergers_transcript_and_show_opens_it(tmp_path, scripted_server):
    import json

    from t2s.record.runs import RunRecord
    from t2s.testing import Reply
    from t2s.testing.simulated import merger_responder
    from tests._runfixtures import add_patch, make_skill_repo, start_run

    scripted_server.on(lambda request: Reply(content="Sorry, [no JSON] today"), role="merger")
    store = make_skill_repo(tmp_path)
    _without_fallback(store)
    record = start_run(store)
    add_patch(store, record, 1, "Recalculate formulas before saving.")
    add_patch(store, record, 2, "Strip spaces from text keys.")
    runner = CliRunner()
    args = ["-C", str(store.root), "--base-url", scripted_server.base_url, "--model", "sim-merger"]
    assert runner.invoke(main, ["merge", "--run", "r1", *args]).exit_code != 0
    kept = json.loads(RunRecord(store, "r1").read("merge-transcripts/L1-01.json"))
    assert kept[0]["role"] == "system" and "Merge group L1-01" in json.dumps(kept)
    answers = [m["content"] for m in kept if m["role"] == "assistant"]
    assert answers == ["Sorry, [no JSON] today"] * 3  # each raw answer, the repairs in between
    shown = runner.invoke(main, ["show", "L1-01", "-C", str(store.root)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "merge L1-01 of run r1: 3 merger answer(s)" in shown.output
    assert shown.output.count("Sorry, [no JSON] today") == 3

    # A rebuilt tree keeps the old transcript with the old reports; the new merge has its own.
    scripted_server.reset()
    scripted_server.on(merger_responder, role="merger")
    rebuilt = runner.invoke(main, ["merge", "--run", "r1", "--rebuild", "--no-cache", *args])
    assert rebuilt.exit_code == 0, rebuilt.output
    record = RunRecord(store, "r1")
    assert record.read("superseded/001/merge-transcripts/L1-01.json") is not None
    fresh = json.loads(record.read("merge-transcripts/L1-01.json"))
    assert [m["role"] for m in fresh][-1] == "assistant" and "lessons" in fresh[-1]["content"]
    as_json = runner.invoke(main, ["show", "L1-01", "--run", "r1", "--json", "-C", str(store.root)])
    assert json.loads(as_json.output)["transcript"] == fresh
    missing = runner.invoke(main, ["show", "L9-01", "-C", str(store.root)])
    assert missing.exit_code == 2 and "no run has a merge L9-01" in missing.output


def test_eval_notes_point_at_kept_trajectories_that_show_opens(tmp_path, scripted_server):
    from t2s.record.notes import read_eval_note
    from tests.test_eval_support import HELDOUT, make_repo

    store = make_repo(tmp_path, scripted_server)
    runner = CliRunner()
    assert runner.invoke(main, ["eval", "HEAD", "-C", str(store.root), "-q"]).exit_code == 0
    record = read_eval_note(store, "HEAD").evals[0]
    assert record.trajectories and record.trajectories.startswith("refs/t2s/eval-trajectories/")
    kept = store.read_files(record.trajectories, "trajectories")
    assert sorted(kept) == sorted(f"{task}.json" for task in HELDOUT)
    shown = runner.invoke(main, ["show", "hard1", "--eval", "HEAD", "-C", str(store.root)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "trajectory hard1 of task hard1: failed" in shown.output and "run_python" in shown.output
    nope = runner.invoke(main, ["show", "nosuch", "--eval", "HEAD", "-C", str(store.root)])
    assert nope.exit_code == 2 and "it has: easy1" in nope.output
