"""Record a corpus of real model answers with the t2s pipeline (issue 20).

What it runs
    Two throwaway skill repositories made with the real ``t2s init``:

    * ``wtq``: the ``table-qa`` seed on WikiTableQuestions (``--wtq`` questions, default 8,
      the first ones of the suite's ``evolve`` split);
    * ``verified``: the ``xlsx`` seed on SpreadsheetBench-Verified (``--verified`` tasks,
      default 5, small workbooks from ``evolve``, none of them in ``val``).

    Only EVOLVE-split tasks are used, never held-out or val ones. In each repository the
    real CLI runs, one command at a time (model concurrency 1), in this order::

        t2s rollout  --run r1 --task ...                      # agent
        t2s analyze  --run r1 --include-unvalidated           # agentic (Verified) / single-call (WTQ: no gold file)
        t2s import   --format t2s --run r1sc  (r1's trajectories)
        t2s analyze  --run r1sc --mode error --analyst single-call   # Verified only
        t2s merge    --run r1 --fan-in 2                      # and r1sc
        t2s import + analyze --set analyst.seed=1..           # "extra" runs, only while fewer
        t2s merge    --run r1xN --fan-in 2                    #  than --min-merge-inputs patches were accepted

    The response cache stays in read-write mode (``[cache]`` in ``t2s.toml``), so running
    the script again resumes: every t2s stage skips what its run record already holds,
    and answered requests come from the cache.

Which endpoint
    Every role (agent, analyst, merger) points at a recording relay that this script
    starts on loopback. The relay forwards each request unchanged to ``--upstream``
    (default: the local Qwen2.5-Coder-1.5B-Instruct server of
    ``../shared/tools/local-llm``, http://127.0.0.1:8765/v1) and appends the exchange
    (role and phase headers, request body, response body, times) to
    ``WORK/exchanges.jsonl``. The relay is needed because the response cache stores
    only answers: requests are keyed by a hash. ``extract`` joins the two by that hash.

How long it takes
    Hours. The 1.5B model makes 2-10 tokens/s on the shared 2 cores and serves one
    request at a time; a rollout question takes 2-25 minutes, an analysis 5-30, a merge
    attempt 5-15. Run it in the background and look at ``WORK/collect.log``::

        nohup .venv/bin/python bench/collect_corpus.py collect --work /work/corpus-work \\
            > /work/corpus-work.out 2>&1 &

Which t2s
    The script drives the CLI and, to extract, imports the library of the t2s it sits in
    (today's module layout). A corpus is recorded by one t2s: ``t2s_commit`` in
    ``corpus.json``. Corpus 1 (``tests/fixtures/real_model_corpus/``, a38e4c2) was
    recorded with the prompts before their examples quoted the skill; corpus 2
    (``tests/fixtures/real_model_corpus_2/``) with today's prompts, reusing corpus 1's
    trajectories (``--trajectories-from``: the agent's hours are not spent again) and the
    single-call analyst (``--analyst single-call --skip-single-call``)::

        nohup .venv/bin/python bench/collect_corpus.py collect --work /work/corpus3 \\
            --trajectories-from /work/corpus-work --analyst single-call --skip-single-call \\
            --min-merge-inputs 100 --extra-seeds 2 > /work/corpus3.out 2>&1 &

    To collect or extract again with the t2s of a corpus, run this file from a worktree
    of that commit (``git worktree add --detach ../wt-collect <t2s_commit>``).
    ``bench/edit_robustness.py`` replays the fixtures through the code it runs with.

Then
    ``extract`` turns the caches, the relay log and the run records into the JSONL
    fixtures (see the corpus folder's README.md), and ``summary`` prints the counts
    quoted there::

        .venv/bin/python bench/collect_corpus.py extract --work /work/corpus3 \\
            --out tests/fixtures/real_model_corpus_2
        .venv/bin/python bench/collect_corpus.py summary --fixtures tests/fixtures/real_model_corpus_2
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared" / "benchmarks"
WTQ_DIR = SHARED / "wikitablequestions"
VERIFIED_DIR = SHARED / "spreadsheetbench-verified"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "real_model_corpus"
T2S = [sys.executable, "-m", "t2s"]

DEFAULT_UPSTREAM = "http://127.0.0.1:8765/v1"
DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"

#: Small Verified evolve tasks (inputs under 15 kB, none in `val`): sheet- and cell-level.
VERIFIED_TASKS = ["22-47", "38074", "28-7", "40478", "41691", "269-44"]

#: Per-role settings: bounded answers, generous timeouts, one request at a time.
ROLE_SETTINGS = {
    "agent": {"max_tokens": 1024, "protocol": "auto"},
    "analyst": {"max_tokens": 1536, "protocol": "auto"},
    "merger": {"max_tokens": 2048},
}
TIMEOUT_S = 1800.0


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------ the recording relay
class Relay:
    """A loopback HTTP relay to an OpenAI-compatible server that logs every exchange."""

    def __init__(self, upstream: str, log_path: Path):
        parsed = urllib.parse.urlsplit(upstream)
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.prefix = parsed.path.rstrip("/")  # "/v1"
        self.log_path = log_path
        self.step = "-"
        self._lock = threading.Lock()
        self._seq = self._last_seq()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                relay.forward(self, method, body)

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{self.prefix}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _last_seq(self) -> int:
        if not self.log_path.exists():
            return 0
        last = 0
        with self.log_path.open(encoding="utf-8") as fh:
            for line in fh:
                with contextlib.suppress(ValueError):
                    last = max(last, json.loads(line).get("seq", 0))
        return last

    def forward(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        started = time.time()
        headers = {
            k: v
            for k, v in handler.headers.items()
            if k.lower() in ("content-type", "authorization", "x-t2s-role", "x-t2s-phase")
        }
        status, data, error = 502, b"", None
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT_S + 600)
            conn.request(method, handler.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            status, data = resp.status, resp.read()
            ctype = resp.getheader("Content-Type", "application/json")
            conn.close()
        except OSError as err:
            error = f"{type(err).__name__}: {err}"
            data = json.dumps({"error": {"message": f"relay: {error}"}}).encode()
            ctype = "application/json"
        if method == "POST" and handler.path.endswith("/chat/completions"):
            self._log(handler, body, status, data, error, started)
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout): the exchange is logged anyway

    def _log(self, handler, body: bytes, status: int, data: bytes, error: str | None, started: float) -> None:
        def as_json(raw: bytes):
            try:
                return json.loads(raw)
            except ValueError:
                return raw.decode("utf-8", "replace")

        with self._lock:
            self._seq += 1
            entry = {
                "seq": self._seq,
                "step": self.step,
                "role": handler.headers.get("X-T2S-Role"),
                "phase": handler.headers.get("X-T2S-Phase"),
                "started": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
                "seconds": round(time.time() - started, 1),
                "status": status,
                "error": error,
                "request": as_json(body),
                "response": as_json(data),
            }
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self.server.shutdown()


# ------------------------------------------------------------------ the skill repositories
def toml_str(value: str) -> str:
    return json.dumps(value)


def write_config(
    repo: Path, *, skill: str, suite_block: str, base_url: str, model: str, max_turns: int, analyst_turns: int
) -> None:
    roles = []
    for role, settings in ROLE_SETTINGS.items():
        lines = [
            f"[models.{role}]",
            f"model = {toml_str(model)}",
            f"base_url = {toml_str(base_url)}",
            'api_key_env = "T2S_CORPUS_NO_KEY"',
            "temperature = 0.0",
            f"timeout = {TIMEOUT_S}",
            "max_retries = 1",
            "concurrency = 1",
        ]
        lines += [f"{k} = {toml_str(v) if isinstance(v, str) else v}" for k, v in settings.items()]
        roles.append("\n".join(lines))
    text = f"""# Written by bench/collect_corpus.py: every role at the recording relay, one request at a time.
[skill]
name = "{skill}"

{chr(10).join(r + chr(10) for r in roles)}
[cache]
mode = "read-write"

{suite_block}
[rollout]
suite = "bench"
evolve_split = "evolve"
heldout_split = "heldout"
max_turns = {max_turns}
concurrency = 1

[analyze]
mode = "combined"
analyst = "agentic"
max_turns = {analyst_turns}
edit_retries = 2
concurrency = 1

