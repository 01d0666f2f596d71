"""``--dry-run``: the flag, and the estimate table it prints instead of running."""

from __future__ import annotations

import click

from t2s.commands._common import console, print_json

dry_run_option = click.option(
    "--dry-run",
    is_flag=True,
    help="Print the expected calls, tokens, USD and wall time per role; call no model, write nothing.",
)


def print_estimate(estimate, as_json: bool, title: str = "estimate") -> None:
    """The per-role table (or JSON) of a :class:`t2s.estimates.model.Estimate`."""
    if as_json:
        print_json(estimate.to_json())
        return
    from rich.table import Table

    table = Table(title=f"t2s {title} (dry run: nothing was spent or written)")
    for col in ("stage", "role", "model", "calls", "input tok", "output tok", "USD", "wall"):
        table.add_column(col, justify="right" if col not in ("stage", "role", "model") else "left")
    for r in estimate.rows:
        table.add_row(
            r.stage,
            r.role,
            r.model,
            str(r.calls),
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            f"${r.usd:.4f}",
            _duration(r.wall_s),
        )
    table.add_row(
        "total",
        "",
        "",
        str(estimate.calls),
        "",
        f"{estimate.tokens:,} tok",
        f"${estimate.usd:.4f}",
        _duration(estimate.wall_s),
    )
    console.print(table)
    for basis in dict.fromkeys(f"{r.role}: {r.basis}; tokens by {r.tokenizer}" for r in estimate.rows):
        console.print(f"  {basis}", markup=False)
    for note in estimate.notes:
        console.print(f"  {note}", markup=False)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def print_estimate_vs_actual(store, run: str, phase: str) -> None:
    """One line per role under a stage's closing table: what was estimated, what was spent."""
    from t2s.estimates.recorded import estimate_vs_actual

    for r in estimate_vs_actual(store, run, phase):
        console.print(
            f"  {r['role']}: estimated {r['estimated_calls']} calls, {r['estimated_tokens']:,} tokens, "
            f"${r['estimated_usd']:.4f}; actual {r['calls']} calls, {r['tokens']:,} tokens, ${r['usd']:.4f}",
            markup=False,
        )
