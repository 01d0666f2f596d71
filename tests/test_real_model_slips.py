"""The slips a real small model makes (issue 20), each met with the scripted server:
anchors that are almost right, ids by the wrong name, shapes one level off, placeholder
text, retries that must resample, and a merge git can do when the merger cannot."""

from __future__ import annotations

import asyncio
import difflib
import json

import pytest
from pydantic import BaseModel

from t2s.analysis.analysts import EditsReply
from t2s.consolidation.accounting import resolve_ids
from t2s.consolidation.group import merger_ask
from t2s.consolidation.models import MergeFailed, MergeInput, MergerAnswer, MergeSettings
from t2s.consolidation.scheduler import Merger
from t2s.llm.client import LLM, sampling
from t2s.patches.context import PatchContext, commit_patch
from t2s.patches.render import render_edits
from t2s.record.lessons import Lesson, PatchRecord
from t2s.record.provenance import Provenance
from t2s.record.refs import candidate_branch, patch_branch
from t2s.testing.pytest_plugin import scripted_role
from tests._runfixtures import SKILL_DIR, add_patch, make_skill_repo, start_run

FRONT = "---\nname: t\ndescription: A test skill for anchors.\n---\n"
VERIFY_LINE = "5. **Verify by reading back.** Reopen the saved output with `data_only=True` and"
#: The line with two typos: about 95% similar, so it resolves by fuzzy match.
VERIFY_TYPOS = "5. **Verify by reading back.** Reopen teh saved outptu with data_only=True nad"


def _merger(store, record, server, cache=None, **settings) -> Merger:
    roles = {"merger": scripted_role(server, model="sim-merger")}
    llm = LLM(roles=roles, cache_path=cache, cache_mode="read-write" if cache else None)
    context = PatchContext(store, record.manifest().s0, SKILL_DIR)
    return Merger(store, record, context, merger_ask(llm), MergeSettings(**settings), model="sim-merger")


def _answer(sources: list[list[str]], edits: list[dict], texts: list[str] | None = None, **extra) -> str:
    texts = texts or [f"Lesson number {n} about reading cells back before finishing." for n in range(len(sources))]
    lessons = [{"text": t, "sources": s, "placement": "skill"} for t, s in zip(texts, sources, strict=True)]
    return json.dumps({"lessons": lessons, "edits": edits, **extra})


def _two_patches(tmp_path):
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    patches = [add_patch(store, record, n, f"Lesson {n}: strip spaces from keys before grouping rows.") for n in (1, 2)]
    return store, record, patches


# ---------------------------------------------------------------------- anchors
def test_a_95_percent_similar_anchor_applies_and_the_report_says_so(tmp_path, scripted_server):
    similarity = difflib.SequenceMatcher(None, VERIFY_TYPOS, VERIFY_LINE).ratio()
    assert 0.94 < similarity < 0.96
    store, record, _ = _two_patches(tmp_path)
    edit = {"op": "insert", "anchor": VERIFY_TYPOS, "position": "before", "text": "- Print the target cells."}
    scripted_server.script([_answer([["p0001.1", "p0002.1"]], [edit])], role="merger")
    summary = asyncio.run(_merger(store, record, scripted_server, min_support=1).parallel())

    assert summary.merged == 1 and summary.candidate
    report = record.read_json("merges/L1-01.json")
    assert report["attempts"] == 1
    assert len(report["anchors_resolved"]) == 1 and "fuzzy" in report["anchors_resolved"][0]
    assert "96% similar) to line 32" in report["anchors_resolved"][0]
    skill = store.read_blob(summary.candidate, f"{SKILL_DIR}/SKILL.md").decode()
    assert f"- Print the target cells.\n{VERIFY_LINE}\n" in skill  # landed at the line meant
    assert len(scripted_server.requests_for("merger")) == 1


def test_list_markers_and_emphasis_in_an_anchor_resolve_as_normalised():
    files = {
        "SKILL.md": FRONT + "# T\n\n## Steps\n\n2. **Restate the question as an operation.** Decide what it asks.\n"
    }
    result = render_edits(
        files,
        [{"op": "insert", "anchor": "- 2. Restate the question as an operation.", "text": "- Then count."}],
        skill_dir="skills/t",
        strict=False,
    )
    assert result.ok, result.feedback()
    assert result.files["SKILL.md"].endswith("Decide what it asks.\n- Then count.\n")
    assert result.resolutions and "normalised" in result.resolutions[0] and "to line 9" in result.resolutions[0]


