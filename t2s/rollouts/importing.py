"""``t2s import`` into a run: the importer registry, output workbooks, the starting skill.

Importers are functions ``parse(path, *, verdict) -> ParsedFile`` registered by format
name. Built-in ones live in :mod:`~t2s.rollouts.importers` and
:mod:`~t2s.rollouts.import_formats`; third-party packages add theirs through the entry
point group ``t2s.importers`` (``name = "package.module:parse_function"``).

``outputs``: each trajectory's output workbook is attached as ``artifacts/<id>/output.xlsx``
(what the source wrote: the ``trace2skill`` run directory's own, or one found in
``--outputs DIR`` by the source's naming) and, with a suite, re-checked: the summary
lists where t2s's verdict and the source's label disagree (the source's label stays).

``skill``: a folder holding the SKILL.md the source agent used. The run's S0 becomes a
commit of HEAD with the skill folder replaced by it (kept reachable by a ref), so the
analysts' patches diff against what the agent saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from t2s.agent.trajectory import Trajectory, artifacts_prefix, load_trajectory, now_iso, trajectory_path
from t2s.errors import ConfigError, T2SError, UsageError
from t2s.record import refs
from t2s.record.runs import RunManifest, RunRecord
from t2s.rollouts import import_formats as more
from t2s.rollouts.importers import IMPORT_VERDICTS, ParsedFile, parse_claude_code, parse_openai_jsonl, parse_t2s
from t2s.skill.repo import skill_dir_of
from t2s.tasks import load_suite

ENTRY_POINT_GROUP = "t2s.importers"
Parser = Callable[..., ParsedFile]


@dataclass(frozen=True)
class Importer:
    name: str
    parse: Parser
    #: Reads a directory (a run folder) rather than a file.
    directory: bool = False
    #: Accepts ``task_id=`` (the format has no task id of its own).
    takes_task_id: bool = False
    summary: str = ""


_IMPORTERS: dict[str, Importer] = {}
_entry_points_loaded = False


def register_importer(importer: Importer) -> Importer:
    """Add (or replace) an importer by its name."""
    _IMPORTERS[importer.name] = importer
    return importer


for _builtin in (
    Importer("openai-jsonl", parse_openai_jsonl, summary="one OpenAI chat conversation per line"),
    Importer("claude-code", parse_claude_code, takes_task_id=True, summary="a Claude Code session file"),
    Importer("t2s", parse_t2s, summary="t2s trajectory JSON or JSONL"),
    Importer("trace2skill", more.parse_trace2skill_dir, directory=True, summary="an official Trace2Skill run folder"),
    Importer("trace2skill-jsonl", more.parse_trace2skill_jsonl, summary="labelled Trace2Skill rows (T+/T-)"),
    Importer("codex", more.parse_codex, summary="a Codex CLI session file"),
    Importer("inspect", more.parse_inspect, summary="an inspect_ai eval log (extra t2s[inspect])"),
    Importer("otel", more.parse_otel, summary="OpenTelemetry GenAI spans as OTLP JSON"),
    Importer("atif", more.parse_atif, summary="ATIF (Harbor) trajectories"),
):
    register_importer(_builtin)


def importers() -> dict[str, Importer]:
    """Every importer by format name: the built-in ones and the ``t2s.importers`` entry points."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        _entry_points_loaded = True
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in _IMPORTERS:
                continue
            try:
                loaded = ep.load()
            except Exception as err:  # a broken plug-in must not take t2s down
                raise ConfigError(
                    f"importer {ep.name!r} (entry point {ep.value}) failed to load: {type(err).__name__}: {err}"
                ) from None
            register_importer(loaded if isinstance(loaded, Importer) else Importer(ep.name, loaded))
    return dict(_IMPORTERS)


def import_format_names() -> list[str]:
    return list(importers())


def parse_file(path: Path, fmt: str, *, verdict: str | None = None, task_id: str | None = None) -> ParsedFile:
    found = importers().get(fmt)
    if found is None:
        raise UsageError(f"unknown import format {fmt!r} (formats: {', '.join(importers())})")
    if verdict is not None and verdict not in IMPORT_VERDICTS:
        raise UsageError(f"--verdict {verdict!r} (verdicts: {', '.join(IMPORT_VERDICTS)})")
    path = Path(path)
    if found.directory:
        if not path.is_dir():
            raise UsageError(
                f"{path}: format {fmt} reads a run directory; "
                + ("not a directory" if path.exists() else "no such directory")
            )
    elif not path.is_file():
        raise UsageError(f"{path}: " + ("not a regular file" if path.exists() else "no such file"))
    kwargs: dict[str, Any] = {"verdict": verdict}
    if found.takes_task_id:
        kwargs["task_id"] = task_id
    parsed = found.parse(path, **kwargs)
    if task_id is not None:
        for traj in parsed.trajectories:
            traj.task_id = task_id
    return parsed


