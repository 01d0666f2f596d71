"""``t2s models``: the configured model roles, and ``t2s models check`` to probe them.

Also home of :func:`model_options` / :func:`overrides_from_flags`, the flags every
verb that calls models shares (``--model``, ``--base-url``, ``--api-key-env``,
``--set ROLE.SETTING=VALUE``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from t2s.commands._common import console, json_option, print_json, repo_option, setting_type
from t2s.config import ROLES, BudgetSection, Config, RoleModel
from t2s.errors import UsageError

CHECK_PROMPT = "Reply with the single word OK."


# --------------------------------------------------------------------------- shared flags


def model_options(fn: Callable) -> Callable:
    """Flags that override ``[models]`` for every role or one role (highest precedence)."""
    fn = click.option(
        "--set",
        "model_sets",
        multiple=True,
        metavar="ROLE.SETTING=VALUE",
        help="Override one setting of one role (or `all`), e.g. --set analyst.model=qwen2.5-7b "
        "or --set all.timeout=30. Repeatable.",
    )(fn)
    fn = click.option(
        "--api-key-env",
        "flag_api_key_env",
        metavar="VAR",
        help="Environment variable holding the API key, for every role.",
    )(fn)
    fn = click.option(
        "--base-url",
        "flag_base_url",
        metavar="URL",
        help="OpenAI-compatible endpoint for every role (e.g. http://127.0.0.1:8000/v1).",
    )(fn)
    fn = click.option("--model", "flag_model", metavar="NAME", help="Model name for every role.")(fn)
    return fn


def overrides_from_flags(
    flag_model: str | None = None,
    flag_base_url: str | None = None,
    flag_api_key_env: str | None = None,
    model_sets: tuple[str, ...] = (),
) -> dict[str, dict[str, Any]]:
    """The ``overrides`` argument of :class:`t2s.llm.client.LLM` from :func:`model_options` flags."""
    overrides: dict[str, dict[str, Any]] = {}
    common = {"model": flag_model, "base_url": flag_base_url, "api_key_env": flag_api_key_env}
    common = {k: v for k, v in common.items() if v is not None}
    if common:
        overrides["*"] = common
    for item in model_sets:
        target, eq, value = item.partition("=")
        role, dot, name = target.partition(".")
        if not eq or not dot or not name:
            raise UsageError(f"--set {item!r}: expected ROLE.SETTING=VALUE, e.g. agent.model=gpt-4o")
        role = role.strip()
        if role not in (*ROLES, "all"):
            raise UsageError(f"--set {item!r}: unknown role {role!r} (roles: {', '.join(ROLES)}, all)")
        name = name.strip()
        if name not in RoleModel.model_fields:
            raise UsageError(
                f"--set {item!r}: unknown setting {name!r} (settings: {', '.join(RoleModel.model_fields)})"
            )
        overrides.setdefault("*" if role == "all" else role, {})[name] = value
    return overrides


def load_config_for(repo_dir: Path | None) -> Config:
    """``t2s.toml`` of the repository around ``repo_dir`` (or cwd); defaults outside one."""
    from t2s.commands._common import load_repo_config, open_store
    from t2s.config import load_config

    try:
        store = open_store(repo_dir)
    except UsageError:
        if repo_dir is not None and not repo_dir.exists():
            raise
        return load_config((repo_dir or Path.cwd()) / "t2s.toml")
    return load_repo_config(store)


def _merge_flags(ctx: click.Context, **flags: Any) -> dict[str, dict[str, Any]]:
    """Flags given to ``t2s models`` and to its subcommand, the subcommand's winning."""
    parent = (ctx.parent.obj or {}) if ctx.parent else {}
    merged = dict(parent.get("flags", {}))
    for key, value in flags.items():
        if key == "model_sets":
            merged[key] = tuple(merged.get(key, ())) + tuple(value)
        elif value is not None:
            merged[key] = value
    return overrides_from_flags(**merged)


# --------------------------------------------------------------------------- t2s models


