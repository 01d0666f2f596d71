"""``t2s report``: one self-contained HTML page about a run.

The page needs no network and no scripts: CSS is inline, the merge tree is an inline
SVG laid out here in Python, and no ``http(s)://`` address appears anywhere in the file
(addresses quoted in skill text are defanged to ``https&#58;//``, which still reads
the same). Sections: the run summary (manifest, stages, ledger totals), the patch list
(the rows of ``t2s review``), the merge tree (levels, octopus merges, support counts),
the candidate's lessons and diff, and the evaluation against the baseline from
``refs/notes/t2s/eval``.

The page template is a data file: ``t2s/templates/report.html``.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

from t2s import __version__
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.lineage import rounds_of
from t2s.record.notes import EVAL_NOTES, EvalNote
from t2s.views.review import PatchView, RunData, candidate_view, load_run, review_rows, state_counts
from t2s.views.rounds import rounds_section
from t2s.views.trajectories import list_trajectories, trajectories_html

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "report.html"

_URL_RE = re.compile(r"(?i)\b(https?|ftp|wss?):(?=//)")


def esc(value: Any) -> str:
    """HTML-escaped text with URL schemes defanged (``https&#58;//``): nothing to fetch."""
    return _URL_RE.sub(lambda m: m.group(1) + "&#58;", html.escape(str(value), quote=True))


# ---------------------------------------------------------------------- merge tree
NODE_W = 168
PATCH_H = 26
MERGE_H = 42
ROW = 32
COL_W = NODE_W + 92
MARGIN_X = 16
MARGIN_TOP = 40
MARGIN_BOTTOM = 16


@dataclass
class TreeNode:
    id: str
    kind: str  # patch | merge | failed | other
    label: str
    sub: str
    level: int
    children: list[str] = field(default_factory=list)
    state: str = ""
    support: int = 1
    title: str = ""
    candidate: bool = False
    #: The node's validation score and verdict ("passed" / "rejected"), if it was validated.
    val_score: float | None = None
    verdict: str = ""
    x: float = 0.0
    y: float = 0.0

    @property
    def height(self) -> int:
        return PATCH_H if self.kind in ("patch", "other") else MERGE_H


@dataclass
class MergeTree:
    nodes: dict[str, TreeNode]
    root: str | None
    levels: int
    width: int
    height: int


def build_tree(data: RunData, rows: list[PatchView], in_candidate: set[str] | None = None) -> MergeTree:
    """Nodes (patches, merges, failed merges) and their positions: one column per level,
    patches on the left, each merge at the middle of its parents' rows. A merged patch
    the candidate does not hold (``in_candidate``: its ancestry) was left out by validation."""
    nodes: dict[str, TreeNode] = {}
    for row in rows:
        if not row.commit:
            continue
        lesson = row.lessons[0].text if row.lessons else ""
        left_out = in_candidate is not None and row.state == "merged" and row.commit not in in_candidate
        nodes[row.commit] = TreeNode(
            id=row.commit,
            kind="patch",
            label=row.patch,
            sub=row.task or row.trajectory or "",
            level=0,
            state=row.state if not left_out else "left-out",
            support=max(1, len({t for lesson in row.lessons for t in lesson.support})),
            title=f"patch {row.patch} ({'left out by validation' if left_out else row.status}): {lesson}",
        )
    for report in data.tree_reports():
        merged = report.status == "merged" and bool(report.commit)
        node_id = report.commit if merged else f"failed:{report.name}"
        children = [i.get("commit", "") for i in report.inputs if i.get("commit")]
        for item in report.inputs:
            commit = item.get("commit", "")
            if commit and commit not in nodes:
                nodes[commit] = TreeNode(
                    id=commit,
                    kind="other",
                    label=item.get("label", commit[:8]),
                    sub=commit[:12],
                    level=max(0, report.level - 1),
                    state="other",
                    title=item.get("label", ""),
                )
        lessons = len(report.lessons)
        sub = (
            f"support {report.support} · {len(children)} in · {lessons} lesson{'s' if lessons != 1 else ''}"
            if merged
            else f"failed · {len(children)} inputs carried up"
        )
        validation = getattr(report, "validation", None)
        title = f"merge {report.name}: {report.status}" + (f" ({report.reason})" if report.reason else "")
        if validation is not None:
            sub = f"val {validation.score:.2f} · sup {report.support} · {lessons} lesson{'s' if lessons != 1 else ''}"
            title += f"; {validation.describe()}"
        nodes[node_id] = TreeNode(
            id=node_id,
            kind="merge" if merged else "failed",
            label=report.name,
            sub=sub,
            level=report.level,
            children=children,
            state="merged" if merged else "failed",
            support=max(1, report.support),
            title=title,
            val_score=validation.score if validation is not None else None,
            verdict=validation.verdict if validation is not None else "",
        )
    root = data.candidate if data.candidate in nodes else None
    if root:
        nodes[root].candidate = True
    _layout(nodes, root, rows)
    levels = max((n.level for n in nodes.values()), default=0) + 1
    width = MARGIN_X * 2 + (levels - 1) * COL_W + NODE_W
    bottom = max((n.y + n.height / 2 for n in nodes.values()), default=MARGIN_TOP)
    return MergeTree(nodes=nodes, root=root, levels=levels, width=int(width), height=int(bottom + MARGIN_BOTTOM))


def _layout(nodes: dict[str, TreeNode], root: str | None, rows: list[PatchView]) -> None:
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        if node_id in seen or node_id not in nodes:
            return
        seen.add(node_id)
        node = nodes[node_id]
        if not node.children:
            order.append(node_id)
        for child in node.children:
            visit(child)

    if root:
        visit(root)
    for node in sorted(nodes.values(), key=lambda n: (-n.level, n.label)):
        visit(node.id)  # failed merges and anything the candidate does not reach
    leaves = {node_id: index for index, node_id in enumerate(order)}
    ys: dict[str, float] = {}

    def y_of(node_id: str, depth: int = 0) -> float:
        if node_id in ys:
            return ys[node_id]
        node = nodes[node_id]
        kids = [c for c in node.children if c in nodes]
        if not kids or depth > 64:
            value = MARGIN_TOP + leaves.get(node_id, 0) * ROW + PATCH_H / 2
        else:
            value = sum(y_of(c, depth + 1) for c in kids) / len(kids)
        ys[node_id] = value
        return value

    for node_id in nodes:
        nodes[node_id].y = y_of(node_id)
    columns: dict[int, list[TreeNode]] = {}
    for node in nodes.values():
        node.x = MARGIN_X + node.level * COL_W
        columns.setdefault(node.level, []).append(node)
    for column in columns.values():
        column.sort(key=lambda n: n.y)
        for above, below in itertools.pairwise(column):
            need = above.y + above.height / 2 + 6 + below.height / 2
            if below.y < need:
                below.y = need
        top = column[0]
        if top.y - top.height / 2 < MARGIN_TOP:
            shift = MARGIN_TOP - (top.y - top.height / 2)
            for node in column:
                node.y += shift


def tree_svg(tree: MergeTree) -> str:
    """The merge tree as an inline SVG element (no namespace URL needed inside HTML)."""
    if not tree.nodes:
        return '<p class="muted">No patch branches yet: nothing to draw.</p>'
    parts = [
        f'<svg class="merge-tree" id="merge-tree-svg" width="{tree.width}" height="{tree.height}" '
        f'viewBox="0 0 {tree.width} {tree.height}" role="img" '
        f'aria-label="merge tree: {len(tree.nodes)} nodes in {tree.levels} columns">'
    ]
    for level in range(tree.levels):
        x = MARGIN_X + level * COL_W
        name = "patches" if level == 0 else f"level {level}"
        parts.append(
            f'<text class="level-label" x="{x + NODE_W / 2:.0f}" y="18" text-anchor="middle">{esc(name)}</text>'
        )
    for node in tree.nodes.values():
        for child_id in node.children:
            child = tree.nodes.get(child_id)
            if child is None:
                continue
            x1, y1 = child.x + NODE_W, child.y
            x2, y2 = node.x, node.y
            dx = max(24.0, (x2 - x1) / 2)
            width = 1.2 + 0.8 * math.log2(max(1, child.support))
            cls = "edge failed" if node.kind == "failed" else "edge"
            parts.append(
                f'<path class="{cls}" d="M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
                f'stroke-width="{width:.1f}"/>'
            )
    for node in tree.nodes.values():
        h = node.height
        top = node.y - h / 2
        classes = f"node {node.kind} state-{node.state}" + (" candidate" if node.candidate else "")
        classes += f" val-{node.verdict}" if node.verdict else ""
        score = f' data-val="{node.val_score:.3f}"' if node.val_score is not None else ""
        parts.append(f'<g class="{classes}" id="node-{esc(node.label)}" data-support="{node.support}"{score}>')
        parts.append(f"<title>{esc(node.title)}</title>")
        fill = f' style="fill:{val_colour(node.val_score)}"' if node.val_score is not None else ""
        parts.append(f'<rect x="{node.x:.1f}" y="{top:.1f}" width="{NODE_W}" height="{h}" rx="6" ry="6"{fill}/>')
        if node.kind in ("patch", "other"):
            parts.append(f'<text class="label" x="{node.x + 8:.1f}" y="{node.y + 4:.1f}">{esc(node.label)}</text>')
            parts.append(
                f'<text class="sub" x="{node.x + NODE_W - 8:.1f}" y="{node.y + 4:.1f}" text-anchor="end">{esc(_short(node.sub, 18))}</text>'
            )
        else:
            label = node.label + ("  ★ candidate" if node.candidate else "")
            label += "  ✗ rejected" if node.verdict == "rejected" else ""
            parts.append(f'<text class="label" x="{node.x + 8:.1f}" y="{top + 17:.1f}">{esc(label)}</text>')
            parts.append(f'<text class="sub" x="{node.x + 8:.1f}" y="{top + 34:.1f}">{esc(node.sub)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------- sections
def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _kv(rows: list[tuple[str, str]]) -> str:
    return (
        '<table class="kv"><tbody>'
        + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
        + "</tbody></table>"
    )


def _code(text: str) -> str:
    return f"<code>{esc(text)}</code>"


def _compact(summary: dict[str, Any]) -> str:
    items = []
    for key, value in summary.items():
        shown = str(value)
        if isinstance(value, (list, dict)):
            shown = f"{len(value)} item(s)" if value else "none"
        items.append(f"{key}={shown}")
    return ", ".join(items)


def _cached_share(totals: dict[str, Any]) -> str:
    """Prompt tokens the provider served from its prefix cache, and their share of all."""
    prompt, cached = totals.get("prompt_tokens") or 0, totals.get("cached_tokens") or 0
    return f"{cached} ({cached / prompt:.0%})" if prompt else "0"


def _estimated(estimate: Any) -> str:
    """The estimate a stage recorded before it ran (``estimates/<phase>.json``), if any."""
    totals = estimate.get("totals") if isinstance(estimate, dict) else None
    if not totals:
        return '<span class="muted">-</span>'
    return esc(f"{totals.get('calls', 0)} / {totals.get('tokens', 0)} / ${totals.get('usd', 0):.4f}")


def summary_section(data: RunData, rows: list[PatchView], gate_text: str) -> str:
    m = data.manifest
    merges = [r for r in data.tree_reports() if r.status == "merged"]
    failed = [r for r in data.tree_reports() if r.status != "merged"]
    levels = max((r.level for r in data.tree_reports()), default=0)
    cards = [
        ("patches", str(len(rows)), state_counts(rows) or "none"),
        ("merges", str(len(merges)), f"{levels} level(s)" + (f", {len(failed)} failed" if failed else "")),
        (
            "candidate",
            data.candidate[:12] if data.candidate else "none",
            refs.short(data.candidate_ref or "") or "not merged yet",
        ),
        ("evaluation", gate_text, "vs baseline"),
    ]
    card_html = "".join(
        f'<div class="card"><div class="card-title">{esc(t)}</div><div class="card-value">{esc(v)}</div>'
        f'<div class="card-sub">{esc(s)}</div></div>'
        for t, v, s in cards
    )
    facts = [
        ("run", _code(m.run)),
        ("S0", _code(m.s0)),
        ("skill", _code(m.skill_dir)),
        ("suite / split", esc(f"{m.suite or '-'} / {m.split or '-'}")),
        ("created", esc(m.created_at)),
        ("t2s", esc(m.t2s_version)),
    ]
    for role, settings in sorted(m.models.items()):
        facts.append((f"model ({role})", esc(settings.get("model", "?") if isinstance(settings, dict) else settings)))
    stage_rows = [
        [
            esc(name),
            f'<span class="pill s-{esc(state.status)}">{esc(state.status)}</span>',
            esc(state.started_at or "-"),
            esc(state.finished_at or "-"),
            f'<span class="small">{esc(_compact(state.summary))}</span>',
        ]
        for name, state in m.stages.items()
    ]
    stages = (
        _table(["stage", "status", "started", "finished", "summary"], stage_rows, "stages")
        if stage_rows
        else '<p class="muted">No stages recorded.</p>'
    )
    ledger_rows = []
    total = {"calls": 0, "cached": 0, "total_tokens": 0, "prompt_tokens": 0, "cached_tokens": 0, "cost_usd": 0.0}
    for phase, phase_ledger in sorted(data.ledgers.items()):
        t = phase_ledger.get("totals") or {}
        for key in total:
            total[key] += t.get(key, 0) or 0
        ledger_rows.append(
            [
                esc(phase),
                esc(t.get("calls", 0)),
                esc(t.get("cached", 0)),
                esc(t.get("total_tokens", 0)),
                esc(_cached_share(t)),
                esc(f"${t.get('cost_usd', 0) or 0:.4f}"),
                _estimated(data.record.read_json(f"estimates/{phase}.json")),
            ]
        )
    if ledger_rows:
        ledger_rows.append(
            [
                "<b>total</b>",
                esc(total["calls"]),
                esc(total["cached"]),
                esc(total["total_tokens"]),
                esc(_cached_share(total)),
                esc(f"${total['cost_usd']:.4f}"),
                "",
            ]
        )
        ledger = _table(
            [
                "phase",
                "calls",
                "cached",
                "tokens",
                "cached input",
                "cost (USD)",
                "estimated before (calls / tokens / USD)",
            ],
            ledger_rows,
            "ledger",
        )
    else:
        ledger = '<p class="muted">No ledger in the run record.</p>'
    return (
        f'<div class="cards">{card_html}</div><div class="cols"><div>{_kv(facts)}</div><div>'
        f"<h3>Stages</h3>{stages}<h3>Model calls (ledger)</h3>{ledger}</div></div>"
    )


def patches_section(rows: list[PatchView]) -> str:
    if not rows:
        return '<p class="muted">No patches in this run.</p>'
    out = []
    for r in rows:
        lesson = r.lessons[0].text if r.lessons else ""
        more = f' <span class="muted">(+{len(r.lessons) - 1})</span>' if len(r.lessons) > 1 else ""
        branch = (
            f'<div class="small muted">{esc(r.short_branch)}</div>'
            if r.branch
            else '<div class="small muted">no branch</div>'
        )
        out.append(
            [
                f"<b>{esc(r.patch)}</b>{branch}",
                esc(r.task or "-"),
                esc(r.outcome or "-"),
                esc(r.analyst or "-"),
                esc(r.validated or "-"),
                f'<span title="{esc(lesson)}">{esc(_short(" ".join(lesson.split()), 110))}</span>{more}',
                f'<span class="nowrap"><span class="add">+{r.lines_added}</span> <span class="del">-{r.lines_removed}</span></span>',
                f'<span class="pill st-{esc(r.state)}">{esc(r.status)}</span>',
                esc(r.verdict_text or "-"),
            ]
        )
    return _table(
        ["id", "task", "outcome", "analyst", "validated", "lesson", "lines", "status", "verdict"], out, "patches"
    )


def diff_html(diff: str) -> str:
    if not diff.strip():
        return '<p class="muted">No changes.</p>'
    lines = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---", "diff --git", "index ", "new file", "deleted file")):
            cls = "meta"
        elif line.startswith("@@"):
            cls = "hunk"
        elif line.startswith("+"):
            cls = "add"
        elif line.startswith("-"):
            cls = "del"
        else:
            cls = "ctx"
        lines.append(f'<span class="{cls}">{esc(line) or " "}</span>')
    # one block element per line (no newlines between them: a <pre> would show them as blank lines)
    return '<pre class="diff">' + "".join(lines) + "</pre>"


def candidate_section(store: GitStore, data: RunData) -> tuple[str, Any]:
    if not data.candidate:
        return '<p class="muted">No candidate yet: run <code>t2s merge</code>.</p>', None
    view = candidate_view(store, data.run, data)
    lesson_rows = [
        [
            esc(lesson.id),
            esc(len(lesson.support)),
            esc("SKILL.md" if lesson.placement != "reference" else f"references/{lesson.topic}.md"),
            esc(" ".join(lesson.text.split())),
            f'<span class="small muted">{esc(", ".join(lesson.support))}</span>',
        ]
        for lesson in sorted(view.lessons, key=lambda lesson: (-len(lesson.support), lesson.id))
    ]
    lessons = (
        _table(["lesson", "support", "where", "text", "trajectories"], lesson_rows, "lessons") if lesson_rows else ""
    )
    head = _kv(
        [
            ("branch", _code(refs.short(view.ref))),
            ("commit", _code(view.commit)),
            ("root merge", esc(view.root or "-")),
            ("patches in it", esc(len(view.patches))),
            ("support", esc(f"{view.support} distinct trajectories")),
        ]
    )
    return f"{head}<h3>Lessons</h3>{lessons}<h3>Diff against S0</h3>{diff_html(view.diff)}", view


def evaluation_section(store: GitStore, data: RunData) -> tuple[str, str]:
    if not data.candidate:
        return '<p class="muted">Not evaluated: there is no candidate.</p>', "not evaluated"
    text = store.read_note(EVAL_NOTES, data.candidate)
    note = None
    if text:
        try:
            note = EvalNote.model_validate_json(text)
        except ValueError:
            note = None
    if note is None or (note.gate is None and not note.evals):
        return (
            f'<p class="muted" id="not-evaluated">Not evaluated: no note in <code>{esc(EVAL_NOTES)}</code> '
            "on the candidate. Run <code>t2s gate</code>.</p>"
        ), "not evaluated"
    parts = []
    short = "evaluated, not gated"
    if note.gate is not None:
        g = note.gate
        short = f"{'passed' if g.passed else 'failed'} {g.delta:+.3f}"
        verdict = "passed" if g.passed else "failed"
        parts.append(
            f'<p class="gate gate-{verdict}">Gate <b>{verdict}</b>: score {g.baseline_score:.1%} → '
            f"{g.candidate_score:.1%} (delta {g.delta:+.3f}, need ≥ {g.min_delta:+.3f}); regressions "
            f"{g.regressions} (allowed {g.max_regressions})"
            + (f"; sign test p = {g.p_value:.3g}" if g.p_value is not None else "")
            + ".</p>"
        )
        parts.append(
            _table(
                ["", "baseline", "candidate"],
                [
                    ["commit", _code(g.baseline[:12]), _code(g.candidate[:12])],
                    ["score", esc(f"{g.baseline_score:.1%}"), esc(f"{g.candidate_score:.1%}")],
                    ["suite / split", esc(f"{g.suite or '-'} / {g.split}"), esc(f"{g.suite or '-'} / {g.split}")],
                ],
                "eval",
            )
        )
        p = g.paired
        parts.append(
            _table(
                ["paired tasks", "count"],
                [
                    ["both pass", esc(p.get("both", 0))],
                    ["only baseline (regressed)", esc(p.get("only_baseline", 0))],
                    ["only candidate (improved)", esc(p.get("only_candidate", 0))],
                    ["neither", esc(p.get("neither", 0))],
                ],
                "paired",
            )
        )
        if g.regressed:
            parts.append("<p>Regressed: " + ", ".join(_code(t) for t in g.regressed) + "</p>")
        if g.improved:
            parts.append("<p>Improved: " + ", ".join(_code(t) for t in g.improved) + "</p>")
    if note.evals:
        parts.append("<h3>Evaluations of the candidate</h3>")
        parts.append(
            _table(
                ["suite", "split", "score", "passed", "seeds", "tokens", "when"],
                [
                    [
                        esc(r.suite),
                        esc(r.split),
                        esc(f"{r.score:.1%}"),
                        esc(f"{r.passed}/{r.total}"),
                        esc(r.seeds),
                        esc(r.tokens),
                        esc(r.created_at),
                    ]
                    for r in note.evals
                ],
                "evals",
            )
        )
    return "".join(parts), short


def val_colour(score: float) -> str:
    """A node's fill for its val score: light red (0) through light yellow to light green (1)."""
    hue = 120 * max(0.0, min(1.0, score))
    return f"hsl({hue:.0f}, 70%, 86%)"


def validation_table(data: RunData) -> str:
    """Every validated merge node with both scores and its verdict."""
    scored = [(r, r.validation) for r in data.tree_reports() if getattr(r, "validation", None) is not None]
    if not scored:
        return ""
    rows = [
        [
            esc(report.name),
            f"{validation.score:.3f}",
            f"{validation.best_input:.3f} ({esc(validation.best_input_label)})",
            f"{validation.tolerance:g}",
            '<span class="bad">rejected by validation</span>' if validation.rejected else "passed",
        ]
        for report, validation in scored
    ]
    heading = f"<h3>Validation on {esc(scored[0][1].split)}</h3>"
    return heading + _table(["merge", "val score", "best input", "tolerance", "verdict"], rows, "validation")


def render_report(store: GitStore, run: str) -> str:
    """The report page for ``run`` as one HTML string (for a multi-round evolve: the
    rounds' chart, then the last round's run)."""
    lineage = rounds_of(store, run) if not store.rev_parse(refs.run_record(run)) else []
    rounds = rounds_section(lineage) if lineage else ""
    shown = lineage[-1].run if lineage else run
    data = load_run(store, shown)
    rows = review_rows(store, shown, data)
    evaluation, gate_text = evaluation_section(store, data)
    candidate, _view = candidate_section(store, data)
    in_candidate = set(store.rev_list(data.candidate, [])) if data.candidate else None
    tree = build_tree(data, rows, in_candidate)
    legend = (
        '<p class="legend"><span class="sw sw-merged"></span>patch in the candidate '
        '<span class="sw sw-open"></span>open <span class="sw sw-unvalidated"></span>unvalidated '
        '<span class="sw sw-rejected"></span>rejected in review (left out) <span class="sw sw-merge"></span>octopus merge '
        '<span class="sw sw-failed"></span>failed merge (inputs carried up) — edge width grows with support'
        + (
            ' — merges filled by val score, <span class="sw sw-val-low"></span>0 to <span class="sw sw-val-high"></span>1; '
            '<span class="sw sw-val-rejected"></span>rejected by validation (best input carried up), '
            '<span class="sw sw-left-out"></span>patch left out by validation'
            if any(getattr(r, "validation", None) for r in data.tree_reports())
            else ""
        )
        + "</p>"
    )
    values = {
        "title": esc(f"t2s run {run}"),
        "run": esc(run),
        "generated": esc(datetime.now(UTC).isoformat(timespec="seconds")),
        "version": esc(__version__),
        "summary": rounds + summary_section(data, rows, gate_text) + trajectories_html(list_trajectories(store, shown)),
        "patches": patches_section(rows),
        "tree": legend + f'<div class="tree-wrap">{tree_svg(tree)}</div>' + validation_table(data),
        "candidate": candidate,
        "evaluation": evaluation,
        "data": esc(json.dumps({"run": run, "patches": len(rows), "merges": len(data.reports)})),
    }
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)


__all__ = ["MergeTree", "TreeNode", "build_tree", "diff_html", "esc", "render_report", "tree_svg"]
