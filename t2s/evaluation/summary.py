"""Markdown for people: the eval table of a release and the gate's summary (for
``$GITHUB_STEP_SUMMARY`` and pull requests)."""

from __future__ import annotations

from t2s.evaluation.gate import GateResult
from t2s.record.notes import (
    GateRecord,
)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def eval_table_markdown(
    record: GateRecord, *, candidate_label: str = "candidate", baseline_label: str = "baseline"
) -> str:
    """The score table (shared by the gate summary, the release commit and the tag)."""
    p = record.paired
    pv = "n/a" if record.p_value is None else f"{record.p_value:.4g}"
    lines = [
        f"| | {baseline_label} | {candidate_label} |",
        "|---|---|---|",
        f"| commit | `{record.baseline[:12]}` | `{record.candidate[:12]}` |",
        f"| score | {_pct(record.baseline_score)} | {_pct(record.candidate_score)} |",
        "",
        f"Delta {record.delta:+.3f} (need >= {record.min_delta:+.3f}); "
        f"regressions {record.regressions} (allowed {record.max_regressions}); "
        f"sign test p = {pv} on {p.get('only_baseline', 0) + p.get('only_candidate', 0)} discordant task(s).",
        "",
        "| paired tasks | count |",
        "|---|---|",
        f"| both pass | {p.get('both', 0)} |",
        f"| only baseline (regressed) | {p.get('only_baseline', 0)} |",
        f"| only candidate (improved) | {p.get('only_candidate', 0)} |",
        f"| neither | {p.get('neither', 0)} |",
    ]
    return "\n".join(lines)


def gate_markdown(result: GateResult) -> str:
    """A Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    r = result.record
    status = "PASSED" if r.passed else "FAILED"
    reasons = []
    if r.delta < r.min_delta - 1e-9:
        reasons.append(f"score delta {r.delta:+.3f} is below the minimum {r.min_delta:+.3f}")
    if r.regressions > r.max_regressions:
        reasons.append(f"{r.regressions} task(s) regressed; at most {r.max_regressions} allowed")
    agent = result.candidate.record.agent
    lines = [
        f"## t2s gate {status}: `{result.candidate_rev or r.candidate[:12]}` vs `{result.baseline_rev or r.baseline[:12]}`",
        "",
    ]
    if reasons:
        lines += [f"- {x}" for x in reasons] + [""]
    lines.append(
        eval_table_markdown(
            r, candidate_label=f"candidate `{result.candidate_rev}`", baseline_label=f"baseline `{result.baseline_rev}`"
        )
    )
    if r.regressed:
        lines += ["", "Regressed: " + ", ".join(f"`{t}`" for t in r.regressed)]
    if r.improved:
        lines += ["", "Improved: " + ", ".join(f"`{t}`" for t in r.improved)]
    lines += [
        "",
        f"<sub>suite `{r.suite}` split `{r.split}` (hash `{r.suite_hash[:12]}`), "
        f"{result.candidate.record.total} run(s) of {result.candidate.record.seeds} seed(s), "
        f"agent `{agent.get('model', '?')}` (config `{r.agent_hash[:12]}`); "
        f"candidate {'cached' if result.candidate.cached else 'evaluated'}, "
        f"baseline {'cached' if result.baseline.cached else 'evaluated'}.</sub>",
    ]
    return "\n".join(lines) + "\n"
