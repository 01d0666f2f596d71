"""Which model, endpoint and settings each role (agent, analyst, merger) uses:
``[models.<role>]`` in ``t2s.toml``, overridden by ``T2S_*`` environment variables and
CLI flags (:func:`resolve_roles`)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from t2s import redaction
from t2s.config import ROLES, Config, RoleModel, rule_message
from t2s.errors import ConfigError

#: Sent when a role's key variable is unset (local servers need no key).
PLACEHOLDER_API_KEY = "sk-t2s-no-key"


#: Settings an environment variable may override: ``T2S_<ROLE>_<NAME>`` for one role,
#: ``T2S_<NAME>`` for every role.
ENV_FIELDS = {
    "MODEL": "model",
    "BASE_URL": "base_url",
    "API_KEY_ENV": "api_key_env",
    "TEMPERATURE": "temperature",
    "MAX_TOKENS": "max_tokens",
    "SEED": "seed",
    "EXTRA_BODY": "extra_body",
    "TIMEOUT": "timeout",
    "MAX_RETRIES": "max_retries",
    "CONCURRENCY": "concurrency",
    "PROTOCOL": "protocol",
    "BACKOFF_BASE": "backoff_base",
    "BACKOFF_MAX": "backoff_max",
}


def _coerce(field_name: str, value: Any, source: str) -> Any:
    if not isinstance(value, str):
        return value
    if field_name == "extra_body":
        try:
            data = json.loads(value) if value.strip() else {}
        except ValueError as err:
            raise ConfigError(f"{source}: extra_body must be a JSON object: {err}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: extra_body must be a JSON object")
        return data
    if field_name == "seed" and value.strip().lower() in ("", "none", "null"):
        return None
    return value


def resolve_roles(
    config: Config | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    roles: Iterable[str] = ROLES,
) -> dict[str, RoleModel]:
    """The effective settings of each role.

    Precedence, highest first: CLI flags (``overrides[role]``, then ``overrides["*"]``),
    role environment (``T2S_AGENT_MODEL``...), global environment (``T2S_MODEL``...),
    ``[models.<role>]`` of ``t2s.toml``, defaults.
    """
    config = config or Config()
    env = os.environ if env is None else env
    overrides = overrides or {}
    unknown = set(overrides) - set(roles) - {"*"}
    if unknown:
        raise ConfigError(f"unknown model role(s) {', '.join(sorted(unknown))} (roles: {', '.join(ROLES)})")
    resolved: dict[str, RoleModel] = {}
    for role in roles:
        base = config.models.get(role) or RoleModel()
        data = base.model_dump()
        layers: list[tuple[str, dict[str, Any]]] = []
        for prefix in ("T2S_", f"T2S_{role.upper()}_"):
            layer = {
                name: (f"${prefix}{suffix}", env[prefix + suffix])
                for suffix, name in ENV_FIELDS.items()
                if prefix + suffix in env
            }
            layers.append((prefix, layer))
        for key in ("*", role):
            layer = {}
            for name, value in (overrides.get(key) or {}).items():
                if name not in RoleModel.model_fields:
                    raise ConfigError(f"unknown model setting {name!r} (settings: {', '.join(RoleModel.model_fields)})")
                layer[name] = (f"--set {key}.{name}" if key != "*" else f"flag {name}", value)
            layers.append((key, layer))
        sources: dict[str, str] = {}
        for _, layer in layers:
            for name, (source, value) in layer.items():
                data[name] = _coerce(name, value, source)
                sources[name] = source
        try:
            resolved[role] = RoleModel.model_validate(data)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))} ({sources.get(str(e['loc'][0]), 't2s.toml')}): {rule_message(e)}"
                for e in err.errors()
            )
            raise ConfigError(f"models.{role}: {problems}") from None
    redaction.watch(r.api_key_env for r in resolved.values())
    return resolved


def _endpoint_key(base_url: str) -> str:
    return base_url.rstrip("/")