def test_an_ambiguous_anchor_is_refused_with_the_candidate_lines():
    files = {"SKILL.md": "# T\n\n## Steps\n\n- Keep the formulas of column A.\n- Keep the formulas of column B.\n"}
    result = render_edits(
        files,
        [{"op": "insert", "anchor": "- Keep the formulas of column C.", "text": "- New."}],
        skill_dir="skills/t",
        strict=False,
    )
    assert not result.ok
    reason = result.failures[0].reason
    assert reason.startswith("the anchor text occurs 0 times in SKILL.md and no single line matches it closely")
    assert "column A" in reason and "column B" in reason  # both candidates shown for the repair round


def test_an_anchor_below_the_threshold_goes_back_with_the_closest_lines(tmp_path, scripted_server):
    store, record, _ = _two_patches(tmp_path)
    far = {"op": "insert", "anchor": "5. Verify it all by reading it back twice", "text": "- Print the cells."}
    near = {"op": "insert", "anchor": VERIFY_LINE, "position": "before", "text": "- Print the cells."}
    sources = [["p0001.1", "p0002.1"]]
    scripted_server.script([_answer(sources, [far]), _answer(sources, [near])], role="merger")
    summary = asyncio.run(_merger(store, record, scripted_server, min_support=1).parallel())
    assert summary.merged == 1
    retry = scripted_server.requests_for("merger")[1].last_user_text
    assert "no single line matches it closely enough; closest text (line 32" in retry
    assert record.read_json("merges/L1-01.json")["anchors_resolved"] == []


# ---------------------------------------------------------------------- ids
def test_patch_0002_resolves_to_its_one_lesson(tmp_path, scripted_server):
    store, record, _ = _two_patches(tmp_path)
    edit = {"op": "append_to_section", "heading": "## Safe edits", "text": "- Strip spaces from keys first."}
    answer = _answer([["p0001.1", "patch 0002"]], [edit])
    scripted_server.script([answer], role="merger")
    summary = asyncio.run(_merger(store, record, scripted_server, min_support=1).parallel())
    assert summary.merged == 1
    report = record.read_json("merges/L1-01.json")
    assert report["attempts"] == 1
    assert report["lessons"][0]["sources"] == ["p0001.1", "p0002.1"]


def test_a_name_of_several_lessons_goes_back_with_the_valid_ids():
    two = MergeInput(
        ref="r",
        commit="c",
        label="patch 0004",
        lessons=[Lesson(id="p0004.1", text="a", support=["t4"]), Lesson(id="p0004.2", text="b", support=["t4"])],
    )
    answer = MergerAnswer.model_validate(
        {
            "lessons": [{"text": "x", "sources": ["patch 0004"]}],
            "dropped": [{"lesson": "t4", "reason": "r"}],
            "edits": [],
        }
    )
    resolved, problems = resolve_ids(answer, [two])
    assert resolved.lessons[0].sources == ["patch 0004"]  # left as it was
    assert problems == [
        "'patch 0004' is not a lesson id: it names 2 lessons (p0004.1, p0004.2); cite those ids",
        "'t4' is not a lesson id: it names 2 lessons (p0004.1, p0004.2); cite those ids",
    ]


# ---------------------------------------------------------------------- shapes
class _Steps(BaseModel):
    steps: list[str]
    note: str = ""


def test_a_bare_list_and_json_in_a_string_are_coerced_without_a_repair_round(scripted_server):
    llm = LLM(roles={"analyst": scripted_role(scripted_server)})
    edits = [{"op": "append_to_section", "heading": "## Pitfalls", "text": "- Check the header row."}]
    scripted_server.script(
        [json.dumps(edits), json.dumps(json.dumps({"steps": ["one", "two"]})), '```json\n["a"]\n```'],
        role="analyst",
    )
    reply = llm.structured_sync("analyst", [{"role": "user", "content": "edits?"}], EditsReply)
    assert reply.edits == edits
    steps = llm.structured_sync("analyst", [{"role": "user", "content": "steps?"}], _Steps)
    assert steps.steps == ["one", "two"]
    fenced = llm.structured_sync("analyst", [{"role": "user", "content": "steps again?"}], _Steps)
    assert fenced.steps == ["a"]
    assert len(scripted_server.requests_for("analyst")) == 3  # no repair round


