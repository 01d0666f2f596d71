"""``t2s analyze`` from the command line, on rolled-out and on imported trajectories."""

from __future__ import annotations

import json

from click.testing import CliRunner

from t2s.cli import main
from t2s.gitstore.store import parse_trailers
from t2s.record.lessons import PatchRecord
from t2s.record.runs import RunRecord
from t2s.testing.simulated import analyst_responder
from tests.conftest import git
from tests.test_analysts_support import add_trajectory, load_config_and_suite, make_repo, start_run


def model_flags(srv) -> list[str]:
    return [
        "--base-url",
        srv.base_url,
        "--model",
        "analyst-model",
        "--api-key-env",
        "T2S_TEST_API_KEY",
        "--set",
        "all.max_retries=1",
        "--set",
        "all.backoff_base=0.001",
        "--set",
        "all.timeout=20",
    ]


def test_analyze_cli_makes_branches_git_can_show(tmp_path, scripted_server):
    scripted_server.on(analyst_responder, role="analyst")
    store = make_repo(tmp_path)
    _, suite = load_config_and_suite(store)
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path, traj_id="a-fail")
    add_trajectory(record, suite, "txt-1", wrong=False, tmp=tmp_path, traj_id="b-pass")
    add_trajectory(record, suite, "mul-2", wrong=True, tmp=tmp_path, traj_id="c-fail")
    s0 = record.manifest().s0

    result = CliRunner().invoke(
        main,
        [
            "analyze",
            "-C",
            str(store.root),
            "--run",
            "r1",
            "--concurrency",
            "2",
            "--json",
            *model_flags(scripted_server),
        ],
    )
    assert result.exit_code == 0, result.output + str(scripted_server.errors)
    data = json.loads(result.stdout)
    assert (data["analyzed"], data["accepted"], data["validated"], data["rejected"]) == (3, 3, 2, 0)
    assert [p["trajectory"] for p in data["patches"]] == ["a-fail", "b-pass", "c-fail"]
    assert [p["analyst"] for p in data["patches"]] == ["agentic", "success", "agentic"]
    assert data["tokens"] > 0 and scripted_server.peak_in_flight <= 2

    # git diff S0 t2s/r1/patch/0001 shows exactly the patch; git log shows its provenance
    diff = git(store.root, "diff", s0, "t2s/r1/patch/0001")
    patch = PatchRecord.model_validate(record.read_json("patches/0001.json"))
    assert [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")] == [
        line for line in patch.diff.splitlines() if line.startswith("+") and not line.startswith("+++")
    ]
    log = git(store.root, "log", "-1", "--format=%B", "t2s/r1/patch/0001")
    trailers = dict(parse_trailers(log))
    assert trailers["T2S-Trajectory"] == "a-fail" and trailers["T2S-Analyst"] == "agentic"
    assert trailers["T2S-Validated"] == "yes" and "Failure causes:" in log
    assert git(store.root, "rev-parse", "t2s/r1/patch/0001~1").strip() == s0

    manifest = record.manifest()
    assert manifest.stages["analyze"].status == "done"
    assert manifest.stages["analyze"].summary["accepted"] == 3
    assert record.read_json("ledger/analyze.json")["totals"]["calls"] >= 9
    assert set(record.list("analyses")) == {"analyses/a-fail.json", "analyses/b-pass.json", "analyses/c-fail.json"}

    # the table: a second run finds everything done
    again = CliRunner().invoke(
        main, ["analyze", "-C", str(store.root), "--run", "r1", "--mode", "error", *model_flags(scripted_server)]
    )
    assert again.exit_code == 0, again.output
    for word in ("analyzed", "validated", "accepted", "rejected", "tokens", "time", "2/2"):
        assert word in again.stdout
    assert "already analyzed" in again.stdout


def test_analyze_cli_errors_are_clear(tmp_path, scripted_server):
    store = make_repo(tmp_path)
    result = CliRunner().invoke(
        main, ["analyze", "-C", str(store.root), "--run", "nope", *model_flags(scripted_server)]
    )
    assert result.exit_code == 2 and "run 'nope' does not exist" in result.output
    start_run(store, "empty")
    result = CliRunner().invoke(
        main, ["analyze", "-C", str(store.root), "--run", "empty", *model_flags(scripted_server)]
    )
    assert result.exit_code == 2 and "has no trajectories" in result.output
    result = CliRunner().invoke(main, ["analyze", "-C", str(store.root), "--run", "empty", "--concurrency", "0"])
    assert result.exit_code == 2 and "'--concurrency': must be at least 1 (got '0')" in result.output


