"""``t2s check``: judge one output workbook against a task's answer."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from t2s.commands._common import json_option, number_type, print_json
from t2s.config import Count
from t2s.errors import UsageError


@click.command("check")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--task", "task_id", required=True, help="Task id (as in the suite's dataset).")
@click.option(
    "--suite", "suite_ref", required=True, help="A suite configured in t2s.toml ([suites.NAME]) or a suite directory."
)
@click.option(
    "--case",
    "case",
    type=number_type(Count),
    default=1,
    show_default=True,
    help="Test case number (SpreadsheetBench Verified has only case 1).",
)
@click.option(
    "--recalculate/--no-recalculate",
    default=None,
    help="Recalculate formulas with LibreOffice before checking (default: the suite's setting).",
)
@click.option(
    "--lenient/--literal",
    default=None,
    help="Normalise the benchmark's known malformed answer positions (see "
    "docs/checker.md); --literal applies the official semantics exactly.",
)
@json_option
def check(
    output: Path, task_id: str, suite_ref: str, case: int, recalculate: bool | None, lenient: bool | None, as_json: bool
) -> None:
    """Check OUTPUT.xlsx against the answer of one task; exit 0 pass, 1 fail, 2 usage error.

    \b
    Examples:
      t2s check out.xlsx --task 13-1 --suite spreadsheetbench
      t2s check out.xlsx --task 42930 --suite ../shared/benchmarks/spreadsheetbench-verified
      t2s check out.xlsx --task 59196 --suite sb --recalculate --json
    """
    from t2s.tasks import find_config, load_suite

    if not output.is_file():
        raise UsageError(f"{output}: no such file (the output workbook to check)")
    config, config_dir = find_config(Path.cwd())
    suite = load_suite(suite_ref, config, base_dir=config_dir or Path.cwd())
    task = suite.task(task_id)
    task.case(case)  # a precise error for a case the task does not have
    verdict = suite.check(task, output, case, recalculate=recalculate, lenient=lenient)
    if as_json:
        print_json(
            {
                "suite": suite.name,
                "passed": verdict.passed,
                "score": verdict.score,
                "report": verdict.report.model_dump(mode="json"),
            }
        )
    else:
        click.echo(verdict.report.render())
    sys.exit(0 if verdict.passed else 1)
