"""``t2s.toml``: one typed, validated configuration per skill repository.

Every section has defaults, so a repository with a minimal file (or none, for commands
such as ``t2s lint``) still works. Unknown keys are errors: a typo in a budget cap
must not silently leave the budget uncapped.

Every number has its bounds here, and only here: the CLI flags that override a
setting take their type from the field (:func:`t2s.commands._common.setting_type`),
so ``concurrency = -3`` in the file and ``--concurrency -3`` fail by the same rule.
No float may be NaN or infinite.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, ValidationError

from t2s.errors import ConfigError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

ROLES = ("agent", "analyst", "merger")
CONFIG_FILE = "t2s.toml"

# The bounds of every count and number t2s takes, from t2s.toml or from a flag.
#: At least one: turns, tasks in parallel, seeds, patches per step, line limits.
Count = Annotated[int, Field(ge=1)]
#: Zero or more: retries, allowed regressions, context lines.
NonNegative = Annotated[int, Field(ge=0)]
#: An octopus merge needs at least two inputs.
FanIn = Annotated[int, Field(ge=2)]
#: Seconds to wait: more than zero, finite.
Seconds = Annotated[FiniteFloat, Field(gt=0)]
#: A non-negative finite amount (a price, a backoff, a dollar cap).
Amount = Annotated[FiniteFloat, Field(ge=0)]
#: A score or a score threshold (scores are fractions of tasks passed).
Score = Annotated[FiniteFloat, Field(ge=0, le=1)]
#: A difference of two scores.
ScoreDelta = Annotated[FiniteFloat, Field(ge=-1, le=1)]
#: A significance level: strictly between 0 and 1.
Alpha = Annotated[FiniteFloat, Field(gt=0, lt=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


class SkillSection(_Section):
    """Which skill of the repository t2s evolves."""

    name: str = ""
    #: Folder of the skill inside the repository; defaults to ``skills/<name>``.
    path: str = ""

    @property
    def dir(self) -> str:
        return self.path or f"skills/{self.name}"


class LintSection(_Section):
    strict: bool = True
    max_skill_lines: Count = 500
    max_reference_lines: Count = 300


class RoleModel(_Section):
    """One model role (agent, analyst or merger): which model, where, and how to call it."""

    model: str = "gpt-4o-mini"
    base_url: str = "https://api.openai.com/v1"
    #: Name of the environment variable holding the API key (never the key itself).
    api_key_env: str = "OPENAI_API_KEY"
    temperature: Annotated[FiniteFloat, Field(ge=0, le=2)] = 0.0
    max_tokens: Count = 4096
    seed: int | None = None
    extra_body: dict = Field(default_factory=dict)
    timeout: Seconds = 120.0
    max_retries: NonNegative = 5
    #: Requests in flight at once against this endpoint.
    concurrency: Count = 8
    #: Agent tool protocol: native tool calls, plain-text actions, or auto-detect.
    protocol: Literal["auto", "tools", "text"] = "auto"
    #: Retry backoff: ``backoff_base * 2**attempt`` seconds with jitter, at most
    #: ``backoff_max`` (a 429's Retry-After is honoured instead when present).
    backoff_base: Amount = 1.0
    backoff_max: Amount = 30.0
    #: The agent role only: ``builtin`` (t2s's ReAct agent) or ``command`` (a CLI agent
    #: such as ``claude -p``, ``codex exec`` or ``opencode run``; see docs/harnesses.md).
    harness: Literal["builtin", "command"] = "builtin"
    #: ``command`` harness: the argv, run in the task's work folder. An argument holding
    #: ``{prompt}`` gets the task prompt; otherwise the prompt goes in on stdin.
    command: list[str] = Field(default_factory=list)
    #: Where the skill is installed in the work folder (``.claude/skills``, ``.agents/skills``).
    skills_path: str = ".claude/skills"
    #: The importer that reads the agent's transcript (``claude-code``, ``codex``, ...).
    transcript: str = "claude-code"
    #: A glob (relative to the work folder, ``~`` allowed) of the transcript file the agent
    #: writes; empty: its stdout is the transcript (e.g. ``--output-format stream-json``).
    transcript_file: str = ""
    #: Seconds the command may run before it is killed.
    command_timeout: Seconds = 1800.0
    #: Bytes of stdout kept; a flood beyond it stops the agent.
    max_output_bytes: Count = 64_000_000


class Price(_Section):
    """USD per million tokens."""

    input: Amount = 0.0
    output: Amount = 0.0
    #: Prompt tokens the provider served from its prefix cache (``None``: priced as input).
    cached_input: Amount | None = None


class BudgetSection(_Section):
    """Hard caps for one t2s process; ``None`` means no cap."""

    max_calls: NonNegative | None = None
    max_tokens: NonNegative | None = None
    max_usd: Amount | None = None


class CacheSection(_Section):
    mode: Literal["off", "read-write", "replay"] = "read-write"
    #: Relative paths are inside the repository's git directory (never committed).
    path: str = "t2s/cache.sqlite3"


class SplitSpec(_Section):
    """A named split: a key of a JSON file of ids, a row slice ``"a:b"``, explicit ids,
    or ``count`` ids carved deterministically from another split (``carve = "evolve"``)."""

    file: str | None = None
    key: str | None = None
    rows: str | None = None
    ids: list[str] | None = None
    carve: str | None = None
    count: Count | None = None


class SuiteSection(_Section):
    type: str = "spreadsheetbench"
    #: Path to the suite's data (relative to the repository root).
    path: str = ""
    splits: dict[str, SplitSpec] = Field(default_factory=dict)
    #: Normalise the benchmark's known malformed answer positions (see docs).
    lenient: bool = False
    #: Recalculate formulas with LibreOffice before scoring.
    recalculate: bool = False
    #: Test cases a task lacks when scoring it over all cases: ``fail`` counts them as
    #: failures (the official SpreadsheetBench loop: always 3 cases), ``skip`` scores the
    #: cases that exist. Default: the suite type's (``fail`` for the 912 layout).
    missing_cases: Literal["fail", "skip"] | None = None
    options: dict = Field(default_factory=dict)


class RolloutSection(_Section):
    suite: str = ""
    evolve_split: str = "evolve"
    heldout_split: str = "heldout"
    max_turns: Count = 12
    concurrency: Count = 4
    #: Seconds one code execution in the sandbox may take.
    exec_timeout: Seconds = 60.0


class AnalyzeSection(_Section):
    mode: Literal["error", "success", "combined"] = "combined"
    analyst: Literal["agentic", "single-call"] = "agentic"
    max_turns: Count = 12
    edit_retries: NonNegative = 2
    include_unvalidated: bool = False
    concurrency: Count = 4


#: Which merge levels are validated: every level, the top K levels (nearest the root), or none.
ValidateLevels = Annotated[str, Field(pattern=r"^(all|off|top:[1-9][0-9]*)$")]


class PatchesSection(_Section):
    #: The least similarity (0-1) at which an anchor or replaced text that is not in the
    #: file verbatim is resolved to its unique closest lines (t2s/patches/edits.py).
    anchor_similarity: Score = 0.9


class MergeSection(_Section):
    fan_in: FanIn = 5
    min_support: Count = 2
    retries: NonNegative = 2
    concurrency: Count = 4
    #: Evaluate merge nodes on the validation split: "all", "top:K" or "off" (see docs/validation.md).
    validation: ValidateLevels = Field(default="all", validation_alias="validate")
    #: The suite's validation split; disjoint from the held-out and gate splits.
    validate_split: str = "val"
    #: A node passes if its val score is at least its best input's minus this.
    tolerance: Score = 0.0
    #: When the merger fails on a group, merge it by git (or as the union of additions)
    #: if its diffs allow; false carries the group's inputs up unmerged instead.
    fallback: bool = True


class GateSection(_Section):
    split: str = "heldout"
    min_delta: ScoreDelta = 0.0
    max_regressions: NonNegative = 0
    seeds: Count = 1
    #: Pass only if the delta is *above* min_delta (an unchanged score fails);
    #: false accepts a delta equal to min_delta.
    require_improvement: bool = True
    #: ``delta``: judge the observed delta; ``significant``: judge the lower bound of
    #: its (1 - alpha) confidence interval (docs/estimates-and-gates.md).
    decide: Literal["delta", "significant"] = "delta"
    alpha: Alpha = 0.05


class ReleaseSection(_Section):
    enabled: bool = False
    branch: str = "main"


class Config(_Section):
    skill: SkillSection = Field(default_factory=SkillSection)
    lint: LintSection = Field(default_factory=LintSection)
    models: dict[str, RoleModel] = Field(default_factory=lambda: {r: RoleModel() for r in ROLES})
    prices: dict[str, Price] = Field(default_factory=dict)
    budget: BudgetSection = Field(default_factory=BudgetSection)
    cache: CacheSection = Field(default_factory=CacheSection)
    suites: dict[str, SuiteSection] = Field(default_factory=dict)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    analyze: AnalyzeSection = Field(default_factory=AnalyzeSection)
    patches: PatchesSection = Field(default_factory=PatchesSection)
    merge: MergeSection = Field(default_factory=MergeSection)
    gate: GateSection = Field(default_factory=GateSection)
    release: ReleaseSection = Field(default_factory=ReleaseSection)

    def role(self, name: str) -> RoleModel:
        """The model settings of a role; roles missing from the file get defaults."""
        if name not in ROLES:
            raise ConfigError(f"unknown model role {name!r} (roles: {', '.join(ROLES)})")
        return self.models.get(name) or RoleModel()


def rule_message(error: ErrorDetails) -> str:
    """One pydantic validation error as a short rule ("must be at least 1"); shared by
    t2s.toml and the CLI flags, so both say the same thing."""
    ctx = error.get("ctx") or {}
    kind = error.get("type", "")
    bounds = {
        "greater_than_equal": "must be at least {ge}",
        "greater_than": "must be greater than {gt}",
        "less_than_equal": "must be at most {le}",
        "less_than": "must be less than {lt}",
    }
    if kind in bounds:
        return bounds[kind].format(**{k: _plain(v) for k, v in ctx.items()})
    if kind == "finite_number":
        return "must be a finite number (not NaN or infinity)"
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "must be a whole number"
    if kind in ("float_parsing", "float_type"):
        return "must be a number"
    return error.get("msg", "is not valid")


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        got = f" (got {item['input']!r})" if not isinstance(item.get("input"), (dict, list)) else ""
        lines.append(f"  {where}: {rule_message(item)}{got}")
    return "\n".join(lines)


def parse_config(text: str, path: Path = Path(CONFIG_FILE)) -> Config:
    """Parse and validate the text of a ``t2s.toml``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(path, err)) from None
    for role in ROLES:
        config.models.setdefault(role, RoleModel())
    return config


def decode_config(raw: bytes, path: Path) -> str:
    """The text of a ``t2s.toml`` read as bytes; a clear error when it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file ({err.reason} at byte {err.start})") from None


def load_config(path: Path) -> Config:
    """Load ``path``; a missing file gives the defaults."""
    path = Path(path)
    if not path.exists():
        return Config()
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a configuration file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror or err}") from None
    return parse_config(decode_config(raw, path), path)