def test_imported_trajectories_are_analysed_too(tmp_path, scripted_server):
    scripted_server.on(analyst_responder, role="analyst")
    store = make_repo(tmp_path)
    code = "import openpyxl\nwb = openpyxl.load_workbook('in.xlsx')\nwb.save('out.xlsx')\n"
    line = {
        "id": "ext-1",
        "messages": [
            {"role": "user", "content": "Copy each name in A1:A3 into column B exactly as written."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "run_python", "arguments": json.dumps({"code": code})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            {"role": "assistant", "content": "Done."},
        ],
    }
    with_task = tmp_path / "with-task.jsonl"
    with_task.write_text(json.dumps(line) + "\n")
    without_task = tmp_path / "without-task.jsonl"
    without_task.write_text(json.dumps({**line, "id": "ext-2"}) + "\n")
    runner = CliRunner()
    for path, extra in ((with_task, ["--task-id", "txt-1"]), (without_task, [])):
        result = runner.invoke(
            main,
            [
                "import",
                "-C",
                str(store.root),
                "--format",
                "openai-jsonl",
                str(path),
                "--run",
                "ext",
                "--verdict",
                "failed",
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output

    result = runner.invoke(
        main,
        ["analyze", "-C", str(store.root), "--run", "ext", "--mode", "error", "--json", *model_flags(scripted_server)],
    )
    assert result.exit_code == 0, result.output + str(scripted_server.errors)
    data = json.loads(result.stdout)
    by_traj = {p["trajectory"]: p for p in data["patches"]}
    # with a task the suite knows: the agentic analyst works from the input and proves its fix
    assert by_traj["ext-1"]["analyst"] == "agentic" and by_traj["ext-1"]["status"] == "accepted"
    # without one: the single-call analyst (and the record says why)
    assert by_traj["ext-2"]["analyst"] == "single-call" and by_traj["ext-2"]["status"] == "accepted"
    record = RunRecord(store, "ext")
    notes = record.read_json("analyses/ext-2.json")["notes"]
    assert any("single-call analyst used" in n for n in notes)
    evaluations = record.read_json("analyses/ext-1.json")["evaluations"]
    assert evaluations[-1]["passed"] is True
    for branch in ("t2s/ext/patch/0001", "t2s/ext/patch/0002"):
        trailers = dict(parse_trailers(git(store.root, "log", "-1", "--format=%B", branch)))
        assert trailers["T2S-Run"] == "ext" and trailers["T2S-Outcome"] == "failed"


_HOLD_STAGE = """
import sys
from t2s.gitstore.store import GitStore
from t2s.record.runs import RunRecord
with RunRecord(GitStore.discover(sys.argv[1]), sys.argv[2]).stage_lock(sys.argv[3]):
    print("held", flush=True)
    sys.stdin.read()  # until the test lets go
"""


def test_a_second_analyze_of_one_run_is_refused_while_the_first_works(tmp_path, scripted_server):
    """Two analyses of one run would hand out the same patch numbers: the second one
    stops at once with a clear message, and the lock dies with its process."""
    import subprocess
    import sys

    scripted_server.on(analyst_responder, role="analyst")
    store = make_repo(tmp_path)
    _, suite = load_config_and_suite(store)
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path, traj_id="a-fail")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_STAGE, str(store.root), "r1", "analyze"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        busy = CliRunner().invoke(
            main, ["analyze", "-C", str(store.root), "--run", "r1", *model_flags(scripted_server)]
        )
        assert busy.exit_code == 2
        assert "another `t2s analyze` is working on run 'r1'" in busy.output and "Traceback" not in busy.output
        assert record.list("patches") == [] and not scripted_server.requests
    finally:
        holder.kill()  # a crash, not a clean exit
        holder.wait()
    done = CliRunner().invoke(main, ["analyze", "-C", str(store.root), "--run", "r1", *model_flags(scripted_server)])
    assert done.exit_code == 0, done.output
    assert record.list("patches") == ["patches/0001.json"]