[merge]
fan_in = 2
min_support = 2
retries = 2
concurrency = 1
"""
    (repo / "t2s.toml").write_text(text, encoding="utf-8")


SUITES = {
    "wtq": ("table-qa", 'type = "wikitablequestions"', WTQ_DIR),
    "verified": ("xlsx", 'type = "spreadsheetbench"', VERIFIED_DIR),
}


def init_repo(work: Path, name: str, relay_url: str, args) -> Path:
    repo = work / name
    seed, suite_type, data = SUITES[name]
    if (repo / ".git").exists():
        # The relay port changes per process; the cache key has no URL in it.
        text = (repo / "t2s.toml").read_text(encoding="utf-8")
        import re

        text = re.sub(r'base_url = "http://127\.0\.0\.1:\d+/v1"', f'base_url = "{relay_url}"', text)
        (repo / "t2s.toml").write_text(text, encoding="utf-8")
        return repo
    run([*T2S, "init", str(repo), "--seed", seed], step=f"{name}: init")
    suite_block = (
        f"[suites.bench]\n{suite_type}\npath = {toml_str(str(data))}\n"
        f"[suites.bench.splits]\n"
        f'evolve = {{ file = "splits.json", key = "evolve" }}\n'
        f'heldout = {{ file = "splits.json", key = "heldout" }}\n'
    )
    write_config(
        repo,
        skill=seed,
        suite_block=suite_block,
        base_url=relay_url,
        model=args.model,
        max_turns=args.max_turns,
        analyst_turns=args.analyst_turns,
    )
    return repo


# ------------------------------------------------------------------ running t2s
LOG: Path | None = None
RELAY: Relay | None = None


def say(message: str) -> None:
    line = f"[{now()}] {message}"
    print(line, flush=True)
    if LOG is not None:
        with LOG.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def run(argv: list[str], *, step: str, cwd: Path | None = None, ok_codes=(0,)) -> subprocess.CompletedProcess:
    """One t2s command; its output goes to the log. Failures are logged, not raised."""
    if RELAY is not None:
        RELAY.step = step
    say(f"{step}: $ {' '.join(argv[2:]) if argv[:2] == T2S[:2] else ' '.join(argv)}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("T2S_")}
    env["T2S_CORPUS_NO_KEY"] = "sk-local"
    started = time.time()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    say(f"{step}: exit {proc.returncode} after {time.time() - started:.0f}s")
    if LOG is not None:
        with LOG.open("a", encoding="utf-8") as fh:
            fh.write(
                proc.stdout[-6000:] + ("\n--- stderr ---\n" + proc.stderr[-4000:] if proc.stderr.strip() else "") + "\n"
            )
    if proc.returncode not in ok_codes:
        say(f"{step}: (non-zero exit kept as data; continuing)")
    return proc


def t2s(repo: Path, *args: str, step: str) -> subprocess.CompletedProcess:
    return run([*T2S, *args, "-C", str(repo)], step=step)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def run_files(repo: Path, run_name: str, folder: str) -> dict[str, dict]:
    """The JSON files of a folder of a run record."""
    ref = f"refs/t2s/runs/{run_name}"
    try:
        listing = git(repo, "ls-tree", "--name-only", f"{ref}:{folder}")
    except subprocess.CalledProcessError:
        return {}
    out = {}
    for name in listing.split():
        if name.endswith(".json"):
            out[name] = json.loads(git(repo, "show", f"{ref}:{folder}/{name}"))
    return out


def accepted_patches(repo: Path, run_name: str) -> int:
    return sum(
        1
        for rec in run_files(repo, run_name, "patches").values()
        if rec.get("status") in ("accepted", "unvalidated") and rec.get("commit")
    )


def export_trajectories(repo: Path, run_name: str, dest: Path, only_failed: bool) -> int:
    trajs = run_files(repo, run_name, "trajectories")
    lines = [json.dumps(t) for t in trajs.values() if not only_failed or t.get("verdict") == "failed"]
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def pipeline(work: Path, name: str, tasks: list[str], args) -> None:
    repo = init_repo(work, name, RELAY.url, args)
    reuse = Path(args.trajectories_from) / f"{name}-r1-all.jsonl" if args.trajectories_from else None
    if reuse is not None and reuse.is_file():
        # The trajectories of an earlier collection: the agent's hours are not spent again.
        t2s(repo, "import", "--format", "t2s", str(reuse), "--run", "r1", "--json", step=f"{name}: import r1")
    else:
        task_args = [a for t in tasks for a in ("--task", t)]
        t2s(
            repo,
            "rollout",
            "--run",
            "r1",
            "--split",
            "evolve",
            *task_args,
            "--keep-errored",
            "--json",
            step=f"{name}: rollout r1",
        )
    analyst = ["--analyst", args.analyst] if args.analyst else []
    t2s(repo, "analyze", "--run", "r1", "--include-unvalidated", *analyst, "--json", step=f"{name}: analyze r1")
    runs = ["r1"]
    if name == "verified" and not args.skip_single_call:  # the single-call error analyst on the failed trajectories
        export = work / f"{name}-r1-failed.jsonl"
        if export_trajectories(repo, "r1", export, only_failed=True):
            t2s(repo, "import", "--format", "t2s", str(export), "--run", "r1sc", "--json", step=f"{name}: import r1sc")
            t2s(
                repo,
                "analyze",
                "--run",
                "r1sc",
                "--mode",
                "error",
                "--analyst",
                "single-call",
                "--json",
                step=f"{name}: analyze r1sc (single-call)",
            )
            runs.append("r1sc")
    for run_name in runs:
        merge_if_inputs(repo, name, run_name)


def merge_if_inputs(repo: Path, name: str, run_name: str) -> None:
    """``t2s merge`` of a run with at least two accepted patches. With none, t2s rightly
    refuses ("no accepted patch branches to merge", exit 1) and the merger is never asked:
    the WTQ r1 merge of the first collection did just that, since all six analyses were
    rejected. Such suites get hand-made patch runs (:func:`handmade_patches`) instead."""
    have = accepted_patches(repo, run_name)
    if have < 2:
        say(f"{name}: merge {run_name}: skipped, {have} accepted patch(es) (the merger needs two)")
        return
    t2s(repo, "merge", "--run", run_name, "--fan-in", "2", "--json", step=f"{name}: merge {run_name}")


def suite_accepted(repo: Path) -> int:
    return sum(
        accepted_patches(repo, ref.rsplit("/", 1)[-1])
        for ref in git(repo, "for-each-ref", "--format=%(refname)", "refs/t2s/runs/").split()
        if not ref.endswith("/" + HANDMADE_RUN)
    )


def merger_inputs(work: Path, name: str, args) -> None:
    """Right after a suite's pipeline, so the merger is asked before the next suite's
    long analyses: a hand-made patch run when the suite's analyses left fewer than two
    accepted patches (so the merger has inputs), merged."""
    repo = work / name
    if (repo / ".git").exists() and suite_accepted(repo) < 2 and handmade_patches(work, name, args) >= 2:
        t2s(repo, "merge", "--run", HANDMADE_RUN, "--fan-in", "2", "--json", step=f"{name}: merge {HANDMADE_RUN}")


def extra_merges(work: Path, name: str, args) -> None:
    """More patches for the merger: the single-call analyst again on r1's trajectories,
    sampled (temperature ``--extra-temperature``, another seed each time: at temperature 0
    a seed changes nothing), merged whenever a run has two accepted patches."""
    repo = work / name
    if not (repo / ".git").exists():
        return
    export = work / f"{name}-r1-all.jsonl"
    if not export_trajectories(repo, "r1", export, only_failed=False):
        return
    for seed in range(1, args.extra_seeds + 1):
        run_name = f"r1x{seed}"
        t2s(
            repo,
            "import",
            "--format",
            "t2s",
            str(export),
            "--run",
            run_name,
            "--json",
            step=f"{name}: import {run_name}",
        )
        t2s(
            repo,
            "analyze",
            "--run",
            run_name,
            "--mode",
            "combined",
            "--analyst",
            "single-call",
            "--set",
            f"analyst.seed={seed}",
            "--set",
            f"analyst.temperature={args.extra_temperature}",
            "--json",
            step=f"{name}: analyze {run_name} (single-call, seed {seed}, temperature {args.extra_temperature})",
        )
        have = accepted_patches(repo, run_name)
        say(f"{name}: {run_name} has {have} accepted patch(es)")
        if have >= 2:
            merge_if_inputs(repo, name, run_name)


HANDMADE_RUN = "r1h"


def handmade_patches(work: Path, name: str, args) -> int:
    """Patches made another way, so that the merger has inputs: the lessons of analyses
    whose edits never applied, each committed as one patch whose edit is ours (the
    lessons appended as bullets to S0's last section), in run ``r1h``. Returns how many
    patches the run holds. Uses t2s's own library (render, commit, run record)."""
    from t2s.config import load_config
    from t2s.gitstore.store import GitStore
    from t2s.patches import PatchContext
    from t2s.record.lessons import Lesson, PatchRecord
    from t2s.record.refs import patch_branch
    from t2s.record.runs import RunRecord
    from t2s.skill.format import SKILL_FILE
    from t2s.skill.repo import limits_of

    repo = work / name
    if not (repo / ".git").exists():
        return 0
    store = GitStore.discover(repo)
    config = load_config(repo / "t2s.toml")
    export = work / f"{name}-r1-all.jsonl"
    if not export_trajectories(repo, "r1", export, only_failed=False):
        return 0
    t2s(
        repo,
        "import",
        "--format",
        "t2s",
        str(export),
        "--run",
        HANDMADE_RUN,
        "--json",
        step=f"{name}: import {HANDMADE_RUN}",
    )
    record = RunRecord(store, HANDMADE_RUN)
    manifest = record.manifest()
    existing = run_files(repo, HANDMADE_RUN, "patches")
    if existing:
        return len(existing)
    context = PatchContext(store, manifest.s0, manifest.skill_dir, strict=config.lint.strict, limits=limits_of(config))
    skill_md = context.texts()[SKILL_FILE]
    heading = [line for line in skill_md.splitlines() if line.startswith("## ")][-1]
    sources, seen = [], set()
    for ref in sorted(git(repo, "for-each-ref", "--format=%(refname)", "refs/t2s/runs/").split()):
        run_name = ref.rsplit("/", 1)[-1]
        if run_name == HANDMADE_RUN:
            continue
        for analysis in run_files(repo, run_name, "analyses").values():
            report = analysis.get("report") or {}
            lessons = [x["text"].strip() for x in report.get("lessons") or [] if x.get("text", "").strip()]
            key = (analysis["trajectory"], tuple(lessons))
            if (
                analysis["status"] == "rejected"
                and lessons
                and "leak" not in analysis.get("reject_kind", "")
                and key not in seen
            ):
                seen.add(key)
                sources.append((run_name, analysis, report, lessons))
    made = 0
    for run_name, analysis, report, lessons in sources[: args.handmade]:
        number = f"{made + 1:04d}"
        text = "\n".join("- " + " ".join(x.split()) for x in lessons)
        edits = [{"op": "append_to_section", "file": SKILL_FILE, "heading": heading, "text": text}]
        patch = context.build(edits)
        if patch.status != "patch":
            say(f"{name}: hand-made patch from {run_name}/{analysis['patch']} does not render: {patch.reason}")
            continue
        ref = patch_branch(HANDMADE_RUN, number)
        from t2s.patches import commit_patch

        commit = commit_patch(
            store,
            s0=manifest.s0,
            tree=patch.tree,
            ref=ref,
            subject=" ".join(lessons[0].split()),
            body=f"Lessons of analysis {run_name}/{analysis['patch']} (its edits never applied); "
            f"the edit is bench/collect_corpus.py's.",
            trailers=[
                ("T2S-Run", HANDMADE_RUN),
                ("T2S-Patch", number),
                ("T2S-Trajectory", analysis["trajectory"]),
                ("T2S-Analyst", "handmade"),
            ],
        )
        topics = [x.get("topic") or "" for x in report.get("lessons") or []]
        rec = PatchRecord(
            patch=number,
            trajectory=analysis["trajectory"],
            task=analysis.get("task") or "",
            outcome=analysis["outcome"],
            analyst="handmade",
            model=analysis.get("model", ""),
            status="accepted",
            reason=f"lessons of {run_name}/{analysis['patch']}, whose edits never applied; edit by bench/collect_corpus.py",
            failure_causes=list(report.get("failure_causes") or []),
            lessons=[
                Lesson(
                    id=f"p{number}.{k}",
                    text=t,
                    support=[analysis["trajectory"]],
                    topic=(topics[k - 1] if k - 1 < len(topics) else ""),
                )
                for k, t in enumerate(lessons, start=1)
            ],
            edits=edits,
            diff=patch.diff,
            branch=ref,
            commit=commit,
            lines_added=patch.added,
            lines_removed=patch.removed,
            attempts=1,
        )
        record.write({f"patches/{number}.json": rec}, f"t2s run {HANDMADE_RUN}: hand-made patch {number}")
        made += 1
    say(f"{name}: {made} hand-made patch(es) in run {HANDMADE_RUN}")
    return made


def total_accepted(work: Path) -> int:
    total = 0
    for name in SUITES:
        repo = work / name
        if (repo / ".git").exists():
            for ref in git(repo, "for-each-ref", "--format=%(refname)", "refs/t2s/runs/").split():
                total += accepted_patches(repo, ref.rsplit("/", 1)[-1])
    return total


def wtq_questions(count: int) -> list[str]:
    return json.loads((WTQ_DIR / "splits.json").read_text())["evolve"][:count]


def collect(args) -> None:
    global LOG, RELAY
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    LOG = work / "collect.log"
    RELAY = Relay(args.upstream, work / "exchanges.jsonl")
    say(f"relay {RELAY.url} -> {args.upstream}; work dir {work}; t2s at {git(REPO_ROOT, 'rev-parse', 'HEAD').strip()}")
    meta = work / "meta.json"
    if not meta.exists():
        meta.write_text(
            json.dumps(
                {
                    "t2s_commit": git(REPO_ROOT, "rev-parse", "HEAD").strip(),
                    "started": now(),
                    "model": args.model,
                    "upstream": args.upstream,
                    "role_settings": ROLE_SETTINGS,
                    "timeout_s": TIMEOUT_S,
                    "rollout_max_turns": args.max_turns,
                    "analyze_max_turns": args.analyst_turns,
                },
                indent=1,
            ),
            encoding="utf-8",
        )
    try:
        if args.wtq:
            pipeline(work, "wtq", wtq_questions(args.wtq), args)
            merger_inputs(work, "wtq", args)
        if args.verified:
            pipeline(work, "verified", VERIFIED_TASKS[: args.verified], args)
            merger_inputs(work, "verified", args)
        if total_accepted(work) < args.min_merge_inputs:
            say(f"fewer than {args.min_merge_inputs} accepted patches: extra single-call analyses for the merger")
            for name in SUITES:
                extra_merges(work, name, args)
        if total_accepted(work) < args.min_merge_inputs:
            say(f"still fewer than {args.min_merge_inputs} accepted patches: hand-made patches for the merger")
            for name in SUITES:
                if (work / name / ".git").exists() and handmade_patches(work, name, args) >= 2:
                    t2s(
                        work / name,
                        "merge",
                        "--run",
                        HANDMADE_RUN,
                        "--fan-in",
                        "2",
                        "--json",
                        step=f"{name}: merge {HANDMADE_RUN}",
                    )
        say("collection finished")
    finally:
        RELAY.close()


# ------------------------------------------------------------------ extraction
# Markers of the messages t2s sends back after an answer (t2s/prompts/ and t2s/merge.py).
REPAIR_MARK = "Your previous answer could not be used:"
EDIT_FAIL_MARK = "Your edits were not applied"
EDIT_RETRY_MARK = 'Reply with only the corrected JSON object `{"edits"'
MERGE_FAIL_MARK = "Your merge was not accepted"
FORCE_MARK = "Your turn budget is used up"
SUBMIT_REFUSED_MARK = "[submit] refused"


def _msg_key(m: dict) -> str:
    """A message as compared across the relay log and the run records."""
    calls = [
        (c.get("function", c).get("name"), c.get("function", c).get("arguments")) for c in (m.get("tool_calls") or [])
    ]
    return json.dumps([m.get("role"), m.get("content") or "", m.get("tool_call_id") or "", calls], ensure_ascii=False)


def _is_prefix(short: list[dict], long: list[dict]) -> bool:
    return len(short) <= len(long) and all(_msg_key(a) == _msg_key(b) for a, b in zip(short, long, strict=False))


def _text(answer: dict) -> str:
    """What t2s parses: the content, or the first tool call's arguments when there is none."""
    raw = answer.get("content") or ""
    if not raw.strip() and answer.get("tool_calls"):
        raw = answer["tool_calls"][0]["arguments"]
    return raw


def _clip(text: str | None, limit: int = 800) -> str:
    text = text or ""
    return (
        text
        if len(text) <= limit
        else text[: limit // 2] + f"\n[... {len(text) - limit} characters cut ...]\n" + text[-limit // 2 :]
    )


class _Repo:
    """One skill repository of the work directory: git, config, cache, run records."""

    def __init__(self, path: Path):
        import sqlite3

        from t2s.config import load_config
        from t2s.gitstore.store import GitStore
        from t2s.llm.client import default_cache_path
        from t2s.record.runs import RunRecord, list_runs

        self.name = path.name
        self.store = GitStore.discover(path)
        self.config = load_config(path / "t2s.toml")
        cache_file = default_cache_path(self.store.git_dir, self.config)
        self.cache: dict[str, dict] = {}
        if cache_file.exists():
            with sqlite3.connect(str(cache_file)) as db:
                for key, response in db.execute("SELECT key, response FROM responses"):
                    self.cache[key] = json.loads(response)
        self.records = {run: RunRecord(self.store, run) for run in list_runs(self.store)}

    def folder(self, run: str, folder: str) -> dict[str, dict]:
        return {
            path.rsplit("/", 1)[-1][:-5]: json.loads(data)
            for path, data in self.records[run].read_folder(folder).items()
            if path.endswith(".json") and path.count("/") == 1
        }


def _suite_of(repo: _Repo):
    from t2s.rollouts.rollout import load_rollout_suite

    return load_rollout_suite(repo.config, repo.store, "bench")


def _s0_context(repo: _Repo, out: Path) -> dict:
    """Write S0's skill files and return what a replay needs besides them."""
    from t2s.analysis.analyze import _heldout_ids
    from t2s.patches import PatchContext
    from t2s.skill.repo import limits_of

    manifests = {run: rec.manifest() for run, rec in repo.records.items()}
    s0s = {m.s0 for m in manifests.values()}
    assert len(s0s) == 1, f"{repo.name}: runs with different S0: {s0s}"
    manifest = next(iter(manifests.values()))
    context = PatchContext(repo.store, manifest.s0, manifest.skill_dir)
    folder = out / "s0" / repo.name
    if folder.exists():
        shutil.rmtree(folder)
    for rel, data in context.files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    limits = limits_of(repo.config)
    return {
        "suite": repo.name,
        "s0_commit": manifest.s0,
        "skill_dir": manifest.skill_dir,
        "files": f"s0/{repo.name}/",
        "strict": repo.config.lint.strict,
        "limits": {"max_skill_lines": limits.max_skill_lines, "max_reference_lines": limits.max_reference_lines},
        "min_support": repo.config.merge.min_support,
        "forbidden_ids": _heldout_ids(_suite_of(repo), repo.config),
    }


def _exchanges(work: Path, repo: _Repo) -> list[dict]:
    """The repository's model calls, one per distinct request, with the answer t2s stored."""
    from t2s.llm.cache import request_key
    from t2s.llm.client import _parse_completion

    seen: set[str] = set()
    out = []
    failed_calls = repo.failed_calls = []
    with (work / "exchanges.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            entry = json.loads(line)
            if not entry["step"].startswith(repo.name + ":") or not isinstance(entry["request"], dict):
                continue
            key = request_key(entry["request"])
            if entry["status"] != 200:
                failed_calls.append(
                    f"{entry['seq']} {entry['role']} HTTP {entry['status']} {entry.get('error') or ''}".strip()
                )
            if key in seen:
                continue  # a client-side retry of the same request
            cached = repo.cache.get(key)
            if cached is None:
                if entry["status"] != 200:
                    continue  # never answered: nothing to keep
                cached = _parse_completion(json.dumps(entry["response"]).encode())
                source = "relay"
            else:
                source = "cache"
            seen.add(key)
            out.append(
                {
                    **entry,
                    "key": key,
                    "answer": cached,
                    "source": source,
                    "run": entry["step"].split()[2] if len(entry["step"].split()) > 2 else "",
                }
            )
    return out


class _Conversations:
    """Requests stored once: each answer points at a conversation and a prefix length."""

    def __init__(self):
        self.items: list[dict] = []
        self.tools: dict[str, list] = {}

    def tools_id(self, tools: list | None) -> str | None:
        if not tools:
            return None
        blob = json.dumps(tools, sort_keys=True)
        import hashlib

        tid = "tools-" + hashlib.sha256(blob.encode()).hexdigest()[:10]
        self.tools[tid] = tools
        return tid

    def place(self, cid_prefix: str, groups: list[dict]) -> None:
        """Give every exchange of one subject ``request_ref``: longest requests first."""
        mine: list[dict] = []
        for ex in sorted(groups, key=lambda e: -len(e["request"]["messages"])):
            messages = ex["request"]["messages"]
            home = next(
                (
                    c
                    for c in mine
                    if _is_prefix(messages, c["messages"])
                    and all(a == b for a, b in zip(messages, c["messages"], strict=False))
                ),
                None,
            )
            if home is None:
                home = {"id": f"{cid_prefix}#{len(mine) + 1}", "messages": messages}
                mine.append(home)
            ex["request_ref"] = {"conversation": home["id"], "prefix": len(messages)}
        self.items.extend(mine)


def _params(request: dict) -> dict:
    return {k: v for k, v in request.items() if k not in ("messages", "tools")}


def _followups(ex: dict, pool: list[dict]) -> list[dict]:
    """t2s's reaction to an answer: the messages after it in a later request that carries it.

    That request repeats this one's messages up to some point k (all of them, except for
    a merger retry, which restarts from its attempt's first messages) and then the
    answer: verbatim, or as t2s's JSON dump of it (``ex["echo"]``, merger retries).
    """
    messages = ex["request"]["messages"]
    answer = {
        "role": "assistant",
        "content": ex["answer"].get("content"),
        "tool_calls": [
            {"function": {"name": c["name"], "arguments": c["arguments"]}} for c in ex["answer"].get("tool_calls") or []
        ],
    }
    wanted = {_msg_key(answer)}
    if ex.get("echo"):
        wanted.add(_msg_key({"role": "assistant", "content": ex["echo"]}))
    echo = _msg_key({"role": "assistant", "content": ex["echo"]}) if ex.get("echo") else None
    for other in sorted(pool, key=lambda o: o["seq"]):  # the first later request that carries it
        if other["seq"] <= ex["seq"]:
            continue
        om = other["request"]["messages"]
        ks = [len(messages)] + (list(range(len(messages) - 1, 1, -1)) if echo else [])
        for k in ks:
            if k >= len(om) or om[k]["role"] != "assistant" or not _is_prefix(om[:k], messages):
                continue
            if (k == len(messages) and _msg_key(om[k]) in wanted) or _msg_key(om[k]) == echo:
                cut = next((i for i in range(k + 1, len(om)) if om[i]["role"] == "assistant"), len(om))
                return om[k + 1 : cut]
    return []


def _answer_line(ex: dict, role: str, suite: str, subject: str, **extra) -> dict:
    request = ex["request"]
    return {
        "id": f"{suite}/{ex['run']}/{role}/{subject}/{ex['seq']}",
        "role": role,
        "suite": suite,
        "run": ex["run"],
        "subject": subject,
        "seq": ex["seq"],
        "step": ex["step"],
        "phase": ex["phase"],
        "started": ex["started"],
        "seconds": ex["seconds"],
        "cache_key": ex["key"],
        "source": ex["source"],
        "request": {**ex["request_ref"], "tools": ex.get("tools_id"), "params": _params(request)},
        "answer": ex["answer"],
        **extra,
    }


def _reaction(messages: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": _clip(m.get("content"), 1500)} for m in messages]


# -- the agent
def _agent_lines(repo: _Repo, exchanges: list[dict], convs: _Conversations) -> list[dict]:
    lines = []
    by_run: dict[str, list[dict]] = {}
    for ex in exchanges:
        if ex["role"] == "agent":
            by_run.setdefault(ex["run"], []).append(ex)
    for run, exs in by_run.items():
        trajectories = repo.folder(run, "trajectories")
        for tid, traj in trajectories.items():
            mine = [ex for ex in exs if _is_prefix(ex["request"]["messages"], traj["messages"])]
            if not mine:
                continue
            for ex in mine:
                ex["tools_id"] = convs.tools_id(ex["request"].get("tools"))
            convs.place(f"{repo.name}/{run}/agent/{tid}", mine)
            for ex in sorted(mine, key=lambda e: e["seq"]):
                messages = ex["request"]["messages"]
                turn = 1 + sum(1 for m in messages if m["role"] == "assistant")
                steps = [s for s in traj["steps"] if s["turn"] == turn]
                outcome = {
                    "protocol": "tools" if ex["request"].get("tools") else "text",
                    "actions": [
                        {
                            "tool": s["tool"],
                            "arguments": s["arguments"],
                            "error": s.get("error"),
                            "exit_code": s.get("exit_code"),
                            "observation": _clip(s.get("observation"), 400),
                        }
                        for s in steps
                    ],
                    "reaction": _reaction(_followups(ex, mine)),
                    "episode": {
                        "verdict": traj["verdict"],
                        "stop_reason": traj.get("stop_reason"),
                        "turns": traj.get("turns"),
                        "protocol_switch": traj.get("protocol_switch"),
                        "final_answer_suite": repo.name == "wtq",
                    },
                }
                lines.append(_answer_line(ex, "agent", repo.name, tid, attempt={"turn": turn}, outcome=outcome))
    return lines


# -- the analysts
def _analyst_kind(messages: list[dict]) -> str:
    last = next((m for m in reversed(messages) if m["role"] != "assistant"), {})
    text = last.get("content") or ""
    if len(messages) == 2:
        return "first"
    if text.startswith(REPAIR_MARK):
        return "repair"
    if EDIT_RETRY_MARK in text:
        return "edit-retry"
    if text.startswith(FORCE_MARK):
        return "forced-report"
    return "tool-turn"


def _analyst_outcome(ex: dict, reaction: list[dict], analysis: dict) -> dict:
    """What t2s made of one analyst answer, read from what it sent back (or the record)."""
    from t2s.llm.structured import extract_json

    texts = [m.get("content") or "" for m in reaction]
    joined = "\n".join(texts)
    try:
        data = extract_json(_text(ex["answer"]))
    except ValueError:
        data = None
    edits = data.get("edits") if isinstance(data, dict) else None
    out: dict = {
        "edit_list": isinstance(edits, list) and bool(edits),
        "edit_count": len(edits) if isinstance(edits, list) else 0,
    }
    if any(t.startswith(REPAIR_MARK) for t in texts):
        error = (
            next(t for t in texts if t.startswith(REPAIR_MARK))[len(REPAIR_MARK) :].split("\nReply again")[0].strip()
        )
        out.update(result="validation error" if "does not match the schema" in error else "parse error", error=error)
    elif EDIT_FAIL_MARK in joined:
        block = joined[joined.index(EDIT_FAIL_MARK) :]
        out.update(result="edits failed", failures=[x[2:] for x in block.splitlines() if x.startswith("- ")])
    elif reaction:
        out.update(
            result="tool observations" if any(m["role"] == "tool" for m in reaction) else "user follow-up",
            submit_refused=SUBMIT_REFUSED_MARK in joined,
        )
    elif "never matched" in analysis.get("reason", ""):  # the last repair round failed too
        error = analysis["reason"].split(" attempts: ", 1)[-1]
        out.update(result="validation error" if "does not match the schema" in error else "parse error", error=error)
    else:  # the last answer of the analysis: the record says what became of it
        out.update(
            result={"accepted": "edits applied", "unvalidated": "edits applied (unvalidated)"}.get(
                analysis["status"], "rejected"
            ),
            status=analysis["status"],
            reason=analysis.get("reason", ""),
            edit_failures=[
                f"{f.get('op')} {f.get('file') or ''}: {f.get('reason')}" for f in analysis.get("edit_failures") or []
            ],
        )
        if analysis["status"] == "rejected" and "edits" in (analysis.get("reject_kind") or "") and out["edit_list"]:
            out["result"] = "edits failed"
            out["failures"] = [
                f"edit {f.get('index')} ({f.get('op')}) on {f.get('file')}: {f.get('reason')}"
                if f.get("index") is not None
                else f"patch: {f.get('reason')}"
                for f in analysis.get("edit_failures") or []
            ]
    return out


def _analyst_lines(repo: _Repo, exchanges: list[dict], convs: _Conversations, contexts: dict) -> list[dict]:
    from t2s.agent.trajectory import load_trajectory
    from t2s.analysis.analyze import _task_of, forbidden_values_for

    suite = _suite_of(repo)
    lines = []
    by_run: dict[str, list[dict]] = {}
    for ex in exchanges:
        if ex["role"] == "analyst":
            by_run.setdefault(ex["run"], []).append(ex)
    for run, exs in by_run.items():
        analyses = repo.folder(run, "analyses")
        trajectories = repo.records[run].read_folder("trajectories")
        for tid, analysis in analyses.items():
            mine = [ex for ex in exs if _is_prefix(ex["request"]["messages"], analysis["transcript"])]
            if not mine:
                continue
            traj = load_trajectory(trajectories[f"trajectories/{tid}.json"])
            forbidden = forbidden_values_for(traj, _task_of(suite, traj), suite)
            for ex in mine:
                ex["tools_id"] = convs.tools_id(ex["request"].get("tools"))
            convs.place(f"{repo.name}/{run}/analyst/{tid}", mine)
            ordered = sorted(mine, key=lambda e: e["seq"])
            for n, ex in enumerate(ordered, start=1):
                reaction = _followups(ex, mine)
                lines.append(
                    _answer_line(
                        ex,
                        "analyst",
                        repo.name,
                        tid,
                        analyst=analysis["analyst"],
                        patch=analysis.get("patch"),
                        outcome_of_trajectory=analysis["outcome"],
                        attempt={"call": n, "kind": _analyst_kind(ex["request"]["messages"])},
                        context={"s0": contexts[repo.name]["files"], "forbidden_values": forbidden},
                        outcome={**_analyst_outcome(ex, reaction, analysis), "reaction": _reaction(reaction)},
                        final={
                            "status": analysis["status"],
                            "reason": analysis.get("reason", ""),
                            "reject_kind": analysis.get("reject_kind", ""),
                        }
                        if n == len(ordered)
                        else None,
                    )
                )
    return lines


# -- the merger
def _merge_jobs(repo: _Repo, run: str, context: dict) -> list[dict]:
    """Every recorded merge of a run with its inputs, rebuilt as t2s built them."""
    from t2s.consolidation.group import render_messages
    from t2s.consolidation.inputs import load_patch_inputs, merge_input
    from t2s.consolidation.models import MergeReport
    from t2s.patches import PatchContext
    from t2s.record.lessons import MERGES_DIR

    record = repo.records[run]
    manifest = record.manifest()
    patch_inputs, _ = load_patch_inputs(repo.store, record, manifest.s0, manifest.skill_dir)
    reports = {name: MergeReport.model_validate(data) for name, data in repo.folder(run, MERGES_DIR).items()}
    by_commit = {i.commit: i for i in patch_inputs}
    by_commit.update({r.commit: merge_input(r) for r in reports.values() if r.commit})
    s0_texts = PatchContext(repo.store, manifest.s0, manifest.skill_dir).texts()
    jobs = []
    for name, report in sorted(reports.items()):
        inputs = [by_commit[i["commit"]] for i in report.inputs]
        messages = render_messages(
            run=run, name=name, level=report.level, s0_texts=s0_texts, inputs=inputs, min_support=context["min_support"]
        )
        jobs.append(
            {
                "id": f"{repo.name}/{run}/{name}",
                "suite": repo.name,
                "run": run,
                "name": name,
                "level": report.level,
                "group": report.group,
                "min_support": context["min_support"],
                "s0": context["files"],
                "inputs": [i.model_dump(mode="json") for i in inputs],
                "report": report.model_dump(
                    mode="json",
                    include={"status", "reason", "attempts", "lessons", "folded", "dropped", "conflicts", "diff"},
                ),
                "_messages": messages,
            }
        )
    return jobs


UNFINISHED = "the merge was still running when the corpus was extracted"


def _unfinished_jobs(repo: _Repo, run: str, context: dict, recorded: list[dict]) -> list[dict]:
    """Level-1 merges the merger was asked about but whose level was not recorded yet (a
    level is recorded when all its merges end): rebuilt from the run's patches and the
    plan ``t2s merge`` makes (``balanced_groups`` at the run's fan-in, 2 here)."""
    from t2s.consolidation.group import render_messages
    from t2s.consolidation.inputs import load_patch_inputs
    from t2s.consolidation.plan import balanced_groups
    from t2s.patches import PatchContext

    if any(job["level"] == 1 for job in recorded):
        return []
    record = repo.records[run]
    manifest = record.manifest()
    patch_inputs, _ = load_patch_inputs(repo.store, record, manifest.s0, manifest.skill_dir)
    if len(patch_inputs) < 2:
        return []
    s0_texts = PatchContext(repo.store, manifest.s0, manifest.skill_dir).texts()
    jobs = []
    for group, inputs in enumerate(balanced_groups(patch_inputs, 2), start=1):
        name = f"L1-{group:02d}"
        messages = render_messages(
            run=run, name=name, level=1, s0_texts=s0_texts, inputs=inputs, min_support=context["min_support"]
        )
        report = {
            "status": "running",
            "reason": UNFINISHED,
            "attempts": 0,
            "lessons": [],
            "folded": {},
            "dropped": [],
            "conflicts": [],
            "diff": "",
        }
        jobs.append(
            {
                "id": f"{repo.name}/{run}/{name}",
                "suite": repo.name,
                "run": run,
                "name": name,
                "level": 1,
                "group": group,
                "min_support": context["min_support"],
                "s0": context["files"],
                "inputs": [i.model_dump(mode="json") for i in inputs],
                "report": report,
                "_messages": messages,
            }
        )
    return jobs


def _merge_attempt(messages: list[dict]) -> dict:
    feedback = [
        i
        for i, m in enumerate(messages)
        if m["role"] == "user" and (m.get("content") or "").startswith(MERGE_FAIL_MARK)
    ]
    start = feedback[-1] if feedback else 0
    repairs = sum(
        1 for m in messages[start:] if m["role"] == "user" and (m.get("content") or "").startswith(REPAIR_MARK)
    )
    return {"merge_attempt": 1 + len(feedback), "structured_round": 1 + repairs}


def _merger_outcome(ex: dict, reaction: list[dict], job: dict, last: bool) -> dict:
    texts = [m.get("content") or "" for m in reaction]
    if any(t.startswith(REPAIR_MARK) for t in texts):
        error = (
            next(t for t in texts if t.startswith(REPAIR_MARK))[len(REPAIR_MARK) :].split("\nReply again")[0].strip()
        )
        return {"result": "validation error" if "does not match the schema" in error else "parse error", "error": error}
    if any(t.startswith(MERGE_FAIL_MARK) for t in texts):
        text = next(t for t in texts if t.startswith(MERGE_FAIL_MARK))
        return {"result": "not accepted", "problems": [x[2:] for x in text.splitlines() if x.startswith("- ")]}
    report = job["report"]
    if report["status"] == "running" and last:
        return {"result": "unfinished", "reason": UNFINISHED}
    if report["status"] == "merged" and last:
        return {"result": "merged"}
    if "never matched" in report["reason"] and last:  # the last repair round failed too
        error = report["reason"].split(" attempts: ", 1)[-1]
        return {"result": "validation error" if "does not match the schema" in error else "parse error", "error": error}
    if report["reason"].startswith("no valid merge after") and last:
        return {
            "result": "not accepted",
            "problems": report["reason"].split(" attempts: ", 1)[-1].split("; "),
            "note": "the last attempt's problems, from the merge report (joined with '; ', at most 4)",
        }
    return {"result": "merge failed", "reason": report["reason"]}


def _merger_lines(
    repo: _Repo, exchanges: list[dict], convs: _Conversations, context: dict
) -> tuple[list[dict], list[dict]]:
    from t2s.consolidation.models import MergerAnswer
    from t2s.llm.structured import extract_json

    lines, jobs_out = [], []
    by_run: dict[str, list[dict]] = {}
    for ex in exchanges:
        if ex["role"] == "merger":
            by_run.setdefault(ex["run"], []).append(ex)
    for run, exs in by_run.items():
        recorded = _merge_jobs(repo, run, context)
        for job in recorded + _unfinished_jobs(repo, run, context, recorded):
            base = job.pop("_messages")
            mine = [ex for ex in exs if _is_prefix(base, ex["request"]["messages"])]
            if mine and [m for m in mine[0]["request"]["messages"][:2]] != base:
                raise AssertionError(f"{job['id']}: the rebuilt merger request differs from the one sent")
            job["answers"] = len(mine)
            jobs_out.append(job)
            if not mine:
                continue
            for ex in mine:
                try:  # noqa: SIM105 - run_merge echoes a valid answer as its JSON dump, not verbatim
                    ex["echo"] = MergerAnswer.model_validate(extract_json(_text(ex["answer"]))).model_dump_json()
                except ValueError:
                    pass
            convs.place(f"{repo.name}/{run}/merger/{job['name']}", mine)
            ordered = sorted(mine, key=lambda e: e["seq"])
            for n, ex in enumerate(ordered, start=1):
                reaction = _followups(ex, mine)
                outcome = _merger_outcome(ex, reaction, job, last=n == len(ordered))
                lines.append(
                    _answer_line(
                        ex,
                        "merger",
                        repo.name,
                        job["name"],
                        job=job["id"],
                        attempt={"call": n, **_merge_attempt(ex["request"]["messages"])},
                        outcome={**outcome, "reaction": _reaction(reaction)},
                    )
                )
    return lines, jobs_out


def _run_overview(repo: _Repo) -> dict:
    """Per run: trajectories, analyses, patches and merges by status, and the candidate."""
    out = {}
    for run, record in sorted(repo.records.items()):

        def count(folder: str, key: str) -> dict:
            tally: dict = {}
            for item in repo.folder(run, folder).values():  # noqa: B023
                tally[item.get(key)] = tally.get(item.get(key), 0) + 1
            return tally

        manifest = record.manifest()
        out[f"{repo.name}/{run}"] = {
            "trajectories": count("trajectories", "verdict"),
            "analyses": count("analyses", "analyst"),
            "patches": count("patches", "status"),
            "merges": count("merges", "status"),
            "candidate": repo.store.rev_parse(f"refs/heads/t2s/{run}/candidate") is not None,
            "stages": {name: stage.status for name, stage in (manifest.stages or {}).items()},
        }
    return out


def _write_jsonl(path: Path, items: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False, sort_keys=False) + "\n")


def extract(work: Path, out: Path) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    out.mkdir(parents=True, exist_ok=True)
    convs = _Conversations()
    contexts, agent, analyst, merger, jobs, runs = {}, [], [], [], [], {}
    stats = {}
    for name in SUITES:
        path = work / name
        if not (path / ".git").exists():
            continue
        repo = _Repo(path)
        contexts[name] = _s0_context(repo, out)
        exchanges = _exchanges(work, repo)
        agent += _agent_lines(repo, exchanges, convs)
        analyst += _analyst_lines(repo, exchanges, convs, contexts)
        m_lines, m_jobs = _merger_lines(repo, exchanges, convs, contexts[name])
        merger += m_lines
        jobs += m_jobs
        runs.update(_run_overview(repo))
        placed = {ex["key"] for ex in exchanges if "request_ref" in ex}
        stats[name] = {
            "exchanges": len(exchanges),
            "placed": len(placed),
            "unplaced": [f"{ex['seq']} {ex['role']} {ex['step']}" for ex in exchanges if "request_ref" not in ex],
            "cache_entries": len(repo.cache),
            "cache_entries_without_relay_record": len(set(repo.cache) - {ex["key"] for ex in exchanges}),
            "answers_only_in_relay_log": sum(1 for ex in exchanges if ex["source"] == "relay"),
            "failed_calls": repo.failed_calls,
        }
    _write_jsonl(out / "agent.jsonl", agent)
    _write_jsonl(out / "analyst.jsonl", analyst)
    _write_jsonl(out / "merger.jsonl", merger)
    _write_jsonl(out / "merge_jobs.jsonl", jobs)
    _write_jsonl(out / "conversations.jsonl", convs.items)
    (out / "tools.json").write_text(json.dumps(convs.tools, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    meta = json.loads((work / "meta.json").read_text(encoding="utf-8"))
    meta.update(finished=now(), contexts=contexts, extraction=stats, runs=runs)
    (out / "corpus.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(stats, indent=1))
    for f in sorted(out.rglob("*")):
        if f.is_file():
            print(f"{f.stat().st_size:>10,}  {f.relative_to(out)}")


# ------------------------------------------------------------------ summary: what the answers show
def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _s0_files(fixtures: Path, suite: str) -> dict[str, str]:
    root = fixtures / "s0" / suite
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file()}


import re as _re  # noqa: E402

_QUOTES = str.maketrans({c: "'" for c in '"“”‘’`´'})
#: Normalisations tried on an anchor that occurs 0 times, smallest combination first.
_NORMALISERS = {  # applied in this order
    "list markers/numbering": lambda s: "\n".join(
        _re.sub(r"^(\s*)(?:[-*+]\s+)?(?:\d+[.)]\s+)?", r"\1", line) for line in s.splitlines()
    ),
    "heading marks": lambda s: "\n".join(_re.sub(r"^\s*#+\s*", "", line) for line in s.splitlines()),
    "markdown emphasis/code": lambda s: _re.sub(r"\*\*|__|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)|`", "", s),
    "quotes": lambda s: s.translate(_QUOTES),
    "whitespace": lambda s: " ".join(s.split()),
}


def _norm(text: str, names: tuple[str, ...]) -> str:
    for name in _NORMALISERS:  # a fixed order
        if name in names:
            text = _NORMALISERS[name](text)
    return text


_PROMPT_EXAMPLES = ("edit_format.md", "analyst_report_format.md", "merger_system.md", "structured_output.md")


def _echoes_prompt(text: str) -> bool:
    """True when ``text`` (a lesson, an anchor...) is copied from an example of t2s's prompts."""
    from t2s.prompts import load

    probe = " ".join(str(text).split()).strip(" -").lower()
    if len(probe) < 8:
        return False
    return any(probe in " ".join(load(name).split()).lower() for name in _PROMPT_EXAMPLES)


def classify_anchor(needle: str, text: str) -> dict:
    """Why an anchor (or `old`) that occurs 0 times missed: the fewest normalisations that
    make it occur, else how similar the closest lines are."""
    import difflib
    import itertools

    if needle.strip() and text.count(needle) >= 1:
        return {"kind": "verbatim in S0 (an earlier edit of the list changed the file)"}
    if _echoes_prompt(needle):
        return {"kind": "an example of the prompt, not S0's text"}
    names = tuple(_NORMALISERS)
    for size in range(1, len(names) + 1):
        unique, ambiguous = [], []
        for combo in itertools.combinations(names, size):
            n_needle, n_text = _norm(needle, combo).strip(), _norm(text, combo)
            count = n_text.count(n_needle) if n_needle else 0
            if count == 1:
                unique.append(" + ".join(combo))
            elif count > 1:
                ambiguous.append(" + ".join(combo))
        if unique:  # every smallest combination that resolves it (any one of them would do)
            return {"kind": " | ".join(unique)}
        if ambiguous:
            return {"kind": " | ".join(ambiguous) + " (then ambiguous)"}
    lines = text.splitlines()
    want = needle.strip("\n").splitlines() or [needle]
    width = len(want)
    target = "\n".join(x.strip() for x in want)
    best = 0.0
    for i in range(max(1, len(lines) - width + 1)):
        window = "\n".join(x.strip() for x in lines[i : i + width])
        best = max(best, difflib.SequenceMatcher(None, target, window, autojunk=False).ratio())
    kind = "fuzzy >= 0.9" if best >= 0.9 else "fuzzy 0.8-0.9" if best >= 0.8 else "not in the file (< 0.8)"
    return {"kind": kind, "similarity": round(best, 3)}


def _edit_failure_kind(reason: str) -> str:
    if "occurs 0 times" in reason:
        return "anchor/old occurs 0 times"
    if _re.search(r"occurs [2-9]\d* times|occurs \d\d+ times", reason):
        return "anchor/old ambiguous"
    if "no heading" in reason:
        return "heading not found"
    if "already exists" in reason or "exists already" in reason:
        return "section/file already exists"
    if (
        "not valid" in reason
        or "Field required" in reason
        or "unknown op" in reason
        or "Extra inputs" in reason
        or "Input should" in reason
    ):
        return "malformed edit"
    if "link" in reason:
        return "reference not linked"
    if "task-specific value" in reason or "held-out" in reason:
        return "leak guard"
    if "changes nothing" in reason or "empty" in reason:
        return "empty / no change"
    if "does not apply" in reason:
        return "git apply"
    return "other"


def _needles(edit: dict) -> list[str]:
    if not isinstance(edit, dict):
        return []
    op = edit.get("op")
    if op == "insert" and isinstance(edit.get("anchor"), str):
        return [edit["anchor"]]
    if op == "replace" and isinstance(edit.get("old"), str):
        return [edit["old"]]
    return []


def _anchor_slips(edits: list, failures: list[str], files: dict[str, str], sink: dict, where: str) -> None:
    """Classify the edits of one list whose failure says 'occurs 0 times'."""
    for failure in failures:
        m = _re.match(r"edit (\d+) \((\w+)\)(?: on ([^:]+))?: (.*)", failure, _re.S)
        if not m or "occurs 0 times" not in m.group(4):
            continue
        index = int(m.group(1)) - 1
        if index >= len(edits) or not _needles(edits[index]):
            continue
        edit = edits[index]
        path = (edit.get("file") or "SKILL.md").strip().lstrip("./")
        text = files.get(path)
        if text is None:
            continue
        needle = _needles(edit)[0]
        verdict = classify_anchor(needle, text)
        entry = sink.setdefault(verdict["kind"], {"count": 0, "example": None})
        entry["count"] += 1
        example = {"where": where, "edit": edit.get("op"), "file": path, "anchor": needle, **verdict}
        if entry["example"] is None or len(needle) < len(entry["example"]["anchor"]):
            entry["example"] = example


_PLACEHOLDERS = {"", "...", "…", "todo", "tbd", "n/a", "<text>", "lesson text"}


def _placeholders(data) -> list[str]:
    found = []
    if isinstance(data, dict):
        for lesson in data.get("lessons") or []:
            text = lesson.get("text") if isinstance(lesson, dict) else lesson
            if isinstance(text, str) and (text.strip().lower() in ("", "todo", "tbd", "...", "…")):
                found.append(f"lesson text {text!r}")
        for edit in data.get("edits") or []:
            if isinstance(edit, dict):
                for key in ("text", "new", "body", "content"):
                    value = edit.get(key)
                    if isinstance(value, str) and value.strip() in ("...", "…", "", "TODO"):  # noqa: SIM102
                        if not (key == "new" and value == ""):
                            found.append(f"edit {key} {value!r}")
    return found


def _json_of(answer: dict):
    from t2s.llm.structured import extract_json

    raw = answer.get("content") or ""
    if not raw.strip() and answer.get("tool_calls"):
        raw = answer["tool_calls"][0]["arguments"]
    try:
        return extract_json(raw), raw
    except ValueError:
        return None, raw


def _shape(data, raw: str, finish: str | None) -> str:
    if data is None:
        if finish == "length":
            return "not JSON: cut off at max_tokens"
        if "```" in raw and "{" in raw:
            return "not JSON: broken JSON in a fence"
        return "not JSON: prose" if "{" not in raw else "not JSON: broken JSON"
    if isinstance(data, list):
        return "a list where an object is wanted"
    if isinstance(data, str):
        return "a JSON string"
    if isinstance(data, dict):
        return "an object"
    return type(data).__name__


def _example(sink: dict, kind: str, example: dict, size: int) -> None:
    entry = sink.setdefault(kind, {"count": 0, "example": None, "_size": 10**9})
    entry["count"] += 1
    if size < entry["_size"]:
        entry["example"], entry["_size"] = example, size


def _clean(sink: dict) -> dict:
    return {
        k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")}
        for k, v in sorted(sink.items(), key=lambda item: -item[1]["count"])
    }


def _prompt_echoes(data, where: str, sink: dict) -> None:
    """Lessons, causes and edit texts copied from the examples of the prompts."""
    if not isinstance(data, dict):
        return
    texts = [("failure cause", c) for c in data.get("failure_causes") or [] if isinstance(c, str)]
    texts += [("lesson", x.get("text") if isinstance(x, dict) else x) for x in data.get("lessons") or []]
    for edit in data.get("edits") or []:
        if isinstance(edit, dict):
            texts += [
                (f"edit {key}", edit[key])
                for key in ("anchor", "old", "heading", "text", "new", "body")
                if isinstance(edit.get(key), str)
            ]
    for kind, text in texts:
        if isinstance(text, str) and _echoes_prompt(text):
            _example(sink, kind, {"id": where, "text": text}, len(text))


def _analyst_summary(fixtures: Path, lines: list[dict]) -> dict:
    files = {suite: _s0_files(fixtures, suite) for suite in {x["suite"] for x in lines}}
    kinds, results, failure_kinds, anchors, shapes, echoes = {}, {}, {}, {}, {}, {}
    lists = applied = 0
    finals = {}
    for line in lines:
        outcome = line["outcome"]
        kinds[line["attempt"]["kind"]] = kinds.get(line["attempt"]["kind"], 0) + 1
        results[outcome["result"]] = results.get(outcome["result"], 0) + 1
        if line.get("final"):
            key = f"{line['analyst']}: {line['final']['status']}" + (
                f" ({line['final']['reject_kind']})" if line["final"]["reject_kind"] else ""
            )
            finals[key] = finals.get(key, 0) + 1
        data, raw = _json_of(line["answer"])
        if outcome["result"] in ("parse error", "validation error"):
            _example(
                shapes,
                _shape(data, raw, line["answer"].get("finish_reason")),
                {"id": line["id"], "error": outcome.get("error"), "answer": raw},
                len(raw),
            )
        _prompt_echoes(data, line["id"], echoes)
        if not outcome.get("edit_list") or not outcome["result"].startswith(("edits applied", "edits failed")):
            continue  # no edits, or edits t2s never rendered (a refused submit)
        lists += 1
        if outcome["result"].startswith("edits applied"):
            applied += 1
        failures = outcome.get("failures") or []
        for failure in failures:
            _example(failure_kinds, _edit_failure_kind(failure), {"id": line["id"], "failure": failure}, len(failure))
        _anchor_slips(data.get("edits") or [], failures, files[line["suite"]], anchors, line["id"])
    return {
        "answers": len(lines),
        "by_kind": kinds,
        "by_result": results,
        "analyses": finals,
        "edit_lists": lists,
        "edit_lists_applied": applied,
        "edit_failures": _clean(failure_kinds),
        "anchor_slips": _clean(anchors),
        "unusable_answers": _clean(shapes),
        "prompt_examples_echoed": _clean(echoes),
    }


def _wrong_ids(problem: str) -> str | None:
    m = _re.search(r"(?:cites unknown source|dropped lesson) '([^']*)'", problem)
    if not m:
        return None
    value = m.group(1)
    if _re.match(r"(?i)^patch\s*\d+", value):
        return "a patch named instead of its lessons ('patch NNNN')"
    if _re.match(r"^p?\d{3,4}$", value):
        return "a bare patch number"
    if _re.match(r"^L\d+-\d+(\.\d+)?$", value):
        return "a merge id"
    if value.strip() in ("", "...", "…"):
        return "a placeholder id"
    return "another unknown id"


def _merger_summary(fixtures: Path, lines: list[dict], jobs: list[dict]) -> dict:
    files = {suite: _s0_files(fixtures, suite) for suite in {x["suite"] for x in lines}}
    results, shapes, problems, ids, anchors, placeholders, echoes = {}, {}, {}, {}, {}, {}, {}
    for line in lines:
        outcome = line["outcome"]
        results[outcome["result"]] = results.get(outcome["result"], 0) + 1
        data, raw = _json_of(line["answer"])
        shape = _shape(data, raw, line["answer"].get("finish_reason"))
        if outcome["result"] in ("parse error", "validation error"):
            sub = shape
            if shape == "an object" and isinstance(data, dict):
                missing = [k for k in ("lessons", "edits") if k not in data]
                sub = (
                    f"an object without {', '.join(missing)} (keys: {', '.join(list(data)[:6])})"
                    if missing
                    else "an object that fails the schema"
                )
            _example(shapes, sub, {"id": line["id"], "error": outcome.get("error"), "answer": raw}, len(raw))
        _prompt_echoes(data, line["id"], echoes)
        for found in _placeholders(data):
            _example(placeholders, found.split(" ")[0] + " placeholder", {"id": line["id"], "found": found}, len(raw))
        for problem in outcome.get("problems") or []:
            kind = (
                _wrong_ids(problem) or _edit_failure_kind(problem)
                if "edit " in problem[:8]
                else (_wrong_ids(problem) or _re.sub(r"'[^']*'|\b[pL]\d[\w.-]*|\d+", "_", problem)[:70])
            )
            _example(problems, kind, {"id": line["id"], "problem": problem}, len(problem))
            wrong = _wrong_ids(problem)
            if wrong:
                _example(ids, wrong, {"id": line["id"], "problem": problem}, len(problem))
        if isinstance(data, dict) and isinstance(data.get("edits"), list):
            _anchor_slips(
                data["edits"],
                [p for p in outcome.get("problems") or [] if p.startswith("edit ")],
                files[line["suite"]],
                anchors,
                line["id"],
            )
    merged_in_3 = sum(1 for j in jobs if j["report"]["status"] == "merged" and j["report"]["attempts"] <= 3)
    return {
        "answers": len(lines),
        "merges": len(jobs),
        "merged_within_3_attempts": merged_in_3,
        "merges_by_status": {s: sum(1 for j in jobs if j["report"]["status"] == s) for s in ("merged", "failed")},
        "by_result": results,
        "unusable_answers": _clean(shapes),
        "problems": _clean(problems),
        "ids_by_the_wrong_name": _clean(ids),
        "placeholders": _clean(placeholders),
        "anchor_slips": _clean(anchors),
        "prompt_examples_echoed": _clean(echoes),
    }


_FENCE_OPEN = _re.compile(r"^([ \t]*)```[ \t]*([A-Za-z0-9_+.-]*)", _re.M)


def _fences(text: str) -> list[dict]:
    """Fenced blocks as a reader sees them (open/close pairs; an unclosed last one)."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append(
                {
                    "indent": m.group(1),
                    "lang": m.group(2).lower(),
                    "body": "\n".join(lines[i + 1 : j]),
                    "closed": j < len(lines),
                }
            )
            i = j + 1
        else:
            i += 1
    return out


_CODE_RE = _re.compile(
    r"^\s*(?:import |from [\w.]+ import|def |class |for |if |while |with |try:|print\(|[\w.\[\]'\"]+\s*=[^=])", _re.M
)


def _is_code(body: str) -> bool:
    import textwrap

    try:
        compile(textwrap.dedent(body), "<fence>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def _agent_summary(lines: list[dict]) -> dict:
    from t2s.agent.actions import parse_text_actions

    slips: dict = {}
    protocols = {}
    episodes = {}
    for line in lines:
        content = line["answer"].get("content") or ""
        outcome = line["outcome"]
        protocols[outcome["protocol"]] = protocols.get(outcome["protocol"], 0) + 1
        ep = outcome["episode"]
        episodes[f"{line['suite']}/{line['run']}/{line['subject']}"] = (ep["verdict"], ep["stop_reason"], ep["turns"])
        example = {"id": line["id"], "answer": content}
        size = len(content)
        if line["answer"].get("tool_calls"):
            _example(slips, "native tool call(s)", {"id": line["id"], "tool_calls": line["answer"]["tool_calls"]}, 0)
        fences = _fences(content)
        if any(_re.search(r"(?im)^\W*FINAL[ _]ANSWER", f["body"]) for f in fences):
            _example(slips, "FINAL ANSWER inside a fence", example, size)
        if any(not f["closed"] for f in fences):
            _example(slips, "unclosed fence", example, size)
        if any(f["indent"] for f in fences):
            _example(slips, "indented fence (e.g. in a list)", example, size)
        broken = [
            f
            for f in fences
            if f["lang"] in ("", "python", "py", "python3", "text", "output", "plaintext")
            and f["body"].strip()
            and not _is_code(f["body"])
            and not f["body"].lstrip().startswith("{")
        ]
        if any(not _CODE_RE.search(f["body"]) for f in broken):
            _example(slips, "fence that only shows output or prose (not code)", example, size)
        if any(_CODE_RE.search(f["body"]) and f["closed"] for f in broken):
            _example(slips, "python fence that does not compile (closed)", example, size)
        if any(f["lang"] == "json" and '"name"' in f["body"] for f in fences):
            _example(slips, "tool call written as JSON in a fence", example, size)
        if "<tool_call>" in content:
            _example(slips, "<tool_call> tags in text", example, size)
        actions = parse_text_actions(content)
        if len(actions) > 1:
            _example(slips, "several actions in one reply", example, size)
        errors = [a["error"] for a in outcome["actions"] if a.get("error")]
        if "no action in the reply" in errors:
            _example(slips, "no action found (t2s sent the reminder)", example, size)
        if any(e != "no action in the reply" for e in errors):
            _example(slips, "an action t2s refused (invalid)", {**example, "errors": errors}, size)
        if any("IndentationError" in (a.get("observation") or "") for a in outcome["actions"]):
            _example(slips, "IndentationError when run", example, size)
        if any("SyntaxError" in (a.get("observation") or "") for a in outcome["actions"]):
            _example(slips, "SyntaxError when run", example, size)
        if line["answer"].get("finish_reason") == "length":
            _example(slips, "cut off at max_tokens", example, size)
    verdicts = {}
    for verdict, stop, _ in episodes.values():
        key = f"{verdict} ({stop})"
        verdicts[key] = verdicts.get(key, 0) + 1
    return {
        "answers": len(lines),
        "episodes": len(episodes),
        "episode_outcomes": verdicts,
        "answers_by_protocol": protocols,
        "slips": _clean(slips),
    }


# ------------------------------------------------------------------ replay with today's t2s (no model)
def _context(fixtures: Path, suite: str) -> dict:
    return json.loads((fixtures / "corpus.json").read_text(encoding="utf-8"))["contexts"][suite]


def replay_edits(edits, files: dict[str, str], context: dict, forbidden_values=()) -> list[str]:
    """Render an edit list against S0 in memory as t2s does (no `git apply --check`):
    the failures, [] when it applies."""
    from t2s.patches import render_edits
    from t2s.skill.format import Limits

    result = render_edits(
        files,
        edits,
        skill_dir=context["skill_dir"],
        strict=context["strict"],
        limits=Limits(**context["limits"]),
        forbidden_values=forbidden_values,
        forbidden_ids=context["forbidden_ids"],
    )
    return [f.render() for f in result.failures]


def replay_analyst(line: dict, fixtures: Path) -> str:
    """'applied', 'failed' or 'no edits' for one analyst answer, with today's code."""
    data, _ = _json_of(line["answer"])
    if not isinstance(data, dict) or not isinstance(data.get("edits"), list) or not data["edits"]:
        return "no edits"
    failures = replay_edits(
        data["edits"],
        _s0_files(fixtures, line["suite"]),
        _context(fixtures, line["suite"]),
        line["context"]["forbidden_values"],
    )
    return "failed" if failures else "applied"


def replay_merger(line: dict, job: dict, fixtures: Path) -> tuple[str, list[str]]:
    """What :func:`t2s.merge.run_merge` makes of one merger answer today:
    ('unusable', [error]) / ('not accepted', problems) / ('merged', [])."""
    from pydantic import ValidationError

    from t2s.consolidation.accounting import _reference_problems, account
    from t2s.consolidation.models import MergeInput, MergerAnswer
    from t2s.llm.structured import _format_validation_error
    from t2s.patches import find_overlaps

    data, _ = _json_of(line["answer"])
    if data is None:
        return "unusable", ["not JSON"]
    try:
        answer = MergerAnswer.model_validate(data)
    except ValidationError as err:
        return "unusable", [_format_validation_error(err)]
    files = _s0_files(fixtures, line["suite"])
    inputs = [MergeInput.model_validate(i) for i in job["inputs"]]
    _, _, problems = account(answer, inputs, job["min_support"], job["name"])
    problems += [f"overlapping edits: {o}" for o in find_overlaps(answer.edits, files)]
    if not problems and answer.edits:
        from t2s.patches import render_edits
        from t2s.skill.format import Limits

        context = _context(fixtures, line["suite"])
        result = render_edits(
            files,
            answer.edits,
            skill_dir=context["skill_dir"],
            strict=context["strict"],
            limits=Limits(**context["limits"]),
        )
        if not result.ok:
            problems += [f.render() for f in result.failures]
        else:
            merged, _, _ = account(answer, inputs, job["min_support"], job["name"])
            problems += _reference_problems(merged, result, files)
    return ("not accepted", problems) if problems else ("merged", [])


def _replay_check(fixtures: Path, analyst: list[dict], merger: list[dict], jobs: list[dict]) -> dict:
    """Do the fixtures reproduce, without the model, what t2s decided when they were recorded?"""
    a_agree = a_total = 0
    a_differ = []
    for line in analyst:
        result = line["outcome"]["result"]
        if not line["outcome"].get("edit_list") or not result.startswith(("edits applied", "edits failed")):
            continue
        a_total += 1
        got = replay_analyst(line, fixtures)
        if (got == "applied") == result.startswith("edits applied"):
            a_agree += 1
        else:
            a_differ.append(line["id"])
    by_job = {j["id"]: j for j in jobs}
    m_agree = m_total = 0
    m_differ = []
    for line in merger:
        result = line["outcome"]["result"]
        expected = {
            "validation error": "unusable",
            "parse error": "unusable",
            "not accepted": "not accepted",
            "merged": "merged",
        }.get(result)
        if expected is None:
            continue
        m_total += 1
        got, _ = replay_merger(line, by_job[line["job"]], fixtures)
        if got == expected:
            m_agree += 1
        else:
            m_differ.append(f"{line['id']}: recorded {expected}, replayed {got}")
    return {
        "analyst_edit_lists": f"{a_agree}/{a_total} reproduce",
        "analyst_differ": a_differ,
        "merger_answers": f"{m_agree}/{m_total} reproduce",
        "merger_differ": m_differ,
    }


def summary(fixtures: Path) -> dict:
    agent = _read_jsonl(fixtures / "agent.jsonl")
    analyst = _read_jsonl(fixtures / "analyst.jsonl")
    merger = _read_jsonl(fixtures / "merger.jsonl")
    jobs = _read_jsonl(fixtures / "merge_jobs.jsonl")
    corpus = json.loads((fixtures / "corpus.json").read_text(encoding="utf-8"))
    a = _analyst_summary(fixtures, analyst)
    m = _merger_summary(fixtures, merger, jobs)
    runs = corpus.get("runs", {})
    merged_runs = {
        name: r
        for name, r in runs.items()
        if r.get("stages", {}).get("merge") and r["patches"].get("accepted", 0) + r["patches"].get("unvalidated", 0) > 0
    }

    def share(n: int, d: int) -> str:
        return f"{n}/{d} = {n / d:.0%}" if d else "0/0"

    analyses_with_edits = [x for x in analyst if x.get("final") and x["final"]["reject_kind"] != "analyst error"]
    return {
        "before": {
            "analyst edit lists that apply (each attempt)": share(a["edit_lists_applied"], a["edit_lists"]),
            "analyses that end accepted or unvalidated (of those that produced a report)": share(
                sum(1 for x in analyses_with_edits if x["final"]["status"] in ("accepted", "unvalidated")),
                len(analyses_with_edits),
            ),
            "merges that succeed in at most 3 attempts": share(m["merged_within_3_attempts"], m["merges"]),
            "runs that end with a candidate (of those merged with >= 1 patch)": share(
                sum(1 for r in merged_runs.values() if r["candidate"]), len(merged_runs)
            ),
        },
        "agent": _agent_summary(agent),
        "analyst": a,
        "merger": m,
        "runs": corpus.get("runs", {}),
        "replay_check": _replay_check(fixtures, analyst, merger, jobs),
    }


# ------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="run the real pipeline against the model (hours)")
    c.add_argument("--work", required=True, help="work directory (repositories, relay log); reused to resume")
    c.add_argument("--upstream", default=DEFAULT_UPSTREAM)
    c.add_argument("--model", default=DEFAULT_MODEL)
    c.add_argument("--wtq", type=int, default=8, help="WikiTableQuestions evolve questions")
    c.add_argument("--verified", type=int, default=5, help="SpreadsheetBench-Verified evolve tasks")
    c.add_argument("--max-turns", type=int, default=6, help="agent replies per task")
    c.add_argument("--analyst-turns", type=int, default=6, help="agentic analyst replies")
    c.add_argument(
        "--min-merge-inputs",
        type=int,
        default=8,
        help="run extra single-call analyses while fewer patches than this were accepted",
    )
    c.add_argument("--extra-seeds", type=int, default=2, help="sampled single-call analyses of r1 (runs r1x1...)")
    c.add_argument("--extra-temperature", type=float, default=0.7)
    c.add_argument(
        "--skip-single-call", action="store_true", help="skip the single-call error analyses of Verified (run r1sc)"
    )
    c.add_argument(
        "--trajectories-from",
        default=None,
        metavar="DIR",
        help="import r1's trajectories from DIR/<suite>-r1-all.jsonl (an earlier collection) instead of a rollout",
    )
    c.add_argument("--analyst", default=None, help="the analyst of r1 (default: the config's, agentic)")
    c.add_argument("--handmade", type=int, default=6, help="at most this many hand-made patches per suite (run r1h)")
    e = sub.add_parser("extract", help="write the fixtures from WORK")
    e.add_argument("--work", required=True)
    e.add_argument("--out", default=str(FIXTURES))
    s = sub.add_parser("summary", help="print the counts of the fixtures")
    s.add_argument("--fixtures", default=str(FIXTURES))
    args = parser.parse_args(argv)
    if args.command == "collect":
        collect(args)
    elif args.command == "extract":
        extract(Path(args.work).resolve(), Path(args.out))
    else:
        print(json.dumps(summary(Path(args.fixtures)), indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
