"""Suite types by name, and loading a suite from ``t2s.toml`` or from a directory.

Built-in types register here; third-party packages add theirs through the entry point
group ``t2s.suites`` (``name = "package.module:SuiteClass"``), loaded on first use.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from t2s.config import CONFIG_FILE, Config, SuiteSection, load_config, parse_config
from t2s.errors import ConfigError, UsageError
from t2s.tasks.base import Suite

ENTRY_POINT_GROUP = "t2s.suites"

_TYPES: dict[str, type[Suite]] = {}
#: Where each registered type came from: "built-in", "entry point <dist>" or "registered".
_SOURCES: dict[str, str] = {}
_entry_points_loaded = False


def register_suite_type(cls: type[Suite], name: str | None = None) -> type[Suite]:
    """Register a :class:`Suite` subclass under ``name`` (default ``cls.type``)."""
    if not (isinstance(cls, type) and issubclass(cls, Suite)):
        raise TypeError(f"{cls!r} is not a t2s.tasks.Suite subclass")
    key = name or cls.type
    if not key:
        raise ValueError(f"{cls.__name__} has no suite type name")
    _TYPES[key] = cls
    _SOURCES.setdefault(key, "registered")
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _TYPES:
            continue
        try:
            cls = ep.load()
        except Exception as err:  # a broken plug-in must not take t2s down
            raise ConfigError(
                f"suite type {ep.name!r} (entry point {ep.value}) failed to load: {type(err).__name__}: {err}"
            ) from None
        register_suite_type(cls, ep.name)
        dist = getattr(getattr(ep, "dist", None), "name", None)
        _SOURCES[ep.name] = f"entry point ({dist})" if dist else "entry point"


def _builtins() -> None:
    # Lazy: the built-in suites load openpyxl; commands that never open a suite
    # (`t2s --help`, `t2s lint`, the git hooks) start without it.
    if "spreadsheetbench" not in _TYPES:
        from t2s.tasks.spreadsheetbench import SpreadsheetBenchSuite

        register_suite_type(SpreadsheetBenchSuite)
        _SOURCES["spreadsheetbench"] = "built-in"
    if "wikitablequestions" not in _TYPES:
        from t2s.tasks.wikitablequestions import WikiTableQuestionsSuite

        register_suite_type(WikiTableQuestionsSuite)
        _SOURCES["wikitablequestions"] = "built-in"


def suite_types() -> dict[str, type[Suite]]:
    """Every registered suite type by name: the built-in ones and those of the
    ``t2s.suites`` entry point group."""
    _builtins()
    _load_entry_points()
    return dict(_TYPES)


def suite_type_info() -> list[dict[str, str]]:
    """Every registered suite type: name, class (``module:QualName``) and source."""
    return [
        {
            "type": name,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "source": _SOURCES.get(name, "registered"),
            "doc": ((cls.__doc__ or "").strip().splitlines() or [""])[0],
        }
        for name, cls in sorted(suite_types().items())
    ]


def get_suite_type(name: str) -> type[Suite]:
    """The suite class registered as ``name``; a :class:`ConfigError` for an unknown type."""
    _builtins()
    if name not in _TYPES:
        _load_entry_points()
    if name not in _TYPES:
        raise ConfigError(
            f"unknown suite type {name!r} (known: {', '.join(sorted(_TYPES))})",
            hint=f"third-party suite types register in the {ENTRY_POINT_GROUP!r} entry point group",
        )
    return _TYPES[name]


def detect_suite_type(path: Path) -> type[Suite]:
    """The first registered suite type whose ``detect`` recognises the folder ``path``;
    a :class:`UsageError` when none does."""
    matches = [cls for cls in suite_types().values() if cls.detect(path)]
    if not matches:
        raise UsageError(
            f"{path}: not a task suite of any known type ({', '.join(sorted(_TYPES))})",
            hint="a SpreadsheetBench suite has dataset.json and spreadsheet/; "
            "a WikiTableQuestions suite has questions.tsv and csv/",
        )
    return matches[0]


def find_config(start: Path | None = None) -> tuple[Config, Path | None]:
    """The nearest ``t2s.toml`` at or above ``start`` (default: the current directory)
    and its directory; defaults and ``None`` when there is none."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_FILE).is_file():
            return load_config(d / CONFIG_FILE), d
    return Config(), None