@click.group(invoke_without_command=True)
@model_options
@json_option
@repo_option
@click.pass_context
def models(ctx, flag_model, flag_base_url, flag_api_key_env, model_sets, as_json, repo_dir):
    """List the model roles (agent, analyst, merger) and how they are called.

    Settings come from [models.<role>] in t2s.toml, overridden by environment
    variables (T2S_<ROLE>_MODEL, T2S_<ROLE>_BASE_URL, ... then T2S_MODEL,
    T2S_BASE_URL, ... for every role) and by the flags below. API keys are never
    shown: only whether the named variable is set. See docs/models.md.

    \b
    Examples:
      t2s models                                   # table of roles
      t2s models --json
      t2s models --base-url http://127.0.0.1:8765/v1 --model qwen check
      t2s models check --role analyst              # probe one role
      t2s models --set merger.model=gpt-4o check --json
    """
    ctx.obj = {
        "flags": {
            "flag_model": flag_model,
            "flag_base_url": flag_base_url,
            "flag_api_key_env": flag_api_key_env,
            "model_sets": model_sets,
        },
        "repo_dir": repo_dir,
    }
    if ctx.invoked_subcommand is not None:
        return
    import os

    from t2s.llm.roles import resolve_roles

    config = load_config_for(repo_dir)
    roles = resolve_roles(config, overrides=overrides_from_flags(**ctx.obj["flags"]))
    rows = []
    for name, cfg in roles.items():
        row = cfg.model_dump()
        row["role"] = name
        row["api_key_set"] = bool(cfg.api_key_env and os.environ.get(cfg.api_key_env))
        rows.append(row)
    if as_json:
        print_json(
            {
                "roles": rows,
                "prices": {k: v.model_dump() for k, v in config.prices.items()},
                "budget": config.budget.model_dump(),
                "cache": config.cache.model_dump(),
            }
        )
        return
    table = Table(title="Model roles")
    table.add_column("role")
    table.add_column("model", overflow="fold")
    table.add_column("endpoint", overflow="fold")
    table.add_column("key", overflow="fold")
    table.add_column("temp")
    table.add_column("conc.")
    for row in rows:
        key = row["api_key_env"] or "-"
        key += " (set)" if row["api_key_set"] else " (unset)" if row["api_key_env"] else ""
        table.add_row(
            row["role"],
            escape(row["model"]),
            escape(row["base_url"]),
            escape(key),
            f"{row['temperature']:g}",
            str(row["concurrency"]),
        )
    console.print(table)
    caps = {k: v for k, v in config.budget.model_dump().items() if v is not None}
    console.print(
        "budget: "
        + (", ".join(f"{k}={v}" for k, v in caps.items()) or "no caps")
        + f"   cache: {config.cache.mode}"
        + f"   prices: {', '.join(config.prices) or 'none'}"
    )


# --------------------------------------------------------------------------- t2s models check


#: How long the probe waits for a role whose timeout nobody set (RoleModel's 120 s
#: default is meant for long agent turns, not for a one-word answer).
PROBE_TIMEOUT = 60.0


def _timeout_was_set(config: Config, role: str, overrides: dict[str, dict[str, Any]]) -> bool:
    """Whether the role's timeout comes from t2s.toml, the environment or a flag."""
    import os

    section = config.models.get(role)
    return (
        (section is not None and "timeout" in section.model_fields_set)
        or any(name in os.environ for name in ("T2S_TIMEOUT", f"T2S_{role.upper()}_TIMEOUT"))
        or any("timeout" in (overrides.get(key) or {}) for key in ("*", role))
    )


