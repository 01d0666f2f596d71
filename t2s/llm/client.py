"""Every model call of t2s goes through here: one OpenAI-compatible client for all roles.

Roles ``agent``, ``analyst`` and ``merger`` each have a model, endpoint, API-key
environment variable and sampling settings (``[models.<role>]`` in ``t2s.toml``),
overridable by environment variables and CLI flags (see :func:`resolve_roles`)::

    llm = LLM(config, cache_path=git_dir / "t2s/cache.sqlite3", phase="rollout")
    res = await llm.chat("agent", messages, tools=tools)
    verdict = await llm.structured("analyst", messages, Verdict, phase="analyze")
    llm.ledger.to_json()

What this layer guarantees:

* **Concurrency** is bounded per endpoint (``concurrency`` of the roles using it; the
  smallest wins when roles share one), across every coroutine of an event loop (run
  one loop per process: the sync wrappers each start their own).
* **Retries** with exponential backoff and jitter on 429 (honouring ``Retry-After``),
  5xx, timeouts, dropped connections and malformed bodies; after the last attempt an
  :class:`LLMError` names the role, endpoint, model and cause. Other 4xx fail at once.
* **Structured output**: JSON matching a pydantic model is extracted from fenced or
  bare text, leniently repaired (trailing commas), validated, and on failure re-asked
  with the exact validation errors; then :class:`StructuredOutputError`.
* **Ledger and caps**: calls, tokens, latency and cost per role and phase;
  :class:`BudgetExceeded` is raised *before* a request that a cap forbids.
* **Cache**: SQLite keyed on a hash of every request parameter; modes ``off``,
  ``read-write``, ``replay`` (a miss raises :class:`CacheMiss`).
* **Secrets**: API keys are read from the environment when a client is built, sent
  only in the ``Authorization`` header, and redacted from every error message. They
  are never part of a cache key, a cache value, the ledger or a log line.

Each request carries ``X-T2S-Role`` and ``X-T2S-Phase`` headers (the scripted test
server routes on them; real servers ignore them).

Errors: :class:`LLMError` (this call failed: record it and move on; ``kind`` says why
in one word, see :data:`FAILURE_KINDS`), :class:`StructuredOutputError` (an LLMError:
the model answered, but its answer never validated), :class:`BudgetExceeded` and
:class:`CacheMiss` (stop the run: not LLMErrors).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import random
import time
import weakref
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import openai

try:  # openai >= 3 is built on httpx2; older releases on httpx (the same API)
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx  # type: ignore[no-redef]
from pydantic import BaseModel, ValidationError

from t2s import redaction
from t2s.config import ROLES, BudgetSection, Config, RoleModel
from t2s.errors import ConfigError
from t2s.llm.cache import CACHE_MODES, ResponseCache, request_key
from t2s.llm.errors import (
    CacheMiss,
    LLMError,
    StructuredOutputError,
)
from t2s.llm.ledger import Ledger
from t2s.llm.results import ChatResult
from t2s.llm.roles import PLACEHOLDER_API_KEY, _endpoint_key, resolve_roles
from t2s.llm.structured import (
    REPAIR_PROMPT,
    STRUCTURED_PROMPT,
    _format_validation_error,
    extract_json as extract_json,
    validate_answer,
)
from t2s.prompts import load as load_prompt, render as render_prompt

log = logging.getLogger("t2s.llm.client")


M = TypeVar("M", bound=BaseModel)


#: Which sample of one piece of work a call belongs to: 1 the first time; a merge that
#: ``--retry-failed`` asks again, or an analysis of a trajectory whose earlier analysis
#: errored, runs as sample 2, 3... Sample n > 1 sends ``seed + n - 1`` (seed 0 when unset)
#: and, when the role's temperature is 0, :data:`RESAMPLE_TEMPERATURE`: a new request, so a
#: new cache key and a new answer, never the recorded failure. The sample number comes from
#: the run record, so a replay asks exactly what the recorded attempts asked.
SAMPLE: ContextVar[int] = ContextVar("t2s_llm_sample", default=1)
#: The temperature of samples after the first when the role's temperature is 0 (greedy
#: decoding would repeat the answer that failed).
RESAMPLE_TEMPERATURE = 0.7


@contextmanager
def sampling(sample: int) -> Iterator[None]:
    """Model calls inside this block (in this task and tasks it starts) are sample ``sample``."""
    token = SAMPLE.set(max(1, sample))
    try:
        yield
    finally:
        SAMPLE.reset(token)


def resample_params(cfg: RoleModel, sample: int) -> dict[str, Any]:
    """The request parameters of sample ``sample`` (none for the first)."""
    if sample <= 1:
        return {}
    return {
        "seed": (cfg.seed or 0) + sample - 1,
        "temperature": cfg.temperature if cfg.temperature > 0 else RESAMPLE_TEMPERATURE,
    }


# --------------------------------------------------------------------------- errors


# --------------------------------------------------------------------------- results


# --------------------------------------------------------------------------- roles


# --------------------------------------------------------------------------- JSON extraction


# --------------------------------------------------------------------------- the client


class _Retryable(Exception):
    def __init__(
        self, cause: str, retry_after: float | None = None, status: int | None = None, kind: str = "bad-response"
    ):
        super().__init__(cause)
        self.cause = cause
        self.retry_after = retry_after
        self.status = status
        self.kind = kind


def _status_kind(status: int) -> str:
    if status == 429:
        return "rate-limited"
    return "server-error" if status >= 500 or status == 408 else "http-error"


def _connection_kind(detail: BaseException) -> str:
    """``unreachable`` when no connection could be made; ``connection-lost`` when one
    was made and broke (dropped, reset, or an answer cut off half way)."""
    return "unreachable" if isinstance(detail, (httpx.ConnectError, ConnectionRefusedError)) else "connection-lost"


@dataclass
class _LoopState:
    clients: dict[tuple[str, str], openai.AsyncOpenAI] = field(default_factory=dict)
    semaphores: dict[str, asyncio.Semaphore] = field(default_factory=dict)


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
        if seconds >= 0:
            return seconds
    return None


def _error_text(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return err.message


def _parse_completion(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as err:
        preview = raw[:60].decode("utf-8", "replace")
        raise _Retryable(f"malformed response body (not JSON: {err}; starts {preview!r})") from None
    if not isinstance(data, dict):
        raise _Retryable("malformed response body (not a JSON object)")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if isinstance(data.get("error"), dict):
            raise _Retryable(f"server error in a 200 body: {data['error'].get('message')}")
        raise _Retryable("malformed response body (no choices)")
    message = choices[0].get("message") or {}
    tool_calls = []
    for i, tc in enumerate(message.get("tool_calls") or []):
        fn = tc.get("function") or {}
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = json.dumps(args if args is not None else {})
        tool_calls.append({"id": tc.get("id") or f"call_{i}", "name": fn.get("name") or "", "arguments": args})
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details")
    cached_tokens = details.get("cached_tokens") if isinstance(details, dict) else None
    return {
        "content": message.get("content"),
        "tool_calls": tool_calls,
        "usage": {
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "cached_tokens": int(cached_tokens or 0),
        },
        "finish_reason": choices[0].get("finish_reason"),
        "model": data.get("model") or "",
    }


class LLM:
    """The model layer: roles, retries, concurrency, structured output, cache, ledger.

    ``config`` supplies ``[models]``, ``[prices]``, ``[budget]`` and ``[cache]``;
    ``roles`` (``{"agent": RoleModel | dict}``) replaces ``[models]`` entirely (handy
    in tests and scripts). Environment variables and ``overrides`` (CLI flags) are
    applied on top (see :func:`resolve_roles`; ``env={}`` ignores the environment).
    The cache is used only when ``cache_path`` is given and the mode is not ``off``.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        roles: Mapping[str, RoleModel | Mapping[str, Any]] | None = None,
        cache_path: Path | str | None = None,
        cache_mode: str | None = None,
        phase: str = "default",
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        prices: Mapping[str, Any] | None = None,
        budget: BudgetSection | Mapping[str, Any] | None = None,
    ):
        config = config or Config()
        self._env = os.environ if env is None else env
        if roles is not None:
            models = {name: r if isinstance(r, RoleModel) else RoleModel.model_validate(r) for name, r in roles.items()}
            config = config.model_copy(update={"models": models})
        names = list(dict.fromkeys([*ROLES, *config.models]))
        self.roles: dict[str, RoleModel] = resolve_roles(config, env=self._env, overrides=overrides, roles=names)
        self.phase = phase
        if budget is None:
            budget = config.budget
        elif not isinstance(budget, BudgetSection):
            budget = BudgetSection.model_validate(budget)
        self.ledger = Ledger(
            config.prices if prices is None else prices,
            max_calls=budget.max_calls,
            max_tokens=budget.max_tokens,
            max_usd=budget.max_usd,
        )
        mode = cache_mode or self._env.get("T2S_CACHE_MODE") or config.cache.mode
        if mode not in CACHE_MODES:
            raise ConfigError(f"cache mode {mode!r} (modes: {', '.join(CACHE_MODES)})")
        if mode == "replay" and cache_path is None:
            raise ConfigError("cache mode 'replay' needs a cache file, and none was given")
        self.cache: ResponseCache | None = (
            ResponseCache(Path(cache_path), mode) if cache_path is not None and mode != "off" else None
        )
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()
        self._limits: dict[str, int] = {}
        for cfg in self.roles.values():
            key = _endpoint_key(cfg.base_url)
            self._limits[key] = min(self._limits.get(key, cfg.concurrency), max(1, cfg.concurrency))

    # ---------------------------------------------------------------- plumbing

    def role(self, name: str) -> RoleModel:
        """The model settings of role ``name``; a :class:`ConfigError` for an unknown role."""
        try:
            return self.roles[name]
        except KeyError:
            raise ConfigError(f"unknown model role {name!r} (roles: {', '.join(self.roles)})") from None

    @property
    def api_key_env_names(self) -> set[str]:
        """Environment variables holding keys: the sandbox must not inherit them."""
        return {cfg.api_key_env for cfg in self.roles.values() if cfg.api_key_env}

    def _api_key(self, cfg: RoleModel) -> str:
        key = self._env.get(cfg.api_key_env) if cfg.api_key_env else None
        return key or PLACEHOLDER_API_KEY

    def _redact(self, text: str) -> str:
        for name in self.api_key_env_names:
            key = self._env.get(name)
            if key and len(key) >= 4:
                text = text.replace(key, "***")
        return text

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        return state

    def _client(self, cfg: RoleModel) -> openai.AsyncOpenAI:
        state = self._state()
        key = (_endpoint_key(cfg.base_url), cfg.api_key_env)
        client = state.clients.get(key)
        if client is None:
            client = openai.AsyncOpenAI(
                base_url=cfg.base_url,
                api_key=self._api_key(cfg),
                max_retries=0,  # retries are ours: backoff, Retry-After, clear errors
                timeout=cfg.timeout,
            )
            state.clients[key] = client
        return client

    def _semaphore(self, cfg: RoleModel) -> asyncio.Semaphore:
        state = self._state()
        key = _endpoint_key(cfg.base_url)
        sem = state.semaphores.get(key)
        if sem is None:
            sem = state.semaphores[key] = asyncio.Semaphore(self._limits.get(key, cfg.concurrency))
        return sem

    async def aclose(self) -> None:
        """Close the HTTP clients of the running event loop."""
        state = self._loops.pop(asyncio.get_running_loop(), None)
        if state is not None:
            for client in state.clients.values():
                await client.close()

    def close(self) -> None:
        """Close the cache file (HTTP clients close with their event loop)."""
        if self.cache is not None:
            self.cache.close()

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---------------------------------------------------------------- requests

    def build_request(
        self,
        role: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        response_format: Mapping[str, Any] | None = None,
        stop: Sequence[str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The exact JSON body sent for a call (and hashed for the cache)."""
        cfg = self.role(role)
        body: dict[str, Any] = {
            "model": cfg.model,
            "messages": [dict(m) for m in messages],
            "temperature": cfg.temperature if temperature is None else temperature,
            "max_tokens": cfg.max_tokens if max_tokens is None else max_tokens,
        }
        seed = cfg.seed if seed is None else seed
        if seed is not None:
            body["seed"] = seed
        if tools:
            body["tools"] = [dict(t) for t in tools]
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        if response_format is not None:
            body["response_format"] = dict(response_format)
        if stop:
            body["stop"] = list(stop)
        body.update(cfg.extra_body)
        if extra_body:
            body.update(extra_body)
        # what reaches a model never holds a key's value (t2s.redaction)
        body["messages"] = redaction.redact_json(body["messages"], self._env)
        return body

    async def chat(
        self,
        role: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        phase: str | None = None,
        cache: bool = True,
        timeout: float | None = None,
        **params: Any,
    ) -> ChatResult:
        """One chat completion for ``role``.

        ``params``: ``tool_choice``, ``temperature``, ``max_tokens``, ``seed``,
        ``response_format``, ``stop``, ``extra_body`` (merged into the request body).
        ``cache=False`` bypasses the cache for this call (even in replay mode).
        """
        cfg = self.role(role)
        phase = phase or self.phase
        params = {**resample_params(cfg, SAMPLE.get()), **params}
        body = self.build_request(role, messages, tools=tools, **params)
        key = None
        if cache and self.cache is not None:
            key = request_key(body)
            hit = self.cache.get(key)
            if hit is not None:
                self.ledger.record_cached(role, phase)
                return ChatResult(**hit, role=role, phase=phase, cached=True)
            if self.cache.mode == "replay":
                raise CacheMiss(
                    f"{role}: replay-only cache has no answer for this request (model {cfg.model}, key {key[:12]})",
                    hint="run once with cache mode read-write to record it",
                )

        self.ledger.admit()
        started = time.perf_counter()
        attempts = 0
        try:
            data, attempts = await self._send(role, phase, cfg, body, timeout)
        except LLMError as err:
            self.ledger.record_call(
                role,
                phase,
                cfg.model,
                latency_s=time.perf_counter() - started,
                attempts=err.attempts,
                error=True,
            )
            raise
        except BaseException:  # cancelled: the call never finished
            self.ledger.release()
            raise
        latency = time.perf_counter() - started
        usage = data["usage"]
        self.ledger.record_call(
            role,
            phase,
            cfg.model,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            cached_tokens=usage["cached_tokens"],
            latency_s=latency,
            attempts=attempts,
        )
        if not data["model"]:
            data["model"] = cfg.model
        result = ChatResult(**data, role=role, phase=phase, latency_s=latency, attempts=attempts)
        if key is not None and self.cache is not None:
            self.cache.put(key, cfg.model, result._cache_value())
        return result

    async def _send(
        self, role: str, phase: str, cfg: RoleModel, body: dict[str, Any], timeout: float | None
    ) -> tuple[dict[str, Any], int]:
        client = self._client(cfg)
        sem = self._semaphore(cfg)
        timeout = cfg.timeout if timeout is None else timeout
        options: openai.RequestOptions = {"headers": {"X-T2S-Role": role, "X-T2S-Phase": phase}, "timeout": timeout}
        endpoint = _endpoint_key(cfg.base_url)
        max_attempts = cfg.max_retries + 1
        problem: _Retryable | None = None
        for attempt in range(1, max_attempts + 1):
            try:
                async with sem:
                    response = await client.post(
                        "/chat/completions", cast_to=httpx.Response, body=body, options=options
                    )
                    return _parse_completion(response.content), attempt
            except _Retryable as err:
                problem = err
            except openai.APIStatusError as err:
                status = err.status_code
                cause = f"HTTP {status}: {self._redact(_error_text(err))}"
                if status == 429 or status >= 500 or status == 408:
                    problem = _Retryable(cause, _retry_after(err.response.headers), status, _status_kind(status))
                else:
                    raise LLMError(
                        f"{role} model call to {endpoint} ({cfg.model}) failed: {cause}",
                        role=role,
                        endpoint=endpoint,
                        model=cfg.model,
                        cause=cause,
                        attempts=attempt,
                        status=status,
                        hint=_status_hint(status, cfg),
                        kind="http-error",
                    ) from None
            except openai.APITimeoutError:
                problem = _Retryable(f"no answer within {timeout:g}s (timeout)", kind="timeout")
            except openai.APIConnectionError as err:
                detail = err.__cause__ or err
                problem = _Retryable(
                    f"connection failed: {self._redact(str(detail)) or type(detail).__name__}",
                    kind=_connection_kind(detail),
                )
            if attempt < max_attempts:
                delay = self._backoff(cfg, attempt, problem.retry_after)
                log.debug(
                    "%s: attempt %d/%d failed (%s); retrying in %.2fs",
                    role,
                    attempt,
                    max_attempts,
                    problem.cause,
                    delay,
                )
                await asyncio.sleep(delay)
        assert problem is not None
        raise LLMError(
            f"{role} model call to {endpoint} ({cfg.model}) failed after {max_attempts} "
            f"attempt{'s' if max_attempts != 1 else ''}: {problem.cause}",
            role=role,
            endpoint=endpoint,
            model=cfg.model,
            cause=problem.cause,
            attempts=max_attempts,
            status=problem.status,
            kind=problem.kind,
        )

    @staticmethod
    def _backoff(cfg: RoleModel, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # what the server asked for, plus a little jitter so waiters do not stampede
            return retry_after + random.uniform(0, 0.1 * retry_after + 0.01)
        ceiling = min(cfg.backoff_max, cfg.backoff_base * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)  # "equal jitter"

    # ---------------------------------------------------------------- structured

    async def structured(
        self,
        role: str,
        messages: Sequence[Mapping[str, Any]],
        schema: type[M],
        *,
        phase: str | None = None,
        repairs: int = 2,
        instruct: bool = True,
        transcript: list[dict[str, Any]] | None = None,
        **params: Any,
    ) -> M:
        """An instance of ``schema`` from the model's answer.

        The JSON Schema is added to the system message (``instruct=False`` when the
        prompt already explains the format). The answer may be fenced, bare or inside
        prose; trailing commas are forgiven. On a parse or validation failure the model
        is re-asked up to ``repairs`` times with the exact errors, then
        :class:`StructuredOutputError` (with ``.raw`` and ``.errors``) is raised.
        ``transcript`` (a list) gets each raw answer and each repair request, in order.
        """
        convo = [dict(m) for m in messages]
        if instruct:
            note = render_prompt(
                load_prompt(STRUCTURED_PROMPT).strip(),
                schema=json.dumps(schema.model_json_schema(), separators=(",", ":")),
            )
            if convo and convo[0].get("role") == "system" and isinstance(convo[0].get("content"), str):
                convo[0]["content"] = f"{convo[0]['content']}\n\n{note}"
            else:
                convo.insert(0, {"role": "system", "content": note})
        errors: list[str] = []
        raw = ""
        cfg = self.role(role)
        sample = SAMPLE.get()
        answers: set[str] = set()
        for round_ in range(repairs + 1):
            with sampling(sample):
                result = await self.chat(role, convo, phase=phase, **params)
            raw = result.content or ""
            if not raw.strip() and result.tool_calls:  # some servers answer via a tool call
                raw = result.tool_calls[0].arguments
            if transcript is not None:
                transcript.append({"role": "assistant", "content": raw})
            try:
                return validate_answer(raw, schema)
            except ValueError as err:  # ValidationError is a ValueError
                if isinstance(err, ValidationError):
                    problem = f"it does not match the schema: {_format_validation_error(err)}"
                else:
                    problem = str(err)
                if result.finish_reason == "length":
                    problem += " (the answer was cut off at max_tokens)"
                errors.append(problem)
            if raw in answers:
                # The same bytes again (greedy decoding ignores the repair note): ask the
                # next round as a new sample, or it would repeat them once more.
                sample += 1
            answers.add(raw)
            if round_ < repairs:
                repair = {
                    "role": "user",
                    "content": render_prompt(load_prompt(REPAIR_PROMPT).strip(), error=errors[-1]),
                }
                convo = [*convo, {"role": "assistant", "content": raw}, repair]
                if transcript is not None:
                    transcript.append(repair)
        raise StructuredOutputError(
            f"{role} answer never matched {schema.__name__} after {repairs + 1} "
            f"attempt{'s' if repairs else ''}: {errors[-1]}",
            raw=raw,
            errors=errors,
            role=role,
            endpoint=_endpoint_key(cfg.base_url),
            model=cfg.model,
            cause=errors[-1],
            attempts=repairs + 1,
        )

    # ---------------------------------------------------------------- sync wrappers

    def run(self, coro: Awaitable[Any]) -> Any:
        """Run a coroutine of this LLM to completion from synchronous code."""

        async def wrapped() -> Any:
            try:
                return await coro
            finally:
                await self.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(wrapped())
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from async code
            return pool.submit(asyncio.run, wrapped()).result()

    def chat_sync(self, role: str, messages: Sequence[Mapping[str, Any]], **kw: Any) -> ChatResult:
        """:meth:`chat` from synchronous code (through :meth:`run`)."""
        return self.run(self.chat(role, messages, **kw))

    def structured_sync(self, role: str, messages: Sequence[Mapping[str, Any]], schema: type[M], **kw: Any) -> M:
        """:meth:`structured` from synchronous code (through :meth:`run`)."""
        return self.run(self.structured(role, messages, schema, **kw))


def _status_hint(status: int, cfg: RoleModel) -> str | None:
    if status in (401, 403):
        return f"check the key in ${cfg.api_key_env} (set `api_key_env` in [models] to change the variable)"
    if status == 404:
        return f"check base_url ({cfg.base_url}) and the model name ({cfg.model})"
    return None


def default_cache_path(git_dir: Path, config: Config) -> Path:
    """Where the cache lives for a repository: ``[cache] path`` inside its common git dir
    (shared by all worktrees, so a bisect worktree replays what main recorded)."""
    path = Path(config.cache.path)
    return path if path.is_absolute() else Path(git_dir) / path
