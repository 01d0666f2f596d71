"""The rounds of a multi-round evolve in the report: score per round as an inline SVG
chart (held-out, and validation where the merge recorded one) and what each round added."""

from __future__ import annotations

import html

from t2s.record.lineage import Round

WIDTH, HEIGHT, PAD = 560, 220, 40


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _points(values: list[float | None]) -> list[tuple[float, float, float]]:
    """``(x, y, value)`` of each known value; x spreads the rounds, y is the score 0..1."""
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)
    return [(PAD + i * step, HEIGHT - PAD - v * (HEIGHT - 2 * PAD), v) for i, v in enumerate(values) if v is not None]


def _series(values: list[float | None], cls: str, label: str) -> str:
    pts = _points(values)
    if not pts:
        return ""
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts)
    dots = "".join(
        f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{_esc(label)}: {v:.3f}</title></circle>'
        for x, y, v in pts
    )
    return f'<polyline class="{cls}" fill="none" points="{line}"/>{dots}'


def rounds_chart(lineage: list[Round]) -> str:
    """Score per round: point 0 is round 1's S0, point n is round n's candidate."""
    heldout: list[float | None] = [lineage[0].gate.baseline_score if lineage[0].gate else None]
    heldout += [r.heldout for r in lineage]
    validation: list[float | None] = [None, *(r.validation for r in lineage)]
    labels = ["S0"] + [f"round {r.number}" for r in lineage]
    step = (WIDTH - 2 * PAD) / max(1, len(labels) - 1)
    axis = "".join(
        f'<text x="{PAD + i * step:.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle" class="small">{_esc(t)}</text>'
        for i, t in enumerate(labels)
    )
    grid = "".join(
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD - g * (HEIGHT - 2 * PAD):.1f}" '
        f'y2="{HEIGHT - PAD - g * (HEIGHT - 2 * PAD):.1f}" stroke="#ddd"/>'
        f'<text x="{PAD - 6}" y="{HEIGHT - PAD - g * (HEIGHT - 2 * PAD) + 4:.1f}" text-anchor="end" '
        f'class="small">{g:.1f}</text>'
        for g in (0.0, 0.5, 1.0)
    )
    legend = f'<text x="{PAD}" y="14" class="small">— held-out</text>'
    if any(v is not None for v in validation):
        legend += f'<text x="{PAD + 110}" y="14" class="small">- - validation</text>'
    style = (
        "<style>.heldout{stroke:#2563eb;fill:#2563eb;stroke-width:2}"
        ".validation{stroke:#16a34a;fill:#16a34a;stroke-width:2;stroke-dasharray:5 4}</style>"
    )
    return (
        f'<svg class="rounds-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="score per round">{style}{grid}{axis}{legend}'
        f"{_series(heldout, 'heldout', 'held-out')}{_series(validation, 'validation', 'validation')}</svg>"
    )


def rounds_section(lineage: list[Round]) -> str:
    """The chart and one row per round: its run, gate, scores and what it added."""
    rows = []
    for r in lineage:
        gate = "not gated" if r.gate is None else ("passed" if r.gate.passed else "failed")
        scores = "-" if r.gate is None else f"{r.gate.baseline_score:.3f} → {r.gate.candidate_score:.3f}"
        added = "".join(f"<li>{_esc(text)}</li>" for text in r.added) or '<li class="muted">nothing merged</li>'
        rows.append(
            f"<tr><td>{r.number}</td><td><code>{_esc(r.run)}</code></td><td><code>{_esc(r.s0[:12])}</code></td>"
            f"<td>{_esc(gate)}</td><td>{_esc(scores)}</td>"
            f"<td>{'-' if r.validation is None else f'{r.validation:.3f}'}</td><td><ul>{added}</ul></td></tr>"
        )
    table = (
        '<table class="rounds"><thead><tr><th>round</th><th>run</th><th>S0</th><th>gate</th>'
        "<th>held-out</th><th>validation</th><th>what it added</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    note = (
        ""
        if any(r.validation is not None for r in lineage)
        else '<p class="muted small">No validation scores in the merge records: held-out only.</p>'
    )
    return f"<h3>Rounds</h3>{rounds_chart(lineage)}{note}{table}<h3>The last round</h3>"
