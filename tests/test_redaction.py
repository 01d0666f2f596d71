"""The second line of defence: a leaked key's value never reaches git or a model.

Each choke point gets a real leaked value: the run record's blobs and commit
messages, notes, tags, applied diffs (all through :class:`GitStore`), and the
request body :class:`t2s.llm.client.LLM` sends.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from t2s import redaction
from t2s.gitstore.store import GitStore
from t2s.llm.client import LLM
from t2s.llm.roles import resolve_roles
from t2s.record.notes import EVAL_NOTES, REVIEW_NOTES
from t2s.record.runs import RunManifest, RunRecord
from t2s.testing.pytest_plugin import scripted_role

LEAK = "sk-proj-LEAKED-4f9a8b7c6d5e4f3a2b1c"
OTHER = "hf_LEAKEDtoken0123456789abcdef"


@pytest.fixture
def leaked(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", LEAK)
    monkeypatch.setenv("HF_TOKEN", OTHER)
    return LEAK


def all_objects(repo) -> bytes:
    """Every object of the repository, as git stores it (loose or packed)."""
    return subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"], cwd=repo, capture_output=True, check=True
    ).stdout


def test_run_record_blobs_and_commit_messages(git_repo, leaked):
    store = GitStore.discover(git_repo)
    record = RunRecord(store, "r1")
    record.create(RunManifest(run="r1", s0=store.resolve("HEAD"), skill_dir="skills/x"))
    observation = f"[run_python] ok\nstdout:\nOPENAI_API_KEY={LEAK} HF_TOKEN={OTHER}\n"
    record.write(
        {
            "trajectories/t1.json": {"steps": [{"observation": observation}]},
            "artifacts/t1/loot.bin": b"\x00\x01" + LEAK.encode() + b"\xff",
        },
        f"t2s run r1: rollout t1 leaked {LEAK}",
        f"body {OTHER}",
    )
    objects = all_objects(git_repo)
    assert LEAK.encode() not in objects and OTHER.encode() not in objects
    data = record.read_json("trajectories/t1.json")
    assert data["steps"][0]["observation"] == (
        "[run_python] ok\nstdout:\nOPENAI_API_KEY=[redacted $OPENAI_API_KEY] HF_TOKEN=[redacted $HF_TOKEN]\n"
    )
    assert record.read("artifacts/t1/loot.bin") == b"\x00\x01[redacted $OPENAI_API_KEY]\xff"
    message = store.commit_message(record.ref)
    assert "leaked [redacted $OPENAI_API_KEY]" in message and "body [redacted $HF_TOKEN]" in message


def test_notes_tags_and_applied_diffs(git_repo, leaked):
    store = GitStore.discover(git_repo)
    head = store.resolve("HEAD")
    store.add_note(EVAL_NOTES, head, f'{{"error": "{LEAK}"}}')
    store.update_note(REVIEW_NOTES, head, lambda old: f"approved; token {OTHER}")
    store.create_tag("v0.1.0", head, f"release {LEAK}")
    diff = f"diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n hello\n+key {LEAK}\n"
    tree = store.apply_to_tree(head, diff)
    assert store.read_blob(tree, "README.md") == b"hello\nkey [redacted $OPENAI_API_KEY]\n"
    objects = all_objects(git_repo)
    assert LEAK.encode() not in objects and OTHER.encode() not in objects
    assert store.read_note(EVAL_NOTES, head) == '{"error": "[redacted $OPENAI_API_KEY]"}\n'
    assert store.tag_message("v0.1.0").strip() == "release [redacted $OPENAI_API_KEY]"


def test_the_key_of_a_configured_role_variable_is_redacted_too(git_repo, monkeypatch):
    secret = "zz-custom-provider-secret-000111"
    monkeypatch.setenv("MY_PROVIDER_CREDENTIAL", secret)
    store = GitStore.discover(git_repo)
    assert store.commit(store.tree_of("HEAD"), [], f"a {secret}") != ""  # not watched yet
    assert secret.encode() in all_objects(git_repo)
    resolve_roles(env={"T2S_API_KEY_ENV": "MY_PROVIDER_CREDENTIAL"})  # a role names it
    assert "MY_PROVIDER_CREDENTIAL" in redaction.watched()
    blob = store.write_blob(f"x {secret} y")
    assert store.read_blobs([blob]) == [b"x [redacted $MY_PROVIDER_CREDENTIAL] y"]


def test_short_placeholder_values_are_left_alone(git_repo, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "EMPTY")  # local servers' placeholder
    store = GitStore.discover(git_repo)
    blob = store.write_blob("EMPTY cells stay EMPTY")
    assert store.read_blobs([blob]) == [b"EMPTY cells stay EMPTY"]


def test_a_leaked_key_in_a_prompt_never_reaches_the_model(scripted_server, leaked):
    scripted_server.script(["ok"], role="agent")
    llm = LLM(
        roles={"agent": scripted_role(scripted_server)},
        cache_mode="off",
        env={"T2S_TEST_API_KEY": "sk-role-key-from-llm-env-77", "OPENAI_API_KEY": LEAK},
    )
    messages = [
        {"role": "system", "content": "You are an agent."},
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": f"stdout: OPENAI_API_KEY={LEAK}\nrole key sk-role-key-from-llm-env-77",
        },
    ]
    llm.chat_sync("agent", messages)
    sent = json.dumps(scripted_server.requests[0].body)
    assert LEAK not in sent and "sk-role-key-from-llm-env-77" not in sent
    assert "OPENAI_API_KEY=[redacted $OPENAI_API_KEY]" in sent
    assert "[redacted $T2S_TEST_API_KEY]" in sent
    assert scripted_server.requests[0].authorization == "Bearer sk-role-key-from-llm-env-77"
    assert messages[1]["content"].startswith(f"stdout: OPENAI_API_KEY={LEAK}")  # the caller's list is untouched
