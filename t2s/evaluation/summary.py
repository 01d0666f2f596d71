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
    need = f"need > {record.min_delta:+.3f}" if record.require_improvement else f"need >= {record.min_delta:+.3f}"
    if record.decide == "significant":
        need = f"need the interval's lower bound > {record.min_delta:+.3f}"
    lines = [
        f"| | {baseline_label} | {candidate_label} |",
        "|---|---|---|",
        f"| commit | `{record.baseline[:12]}` | `{record.candidate[:12]}` |",
        f"| score | {_pct(record.baseline_score)} | {_pct(record.candidate_score)} |",
        "",
        f"Delta {record.delta:+.3f} ({need}){_interval(record)}; "
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


def _interval(record: GateRecord) -> str:
    if record.ci_low is None or record.ci_high is None or record.alpha is None:
        return ""
    return f", {100 * (1 - record.alpha):g}% interval [{record.ci_low:+.3f}, {record.ci_high:+.3f}]"


def pass_rate_markdown(record: GateRecord, seeds: int) -> list[str]:
    """Each task's pass rate over the seeds (only worth a table with several seeds)."""
    if seeds < 2:
        return []
    flaky = set(record.flaky)
    lines = ["", "| task | baseline pass rate | candidate pass rate | flaky |", "|---|---|---|---|"]
    for task, rate in record.candidate_pass_rates.items():
        base = record.baseline_pass_rates.get(task, 0.0)
        lines.append(f"| `{task}` | {_pct(base)} | {_pct(rate)} | {'yes' if task in flaky else ''} |")
    return lines


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
    if r.reason:
        lines += [r.reason, ""]
    elif reasons:  # a record from before the decision rule was recorded
        lines += [f"- {x}" for x in reasons] + [""]
    lines.append(
        eval_table_markdown(
            r, candidate_label=f"candidate `{result.candidate_rev}`", baseline_label=f"baseline `{result.baseline_rev}`"
        )
    )
    lines += pass_rate_markdown(r, result.candidate.record.seeds)
    if r.flaky:
        lines += ["", "Flaky (passed in some seeds, failed in others): " + ", ".join(f"`{t}`" for t in r.flaky)]
    if r.ci_method:
        lines += ["", f"Interval: {r.ci_method}, over {len(r.candidate_pass_rates)} task(s)."]
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
