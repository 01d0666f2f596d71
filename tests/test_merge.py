"""Consolidation: octopus merges level by level, with a scripted merger over real HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest

from t2s.consolidation.group import merger_ask
from t2s.consolidation.models import MergeSettings
from t2s.consolidation.plan import balanced_groups
from t2s.consolidation.scheduler import Merger
from t2s.llm.client import LLM
from t2s.patches.context import PatchContext
from t2s.record.refs import candidate_branch
from t2s.skill.format import lint_rev
from t2s.testing import Reply
from t2s.testing.pytest_plugin import scripted_role
from t2s.testing.simulated import merger_responder
from t2s.views.blame import blame
from tests._runfixtures import SKILL_DIR, add_patch, make_skill_repo, start_run

RECURRING = [
    ("Recalculate formulas before saving, or write computed values instead.", "formulas"),
    ("Read the target cells back with data_only=True before finishing.", "verification"),
    ("Strip spaces from text keys before grouping rows.", "text-keys"),
]


def lesson_for(i: int) -> tuple[str, str]:
    """Patches 1..18 repeat three lessons; 19..23 are one-off quirks."""
    if i <= 18:
        return RECURRING[i % 3]
    return (f"Quirk number {i}: merged header cells hide the second header row.", f"quirk-{i}")


def build_run(tmp_path, count: int):
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    patches = []
    for i in range(1, count + 1):
        text, topic = lesson_for(i)
        patches.append(add_patch(store, record, i, text, topic=topic))
    return store, record, patches


def make_merger(store, record, server, **settings) -> Merger:
    llm = LLM(roles={"merger": scripted_role(server, model="sim-merger")})
    context = PatchContext(store, record.manifest().s0, SKILL_DIR)
    return Merger(store, record, context, merger_ask(llm), MergeSettings(**settings), model="sim-merger")


def test_balanced_groups_have_no_runt():
    assert [len(g) for g in balanced_groups(list(range(23)), 5)] == [5, 5, 5, 4, 4]
    assert [len(g) for g in balanced_groups(list(range(6)), 5)] == [3, 3]
    assert [len(g) for g in balanced_groups(list(range(5)), 5)] == [5]
    assert [len(g) for g in balanced_groups(list(range(323)), 5)] == [5] * 63 + [4] * 2
    assert balanced_groups(list(range(11)), 5) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]


def test_23_patches_merge_in_levels_23_5_1_with_octopus_commits(tmp_path, scripted_server):
    scripted_server.on(merger_responder, role="merger")
    store, record, patches = build_run(tmp_path, 23)
    s0 = record.manifest().s0
    summary = asyncio.run(make_merger(store, record, scripted_server).parallel())

    assert [len(level) for level in summary.levels] == [5, 1]
    heads = [p.commit for p in patches]
    sizes = [5, 5, 5, 4, 4]
    start = 0
    level1 = []
    for index, size in enumerate(sizes, start=1):
        ref = f"refs/heads/t2s/r1/merge/L1-{index:02d}"
        commit = store.rev_parse(ref)
        assert store.parents(commit) == heads[start : start + size]
        start += size
        level1.append(commit)
        # the tree is exactly S0 plus the merge's own diff against S0
        diff = store.diff(s0, commit)
        assert store.apply_to_tree(s0, diff) == store.tree_of(commit)
        assert dict(store.trailers(commit))["T2S-Merge-Level"] == "1"
    root = store.rev_parse("refs/heads/t2s/r1/merge/L2-01")
    assert store.parents(root) == level1
    assert store.rev_parse(candidate_branch("r1")) == root == summary.candidate

    # support adds up: every trajectory is behind some root lesson, recurring ones have 6
    report = record.read_json("merges/L2-01.json")
    supports = {lesson["text"]: len(lesson["support"]) for lesson in report["lessons"]}
    assert sum(supports.values()) == 23
    assert all(supports[text] == 6 for text, _ in RECURRING)
    # the recurring lessons are in SKILL.md; one-off quirks went to linked references
    skill_md = store.read_blob(root, f"{SKILL_DIR}/SKILL.md").decode()
    assert RECURRING[0][0] in skill_md
    assert "Quirk number 19" not in skill_md
    quirk = store.read_blob(root, f"{SKILL_DIR}/references/quirk-19.md").decode()
    assert "Quirk number 19" in quirk
    assert "(references/quirk-19.md)" in skill_md
    assert lint_rev(store, root, SKILL_DIR) == []
    message = store.commit_message(root)
    assert "Lessons kept:" in message and "support 6" in message


def test_every_input_lesson_is_accounted_for_or_the_answer_goes_back(tmp_path, scripted_server):
    store, record, patches = build_run(tmp_path, 3)
    inputs = json.loads(
        json.dumps(
            [
                {
                    "id": p.lessons[0].id,
                    "support": p.lessons[0].support,
                    "topic": p.lessons[0].topic,
                    "text": p.lessons[0].text,
                }
                for p in patches
            ]
        )
    )
    from t2s.testing.simulated import consolidate

    good = consolidate(inputs, 2, PatchContext(store, record.manifest().s0, SKILL_DIR).texts())
    lossy = dict(good, lessons=good["lessons"][1:])  # forgets one lesson
    scripted_server.script([json.dumps(lossy), json.dumps(good)], role="merger")
    summary = asyncio.run(make_merger(store, record, scripted_server).parallel())
    assert summary.merged == 1
    report = record.read_json("merges/L1-01.json")
    assert report["attempts"] == 2
    retry = scripted_server.requests_for("merger")[1]
    assert "is not accounted for" in retry.last_user_text


def test_a_failing_merge_is_recorded_and_its_inputs_carried_up(tmp_path, scripted_server):
    store, record, patches = build_run(tmp_path, 6)  # groups of 3 and 3

    def flaky(request):
        if "Merge group L1-01" in request.last_user_text or "Merge group L1-01" in request.text:
            return Reply(content="this is not JSON at all")
        return merger_responder(request)

    scripted_server.on(flaky, role="merger")
    # without the git fallback ([merge] fallback = false), which would merge these additions
    summary = asyncio.run(make_merger(store, record, scripted_server, retries=1, fallback=False).parallel())
    failed = record.read_json("merges/L1-01.json")
    assert failed["status"] == "failed" and "merger call failed" in failed["reason"]
    assert store.rev_parse("refs/heads/t2s/r1/merge/L1-01") is None
    # level 2 merges the three carried-up patches with the L1-02 merge
    root = store.rev_parse(candidate_branch("r1"))
    assert store.parents(root) == [p.commit for p in patches[:3]] + [store.rev_parse("refs/heads/t2s/r1/merge/L1-02")]
    report = record.read_json(f"merges/{summary.levels[-1][0]}.json")
    assert sum(len(lesson["support"]) for lesson in report["lessons"]) == 6


def test_merge_resumes_without_new_model_calls(tmp_path, scripted_server):
    scripted_server.on(merger_responder, role="merger")
    store, record, _ = build_run(tmp_path, 7)
    first = asyncio.run(make_merger(store, record, scripted_server).parallel())
    calls = len(scripted_server.requests)
    again = asyncio.run(make_merger(store, record, scripted_server).parallel())
    assert len(scripted_server.requests) == calls
    assert again.candidate == first.candidate and again.reused == 3


def test_reviewer_rejected_patches_are_left_out_and_reported(tmp_path, scripted_server):
    from t2s.record.notes import REVIEW_NOTES, ReviewNote

    scripted_server.on(merger_responder, role="merger")
    store, record, patches = build_run(tmp_path, 4)
    store.add_note(
        REVIEW_NOTES, patches[1].commit, ReviewNote(verdict="reject", comment="too specific").model_dump_json()
    )
    summary = asyncio.run(make_merger(store, record, scripted_server).parallel())
    assert summary.excluded == {"0002": "too specific"}
    root = store.rev_parse(candidate_branch("r1"))
    assert patches[1].commit not in store.parents(root)
    assert "Excluded by review:\n- patch 0002: too specific" in store.commit_message(root)


def test_sequential_baseline_is_a_linear_chain(tmp_path, scripted_server):
    scripted_server.on(merger_responder, role="merger")
    store, record, _ = build_run(tmp_path, 7)
    summary = asyncio.run(make_merger(store, record, scripted_server).sequential(batch=3))
    assert summary.levels == [["S001"], ["S002"], ["S003"]]
    chain = store.rev_list(summary.candidate, [record.manifest().s0])
    assert len(chain) == 3 and all(len(store.parents(commit)) == 1 for commit in chain)
    final = record.read_json("merges/S003.json")
    assert sum(len(lesson["support"]) for lesson in final["lessons"]) == 7


def test_blame_resolves_a_candidate_line_to_its_trajectories(tmp_path, scripted_server):
    scripted_server.on(merger_responder, role="merger")
    store, record, patches = build_run(tmp_path, 9)
    asyncio.run(make_merger(store, record, scripted_server).parallel())
    result = blame(store, "r1", text="Recalculate formulas before saving")
    expected = sorted(
        p.trajectory for p, i in zip(patches, range(1, 10), strict=True) if lesson_for(i)[0] == RECURRING[0][0]
    )
    assert result.introduced_by.startswith("merge L2-")
    assert result.trajectories == expected
    assert result.tasks == sorted(f"task{int(t[1:])}" for t in expected)
    with pytest.raises(Exception, match="no line"):
        blame(store, "r1", text="no such text anywhere")


def test_merge_and_blame_commands(tmp_path, scripted_server):
    from click.testing import CliRunner

    from t2s.cli import main

    scripted_server.on(merger_responder, role="merger")
    store, record, _patches = build_run(tmp_path, 6)
    runner = CliRunner()
    args = ["-C", str(store.root), "--base-url", scripted_server.base_url, "--model", "sim-merger"]
    result = runner.invoke(main, ["merge", "--run", "r1", "--fan-in", "3", "--json", *args])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["levels"] == [["L1-01", "L1-02"], ["L2-01"]]
    assert record.manifest().stages["merge"].status == "done"
    assert record.read_json("ledger/merge.json") is not None
    human = runner.invoke(main, ["blame", "--run", "r1", "--text", "Strip spaces", "-C", str(store.root)])
    assert human.exit_code == 0, human.output
    assert "trajectory t002" in human.output and "trajectory t005" in human.output
    missing = runner.invoke(main, ["merge", "--run", "nope", *args])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_rebuild_after_a_merged_patch_is_rejected(tmp_path, scripted_server):
    """Rejecting a patch that is already merged: a plain merge refuses and names
    --rebuild; --rebuild keeps the old tree reachable and merges without the patch,
    with unchanged groups answered from the response cache."""
    from click.testing import CliRunner

    from t2s.cli import main
    from t2s.record.notes import REVIEW_NOTES, ReviewNote

    scripted_server.on(merger_responder, role="merger")
    store, record, patches = build_run(tmp_path, 6)
    runner = CliRunner()
    args = ["-C", str(store.root), "--base-url", scripted_server.base_url, "--model", "sim-merger", "--fan-in", "3"]
    assert runner.invoke(main, ["merge", "--run", "r1", *args]).exit_code == 0
    old_candidate = store.rev_parse(candidate_branch("r1"))
    store.add_note(
        REVIEW_NOTES, patches[5].commit, ReviewNote(verdict="reject", comment="too narrow").model_dump_json()
    )

    refused = runner.invoke(main, ["merge", "--run", "r1", *args])
    assert refused.exit_code == 2 and "--rebuild" in refused.output and "Traceback" not in refused.output
    calls = len(scripted_server.requests)
    rebuilt = runner.invoke(main, ["merge", "--run", "r1", "--rebuild", "--json", *args])
    assert rebuilt.exit_code == 0, rebuilt.output
    summary = json.loads(rebuilt.output)
    assert summary["excluded"] == {"0006": "too narrow"} and summary["inputs"] == 5
    assert summary["levels"] == [["L1-01", "L1-02"], ["L2-01"]]
    # patches 1-3 form the same group as before: its answer came from the cache
    assert len(scripted_server.requests) - calls == 2
    candidate = store.rev_parse(candidate_branch("r1"))
    l1_02 = store.rev_parse("refs/heads/t2s/r1/merge/L1-02")
    assert store.parents(l1_02) == [patches[3].commit, patches[4].commit] and candidate != old_candidate
    # the old tree is kept, and so are its reports
    assert store.rev_parse("refs/t2s/superseded/r1/001") == old_candidate
    assert sorted(record.list("superseded")) == [
        "superseded/001/merge-transcripts/L1-01.json",  # the merger's conversations go along
        "superseded/001/merge-transcripts/L1-02.json",
        "superseded/001/merge-transcripts/L2-01.json",
        "superseded/001/merges/L1-01.json",
        "superseded/001/merges/L1-02.json",
        "superseded/001/merges/L2-01.json",
    ]
    assert record.read_json("merges/L1-02.json")["inputs"][-1]["commit"] == patches[4].commit
    sequential = runner.invoke(main, ["merge", "--run", "r1", "--rebuild", "--strategy", "sequential", *args])
    assert sequential.exit_code == 2 and "sequential baseline starts over" in sequential.output


def test_a_failure_regroups_the_levels_above_and_resume_finds_the_regrouped_tree(tmp_path, scripted_server):
    """Merges start as soon as their inputs exist, planned as if every merge succeeds.
    A failed merge carries its inputs up, so the levels planned above it are abandoned
    (nothing of them recorded) and regrouped; a second run reuses everything."""
    store, record, patches = build_run(tmp_path, 23)  # fan-in 3: 23 -> 8 -> 3 -> 1 if all succeed

    def flaky(request):
        if "Merge group L1-02" in request.text:
            return Reply(content="this is not JSON at all")
        return merger_responder(request)

    scripted_server.on(flaky, role="merger")
    merger = make_merger(store, record, scripted_server, fan_in=3, concurrency=16, fallback=False)
    summary = asyncio.run(merger.parallel())
    # 1 merge + 3 carried patches + 6 merges = 10 heads -> 4 -> 2 -> 1
    assert [len(level) for level in summary.levels] == [8, 4, 2, 1]
    assert (summary.merged, summary.failed) == (14, 1)
    assert sorted(record.list("merges")) == sorted(
        [f"merges/L1-{i:02d}.json" for i in range(1, 9)]
        + [f"merges/L2-{i:02d}.json" for i in range(1, 5)]
        + ["merges/L3-01.json", "merges/L3-02.json", "merges/L4-01.json"]
    )
    l2_01 = store.rev_parse("refs/heads/t2s/r1/merge/L2-01")
    assert store.parents(l2_01) == [
        store.rev_parse("refs/heads/t2s/r1/merge/L1-01"),
        patches[3].commit,
        patches[4].commit,
    ]
    root = store.rev_parse(candidate_branch("r1"))
    assert (
        root == summary.candidate
        and sum(len(lesson["support"]) for lesson in record.read_json("merges/L4-01.json")["lessons"]) == 23
    )

    calls = len(scripted_server.requests)
    again = asyncio.run(make_merger(store, record, scripted_server, fan_in=3, concurrency=16).parallel())
    assert len(scripted_server.requests) == calls
    assert again.candidate == root and again.levels == summary.levels and again.reused == 15


# ---------------------------------------------------------------------- counts and accounting
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--strategy", "sequential", "--batch", "-1"], "--batch': must be at least 1 (got '-1')"),
        (["--strategy", "sequential", "--batch", "0"], "--batch': must be at least 1 (got '0')"),
        (["--fan-in", "0"], "--fan-in': must be at least 2 (got '0')"),
        (["--fan-in", "1"], "--fan-in': must be at least 2 (got '1')"),
    ],
)
def test_merge_refuses_counts_that_would_lose_or_ignore_patches(tmp_path, scripted_server, flags, message):
    """--batch -1 once left patch 0010 out (inputs[0:-1]); --fan-in 0 meant the
    default; --batch 0 merged nothing ten times. Each is refused before any work."""
    from click.testing import CliRunner

    from t2s.cli import main

    scripted_server.on(merger_responder, role="merger")
    store, _record, _ = build_run(tmp_path, 10)
    before = store.refs("refs/")
    args = ["-C", str(store.root), "--base-url", scripted_server.base_url, "--model", "sim-merger"]
    result = CliRunner().invoke(main, ["merge", "--run", "r1", *flags, *args], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert store.refs("refs/") == before  # no merge branch, no record change
    assert scripted_server.requests_for("merger") == []


def test_merge_settings_in_t2s_toml_follow_the_same_rules(tmp_path, scripted_server):
    from click.testing import CliRunner

    from t2s.cli import main

    store, _record, _ = build_run(tmp_path, 4)
    toml = store.root / "t2s.toml"
    toml.write_text(toml.read_text().replace("fan_in = 5", "fan_in = 0"))
    args = ["-C", str(store.root), "--base-url", scripted_server.base_url, "--model", "sim-merger"]
    result = CliRunner().invoke(main, ["merge", "--run", "r1", *args], catch_exceptions=False)
    assert result.exit_code == 2
    assert "merge.fan_in: must be at least 2 (got 0)" in result.output


def test_every_patch_is_accounted_for_by_the_check():
    from t2s.consolidation.accounting import check_every_patch_accounted
    from t2s.consolidation.models import MergeInput, PatchesLost

    inputs = [
        MergeInput(ref=f"refs/heads/t2s/r1/patch/{n:04d}", commit=f"{n:040x}", label=f"patch {n:04d}", lessons=[])
        for n in range(1, 11)
    ]
    everything = [f"{n:04d}" for n in range(1, 11)]
    check_every_patch_accounted("r1", inputs, {"0011": "rejected"}, everything)
    with pytest.raises(PatchesLost, match=r"patch\(es\) 0010 are not in the candidate \(10 patches in, 1 left out"):
        check_every_patch_accounted("r1", inputs, {"0011": "rejected"}, everything[:-1])
    with pytest.raises(PatchesLost, match=r"0003 were merged more than once"):
        check_every_patch_accounted("r1", inputs, {}, [*everything, "0003"])
    with pytest.raises(PatchesLost, match=r"holds patch\(es\) 0011 that were not inputs"):
        check_every_patch_accounted("r1", inputs, {"0011": "rejected"}, [*everything, "0011"])


def test_a_merge_tree_that_drops_a_patch_never_becomes_the_candidate(tmp_path, scripted_server, monkeypatch):
    """The check reads the finished candidate from git, so a planning bug that leaves
    a head out is caught before the candidate branch moves."""
    import t2s.consolidation.plan as merge_module
    from t2s.consolidation.models import PatchesLost

    real = merge_module.balanced_groups

    def lossy(items, fan_in):
        groups = real(items, fan_in)
        return [groups[0][:-1], *groups[1:]] if len(groups) > 1 else groups

    monkeypatch.setattr(merge_module, "balanced_groups", lossy)
    scripted_server.on(merger_responder, role="merger")
    store, record, _ = build_run(tmp_path, 6)
    with pytest.raises(PatchesLost, match=r"patch\(es\) 0003 are not in the candidate"):
        asyncio.run(make_merger(store, record, scripted_server, fan_in=3).parallel())
    assert store.rev_parse(candidate_branch("r1")) is None


def test_the_sequential_chain_names_every_patch_once(tmp_path, scripted_server):
    from t2s.consolidation.accounting import _chain_patches

    scripted_server.on(merger_responder, role="merger")
    store, record, _ = build_run(tmp_path, 10)
    summary = asyncio.run(make_merger(store, record, scripted_server).sequential(batch=4))
    assert summary.levels == [["S001"], ["S002"], ["S003"]]
    chain = _chain_patches(store, summary.candidate, record.manifest().s0)
    assert sorted(chain) == [f"{n:04d}" for n in range(1, 11)]  # each once (newest step first)
    with pytest.raises(Exception, match="--batch must be at least 1"):
        asyncio.run(make_merger(store, record, scripted_server).sequential(batch=-1))
