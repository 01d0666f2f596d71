"""``t2s.toml``: one typed, validated configuration per skill repository.

Every section has defaults, so a repository with a minimal file (or none, for commands
such as ``t2s lint``) still works. Unknown keys are errors: a typo in a budget cap
must not silently leave the budget uncapped.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from t2s.errors import ConfigError

ROLES = ("agent", "analyst", "merger")
CONFIG_FILE = "t2s.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    max_skill_lines: int = 500
    max_reference_lines: int = 300


class RoleModel(_Section):
    """One model role (agent, analyst or merger): which model, where, and how to call it."""

    model: str = "gpt-4o-mini"
    base_url: str = "https://api.openai.com/v1"
    #: Name of the environment variable holding the API key (never the key itself).
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    max_tokens: int = 4096
    seed: int | None = None
    extra_body: dict = Field(default_factory=dict)
    timeout: float = 120.0
    max_retries: int = 5
    #: Requests in flight at once against this endpoint.
    concurrency: int = 8
    #: Agent tool protocol: native tool calls, plain-text actions, or auto-detect.
    protocol: Literal["auto", "tools", "text"] = "auto"
    #: Retry backoff: ``backoff_base * 2**attempt`` seconds with jitter, at most
    #: ``backoff_max`` (a 429's Retry-After is honoured instead when present).
    backoff_base: float = 1.0
    backoff_max: float = 30.0


class Price(_Section):
    """USD per million tokens."""

    input: float = 0.0
    output: float = 0.0


class BudgetSection(_Section):
    """Hard caps for one t2s process; ``None`` means no cap."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_usd: float | None = None


class CacheSection(_Section):
    mode: Literal["off", "read-write", "replay"] = "read-write"
    #: Relative paths are inside the repository's git directory (never committed).
    path: str = "t2s/cache.sqlite3"


class SplitSpec(_Section):
    """A named split: a key of a JSON file of ids, a row slice ``"a:b"``, or explicit ids."""

    file: str | None = None
    key: str | None = None
    rows: str | None = None
    ids: list[str] | None = None


class SuiteSection(_Section):
    type: str = "spreadsheetbench"
    #: Path to the suite's data (relative to the repository root).
    path: str = ""
    splits: dict[str, SplitSpec] = Field(default_factory=dict)
    #: Normalise the benchmark's known malformed answer positions (see docs).
    lenient: bool = False
    #: Recalculate formulas with LibreOffice before scoring.
    recalculate: bool = False
    options: dict = Field(default_factory=dict)


class RolloutSection(_Section):
    suite: str = ""
    evolve_split: str = "evolve"
    heldout_split: str = "heldout"
    max_turns: int = 12
    concurrency: int = 4
    #: Seconds one code execution in the sandbox may take.
    exec_timeout: float = 60.0


class AnalyzeSection(_Section):
    mode: Literal["error", "success", "combined"] = "combined"
    analyst: Literal["agentic", "single-call"] = "agentic"
    max_turns: int = 12
    edit_retries: int = 2
    include_unvalidated: bool = False
    concurrency: int = 4


class MergeSection(_Section):
    fan_in: int = 5
    min_support: int = 2
    retries: int = 2
    concurrency: int = 4


class GateSection(_Section):
    split: str = "heldout"
    min_delta: float = 0.0
    max_regressions: int = 0
    seeds: int = 1


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
    merge: MergeSection = Field(default_factory=MergeSection)
    gate: GateSection = Field(default_factory=GateSection)
    release: ReleaseSection = Field(default_factory=ReleaseSection)

    def role(self, name: str) -> RoleModel:
        """The model settings of a role; roles missing from the file get defaults."""
        if name not in ROLES:
            raise ConfigError(f"unknown model role {name!r} (roles: {', '.join(ROLES)})")
        return self.models.get(name) or RoleModel()


def _format_validation_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  {where}: {item['msg']}")
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


def load_config(path: Path) -> Config:
    """Load ``path``; a missing file gives the defaults."""
    path = Path(path)
    if not path.exists():
        return Config()
    return parse_config(path.read_text(encoding="utf-8"), path)