# ---------------------------------------------------------------------------- outputs
def find_output(outputs_dir: Path, traj: Trajectory) -> Path | None:
    """The output workbook of ``traj`` in ``outputs_dir`` by the names sources use:
    the official ``<k>_<id>_output.xlsx`` (in the folder or ``<id>/``), ``<id>_output.xlsx``,
    ``<trajectory id>.xlsx``, ``<id>/output.xlsx``, ``<id>.xlsx``."""
    task, k = traj.task_id, traj.case or 1
    names = [
        f"{task}/{k}_{task}_output.xlsx",
        f"{k}_{task}_output.xlsx",
        f"{task}_output.xlsx",
        f"{traj.id}.xlsx",
        f"{traj.id}_output.xlsx",
        f"{task}/output.xlsx",
        f"{task}.xlsx",
    ]
    return next((outputs_dir / n for n in names if (outputs_dir / n).is_file()), None)


@dataclass
class Disagreement:
    trajectory: str
    task: str
    source: str
    t2s: str
    reason: str = ""

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def recheck(suite, traj: Trajectory, output: Path) -> Disagreement | None:
    """Check ``output`` with the suite's checker; store the report on ``traj``; a
    :class:`Disagreement` when t2s's verdict differs from the source's label."""
    try:
        task = suite.task(traj.task_id)
        verdict = suite.check(task, output, traj.case or 1)
    except T2SError as err:
        traj.meta["t2s_check"] = {"error": err.message}
        return None
    report = verdict.report.model_dump(mode="json")
    report["output_path"] = "output.xlsx"
    traj.check, traj.score = report, verdict.score
    ours = "passed" if verdict.passed else "failed"
    traj.meta["t2s_check"] = {"verdict": ours}
    if traj.verdict in ("passed", "failed") and traj.verdict != ours:
        return Disagreement(
            traj.id, traj.task_id, traj.verdict, ours, (verdict.report.render(max_rows=3).splitlines() or [""])[0]
        )
    return None


# ---------------------------------------------------------------------------- the starting skill
def skill_commit(store, config, skill: str, *, base: str = "HEAD", run: str) -> str:
    """S0 for an imported run: ``skill`` as a folder (HEAD with the skill folder's files
    replaced by it, committed and kept by ``refs/t2s/imported-skills/<run>``) or a revision."""
    path = Path(skill)
    if not path.is_dir():
        commit = store.rev_parse(skill)
        if commit is None:
            raise UsageError(f"--skill {skill!r} is neither a folder nor a revision")
        return commit
    if path.name != "SKILL.md" and not (path / "SKILL.md").is_file():
        raise UsageError(f"--skill {skill}: no SKILL.md in that folder")
    head = store.resolve(base)
    skill_dir = skill_dir_of(store, config, head)
    changes: dict[str, bytes | str | None] = {f"{skill_dir}/{p}": None for p in store.read_files(head, skill_dir)}
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path).as_posix()
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(path).parts):
            changes[f"{skill_dir}/{rel}"] = file.read_bytes()
    tree = store.build_tree(head, changes)
    commit = store.commit(
        tree, [head], f"t2s import: the skill run {run}'s source agent used", f"from {path.resolve()}"
    )
    store.update_ref(refs.imported_skill(run), commit)
    return commit


# ---------------------------------------------------------------------------- into a run
@dataclass
class ImportSummary:
    run: str
    files: list[dict[str, Any]] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    #: Trajectories whose id was already in the run (not imported again).
    existing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Trajectories given an output workbook.
    outputs: list[str] = field(default_factory=list)
    disagreements: list[Disagreement] = field(default_factory=list)
    s0: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "s0": self.s0,
            "files": self.files,
            "imported": self.imported,
            "existing": self.existing,
            "problems": self.problems,
            "outputs": self.outputs,
            "disagreements": [d.to_dict() for d in self.disagreements],
        }


