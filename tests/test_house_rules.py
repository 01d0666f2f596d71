"""House rules that keep the package one house: the git record is spelled in one place.

Every ref and ``T2S-*`` trailer is named in ``t2s/record/`` (refs.py, provenance.py);
other modules call it. This test reads every string literal of the package (docstrings
and comments are documentation and may name refs) and fails on one that spells a
t2s ref or trailer outside ``t2s/record/``. ``t2s/gitstore/`` may name git's own
plumbing refs (``refs/tags/``, ``refs/bisect/``), which are not t2s vocabulary.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
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


# ---------------------------------------------------------------------- docstrings
#: Packages whose ``__init__`` re-exports a public API (``__all__``), besides ``t2s`` itself.
API_PACKAGES = ("t2s.llm", "t2s.patches", "t2s.consolidation", "t2s.sandbox", "t2s.tasks")


def _own_docstring(obj) -> str:
    """The docstring ``obj`` itself declares: a class's is not inherited, and the
    ``Name(field, ...)`` signature that ``dataclass`` fills in for a class without
    one does not count."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return ""
        return doc.strip()
    return (getattr(obj, "__doc__", None) or "").strip()


def _public_methods(cls) -> dict[str, object]:
    """The public functions and properties a class defines itself (not inherited)."""
    found = {}
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        func = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
        if inspect.isfunction(func):
            found[name] = func
    return found


def public_api() -> dict[str, object]:
    """Every public function and class of the library API, by qualified name: ``t2s``'s
    exports, what ``t2s.api`` defines, and the ``__all__`` of the API packages."""
    import t2s
    import t2s.api

    names = {f"t2s.{name}": getattr(t2s, name) for name in t2s.__all__}
    for name, obj in vars(t2s.api).items():
        if not name.startswith("_") and getattr(obj, "__module__", None) == "t2s.api":
            names[f"t2s.api.{name}"] = obj
    for package in API_PACKAGES:
        module = importlib.import_module(package)
        names.update({f"{package}.{name}": getattr(module, name) for name in module.__all__})
    return {name: obj for name, obj in names.items() if inspect.isclass(obj) or inspect.isroutine(obj)}


def undocumented(api: dict[str, object]) -> list[str]:
    missing = [name for name, obj in api.items() if not _own_docstring(obj)]
    for name, obj in api.items():
        if inspect.isclass(obj):
            missing += [f"{name}.{m}" for m, func in _public_methods(obj).items() if not _own_docstring(func)]
    return sorted(missing)


def test_every_public_function_and_class_of_the_api_has_a_docstring():
    api = public_api()
    assert {"t2s.open_repo", "t2s.evolve", "t2s.api.Repo", "t2s.llm.LLM", "t2s.tasks.Suite"} <= set(api)
    assert undocumented(api) == []


def test_the_docstring_rule_catches_what_it_should():
    @dataclasses.dataclass
    class Bare:
        size: int = 0

        def grow(self) -> None:
            self.size += 1

        @property
        def double(self) -> int:
            return 2 * self.size

    @dataclasses.dataclass
    class Documented:
        """Has one."""

        def grow(self) -> None:
            """Grows."""

    def helper():
        pass

    api = {"Bare": Bare, "Documented": Documented, "helper": helper}
    assert undocumented(api) == ["Bare", "Bare.double", "Bare.grow", "helper"]


# ---------------------------------------------------------------------- CI
def test_ci_runs_the_house_checks_then_the_readme_test_command_last():
    root = PACKAGE.parent
    commands = [
        line.strip()
        for line in (root / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    readme_command = next(
        line.strip()
        for line in (root / "README.md").read_text().splitlines()
        if line.strip().endswith("pytest -n auto")
    )
    assert commands[0] == "set -euo pipefail"  # a failing check fails CI
    assert commands[-1] == readme_command
    checks = [
        ".venv/bin/ruff check t2s tests bench",
        ".venv/bin/ruff format --check t2s tests bench",
        ".venv/bin/mypy",
        ".venv/bin/lint-imports",
    ]
    assert all(check in commands[:-1] for check in checks)
