"""The git record's vocabulary: refs and provenance trailers, written as before."""

from __future__ import annotations

from t2s.gitstore.store import format_message
from t2s.record import refs
from t2s.record.provenance import Provenance


def test_patch_trailers_keep_their_order_and_spelling():
    prov = Provenance.for_patch(
        run="r1",
        patch="0007",
        task="",
        trajectory="t-1",
        outcome="failed",
        analyst="agentic",
        validated="yes",
        model="m  x",
    )
    assert prov.trailers() == [
        ("T2S-Run", "r1"),
        ("T2S-Patch", "0007"),
        ("T2S-Task", "-"),
        ("T2S-Trajectory", "t-1"),
        ("T2S-Outcome", "failed"),
        ("T2S-Analyst", "agentic"),
        ("T2S-Validated", "yes"),
        ("T2S-Model", "m x"),
    ]
    assert prov.kind == "patch"


def test_merge_and_sequential_trailers():
    merge = Provenance.for_merge(run="r1", level=2, group="L2-01", support=5, model="gpt")
    assert merge.trailers() == [
        ("T2S-Run", "r1"),
        ("T2S-Merge-Level", "2"),
        ("T2S-Merge-Group", "L2-01"),
        ("T2S-Support", "5"),
        ("T2S-Model", "gpt"),
    ]
    step = Provenance.for_merge(
        run="r1", level=1, group="S001", support=3, strategy="sequential", patches=["0001", "0002"]
    )
    assert step.trailers()[-2:] == [("T2S-Strategy", "sequential"), ("T2S-Patch", "0001, 0002")]
    assert step.kind == "merge" and step.patches == ["0001", "0002"]


def test_release_trailers_put_the_run_first():
    rel = Provenance.for_release(version="v0.2.0", candidate="c" * 40, baseline="b" * 40, run="r1")
    assert [k for k, _ in rel.trailers()] == ["T2S-Run", "T2S-Release", "T2S-Candidate", "T2S-Baseline"]
    assert Provenance.for_release(version="v0.2.0", candidate="c", baseline="b").trailers()[0][0] == "T2S-Release"


def test_reading_a_message_round_trips_and_ignores_what_it_does_not_know():
    prov = Provenance.for_merge(run="r1", level=1, group="L1-03", support=2)
    message = format_message("subject", "body", [*prov.trailers(), ("Signed-off-by", "A <a@x>")])
    assert Provenance.of(message) == prov
    assert Provenance.of("just a subject\n").kind == "other"
    assert Provenance.of("s\n\nT2S-Run: r1\nT2S-Support: many\n").support is None


def test_ref_names_and_their_parsers():
    assert refs.patch_branch("r1", "0007") == "refs/heads/t2s/r1/patch/0007"
    assert refs.merge_branch("r1", 2, 1) == "refs/heads/t2s/r1/merge/L2-01"
    assert refs.candidate_branch("r1") == "refs/heads/t2s/r1/candidate"
    assert refs.sequential_branch("r1", 3) == "refs/heads/t2s/r1/seq/003"
    assert refs.run_record("r1") == "refs/t2s/runs/r1"
    assert refs.notes_ref(refs.EVAL_NOTES) == "refs/notes/t2s/eval"
    assert refs.parse_patch_branch("t2s/r1/patch/0007") == refs.PatchRef("r1", "0007")
    assert refs.parse_patch_branch("refs/heads/t2s/r1/patch/0007") == refs.PatchRef("r1", "0007")
    assert refs.parse_merge_branch("t2s/r1/merge/L2-01") == ("r1", "L2-01")
    assert refs.parse_candidate_branch("t2s/r1/seq/candidate") == "r1"
    assert refs.branch_kind("refs/heads/t2s/r1/seq/002") == "sequential"
    assert refs.short(refs.candidate_branch("r1")) == "t2s/r1/candidate"
    assert refs.parse_version("v1.2.3") == (1, 2, 3)
    assert refs.parse_version("v01.2.3") is None and refs.parse_version("vbanana") is None
