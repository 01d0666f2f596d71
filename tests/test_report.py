"""``t2s report``: one self-contained HTML page, checked as HTML and in headless Chromium."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from t2s.cli import main
from t2s.consolidation.group import merger_ask
from t2s.consolidation.models import MergeSettings
from t2s.consolidation.scheduler import Merger
from t2s.llm.client import LLM
from t2s.patches.context import PatchContext
from t2s.testing import Reply
from t2s.testing.pytest_plugin import scripted_role
from t2s.testing.simulated import merger_responder
from t2s.views.report import ROW, build_tree, render_report
from t2s.views.review import load_run, record_verdict, review_rows
from tests._runfixtures import SKILL_DIR, add_patch, add_rejected_patch, make_skill_repo, start_run, write_gate

LESSONS = [
    ("Recalculate formulas before saving, or write computed values instead.", "formulas"),
    ("Read the target cells back with data_only=True before finishing.", "verification"),
    ("Keep <b>bold</b> headers & see https://example.com/docs for details.", "links"),
]
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source", "path", "rect"}


def build(tmp_path, server, count: int = 7, *, fail_first: bool = False, fan_in: int = 3):
    """A run with ``count`` patches (patch 3 rejected in review, 8 rejected by the analyst)
    merged with ``fan_in``; with ``fail_first``, merge L1-01 fails and its inputs go up."""
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    patches = [add_patch(store, record, i, LESSONS[i % 3][0], topic=LESSONS[i % 3][1]) for i in range(1, count + 1)]
    add_rejected_patch(record, count + 1, "Use pandas for everything.", "edits do not apply: anchor not found")
    record_verdict(store, "0003", "reject", "too specific", reviewer="Rev <rev@example.test>")

    def responder(request):
        if fail_first and "Merge group L1-01" in request.text:
            return Reply(content="not JSON")
        return merger_responder(request)

    server.on(responder, role="merger")
    llm = LLM(roles={"merger": scripted_role(server, model="sim-merger")})
    context = PatchContext(store, record.manifest().s0, SKILL_DIR)
    merger = Merger(
        store,
        record,
        context,
        merger_ask(llm),
        MergeSettings(fan_in=fan_in, retries=0, fallback=not fail_first),
        model="sim-merger",
    )
    summary = asyncio.run(merger.parallel())
    return store, record, patches, summary


class Checker(HTMLParser):
    """Tag balance, and every attribute that could fetch something."""

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []
        self.fetching: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id":
                self.ids.append(value)
            if name in ("src", "srcset", "href", "xlink:href", "action", "data", "poster") and not (
                value or ""
            ).startswith("#"):
                self.fetching.append(f"{tag} {name}={value}")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}> at {self.getpos()}")
            return
        self.stack.pop()


def test_report_is_valid_self_contained_html_with_every_section(tmp_path, scripted_server):
    store, record, _patches, summary = build(tmp_path, scripted_server)
    assert summary.levels == [["L1-01", "L1-02"], ["L2-01"]]
    page = render_report(store, "r1")

    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert checker.problems == [] and checker.stack == []
    assert checker.fetching == []
    assert len(checker.ids) == len(set(checker.ids))
    # no network at all: no address, no script, no external stylesheet or font
    assert not re.search(r"(?i)(https?|ftp)://", page)
    assert not re.search(r"(?i)<script|<link|<iframe|<img|@import|url\(", page)
    assert "https&#58;//example.com/docs" in page  # quoted text stays readable, defanged
    assert "&lt;b&gt;bold&lt;/b&gt; headers &amp; see" in page and "<b>bold</b>" not in page

    for section in ("summary", "patches", "merge-tree", "candidate", "evaluation"):
        assert f'<section id="{section}">' in page
    # the patch list: every record, with its status and verdict
    for row in review_rows(store, "r1"):
        assert f"<b>{row.patch}</b>" in page
    assert (
        "rejected in review: too specific" in page and "rejected by Rev &lt;rev@example.test&gt;: too specific" in page
    )
    assert "rejected: edits do not apply: anchor not found" in page and "merged into L1-02" in page
    # the merge tree: one node per patch branch and per merge; octopus edges; support
    svg = re.search(r'<svg class="merge-tree".*?</svg>', page, re.S).group(0)
    assert svg.count('<g class="node patch') == 7 and svg.count('<g class="node merge') == 3
    assert svg.count('<path class="edge"') == 3 + 3 + 2  # L1-01 and L1-02 take 3 each, L2-01 takes 2
    assert 'class="node merge state-merged candidate" id="node-L2-01"' in svg
    assert 'class="node patch state-rejected" id="node-0003"' in svg
    root = record.read_json("merges/L2-01.json")
    support = len({t for lesson in root["lessons"] for t in lesson["support"]})
    assert f'id="node-L2-01" data-support="{support}"' in svg and f"support {support} · 2 in" in svg
    # the candidate diff, coloured, and the lessons with support
    assert '<pre class="diff">' in page and f'<span class="add">+- {LESSONS[0][0]}</span>' in page
    assert "L2-01.1" in page
    assert 'id="not-evaluated"' in page

    write_gate(store, summary.candidate, record.manifest().s0)
    gated = render_report(store, "r1")
    assert 'id="not-evaluated"' not in gated and 'class="gate gate-passed"' in gated
    assert "60.0% → 80.0%" in gated and "<td>only candidate (improved)</td><td>3</td>" in gated
    assert "passed +0.200" in gated


def test_merge_tree_layout_levels_parents_between_children_no_overlap(tmp_path, scripted_server):
    store, _record, _patches, _summary = build(tmp_path, scripted_server, count=7, fail_first=True, fan_in=4)
    data = load_run(store, "r1")
    tree = build_tree(data, review_rows(store, "r1", data))
    nodes = {n.label: n for n in tree.nodes.values()}
    assert nodes["L1-01"].kind == "failed" and nodes["L1-02"].kind == "merge"
    root = tree.nodes[tree.root]
    assert root.candidate and root.label == "L2-01" and tree.levels == 3
    # the failed merge's inputs were carried up: they are direct parents of the root
    carried = [nodes[n].id for n in ("0001", "0002", "0004")]
    assert root.children == [*carried, nodes["L1-02"].id]
    assert all(c in root.children for c in carried)
    for node in tree.nodes.values():
        kids = [tree.nodes[c] for c in node.children]
        if kids:
            assert min(k.y for k in kids) - 1 <= node.y <= max(k.y for k in kids) + ROW
            assert all(k.x < node.x for k in kids)
    columns: dict[float, list] = {}
    for node in tree.nodes.values():
        columns.setdefault(node.x, []).append(node)
    for column in columns.values():
        column.sort(key=lambda n: n.y)
        for a, b in itertools.pairwise(column):
            assert a.y + a.height / 2 <= b.y - b.height / 2, (a.label, b.label)
    assert all(0 < n.y < tree.height and n.x + 1 < tree.width for n in tree.nodes.values())
    page = render_report(store, "r1")
    assert '<g class="node failed state-failed" id="node-L1-01"' in page and 'class="edge failed"' in page


def test_report_command_writes_the_file(tmp_path, scripted_server):
    store, _record, _patches, _summary = build(tmp_path, scripted_server, count=3)
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    result = CliRunner().invoke(main, ["report", "--run", "r1", "-o", str(out), "-C", str(store.root)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "merge-tree" in out.read_text()
    missing = CliRunner().invoke(main, ["report", "--run", "nope", "-C", str(store.root)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


# ---------------------------------------------------------------------- headless Chromium
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser(binary: str, profile: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "TZ": "UTC"},
    )


def decode_png(path: Path) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows) of an 8-bit, non-interlaced RGB(A) PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data[pos + 8 : pos + 8 + length])
        elif kind == b"IDAT":
            idat.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = [0] * stride
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = list(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = [(a + b) & 255 for a, b in zip(line, prev, strict=True)]
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + (((line[i - bpp] if i >= bpp else 0) + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(bpp):
                line[i] = (line[i] + prev[i]) & 255
            for i in range(bpp, stride):
                a, b, c = line[i - bpp], prev[i], prev[i - bpp]
                if a == b == c:
                    line[i] = (line[i] + a) & 255
                    continue
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def _pixels_near(row: bytes, bpp: int, rgb: tuple[int, int, int], tol: int = 4) -> int:
    r, g, b = rgb
    return sum(
        1
        for x in range(0, len(row), bpp)
        if abs(row[x] - r) <= tol and abs(row[x + 1] - g) <= tol and abs(row[x + 2] - b) <= tol
    )


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (apt-get install chromium)")
def test_report_renders_in_headless_chromium_with_the_merge_tree(tmp_path, scripted_server):
    store, _record, _patches, _summary = build(tmp_path, scripted_server, count=7)
    report = tmp_path / "report.html"
    report.write_text(render_report(store, "r1"), encoding="utf-8")
    shot = tmp_path / "shot.png"
    binary = _chromium()
    url = report.resolve().as_uri()
    dom_proc = _browser(binary, tmp_path / "profile-dom", "--dump-dom", url)
    shot_proc = _browser(binary, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1400,1300", url)
    try:
        dom, dom_err = dom_proc.communicate(timeout=90)
        _, shot_err = shot_proc.communicate(timeout=90)
    finally:
        for proc in (dom_proc, shot_proc):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    logs = (dom_err + shot_err).decode(errors="replace")
    assert dom_proc.returncode == 0 and shot_proc.returncode == 0, logs[-2000:]
    assert "Uncaught" not in logs and "CONSOLE" not in logs, logs[-2000:]
    assert "ERR_" not in logs, logs[-2000:]  # nothing tried to load

    rendered = dom.decode()
    assert '<svg class="merge-tree"' in rendered
    for name in ("L1-01", "L1-02", "L2-01", "0001", "0007"):
        assert f'id="node-{name}"' in rendered
    assert rendered.count('class="edge"') == 8

    width, height, bpp, rows = decode_png(shot)
    assert (width, height) == (1400, 1300)
    candidate_fill = (0xFB, 0xEF, 0xFF)  # only the candidate node has this fill
    merge_fill = (0xDD, 0xF4, 0xFF)
    patch_fill = (0xDA, 0xFB, 0xE1)
    band = [y for y, row in enumerate(rows) if _pixels_near(row, bpp, candidate_fill) > 40]
    assert band, "the candidate node is not in the screenshot"
    top, bottom = max(0, band[0] - 300), min(height, band[-1] + 300)
    region = rows[top:bottom]
    assert sum(_pixels_near(row, bpp, merge_fill) for row in region) > 2000  # level-1 merge boxes
    assert sum(_pixels_near(row, bpp, patch_fill) for row in region) > 2000  # patch boxes
    ink = sum(1 for row in region for x in range(0, len(row), bpp * 4) if row[x] < 120 and row[x + 1] < 120)
    assert ink > 500  # text and edges, not an empty box


def test_report_before_any_merge_shows_stages_ledger_and_open_patches(tmp_path):
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    add_patch(store, record, 1, LESSONS[0][0])
    add_patch(store, record, 2, LESSONS[1][0])
    record.set_stage("analyze", "done", {"patches": 2, "rejected": 0, "branches": ["a", "b"]})
    totals = {"calls": 7, "cached": 2, "total_tokens": 12345, "cost_usd": 0.0123}
    record.write({"ledger/analyze.json": {"totals": totals, "rows": []}}, "ledger")
    page = render_report(store, "r1")
    assert "No candidate yet" in page and 'id="not-evaluated"' not in page
    assert "Not evaluated: there is no candidate." in page
    assert '<span class="pill s-done">done</span>' in page and "patches=2, rejected=0, branches=2 item(s)" in page
    assert "<td>analyze</td><td>7</td><td>2</td><td>12345</td><td>0</td><td>$0.0123</td>" in page
    assert page.count('<g class="node patch state-open"') == 2 and 'class="edge"' not in page
    empty = start_run(store, "r2")
    assert empty.exists()
    assert "No patches in this run." in render_report(store, "r2") and "nothing to draw" in render_report(store, "r2")
