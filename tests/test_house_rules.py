"""House rules that keep the package one house: the git record is spelled in one place.

Every ref and ``T2S-*`` trailer is named in ``t2s/record/`` (refs.py, provenance.py);
other modules call it. This test reads every string literal of the package (docstrings
and comments are documentation and may name refs) and fails on one that spells a
t2s ref or trailer outside ``t2s/record/``. ``t2s/gitstore/`` may name git's own
plumbing refs (``refs/tags/``, ``refs/bisect/``), which are not t2s vocabulary.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "t2s"
#: t2s vocabulary: its ref namespaces, its trailers, and branch names built by hand.
T2S_LITERAL = re.compile(r"refs/(heads/t2s|t2s/|notes/t2s)|(?<![\w-])T2S-[A-Z]|(^|[^\w./-])t2s/\{")
#: Any ref at all: only the record and git's own layer spell refs.
ANY_REF = re.compile(r"\brefs/")
RECORD = PACKAGE / "record"
GITSTORE = PACKAGE / "gitstore"
TESTING = PACKAGE / "testing"  # the scripted server reads X-T2S-* request headers, not trailers


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def string_literals(path: Path):
    """(line, text) of every string literal of a module that is not a docstring; an
    f-string is read whole, with ``{}`` where its values go."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstring_nodes(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            yield node.lineno, text
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if RECORD in path.parents or TESTING in path.parents:
            continue
        for line, text in string_literals(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}"
            if T2S_LITERAL.search(text) or (ANY_REF.search(text) and GITSTORE not in path.parents):
                found.append(where)
    return found


def test_no_ref_or_trailer_is_spelled_outside_the_record_module():
    assert violations() == [], "spell refs and trailers through t2s.record.refs / t2s.record.provenance"


def test_the_rule_catches_what_it_should():
    samples = {
        "refs/heads/t2s/{run}/patch": True,
        "T2S-Run": True,
        "t2s/{run}/candidate": True,
        "refs/t2s/runs/": True,
        "see docs/t2s/x.md": False,
        "X-T2S-Role": False,
        "git_dir/t2s/{x}": False,
    }
    for text, bad in samples.items():
        assert bool(T2S_LITERAL.search(text)) is bad, text
