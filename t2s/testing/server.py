"""A real, scripted, OpenAI-compatible HTTP server for tests and the offline demo.

It listens on ``127.0.0.1`` (an ephemeral port by default), speaks enough of the
OpenAI REST protocol for :mod:`t2s.llm.client` (``POST /v1/chat/completions`` with plain and
tool-call answers and usage figures, ``GET /v1/models``) and answers from Python
*responders* chosen per request, so a test scripts a whole conversation::

    from t2s.testing import ScriptedServer, Reply, tool_call

    with ScriptedServer() as srv:
        srv.on(role="analyst", responder=lambda req: '{"verdict": "ok"}')
        srv.script(["first answer", Reply(tool_calls=[tool_call("run", {"code": "1"})])],
                   role="agent")
        srv.fault("429", times=2, retry_after=0.01)
        ...  # point t2s.llm.client at srv.base_url
        assert srv.peak_in_flight <= 4

The server runs an asyncio event loop in a daemon thread, so it serves many concurrent
requests (injected latency is an ``asyncio.sleep``, not a blocked thread). Responders
run on that loop: keep them quick, or make them ``async``.

Run standalone with ``python -m t2s.testing.server --port 0``; it prints its base URL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import itertools
import json
import signal
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "ChatRequest",
    "Fault",
    "Reply",
    "ScriptedServer",
    "tool_call",
]

#: Fault kinds :meth:`ScriptedServer.fault` understands.
FAULT_KINDS = (
    "429",  # rate limited, with Retry-After
    "500",  # internal error (any status with ``status=``)
    "hang",  # never answer; the client must time out
    "drop",  # close the connection without a response
    "malformed",  # 200 with a body that is not JSON
    "wrong_shape",  # 200 with valid JSON that is not a chat completion (no choices)
    "truncated",  # 200 whose body stops half way (Content-Length promises more)
    "truncated_content",  # the responder's text cut in half, finish_reason "length"
    "non_json_content",  # the responder's text replaced by prose
    "latency",  # answer normally after ``delay`` seconds
)


# --------------------------------------------------------------------------- data


@dataclass
class ChatRequest:
    """One recorded ``POST /v1/chat/completions``."""

    index: int
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float

    @property
    def role(self) -> str | None:
        """The t2s role (header ``X-T2S-Role``) or ``None``."""
        return self.headers.get("x-t2s-role")

    @property
    def phase(self) -> str | None:
        return self.headers.get("x-t2s-phase")

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self.body.get("tools") or [])

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""

    @property
    def text(self) -> str:
        """The text of every message, joined (what ``contains=`` matches)."""
        return "\n".join(_text_of(m.get("content")) for m in self.messages)

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class Reply:
    """A scripted answer. A responder may also return a plain ``str`` (the content)
    or a ``dict`` (the complete JSON body, sent as is)."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    #: Defaults to ``"tool_calls"`` when there are tool calls, else ``"stop"``.
    finish_reason: str | None = None
    #: ``(prompt_tokens, completion_tokens)``; estimated from the text when ``None``.
    usage: tuple[int, int] | None = None
    #: A non-200 status sends an OpenAI-style error body with ``content`` as message.
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (on top of the server's ``latency``).
    delay: float = 0.0
    #: Override the ``model`` field of the answer (default: the requested model).
    model: str | None = None


def tool_call(name: str, arguments: dict | str, id: str | None = None) -> dict[str, Any]:
    """One OpenAI tool call, for ``Reply(tool_calls=[...])``."""
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": id or f"call_{next(_call_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


_call_ids = itertools.count(1)

Answer = str | Reply | dict | None
Responder = Callable[[ChatRequest], Answer | Awaitable[Answer]]


@dataclass
class _Rule:
    responder: Responder | Answer
    role: str | None = None
    model: str | None = None
    contains: str | None = None
    phase: str | None = None
    match: Callable[[ChatRequest], bool] | None = None
    times: int | None = None  # None: unlimited

    def matches(self, req: ChatRequest) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.role is not None and req.role != self.role:
            return False
        if self.phase is not None and req.phase != self.phase:
            return False
        if self.model is not None and req.model != self.model:
            return False
        if self.contains is not None and self.contains not in req.text:
            return False
        return self.match is None or bool(self.match(req))


@dataclass
class Fault:
    """An injected failure for the next ``times`` matching requests (``None``: all)."""

    kind: str
    times: int | None = 1
    retry_after: float | None = None
    status: int | None = None
    delay: float = 0.0
    role: str | None = None
    model: str | None = None
    contains: str | None = None
    fired: int = 0

    def matches(self, req: ChatRequest) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.role is not None and req.role != self.role:
            return False
        if self.model is not None and req.model != self.model:
            return False
        return self.contains is None or self.contains in req.text


class _ScriptExhausted(Exception):
    pass


def _script_responder(items: Iterable[Answer | Responder], label: str) -> Responder:
    queue = deque(items)

    async def respond(req: ChatRequest) -> Answer:
        if not queue:
            raise _ScriptExhausted(f"script {label} has no more replies")
        item = queue.popleft()
        if not callable(item):
            return item
        answer = item(req)
        if inspect.isawaitable(answer):
            return await answer
        return answer

    respond.remaining = queue  # type: ignore[attr-defined]
    return respond


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


# --------------------------------------------------------------------------- server


class ScriptedServer:
    """A scripted OpenAI-compatible server on 127.0.0.1, in a background thread.

    ``default`` answers requests no rule matches (a string, a :class:`Reply`, or a
    responder). ``latency`` is the time from a chat request's arrival to its answer,
    the responder's own work included. ``models`` is what
    ``GET /v1/models`` lists (plus every model a rule names).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default: Responder | Answer = "ok",
        latency: float = 0.0,
        models: Iterable[str] = ("scripted-model",),
    ):
        self.host = host
        self.port = port
        self.default = default
        self.latency = latency
        self.models = list(models)
        self.requests: list[ChatRequest] = []
        self.hits: dict[str, int] = {}
        self.in_flight = 0
        self.peak_in_flight = 0
        self.errors: list[str] = []  # responder exceptions, for debugging tests
        self._rules: list[_Rule] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._conn_tasks: set[asyncio.Task] = set()
        self._ids = itertools.count(1)

    # ---------------------------------------------------------------- scripting

    def on(
        self,
        responder: Responder | Answer = None,
        *,
        role: str | None = None,
        model: str | None = None,
        contains: str | None = None,
        phase: str | None = None,
        match: Callable[[ChatRequest], bool] | None = None,
        times: int | None = None,
    ) -> ScriptedServer:
        """Answer matching requests with ``responder``; the first matching rule wins.

        ``responder`` is a function of :class:`ChatRequest` (sync or async) returning
        ``str`` / :class:`Reply` / ``dict``, or such a value directly. ``contains``
        matches the text of any message. ``times`` limits how often the rule fires.
        """
        with self._lock:
            self._rules.append(_Rule(responder, role, model, contains, phase, match, times))
        return self

    def script(
        self,
        replies: Iterable[Answer | Responder],
        *,
        role: str | None = None,
        model: str | None = None,
        contains: str | None = None,
        phase: str | None = None,
    ) -> ScriptedServer:
        """A sequential conversation: each matching request gets the next reply.

        Once the replies run out, matching requests get HTTP 400 "script exhausted"
        (a test that sends one call too many fails loudly, never silently).
        """
        label = f"(role={role}, model={model}, contains={contains!r})"
        return self.on(
            _script_responder(replies, label),
            role=role,
            model=model,
            contains=contains,
            phase=phase,
        )

    def fault(
        self,
        kind: str,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        status: int | None = None,
        delay: float = 0.0,
        role: str | None = None,
        model: str | None = None,
        contains: str | None = None,
    ) -> Fault:
        """Inject a failure into the next ``times`` matching chat requests.

        Kinds: ``429`` (with ``Retry-After: retry_after``), ``500`` (or any ``status``),
        ``hang``, ``drop``, ``malformed``, ``wrong_shape``, ``truncated``,
        ``truncated_content``, ``non_json_content``, ``latency`` (``delay`` seconds, then
        a normal answer). ``times=None`` keeps failing until :meth:`clear_faults`.
        Faults are checked in the order they were added.
        """
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (kinds: {', '.join(FAULT_KINDS)})")
        f = Fault(kind, times, retry_after, status, delay, role, model, contains)
        with self._lock:
            self._faults.append(f)
        return f

    def clear_faults(self) -> None:
        """Stop injecting failures (the endpoint "recovers"); rules stay as they are."""
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget rules, faults and recorded requests."""
        with self._lock:
            self._rules.clear()
            self._faults.clear()
            self.requests.clear()
            self.hits.clear()
            self.errors.clear()
            self.peak_in_flight = 0

    def requests_for(self, role: str) -> list[ChatRequest]:
        return [r for r in self.requests if r.role == role]

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> ScriptedServer:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle_connection, self.host, self.port, backlog=1024)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as err:  # pragma: no cover - port in use etc.
                failure.append(err)
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=run, name="t2s-scripted-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conn_tasks):
            task.cancel()
        if self._conn_tasks:
            await asyncio.gather(*self._conn_tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):  # a slow or failed close does not fail a test
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- HTTP

    async def _handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    method, target, _version = line.decode("latin-1").split(None, 2)
                except ValueError:
                    await self._write(writer, 400, {}, b"bad request line")
                    break
                headers: dict[str, str] = {}
                while True:
                    hline = await reader.readline()
                    if hline in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = hline.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await self._read_body(reader, headers)
                keep_alive = headers.get("connection", "").lower() != "close"
                keep_alive = await self._route(method, target, headers, body, writer) and keep_alive
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._conn_tasks.discard(task)
            with contextlib.suppress(Exception):  # pragma: no cover
                writer.close()

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readline()
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            return b"".join(chunks)
        return b""

    @staticmethod
    async def _write(
        writer: asyncio.StreamWriter,
        status: int,
        headers: dict[str, str],
        body: bytes,
        *,
        truncate: bool = False,
    ) -> None:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        merged = {"content-type": "application/json", **{k.lower(): v for k, v in headers.items()}}
        merged["content-length"] = str(len(body))
        head += [f"{k}: {v}" for k, v in merged.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        writer.write(data + (body[: len(body) // 2] if truncate else body))
        await writer.drain()

    async def _route(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False closes the connection."""
        path = target.split("?", 1)[0].rstrip("/")
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
        if path.endswith("/models") and method == "GET":
            names = list(dict.fromkeys(self.models + [r.model for r in self._rules if r.model]))
            data = {
                "object": "list",
                "data": [{"id": n, "object": "model", "created": 0, "owned_by": "t2s-scripted"} for n in names],
            }
            await self._write(writer, 200, {}, json.dumps(data).encode())
            return True
        if path.endswith("/chat/completions"):
            if method != "POST":
                await self._write(writer, 405, {}, _error_body("use POST", "invalid_request_error"))
                return True
            return await self._chat(headers, body, writer, path)
        await self._write(writer, 404, {}, _error_body(f"no route {path}", "not_found"))
        return True

    async def _chat(self, headers: dict[str, str], raw: bytes, writer: asyncio.StreamWriter, path: str) -> bool:
        arrived = time.monotonic()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            try:
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body is not a JSON object")
            except ValueError as err:
                await self._write(writer, 400, {}, _error_body(f"invalid JSON: {err}", "invalid_request_error"))
                return True
            req = ChatRequest(next(self._ids), path, dict(headers), body, time.time())
            with self._lock:
                self.requests.append(req)
                fault = next((f for f in self._faults if f.matches(req)), None)
                if fault is not None:
                    fault.fired += 1
            if body.get("stream"):
                await self._write(
                    writer, 400, {}, _error_body("the scripted server does not stream", "invalid_request_error")
                )
                return True

            # Latency counts from arrival and includes the responder's own work, as a
            # remote model's does: many concurrent answers are not held up by the
            # simulator computing them one after another once the wait is over.
            reply = await self._answer(req) if fault is None else None
            remaining = self.latency - (time.monotonic() - arrived)
            if remaining > 0:
                await asyncio.sleep(remaining)

            if fault is not None:
                kind = fault.kind
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if kind == "429":
                    hdrs = {}
                    if fault.retry_after is not None:
                        hdrs["retry-after"] = _fmt_seconds(fault.retry_after)
                        hdrs["retry-after-ms"] = str(int(fault.retry_after * 1000))
                    await self._write(writer, 429, hdrs, _error_body("rate limited (scripted)", "rate_limit_exceeded"))
                    return True
                if kind == "500":
                    await self._write(
                        writer, fault.status or 500, {}, _error_body("internal error (scripted)", "server_error")
                    )
                    return True
                if kind == "hang":
                    await asyncio.Event().wait()  # until the server stops
                if kind == "drop":
                    return False
                if kind == "malformed":
                    await self._write(writer, 200, {}, b'{"id": "chatcmpl-x", "choices": [ {"mess')
                    return True
                if kind == "wrong_shape":  # JSON, but not a completion (a proxy's status page...)
                    await self._write(writer, 200, {}, json.dumps({"object": "status", "status": "ok"}).encode())
                    return True

            if reply is None:
                reply = await self._answer(req)
            if isinstance(reply, tuple):  # (status, message): a scripting error
                await self._write(writer, reply[0], {}, _error_body(reply[1], "scripted_server_error"))
                return True
            if isinstance(reply, dict):
                await self._write(writer, 200, {}, json.dumps(reply).encode())
                return True
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.status != 200:
                await self._write(
                    writer, reply.status, reply.headers, _error_body(reply.content or "scripted error", "scripted")
                )
                return True
            if fault is not None and fault.kind == "truncated_content" and reply.content:
                reply.content = reply.content[: len(reply.content) // 2]
                reply.finish_reason = "length"
            if fault is not None and fault.kind == "non_json_content":
                reply.content = "I am sorry, but I cannot answer in that format."
            data = self._completion(req, reply)
            truncate = fault is not None and fault.kind == "truncated"
            await self._write(writer, 200, reply.headers, json.dumps(data).encode(), truncate=truncate)
            return not truncate
        finally:
            self.in_flight -= 1

    async def _answer(self, req: ChatRequest) -> Reply | dict | tuple[int, str]:
        with self._lock:
            rule = next((r for r in self._rules if r.matches(req)), None)
            if rule is not None and rule.times is not None:
                rule.times -= 1
        responder = rule.responder if rule is not None else self.default
        try:
            answer = responder(req) if callable(responder) else responder
            if inspect.isawaitable(answer):
                answer = await answer
        except _ScriptExhausted as err:
            return (400, f"scripted server: {err}")
        except Exception as err:  # a bug in a test's responder: report it, loudly
            msg = f"scripted server: responder raised {type(err).__name__}: {err}"
            self.errors.append(msg)
            return (400, msg)
        if answer is None:
            return Reply(content="")
        if isinstance(answer, str):
            return Reply(content=answer)
        if isinstance(answer, (Reply, dict)):
            if isinstance(answer, Reply):  # a copy: faults may edit it
                return Reply(**{f: getattr(answer, f) for f in answer.__dataclass_fields__})
            return answer
        return (400, f"scripted server: responder returned {type(answer).__name__}")

    def _completion(self, req: ChatRequest, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        if reply.usage is not None:
            prompt_tokens, completion_tokens = reply.usage
        else:
            prompt_tokens = _estimate_tokens(req.text)
            out = (reply.content or "") + "".join(
                tc.get("function", {}).get("arguments", "") for tc in reply.tool_calls or []
            )
            completion_tokens = _estimate_tokens(out)
        return {
            "id": f"chatcmpl-scripted-{req.index}",
            "object": "chat.completion",
            "created": int(req.received_at),
            "model": reply.model or req.model or "scripted-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _error_body(message: str, type_: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "code": type_}}).encode()


def _fmt_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


# --------------------------------------------------------------------------- CLI


def _echo(req: ChatRequest) -> str:
    return f"echo: {req.last_user_text}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m t2s.testing.server",
        description="Run the scripted OpenAI-compatible server until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds from a request's arrival to its answer")
    parser.add_argument("--reply", default=None, help="fixed reply text (default: echo the last user message)")
    parser.add_argument(
        "--responder",
        default=None,
        metavar="MODULE:FUNCTION",
        help="answer with this responder, e.g. t2s.testing.simulated:merger_responder",
    )
    args = parser.parse_args(argv)
    default: Any = args.reply if args.reply is not None else _echo
    if args.responder:
        import importlib

        module, _, name = args.responder.partition(":")
        default = getattr(importlib.import_module(module), name)
    srv = ScriptedServer(host=args.host, port=args.port, latency=args.latency, default=default)
    srv.start()
    print(srv.base_url, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        srv.stop()


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy: responders loaded with
    # --responder return t2s.testing.server.Reply, which must be the class we check.
    from t2s.testing.server import main as _main  # the importable module, not this __main__ copy

    _main()