# ---------------------------------------------------------------------- placeholders
def test_dots_as_a_lesson_are_refused_and_sent_back(tmp_path, scripted_server):
    store, record, _ = _two_patches(tmp_path)
    edit = {"op": "append_to_section", "heading": "## Safe edits", "text": "- Strip spaces from keys first."}
    sources = [["p0001.1", "p0002.1"]]
    scripted_server.script(
        [_answer(sources, [edit], texts=["..."]), _answer(sources, [edit])],
        role="merger",
    )
    summary = asyncio.run(_merger(store, record, scripted_server, min_support=1).parallel())
    assert summary.merged == 1
    assert record.read_json("merges/L1-01.json")["attempts"] == 2
    retry = scripted_server.requests_for("merger")[1].last_user_text
    assert "the text of lesson 1 is a placeholder ('...')" in retry


def test_placeholder_and_echoed_edit_texts_are_refused():
    files = {"SKILL.md": "# T\n\n## Pitfalls\n\n- One.\n"}
    for text, why in [
        ("...", "is a placeholder"),
        ("TODO", "is a placeholder"),
        ("- Check the sheet name before reading.", "repeats the example of the instructions"),
    ]:
        result = render_edits(
            files,
            [{"op": "append_to_section", "heading": "## Pitfalls", "text": text}],
            skill_dir="skills/t",
            strict=False,
        )
        assert not result.ok and why in result.failures[0].reason, text


# ---------------------------------------------------------------------- retries
def test_retry_failed_asks_for_a_new_sample_and_replay_repeats_it(tmp_path, scripted_server):
    store, record = _conflicting_patches(tmp_path)  # git cannot merge them either
    cache = tmp_path / "cache.sqlite"
    scripted_server.on(lambda request: "not JSON at all", role="merger")
    with pytest.raises(MergeFailed, match="merged nothing") as failed:
        asyncio.run(_merger(store, record, scripted_server, cache=cache, retries=0, min_support=1).parallel())
    assert "--retry-failed` asks the merger for new samples" in failed.value.hint  # issue 21.6: a hint that helps
    assert record.read_json("merges/L1-01.json")["sample"] == 1
    sent = len(scripted_server.requests_for("merger"))

    edit = {"op": "append_to_section", "heading": "## Safe edits", "text": "- Strip spaces from keys first."}
    scripted_server.reset()
    scripted_server.script([_answer([["p0001.1", "p0002.1"]], [edit])], role="merger")
    again = asyncio.run(
        _merger(store, record, scripted_server, cache=cache, retries=0, min_support=1, retry_failed=True).parallel()
    )
    # not the cached failure: a new request, the next seed at a sampling temperature
    assert again.candidate is not None
    request = scripted_server.requests_for("merger")[0]
    assert (request.body["seed"], request.body["temperature"]) == (1, 0.7)
    assert record.read_json("merges/L1-01.json")["sample"] == 2
    assert sent >= 1

    # replay: the same sample of the same request answers from the cache, no model call
    replay = LLM(
        roles={"merger": scripted_role(scripted_server, model="sim-merger")}, cache_path=cache, cache_mode="replay"
    )
    messages = request.messages
    with sampling(2):
        result = replay.chat_sync("merger", messages, phase="merge")
    assert result.cached and len(scripted_server.requests_for("merger")) == 1


# ---------------------------------------------------------------------- git fallback
def _patch_in(store, record, number: int, heading: str, lesson: str) -> PatchRecord:
    """An accepted patch whose diff appends ``lesson`` to section ``heading``."""
    return _patch_with(store, record, number, {"op": "append_to_section", "heading": heading, "text": f"- {lesson}"})


