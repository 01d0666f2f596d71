"""``t2s import``: trajectories other agents produced, into a run record."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from t2s.commands._common import console, json_option, load_repo_config, open_store, print_json, repo_option


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    metavar="FORMAT",
    help="openai-jsonl: one chat conversation per line; claude-code: a Claude Code "
    "session file; t2s: t2s trajectory JSON or JSONL; trace2skill: an official Trace2Skill "
    "run folder (results.json, chat logs, outputs, seed_*/); trace2skill-jsonl: labelled "
    "rows (T+/T-); codex: a Codex CLI session file; inspect: an inspect_ai eval log "
    "(extra t2s[inspect]); otel: OpenTelemetry GenAI spans (OTLP JSON); atif: ATIF "
    "trajectories. Plug-ins add more (entry points t2s.importers).",
)
@click.option("--run", "run_name", required=True, help="The run to import into (created if needed).")
@click.option(
    "--verdict",
    type=click.Choice(["passed", "failed", "unlabelled"]),
    default=None,
    help="Label every imported trajectory (default: each line's own verdict, else unlabelled).",
)
@click.option("--task-id", default=None, help="The task id of every imported trajectory.")
@click.option("--rev", default=None, help="S0 of a new run (default: HEAD).")
@click.option("--replace", is_flag=True, help="Overwrite trajectories whose id is already in the run.")
@click.option(
    "--outputs",
    "outputs_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder of the source's output workbooks (<k>_<id>_output.xlsx, <id>/..., <id>.xlsx): "
    "attached to each trajectory and re-checked with the suite.",
)
@click.option(
    "--skill",
    default=None,
    help="The skill the source agent used (a folder with SKILL.md, or a revision): "
    "the new run's S0, so patches diff against what the agent saw.",
)
@click.option("--suite", "suite_ref", default=None, help="The suite that re-checks outputs (default: [rollout] suite).")
@json_option
@repo_option
def import_cmd(paths, fmt, run_name, verdict, task_id, rev, replace, outputs_dir, skill, suite_ref, as_json, repo_dir):
    """Import trajectories from files into the run record refs/t2s/runs/RUN.

    Bad lines are reported as PATH:LINE: reason and skipped; the rest is imported.
    Exits 0 when anything was imported (or everything was already there), 1 otherwise.

    \b
    Examples:
      t2s import --format openai-jsonl chats.jsonl --run ext1 --verdict failed
      t2s import --format claude-code ~/.claude/projects/x/SESSION.jsonl --run ext1 --task-id 45300
      t2s import --format t2s exported.jsonl --run r2
      t2s import --format trace2skill outputs/spreadsheetbench --run t2s-official --skill ./xlsx
      t2s import --format trace2skill-jsonl rows.jsonl --run qwen --outputs outs/ --suite sb
    """
    from t2s.errors import T2SError
    from t2s.rollouts.importing import import_trajectories

    store = open_store(repo_dir)
    config = load_repo_config(store)
    summary = import_trajectories(
        store,
        config,
        run=run_name,
        paths=list(paths),
        fmt=fmt,
        verdict=verdict,
        task_id=task_id,
        rev=rev,
        replace=replace,
        outputs=outputs_dir,
        skill=skill,
        suite=suite_ref,
    )
    for problem in summary.problems:
        click.echo(f"skipped {problem}", err=True)  # one unwrapped line: PATH:LINE: reason
    if as_json:
        print_json(summary.to_dict())
    else:
        from rich.table import Table

        table = Table(title=f"import into run {run_name} ({fmt})")
        for name in ("file", "imported", "skipped", "already there"):
            table.add_column(name, justify="left" if name == "file" else "right")
        for f in summary.files:
            table.add_row(escape(f["path"]), str(f["imported"]), str(f["skipped"]), str(f["existing"]))
        console.print(table)
        if summary.outputs:
            console.print(f"{len(summary.outputs)} output workbook(s) attached")
        for d in summary.disagreements:
            console.print(f"disagree: {d.trajectory} (task {d.task}): source {d.source}, t2s {d.t2s}  {d.reason}")
    if not summary.imported and not summary.existing:
        raise T2SError(
            f"nothing imported into run {run_name!r}"
            + (f": {len(summary.problems)} bad line(s)" if summary.problems else ": no trajectories found")
        )