def import_trajectories(
    store,
    config,
    *,
    run: str,
    paths: list[Path],
    fmt: str,
    verdict: str | None = None,
    task_id: str | None = None,
    rev: str | None = None,
    replace: bool = False,
    outputs: Path | None = None,
    skill: str | None = None,
    suite: str | None = None,
) -> ImportSummary:
    """Parse ``paths`` and append the trajectories to run ``run`` (created if needed,
    with S0 = ``skill`` (see :func:`skill_commit`), else ``rev`` or ``HEAD``). Ids already
    in the run are left alone unless ``replace``. Output workbooks (the source's own, or
    found in ``outputs``) are attached and, with a ``suite``, re-checked. All new
    trajectories land in one commit."""

    record = RunRecord(store, run)
    summary = ImportSummary(run=run)
    if outputs is not None and not Path(outputs).is_dir():
        raise UsageError(f"--outputs {outputs}: not a directory")
    if skill is not None and record.exists():
        raise UsageError(f"run {run!r} exists already: --skill sets the S0 of a new run", hint="import into a new run")
    parsed_files = [parse_file(Path(p), fmt, verdict=verdict, task_id=task_id) for p in paths]
    # Outputs are re-checked with the named suite, else the configured one; --outputs
    # without any suite is an error (it exists to be checked), the source's own are kept.
    checker = _suite(store, config, suite) if suite or outputs is not None or config.rollout.suite else None
    existing_ids = {p.rsplit("/", 1)[-1].removesuffix(".json") for p in record.list("trajectories")}
    files: dict[str, Any] = {}
    batch: set[str] = set()
    for parsed in parsed_files:
        counts: dict[str, Any] = {
            "path": parsed.path,
            "format": parsed.format,
            "imported": 0,
            "skipped": len(parsed.problems),
            "existing": 0,
        }
        summary.problems += [str(p) for p in parsed.problems]
        for traj in parsed.trajectories:
            output = parsed.outputs.get(traj.id)
            base, k = traj.id, 2
            while traj.id in batch:  # two conversations with the same id in this import
                traj.id = f"{base}-{k}"
                k += 1
            if traj.id in existing_ids and not replace:
                summary.existing.append(traj.id)
                counts["existing"] += 1
                continue
            batch.add(traj.id)
            if outputs is not None:
                output = find_output(Path(outputs), traj) or output
            if output is not None:
                files[artifacts_prefix(traj.id) + "output.xlsx"] = output.read_bytes()
                traj.outputs = ["output.xlsx"]
                traj.meta.setdefault("import", {})["output_file"] = str(output)
                summary.outputs.append(traj.id)
                if checker is not None:
                    disagreement = recheck(checker, traj, output)
                    if disagreement is not None:
                        summary.disagreements.append(disagreement)
                if checker is not None:
                    traj.suite = traj.suite or checker.name
            traj.timings.finished_at = traj.timings.finished_at or now_iso()
            files[trajectory_path(traj.id)] = traj.to_json()
            summary.imported.append(traj.id)
            counts["imported"] += 1
        summary.files.append(counts)
    if not summary.imported:
        return summary
    if record.exists():
        manifest = record.manifest()
    else:
        commit = skill_commit(store, config, skill, run=run) if skill else store.resolve(rev or "HEAD")
        manifest = RunManifest(
            run=run,
            s0=commit,
            skill_dir=skill_dir_of(store, config, commit),
            suite=checker.name if checker is not None else "",
            split="",
            options={"imported": True, **({"skill": str(skill)} if skill else {})},
        )
        record.create(manifest)
    summary.s0 = manifest.s0
    for path in files:
        if not path.startswith("trajectories/"):
            continue
        traj = load_trajectory(files[path])
        traj.skill_dir = traj.skill_dir or manifest.skill_dir
        traj.s0 = traj.s0 or manifest.s0
        files[path] = traj.to_json()
    record.write(
        files,
        f"t2s run {run}: import {len(summary.imported)} trajectories ({fmt})",
        "\n".join(f"{f['path']}: {f['imported']} imported, {f['skipped']} bad line(s)" for f in summary.files),
    )
    previous = record.manifest().stages.get("import")
    total = len(summary.imported) + int((previous.summary.get("imported") if previous else 0) or 0)
    record.set_stage(
        "import",
        "done",
        {
            "imported": total,
            "last": {
                "format": fmt,
                "imported": len(summary.imported),
                "skipped": len(summary.problems),
                "existing": len(summary.existing),
                "outputs": len(summary.outputs),
                "disagreements": len(summary.disagreements),
            },
        },
    )
    return summary


def _suite(store, config, name: str | None):
    ref = name or config.rollout.suite
    if not ref:
        raise UsageError(
            "--outputs re-checks the workbooks with a suite: none given",
            hint="pass --suite NAME|PATH or set [rollout] suite in t2s.toml",
        )
    return load_suite(ref, config, base_dir=store.root)