def _from_section(name: str, section: SuiteSection, base_dir: Path) -> Suite:
    cls = get_suite_type(section.type)
    if not section.path:
        raise ConfigError(f"[suites.{name}] has no path")
    root = Path(section.path)
    if not root.is_absolute():
        root = base_dir / root
    if not root.is_dir():
        raise ConfigError(f"[suites.{name}] path {section.path!r}: {root} is not a directory")
    suite = cls(name, root, lenient=section.lenient, recalculate=section.recalculate, options=section.options)
    suite.configure_splits(section.splits, [base_dir])
    return suite


def load_suite(
    name_or_path: str | Path,
    config: Config | None = None,
    *,
    base_dir: Path | None = None,
    lenient: bool | None = None,
    recalculate: bool | None = None,
) -> Suite:
    """A configured suite (``[suites.<name>]`` of ``config``; relative paths resolve
    against ``base_dir``, default the current directory) or a suite directory (type
    auto-detected). Refuses (``SplitOverlapError``) a configured suite whose evolve split
    overlaps the held-out or gate split."""
    config = config or Config()
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    key = str(name_or_path)
    if key in config.suites:
        suite = _from_section(key, config.suites[key], base)
        _check_configured_splits(suite, config)
    else:
        path = Path(name_or_path)
        if not path.is_absolute() and not path.exists():
            path = base / path
        if not path.is_dir():
            known = ", ".join(sorted(config.suites)) or "none configured"
            raise UsageError(f"{name_or_path!r} is neither a configured suite ({known}) nor a suite directory")
        cls = detect_suite_type(path)
        suite = cls(path.name, path.resolve())
        suite.configure_splits()
    if lenient is not None:
        suite.lenient = lenient
    if recalculate is not None:
        suite.recalculate = recalculate
    return suite


def _check_configured_splits(suite: Suite, config: Config) -> None:
    splits = suite.splits()
    evolve = config.rollout.evolve_split
    for other in dict.fromkeys([config.rollout.heldout_split, config.gate.split]):
        if evolve in splits and other in splits and other != evolve:
            suite.check_disjoint(evolve, other)


def suite_section_toml(name: str, suite_type: str, path: str) -> str:
    """A ``[suites.<name>]`` section for ``t2s.toml`` (``t2s init --suite``); with no
    splits declared, the suite's own ``splits.json`` is used."""
    get_suite_type(suite_type)  # a clear error for an unknown type
    return (
        f"[suites.{name}]\n"
        f"type = {_toml_str(suite_type)}\n"
        f"path = {_toml_str(path)}  # relative to this file\n"
        "# [suites.NAME.splits]  # default: the suite's own splits.json (evolve, heldout)\n"
        '# evolve = { file = "splits.json", key = "evolve" }\n'
        '# heldout = { file = "splits.json", key = "heldout" }\n'
    ).replace("NAME", name)


def _toml_str(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


def configure_suite(
    config_text: str, *, suite_type: str, path: Path | str, repo_root: Path, name: str | None = None
) -> str:
    """``config_text`` (a ``t2s.toml``) with a ``[suites.<name>]`` section for the suite
    at ``path`` (checked: it must be a directory of that type) and ``[rollout] suite``
    pointing at it (the gate uses the same suite). ``name`` defaults to the type's
    ``default_name`` (or the type). Relative paths are stored relative to ``repo_root``."""
    import os

    cls = get_suite_type(suite_type)
    name = name or getattr(cls, "default_name", "") or suite_type
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise UsageError(f"suite name {name!r}: use letters, digits, '-' and '_'")
    where = Path(path).expanduser()
    if not where.is_dir():
        raise UsageError(f"suite path {str(path)!r} is not a directory")
    if not cls.detect(where):
        raise UsageError(f"{path}: not a {suite_type} suite")
    stored = str(where) if where.is_absolute() else os.path.relpath(where.resolve(), Path(repo_root).resolve())
    section = suite_section_toml(name, suite_type, stored)
    lines = config_text.splitlines(keepends=True)
    out: list[str] = []
    in_rollout = placed = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            in_rollout = stripped == "[rollout]"
            if in_rollout and not placed:
                out.append(section + "\n")
                placed = True
        if in_rollout and re.match(r"^#?\s*suite\s*=", stripped):
            line = f"suite = {_toml_str(name)}\n"
        out.append(line)
    if not placed:
        out.append("\n" + section + f"\n[rollout]\nsuite = {_toml_str(name)}\n")
    text = "".join(out)

    config = parse_config(text)
    if config.rollout.suite != name:
        raise ConfigError(f"could not point [rollout] suite at {name!r} in t2s.toml")
    return text
