"""The agentic analyst's request bodies for a SpreadsheetBench task are pinned: the
response cache keys on them (``[cache] mode = "replay"`` answers only a byte-identical
request), so a refactor of the analyst or of the suite seam must not change them.

The expected bodies in tests/data/ were recorded from the code before the suite hook
``Suite.analyst_workspace`` existed (the analyst hard-coded its workspace). The test's
temporary directory, which the recorded checker report names, is written ``$TMP``,
the sandbox's elapsed time in a ``run_python`` observation ``N``, and the tool-call ids
(which the scripted server numbers per process) ``call_1``, ``call_2``... in order.
Re-recorded deliberately when the S0 section moved from the end to the front of
the user message (a cacheable static prefix, issue 19), and when the edit examples began
to quote the skill's own lines (t2s/patches/examples.py, issue 20).
Re-record (only for an intended change, which invalidates users' cached answers):
``T2S_RECORD_PINS=1 pytest tests/test_analyst_request_pins.py``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from t2s.llm.cache import request_key
from t2s.testing.simulated import agentic_analyst_responder
from tests.test_analysts import run
from tests.test_analysts_support import add_trajectory, load_config_and_suite, make_repo, start_run

ELAPSED = re.compile(r"^(\[run_python\] .*? in )\d+(?:\.\d+)? s$", re.M)


def normalised(body: dict, tmp_path: Path) -> dict:
    """The body with what differs between two runs of this test written as constants."""
    body = json.loads(json.dumps(body).replace(str(tmp_path), "$TMP"))
    call_ids: dict[str, str] = {}  # the scripted server numbers tool calls per process
    for message in body["messages"]:
        if isinstance(message.get("content"), str):
            message["content"] = ELAPSED.sub(r"\1N s", message["content"])
        for call in message.get("tool_calls") or []:
            call["id"] = call_ids.setdefault(call["id"], f"call_{len(call_ids) + 1}")
        if "tool_call_id" in message:
            message["tool_call_id"] = call_ids[message["tool_call_id"]]
    return body


PINNED = Path(__file__).resolve().parent / "data" / "agentic_analyst_spreadsheetbench_requests.json"


@pytest.mark.parametrize("protocol", ["tools", "text"])
def test_spreadsheetbench_agentic_analyst_requests_are_unchanged(tmp_path, scripted_server, protocol):
    store = make_repo(tmp_path)
    config, suite = load_config_and_suite(store)
    scripted_server.on(agentic_analyst_responder, role="analyst")
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path)
    summary = run(store, config, scripted_server, mode="error", analyst="agentic", protocol=protocol)
    assert summary.validated == 1
    bodies = [normalised(r.body, tmp_path) for r in scripted_server.requests_for("analyst")]
    if os.environ.get("T2S_RECORD_PINS"):
        data = json.loads(PINNED.read_text()) if PINNED.is_file() else {}
        data[protocol] = {"keys": [request_key(b) for b in bodies], "first": bodies[0], "last": bodies[-1]}
        PINNED.parent.mkdir(exist_ok=True)
        PINNED.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    expected = json.loads(PINNED.read_text())[protocol]
    assert len(bodies) == len(expected["keys"]) >= 4
    assert bodies[0] == expected["first"]  # the first request: the prompts and the workspace
    assert bodies[-1] == expected["last"]  # the whole conversation (tool observations too)
    assert [request_key(b) for b in bodies] == expected["keys"]  # every request, to the byte