async def _check_all(llm, roles: list[str], max_tokens: int, deadlines: dict[str, float]) -> list[dict[str, Any]]:
    from t2s.llm.errors import LLMError

    async def one(role: str) -> dict[str, Any]:
        cfg = llm.role(role)
        started = time.perf_counter()
        row: dict[str, Any] = {
            "role": role,
            "endpoint": cfg.base_url,
            "model": cfg.model,
            "ok": False,
            "latency_s": None,
            "reply": None,
            "error": None,
        }
        deadline = deadlines[role]
        try:
            async with asyncio.timeout(deadline):  # the whole probe, retries included
                res = await llm.chat(
                    role,
                    [{"role": "user", "content": CHECK_PROMPT}],
                    phase="check",
                    cache=False,
                    max_tokens=max_tokens,
                    timeout=deadline,
                )
        except TimeoutError:
            row["error"] = f"no answer within {deadline:g}s (timeout)"
        except LLMError as err:
            row["error"] = err.cause or err.message
        else:
            row["ok"] = True
            row["reply"] = (res.content or "").strip()[:60]
            row["served_model"] = res.model
        row["latency_s"] = round(time.perf_counter() - started, 3)
        return row

    try:
        return list(await asyncio.gather(*(one(r) for r in roles)))
    finally:
        await llm.aclose()


@models.command()
@click.option(
    "--role",
    "only_roles",
    multiple=True,
    type=click.Choice(ROLES),
    help="Check only this role (repeatable). Default: every role.",
)
@click.option(
    "--timeout",
    type=setting_type(RoleModel, "timeout"),
    default=None,
    help="Seconds to wait for each role's answer, retries included (default: the role's timeout "
    "from T2S_<ROLE>_TIMEOUT, T2S_TIMEOUT or [models.<role>] timeout; 60 if none is set).",
)
@click.option(
    "--retries",
    type=setting_type(RoleModel, "max_retries"),
    default=1,
    show_default=True,
    help="Retries per role on 429/5xx/timeouts.",
)
@click.option(
    "--max-tokens",
    type=setting_type(RoleModel, "max_tokens"),
    default=16,
    show_default=True,
    help="Answer length asked for (thinking models may need more).",
)
@model_options
@json_option
@click.pass_context
def check(
    ctx, only_roles, timeout, retries, max_tokens, flag_model, flag_base_url, flag_api_key_env, model_sets, as_json
):
    """Send one tiny request per role and report endpoint, model, ok/error, latency.

    Exits 1 if any role fails. The cache and the budget caps are not used. Each role
    is given its configured timeout (or --timeout) for the whole probe, so a hanging
    endpoint is reported after that long.

    \b
    Examples:
      t2s models check
      t2s models check --role agent --timeout 10
      T2S_TIMEOUT=5 t2s models check
      T2S_BASE_URL=http://127.0.0.1:8765/v1 t2s models check --json
    """
    from t2s.llm.client import LLM

    overrides = _merge_flags(
        ctx,
        flag_model=flag_model,
        flag_base_url=flag_base_url,
        flag_api_key_env=flag_api_key_env,
        model_sets=model_sets,
    )
    # The probe's own limits go below every explicit flag of the user.
    probe = {"max_retries": retries, **({"timeout": timeout} if timeout is not None else {})}
    overrides["*"] = {**probe, **overrides.get("*", {})}
    config = load_config_for((ctx.parent.obj or {}).get("repo_dir") if ctx.parent else None)
    llm = LLM(config, overrides=overrides, cache_mode="off", budget=BudgetSection(), phase="check")
    roles = list(only_roles) or list(ROLES)
    deadlines = {
        role: llm.role(role).timeout
        if _timeout_was_set(config, role, overrides)
        else min(llm.role(role).timeout, PROBE_TIMEOUT)
        for role in roles
    }
    rows = llm.run(_check_all(llm, roles, max_tokens, deadlines))
    if as_json:
        print_json(rows)
    else:
        table = Table(title="Model check")
        for col in ("role", "endpoint", "model", "status", "latency", "reply / error"):
            table.add_column(col, overflow="fold")
        for row in rows:
            status = "[green]ok[/green]" if row["ok"] else "[red]error[/red]"
            detail = row["reply"] if row["ok"] else row["error"]
            table.add_row(
                escape(row["role"]),
                escape(row["endpoint"]),
                escape(row["model"]),
                status,
                f"{row['latency_s']:.2f}s",
                escape(detail or ""),
            )
        console.print(table)
    if not all(row["ok"] for row in rows):
        ctx.exit(1)