def _patch_with(store, record, number: int, edit: dict, lesson: str | None = None) -> PatchRecord:
    """An accepted patch made of ``edit``, its lesson ``lesson`` (default: the edit's text)."""
    lesson = lesson or (edit.get("text") or edit.get("new") or "").lstrip("- ")
    s0 = record.manifest().s0
    nnnn = f"{number:04d}"
    result = PatchContext(store, s0, SKILL_DIR).render([edit])
    assert result.ok, result.failures
    ref = patch_branch(record.run, nnnn)
    trailers = [("T2S-Run", record.run), ("T2S-Patch", nnnn), ("T2S-Trajectory", f"t{number}")]
    commit = commit_patch(store, s0=s0, tree=result.tree, ref=ref, subject=lesson, trailers=trailers)
    patch = PatchRecord(
        patch=nnnn,
        trajectory=f"t{number}",
        task=f"task{number}",
        outcome="failed",
        analyst="agentic",
        status="accepted",
        lessons=[Lesson(id=f"p{nnnn}.1", text=lesson, support=[f"t{number}"], topic="general")],
        edits=[edit],
        diff=result.diff,
        branch=ref,
        commit=commit,
    )
    record.write({patch.path: patch}, f"patch {nnnn}")
    return patch


def test_a_failed_llm_merge_of_non_conflicting_diffs_is_merged_by_git(tmp_path, scripted_server):
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    sections = ["## Workflow", "## Formulas", "## Safe edits", "## Before you finish"]
    patches = [
        _patch_in(store, record, n, heading, f"Lesson {n} about {heading.strip('# ').lower()}, in general.")
        for n, heading in enumerate(sections, start=1)
    ]
    scripted_server.on(lambda request: "I could not decide.", role="merger")  # never a valid answer
    summary = asyncio.run(_merger(store, record, scripted_server, retries=1, fan_in=2).parallel())

    # two groups at level 1, one at level 2: all by git, and the run ends with a candidate
    assert [len(level) for level in summary.levels] == [2, 1]
    assert summary.fallbacks == 3 and summary.failed == 0
    root = store.rev_parse(candidate_branch("r1"))
    assert summary.candidate == root
    level1 = [store.rev_parse(f"refs/heads/t2s/r1/merge/L1-0{n}") for n in (1, 2)]
    assert store.parents(root) == level1
    assert store.parents(level1[0]) == [p.commit for p in patches[:2]]
    provenance = Provenance.of(store.commit_message(root))
    assert provenance.merge_fallback == "git" and provenance.kind == "merge"
    skill = store.read_blob(root, f"{SKILL_DIR}/SKILL.md").decode()
    for patch in patches:
        assert patch.lessons[0].text in skill
    report = record.read_json("merges/L2-01.json")
    assert report["status"] == "merged" and report["fallback"] == "git"
    assert sorted(s for lesson in report["lessons"] for s in lesson["sources"]) == [
        "L1-01.1",
        "L1-01.2",
        "L1-02.1",
        "L1-02.2",
    ]
    assert "merged by git, without consolidation" in report["reason"]
    assert "Merged by git:" in store.commit_message(root)


def test_additions_at_the_same_place_are_merged_as_their_union(tmp_path, scripted_server):
    """Two patches append to the same section: git apply calls that a conflict (the second
    hunk's context moved), yet neither removes a line, so the fallback keeps both additions,
    in input order (the corpus's WTQ merge ended without a candidate for this)."""
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    lessons = ["Strip spaces from keys before grouping rows.", "Read the header row before the data rows."]
    patches = [_patch_in(store, record, n, "## Safe edits", text) for n, text in enumerate(lessons, start=1)]
    scripted_server.on(lambda request: "I could not decide.", role="merger")
    summary = asyncio.run(_merger(store, record, scripted_server, retries=1, fan_in=2).parallel())

    assert summary.fallbacks == 1 and summary.failed == 0
    root = store.rev_parse(candidate_branch("r1"))
    assert store.parents(root) == [p.commit for p in patches]
    provenance = Provenance.of(store.commit_message(root))
    assert provenance.merge_fallback == "union"
    skill = store.read_blob(root, f"{SKILL_DIR}/SKILL.md").decode()
    s0_skill = store.read_blob(record.manifest().s0, f"{SKILL_DIR}/SKILL.md").decode()
    added = [line for line in skill.splitlines() if line not in s0_skill.splitlines()]
    assert added == [f"- {text}" for text in lessons]
    section = skill.split("## Safe edits", 1)[1].split("\n## ", 1)[0]
    assert all(f"- {text}" in section for text in lessons)
    report = record.read_json("merges/L1-01.json")
    assert report["fallback"] == "union" and "union of their additions" in report["reason"]


