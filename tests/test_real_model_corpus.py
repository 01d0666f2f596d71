"""The real-model corpora (tests/fixtures/real_model_corpus*/) are complete enough to replay.

The fixtures are raw answers of a real model recorded by ``bench/collect_corpus.py``:
corpus 1 with the prompts of its recorded t2s (a38e4c2, before the prompts' examples
quoted the skill), corpus 2 with today's prompts (its analyses and merges only: it
reused corpus 1's trajectories). These tests check that every answer comes with the
exact request it answered (its cache key is recomputed from the stored messages, tools
and parameters), that every merge job of corpus 2 rebuilds the merger's prompt exactly
from its stored inputs and S0, and that the S0 files each answer was made against are
there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from t2s.consolidation.group import render_messages
from t2s.consolidation.models import MergeInput
from t2s.llm.cache import request_key
from t2s.skill.format import SKILL_FILE

FIXTURES = Path(__file__).parent / "fixtures"
#: Each corpus, and the roles it holds answers of (corpus 2 reused corpus 1's trajectories).
CORPORA = {"real_model_corpus": ("agent", "analyst", "merger"), "real_model_corpus_2": ("analyst", "merger")}
#: The corpus recorded with today's prompts: its merger prompts rebuild exactly.
CURRENT = "real_model_corpus_2"
ROLES = ("agent", "analyst", "merger")


def _jsonl(root: Path, name: str) -> list[dict]:
    path = root / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module", params=sorted(CORPORA))
def corpus(request) -> dict:
    root = FIXTURES / request.param
    conversations = {c["id"]: c["messages"] for c in _jsonl(root, "conversations.jsonl")}
    tools = json.loads((root / "tools.json").read_text(encoding="utf-8"))
    return {
        "name": request.param,
        "root": root,
        "roles": CORPORA[request.param],
        "conversations": conversations,
        "tools": tools,
        "answers": {role: _jsonl(root, f"{role}.jsonl") for role in ROLES},
        "jobs": _jsonl(root, "merge_jobs.jsonl"),
        "meta": json.loads((root / "corpus.json").read_text(encoding="utf-8")),
    }


def _s0_texts(corpus: dict, suite: str) -> dict[str, str]:
    root = corpus["root"] / "s0" / suite
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*.md"))
        if p.relative_to(root).as_posix() == SKILL_FILE or p.relative_to(root).parts[0] == "references"
    }


def test_every_role_has_answers(corpus):
    for role in corpus["roles"]:
        assert corpus["answers"][role], f"no {role} answers in the corpus"
        for line in corpus["answers"][role]:
            answer = line["answer"]
            assert answer.get("content") is not None or answer.get("tool_calls"), line["id"]


def test_each_answer_carries_the_exact_request_it_answered(corpus):
    for role in ROLES:
        for line in corpus["answers"][role]:
            ref = line["request"]
            body = dict(ref["params"])
            body["messages"] = corpus["conversations"][ref["conversation"]][: ref["prefix"]]
            if ref["tools"]:
                body["tools"] = corpus["tools"][ref["tools"]]
            assert request_key(body) == line["cache_key"], line["id"]


def test_merge_jobs_rebuild_the_merger_prompt(corpus):
    if corpus["name"] != CURRENT:
        pytest.skip("recorded with the merger prompts of its own t2s (corpus.json: t2s_commit)")
    first = {}
    for line in corpus["answers"]["merger"]:
        first.setdefault(line["job"], line)
    assert first, "no merger answers"
    for job in corpus["jobs"]:
        if job["id"] not in first:
            continue
        line = first[job["id"]]
        messages = render_messages(
            run=job["run"],
            name=job["name"],
            level=job["level"],
            s0_texts=_s0_texts(corpus, job["suite"]),
            inputs=[MergeInput.model_validate(i) for i in job["inputs"]],
            min_support=job["min_support"],
        )
        assert messages == corpus["conversations"][line["request"]["conversation"]][:2], job["id"]


def test_s0_files_and_contexts_are_there(corpus):
    contexts = corpus["meta"]["contexts"]
    for role in ROLES:
        for line in corpus["answers"][role]:
            context = contexts[line["suite"]]
            assert (corpus["root"] / context["files"] / SKILL_FILE).is_file(), line["id"]
            assert context["forbidden_ids"], line["suite"]
