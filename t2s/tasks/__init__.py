"""Task suites and their checkers: the seam between t2s and a benchmark.

    from t2s.tasks import load_suite
    suite = load_suite("spreadsheetbench", config)       # or a suite directory
    task = suite.task(suite.task_ids("evolve")[0])
    ws = suite.prepare(task, workdir)                     # input copied in
    prompt = suite.render_prompt(task, ws)
    verdict = suite.check(task, ws.output_path)           # Verdict(passed, score, report)
    space = suite.analyst_workspace(task, 1, analystdir)  # inputs + gold for the error analyst

Built-in suite types: ``spreadsheetbench`` and ``wikitablequestions``; third-party types
register through the ``t2s.suites`` entry point group (see docs/suites.md).
"""

from t2s.tasks.base import (
    AnalystGuide,
    AnalystWorkspace,
    AnswerCheck,
    Case,
    CheckReport,
    FixCheck,
    Mismatch,
    Score,
    SplitOverlapError,
    Suite,
    Task,
    Verdict,
    Workspace,
)
from t2s.tasks.registry import (
    ENTRY_POINT_GROUP,
    configure_suite,
    detect_suite_type,
    find_config,
    get_suite_type,
    load_suite,
    register_suite_type,
    suite_type_info,
    suite_types,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "AnalystGuide",
    "AnalystWorkspace",
    "AnswerCheck",
    "Case",
    "CheckReport",
    "FixCheck",
    "Mismatch",
    "Score",
    "SplitOverlapError",
    "Suite",
    "Task",
    "Verdict",
    "Workspace",
    "configure_suite",
    "detect_suite_type",
    "find_config",
    "get_suite_type",
    "load_suite",
    "register_suite_type",
    "suite_type_info",
    "suite_types",
]