def _conflicting_patches(tmp_path):
    """Two patches that truly conflict: one appends to a section, the other rewrites its last line."""
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    s0_skill = store.read_blob(record.manifest().s0, f"{SKILL_DIR}/SKILL.md").decode()
    last = [line for line in s0_skill.split("## Safe edits", 1)[1].split("\n## ", 1)[0].splitlines() if line][-1]
    _patch_in(store, record, 1, "## Safe edits", "Strip spaces from keys before grouping rows.")
    _patch_with(store, record, 2, {"op": "replace", "old": last, "new": "- Keep every sheet you did not change."})
    return store, record


def test_a_removal_where_another_patch_adds_is_a_true_conflict(tmp_path, scripted_server):
    store, record = _conflicting_patches(tmp_path)
    scripted_server.on(lambda request: "I could not decide.", role="merger")
    with pytest.raises(MergeFailed):
        asyncio.run(_merger(store, record, scripted_server, retries=1, fan_in=2).parallel())
    report = record.read_json("merges/L1-01.json")
    assert report["status"] == "failed" and report.get("fallback") is None


def test_an_errored_analysis_is_asked_anew_not_replayed(tmp_path, scripted_server):
    from t2s.testing.simulated import analyst_responder
    from tests.test_faults import EXIT_ERRORED, _analysis_repo, analyst_flags, invoke

    scripted_server.on(analyst_responder, role="analyst")
    store, record = _analysis_repo(tmp_path)
    repo = str(store.root)
    flags = ["-C", repo, "--run", "r1", "--analyst", "single-call", "--json", *analyst_flags(scripted_server.base_url)]
    scripted_server.fault("500", times=None, role="analyst")
    assert invoke("analyze", *flags).exit_code == EXIT_ERRORED
    assert record.read_json("analyses/a-fail.json")["sample"] == 1
    first = scripted_server.requests_for("analyst")[0].body
    assert "seed" not in first and first["temperature"] == 0.0  # sample 1: the request as before

    scripted_server.clear_faults()
    scripted_server.reset()
    scripted_server.on(analyst_responder, role="analyst")
    assert invoke("analyze", *flags).exit_code == 0
    bodies = [r.body for r in scripted_server.requests_for("analyst")]
    assert bodies and all((b["seed"], b["temperature"]) == (1, 0.7) for b in bodies)


# ---------------------------------------------------------------------- repeats
def test_a_repair_round_answered_verbatim_again_is_asked_as_a_new_sample(scripted_server):
    """At temperature 0 a small model answered all three rounds of a repair loop with the
    same bytes (tests/fixtures/real_model_corpus/merger.jsonl): the round after a verbatim
    repeat is a new sample (another seed, a temperature above 0)."""
    llm = LLM(roles={"analyst": scripted_role(scripted_server)})
    wrong = '{"steps": "one"}'
    scripted_server.script([wrong, wrong, '{"steps": ["one"]}'], role="analyst")
    steps = llm.structured_sync("analyst", [{"role": "user", "content": "steps?"}], _Steps)
    assert steps.steps == ["one"]
    bodies = [r.body for r in scripted_server.requests_for("analyst")]
    assert [b.get("temperature") for b in bodies] == [0.0, 0.0, 0.7]
    assert "seed" not in bodies[1] and bodies[2]["seed"] == bodies[0].get("seed", 0) + 1


def test_a_repair_round_with_a_new_answer_keeps_the_sampling(scripted_server):
    llm = LLM(roles={"analyst": scripted_role(scripted_server)})
    scripted_server.script(['{"steps": "one"}', '{"steps": "two"}', '{"steps": ["two"]}'], role="analyst")
    llm.structured_sync("analyst", [{"role": "user", "content": "steps?"}], _Steps)
    assert [r.body.get("temperature") for r in scripted_server.requests_for("analyst")] == [0.0, 0.0, 0.0]
