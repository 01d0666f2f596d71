"""How often real model answers land: the real-model corpus replayed through the edit pipeline.

    python bench/edit_robustness.py [--fixtures tests/fixtures/real_model_corpus_2 ...] [--json]

The corpora (``tests/fixtures/real_model_corpus/`` and ``real_model_corpus_2/``, recorded by
``bench/collect_corpus.py`` from Qwen2.5-Coder-1.5B-Instruct, Q-GGUF via llama.cpp, with the
prompts before and after issue 20) each holds every raw analyst and merger
answer with its request. No model is called: each recorded answer goes through the code
t2s runs on a model answer today, in memory, and the bench prints three shares:

- **analyst edits that apply**: of the analyst answers that hold a list of edits (a first
  report or an edit retry), those whose edits render against S0 with every guardrail and
  the leak guard (no ``git apply --check``: the render replays its own diff); and of the
  analyses, those whose recorded attempts (at most 3) produce a patch;
- **merges that succeed in at most 3 attempts**: of the recorded merges (one group of one
  run), those where one of the first three recorded merger answers is accepted (parsed,
  every lesson accounted for, edits render, no overlaps);
- **runs that end with a candidate**: of the runs that reached ``merge`` with two or more
  patches, those whose top-level merge yields a commit. Without an accepted answer a merge
  yields one only when t2s has a git fallback (issue 20) and the inputs' diffs apply together
  on S0, or, where t2s has it, none removes a line (their union); checked with t2s's own
  fallback in a throwaway repository through :class:`t2s.gitstore.GitStore`. A run whose merge never recorded its top level counts as
  ending with a candidate only through the fallback of every patch diff together.

The figures before and after issue 20 are quoted in the README ("Robustness to real model
answers"). The shares are over a small corpus: read the counts too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import t2s.llm.structured as structured
from t2s.analysis.analysts import AnalystReport, EditsReply
from t2s.consolidation.accounting import _reference_problems, account
from t2s.consolidation.models import MergeInput, MergerAnswer
from t2s.gitstore.store import GitStore
from t2s.patches import find_overlaps, render_edits
from t2s.skill.format import Limits

ROOT = Path(__file__).resolve().parent.parent
#: Corpus 1 (the prompts before issue 20's examples) and corpus 2 (today's prompts).
FIXTURES = [ROOT / "tests" / "fixtures" / "real_model_corpus", ROOT / "tests" / "fixtures" / "real_model_corpus_2"]
MAX_ATTEMPTS = 3


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _s0_files(fixtures: Path, suite: str) -> dict[str, str]:
    root = fixtures / "s0" / suite
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.md"))}


def _raw(answer: dict) -> str:
    content = answer.get("content") or ""
    if not content.strip() and answer.get("tool_calls"):
        return answer["tool_calls"][0].get("arguments") or ""
    return content


def parse(raw: str, schema: type[BaseModel]) -> tuple[BaseModel | None, str]:
    """The answer as t2s reads it, or why not: ``structured.validate_answer`` when t2s has
    it (shapes coerced, issue 20), else the JSON extraction and validation of before."""
    validate = getattr(structured, "validate_answer", None)
    try:
        if validate is not None:
            return validate(raw, schema), ""
        return schema.model_validate(structured.extract_json(raw)), ""
    except ValueError as err:  # ValidationError too
        return None, f"unusable answer: {err}"


def _render(edits: Any, files: dict[str, str], context: dict, forbidden_values=()):
    return render_edits(
        files,
        edits,
        skill_dir=context["skill_dir"],
        strict=context["strict"],
        limits=Limits(**context["limits"]),
        forbidden_values=forbidden_values,
        forbidden_ids=context["forbidden_ids"],
    )


#: Why an answer was not taken, by the words of t2s's own message (first match wins).
KINDS = [
    ("repeats the example", "the prompt's example copied"),
    ("placeholder", "placeholder text"),
    ("occurs 0 times", "located text not in the file"),
    ("times in", "located text ambiguous"),
    ("no heading", "heading not in the file"),
    ("unusable answer", "not JSON, or the wrong shape"),
    ("not accounted for", "lesson ids wrong or missing"),
    ("unknown source", "lesson ids wrong or missing"),
    ("not an input lesson", "lesson ids wrong or missing"),
    ("not a lesson id", "lesson ids wrong or missing"),
]


def why(problems: list[str], tally: dict[str, int]) -> None:
    """Count the first problem of a refused answer by its kind."""
    if not problems:
        return
    kind = next((name for words, name in KINDS if words in problems[0]), "other")
    tally[kind] = tally.get(kind, 0) + 1


# ---------------------------------------------------------------------- analysts
def analyst_figures(fixtures: Path, lines: list[dict], contexts: dict) -> dict:
    answers = applied = resolved = 0
    analyses: dict[str, bool] = {}
    refused: dict[str, int] = {}
    for line in sorted(lines, key=lambda x: x["seq"]):
        if not line["outcome"].get("edit_list"):
            continue
        kind = line["attempt"].get("kind")
        schema = EditsReply if kind == "edit-retry" else AnalystReport
        answer, error = parse(_raw(line["answer"]), schema)
        key = f"{line['suite']}/{line['run']}/{line['subject']}"
        answers += 1
        ok = False
        if answer is None:
            why(
                [error.replace("unusable answer", "", 1) if "placeholder" in error or "repeats" in error else error],
                refused,
            )
        else:
            files = _s0_files(fixtures, line["suite"])
            result = _render(
                answer.edits,  # type: ignore[attr-defined]
                files,
                contexts[line["suite"]],
                line["context"].get("forbidden_values") or (),
            )
            ok = result.ok
            why([f.reason for f in result.failures], refused)
            resolved += bool(getattr(result, "resolutions", None))
        applied += ok
        analyses[key] = analyses.get(key, False) or ok
    return {
        "answers with edits": answers,
        "answers whose edits apply": applied,
        "analyses": len(analyses),
        "analyses with a patch": sum(analyses.values()),
        "answers with a resolved anchor": resolved,
        "refused, by first problem": refused,
    }


# ---------------------------------------------------------------------- merger
def judge_merger_answer(raw: str, job: dict, files: dict[str, str], context: dict) -> list[str]:
    """The problems t2s finds in one merger answer ([] = accepted), as ``run_merge`` checks it."""
    answer, error = parse(raw, MergerAnswer)
    if answer is None:
        return [error]
    assert isinstance(answer, MergerAnswer)
    inputs = [MergeInput.model_validate(i) for i in job["inputs"]]
    merged, _, problems = account(answer, inputs, job["min_support"], job["name"])
    problems += [f"overlapping edits: {o}" for o in find_overlaps(answer.edits, files)]
    if not problems and answer.edits:
        result = _render(answer.edits, files, context)
        problems += [f.render() for f in result.failures] if not result.ok else []
        if result.ok:
            problems += _reference_problems(merged, result, files)
    return problems


def merger_figures(fixtures: Path, lines: list[dict], jobs: list[dict], contexts: dict) -> tuple[dict, dict]:
    by_job: dict[str, list[dict]] = {}
    for line in sorted(lines, key=lambda x: x["seq"]):
        by_job.setdefault(line["job"], []).append(line)
    accepted: dict[str, bool] = {}
    refused: dict[str, int] = {}
    # A merge still running at extraction counts once the merger answered it.
    jobs = [j for j in jobs if by_job.get(j["id"]) or j["report"]["status"] != "running"]
    for job in jobs:
        answers = by_job.get(job["id"], [])
        firsts = [a for a in answers if a["attempt"].get("structured_round", 1) == 1][:MAX_ATTEMPTS]
        files = _s0_files(fixtures, job["suite"])
        verdicts = [judge_merger_answer(_raw(a["answer"]), job, files, contexts[job["suite"]]) for a in answers]
        for problems in verdicts:
            why(problems, refused)
        # Attempt n is the n-th answer that is not a structured-output repair round.
        first_rounds = [v for a, v in zip(answers, verdicts, strict=True) if a in firsts]
        accepted[job["id"]] = any(not problems for problems in first_rounds)
    figures = {"merges": len(jobs), "merged in <= 3 attempts": sum(accepted.values()), "refused": refused}
    return figures, accepted


def _fallback_applies(diffs: list[str], files: dict[str, str], skill_dir: str) -> bool:
    """Do the diffs apply together on S0 (t2s's git fallback, issue 20)? Only when t2s has it."""
    try:
        fallback = importlib.import_module("t2s.consolidation.fallback")
    except ImportError:
        return False
    if not diffs:
        return False
    with tempfile.TemporaryDirectory(prefix="t2s-bench-") as tmp:
        store = GitStore.init(tmp)
        tree = store.build_tree(None, {f"{skill_dir}/{rel}": text for rel, text in files.items()})
        s0 = store.commit(tree, [], "S0")
        if hasattr(fallback, "fallback_tree"):  # git, then the union of additions
            return fallback.fallback_tree(store, s0, diffs)[0] is not None
        return fallback.combined_tree(store, s0, diffs) is not None


def run_figures(fixtures: Path, corpus: dict, jobs: list[dict], accepted: dict[str, bool]) -> dict:
    """Per run that reached ``merge`` with two or more patches: does its tree end in one commit?"""
    eligible = ended = 0
    for key, run in corpus.get("runs", {}).items():
        suite, name = key.split("/", 1)
        if not run.get("stages", {}).get("merge"):
            continue
        if sum(run.get("patches", {}).get(s, 0) for s in ("accepted", "unvalidated")) < 2:
            continue
        eligible += 1
        mine = [j for j in jobs if j["suite"] == suite and j["run"] == name]
        top = max((j["level"] for j in mine), default=0)
        tops = [j for j in mine if j["level"] == top]
        by_llm = bool(mine) and len(tops) == 1 and all(accepted.get(j["id"], False) for j in mine)
        if by_llm:
            ended += 1
            continue
        # Without every merge accepted: the git fallback of every patch diff together.
        patch_diffs = [i["diff"] for j in mine if j["level"] == 1 for i in j["inputs"]]
        context = corpus["contexts"][suite]
        ended += _fallback_applies(patch_diffs, _s0_files(fixtures, suite), context["skill_dir"])
    return {"runs merged with >= 2 patches": eligible, "runs that end with a candidate": ended}


def figures(fixtures: Path) -> dict:
    corpus = json.loads((fixtures / "corpus.json").read_text(encoding="utf-8"))
    contexts = corpus["contexts"]
    analyst = analyst_figures(fixtures, _jsonl(fixtures / "analyst.jsonl"), contexts)
    jobs = _jsonl(fixtures / "merge_jobs.jsonl")
    merger, accepted = merger_figures(fixtures, _jsonl(fixtures / "merger.jsonl"), jobs, contexts)
    runs = run_figures(fixtures, corpus, jobs, accepted)

    def share(a: int, b: int) -> str:
        return f"{a}/{b} ({100 * a / b:.0f}%)" if b else "0/0"

    return {
        "model": corpus.get("model", ""),
        "analyst edits that apply (answers)": share(
            analyst["answers whose edits apply"], analyst["answers with edits"]
        ),
        "analyses that end with a patch": share(analyst["analyses with a patch"], analyst["analyses"]),
        "merges that succeed in <= 3 attempts": share(merger["merged in <= 3 attempts"], merger["merges"]),
        "runs that end with a candidate": share(
            runs["runs that end with a candidate"], runs["runs merged with >= 2 patches"]
        ),
        "analyst answers with a resolved anchor": str(analyst["answers with a resolved anchor"]),
        "analyst answers refused, by first problem": _tally(analyst["refused, by first problem"]),
        "merger answers refused, by first problem": _tally(merger["refused"]),
    }


def _tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fixtures", action="append", default=None, help="a corpus folder (repeatable; default: both corpora)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    folders = [Path(f) for f in args.fixtures] if args.fixtures else [f for f in FIXTURES if f.is_dir()]
    results = {folder.name: figures(folder) for folder in folders}
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    for name, result in results.items():
        print(f"== {name}")
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
