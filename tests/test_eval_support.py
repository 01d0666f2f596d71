"""Helpers for the eval / gate / release / bisect tests (plus the sign test's own tests).

A tiny SpreadsheetBench-format suite is built with openpyxl: each task puts the sum of
A1:A3 into B1. The scripted agent (a responder for the scripted OpenAI-compatible
server) writes real openpyxl code through native tool calls: the right sum, or a wrong
one when the skill it was given (its system prompt) says so:

- a line ``BREAKING <task>`` makes the agent get ``<task>`` wrong;
- tasks whose id starts with ``hard`` are wrong unless the skill has ``LESSON <task>``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import openpyxl
import pytest

from t2s.evaluation.gate import sign_test
from t2s.gitstore.store import GitStore
from t2s.testing import Reply, tool_call

HELDOUT = ["easy1", "easy2", "hard1", "hard2"]
EVOLVE = ["evo1"]
SKILL_DIR = "skills/sheet-sums"


def _book(path: Path, values: dict[str, object]) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    for coord, value in values.items():
        ws[coord] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def make_suite(root: Path, ids=tuple(HELDOUT + EVOLVE)) -> Path:
    rows = []
    for n, tid in enumerate(ids):
        a = [n + 1, 2 * n + 3, 7]
        folder = root / "spreadsheet" / tid
        _book(folder / f"1_{tid}_init.xlsx", {"A1": a[0], "A2": a[1], "A3": a[2]})
        _book(folder / f"1_{tid}_golden.xlsx", {"A1": a[0], "A2": a[1], "A3": a[2], "B1": sum(a)})
        rows.append(
            {
                "id": tid,
                "instruction": "Put the sum of A1:A3 into B1.",
                "spreadsheet_path": f"spreadsheet/{tid}",
                "instruction_type": "Cell-Level Manipulation",
                "answer_position": "B1",
            }
        )
    (root / "dataset.json").write_text(json.dumps(rows))
    return root


CODE = """import openpyxl
wb = openpyxl.load_workbook("{inp}")
ws = wb.worksheets[0]
ws["B1"] = sum(ws.cell(r, 1).value for r in range(1, 4)){wrong}
wb.save("{out}")
print("saved", ws["B1"].value)
"""


def agent_responder(req):
    """The scripted agent: see the module docstring."""
    system = next((m.get("content") or "" for m in req.messages if m["role"] == "system"), "")
    user = next(m["content"] for m in req.messages if m["role"] == "user")
    inp = re.search(r"Input workbook: (\S+)", user).group(1)
    out = re.search(r"Write the finished workbook to: (\S+)", user).group(1)
    task = re.search(r"1_(.+?)_init\.xlsx", inp).group(1)
    wrong = f"BREAKING {task}" in system or (task.startswith("hard") and f"LESSON {task}" not in system)
    turn = sum(1 for m in req.messages if m["role"] == "assistant")
    if turn == 0:
        code = CODE.format(inp=inp, out=out, wrong=" + 1" if wrong else "")
        return Reply(tool_calls=[tool_call("run_python", {"code": code})])
    return Reply(tool_calls=[tool_call("finish", {"summary": "done"})])


def skill_text(lines=()) -> str:
    body = "\n".join(lines)
    return (
        "---\nname: sheet-sums\ndescription: Sum cells in spreadsheets. Use for column totals.\n---\n\n"
        "# Sheet sums\n\nUse openpyxl.\n" + (f"\n{body}\n" if body else "")
    )


def make_repo(tmp_path: Path, server, *, extra_toml: str = "", heldout=tuple(HELDOUT), monkeypatch=None) -> GitStore:
    """A skill repository with the suite configured and the agent pointed at ``server``.

    With ``monkeypatch``, the server's URL goes into ``T2S_AGENT_BASE_URL`` instead of
    ``t2s.toml`` and every commit date is fixed, so commit ids are the same on every run.
    """
    base_url = server.base_url
    if monkeypatch is not None:
        monkeypatch.setenv("T2S_AGENT_BASE_URL", server.base_url)
        for var in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
            monkeypatch.setenv(var, "1700000000 +0000")
        base_url = "http://127.0.0.1:9/v1"
    from t2s.skill.repo import init_skill_repo

    suite = make_suite(tmp_path / "suite")
    suite_path = "../suite" if monkeypatch is not None else str(suite)
    repo = tmp_path / "repo"
    init_skill_repo(
        repo,
        name="sheet-sums",
        description="Sum cells in spreadsheets. Use for column totals.",
        install_git_hooks=False,
    )
    (repo / SKILL_DIR / "SKILL.md").write_text(skill_text())
    toml = (
        f'''[skill]
name = "sheet-sums"

[models.agent]
model = "agent-model"
base_url = "{base_url}"
api_key_env = "T2S_TEST_API_KEY"
protocol = "tools"
max_retries = 1
backoff_base = 0.001
backoff_max = 0.01
timeout = 20

[cache]
mode = "off"

[suites.sums]
type = "spreadsheetbench"
path = "{suite_path}"
[suites.sums.splits]
heldout = {{ ids = {json.dumps(list(heldout))} }}
evolve = {{ ids = {json.dumps(EVOLVE)} }}

[rollout]
suite = "sums"
max_turns = 4
exec_timeout = 30
concurrency = 4
'''
        + extra_toml
    )
    (repo / "t2s.toml").write_text(toml)
    from tests.conftest import git

    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "configure the suite")
    server.on(agent_responder, role="agent")
    return GitStore.discover(repo)


def commit_skill(store: GitStore, parents, lines, subject: str, trailers=()) -> str:
    """A commit on ``parents[0]``'s tree with SKILL.md holding ``lines`` (no ref moves)."""
    tree = store.build_tree(parents[0], {f"{SKILL_DIR}/SKILL.md": skill_text(lines)})
    return store.commit(tree, list(parents), subject, "", list(trailers))


def agent_calls(server) -> int:
    return len(server.requests_for("agent"))


# ---------------------------------------------------------------------- sign test
def test_sign_test_matches_the_binomial_distribution():
    assert sign_test(0, 0) == 1.0
    assert sign_test(0, 5) == pytest.approx(2 / 32)
    assert sign_test(5, 0) == pytest.approx(2 / 32)
    assert sign_test(1, 9) == pytest.approx(2 * 11 / 1024)
    assert sign_test(3, 3) == 1.0
    assert sign_test(2, 3) == 1.0
