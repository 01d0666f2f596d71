"""A lean HTTP/1.1 keep-alive transport for the ``openai`` client's ``httpx2`` layer.

Why: on a 2-core machine the default transport stack (httpcore2 + h11 + anyio) costs
about 0.5 ms of CPU per request, which dominates when dozens of calls are in flight
against a fast local server (vLLM, llama.cpp, the scripted test server). This
transport speaks plain HTTP/1.1 over asyncio streams and costs a few tens of µs.

It is used only for plain ``http://`` endpoints without a proxy configured; ``https``
endpoints and proxied setups keep httpx's standard transport. Set
``T2S_HTTP_TRANSPORT=httpx`` to disable it everywhere.

The ``openai`` client still does everything else (authentication headers, URL
building, error mapping); this only moves bytes. Failures are raised as ``httpx2``
exceptions so the client maps them as usual (timeouts -> ``APITimeoutError``,
connection problems -> ``APIConnectionError``).
"""

from __future__ import annotations

import asyncio
import os
import urllib.request

try:  # openai >= 3 is built on httpx2; older releases on httpx (the same API)
    import httpx2
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as httpx2  # type: ignore[no-redef]

_MAX_HEADER_BYTES = 1 << 20


def lean_transport_enabled(base_url: str) -> bool:
    """Whether :class:`LeanTransport` should carry requests to ``base_url``."""
    if os.environ.get("T2S_HTTP_TRANSPORT", "").lower() == "httpx":
        return False
    if not base_url.lower().startswith("http://"):
        return False
    proxies = urllib.request.getproxies()
    if proxies.get("http"):
        host = httpx2.URL(base_url).host
        if not urllib.request.proxy_bypass(host) and host not in ("127.0.0.1", "localhost", "::1"):
            return False
    return True


class _Conn:
    __slots__ = ("reader", "writer", "used")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.used = False

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # pragma: no cover - already gone
            pass


class LeanTransport(httpx2.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams with a per-host pool of idle connections."""

    def __init__(self, max_idle_per_host: int = 256):
        self._idle: dict[tuple[str, int], list[_Conn]] = {}
        self._max_idle = max_idle_per_host
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx2.UnsupportedProtocol(f"LeanTransport handles http only, not {url.scheme}")
        key = (url.host, url.port or 80)
        timeouts = request.extensions.get("timeout") or {}
        body = await request.aread()
        head = self._head(request, body)
        # A pooled connection may have been closed by the server while idle: if it
        # fails before any response byte arrives, retry once on a fresh connection.
        for attempt in (0, 1):
            conn = self._take(key) if attempt == 0 else None
            fresh = conn is None
            if conn is None:
                conn = await self._connect(key, timeouts.get("connect"))
            try:
                return await self._exchange(conn, key, head, body, request, timeouts)
            except _StaleConnection:
                conn.close()
                if fresh:
                    raise httpx2.RemoteProtocolError(
                        "server closed the connection without a response", request=request
                    ) from None
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ helpers

    def _take(self, key: tuple[str, int]) -> _Conn | None:
        conns = self._idle.get(key)
        while conns:
            conn = conns.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn
            conn.close()
        return None

    def _give_back(self, key: tuple[str, int], conn: _Conn) -> None:
        conns = self._idle.setdefault(key, [])
        if self._closed or len(conns) >= self._max_idle:
            conn.close()
        else:
            conns.append(conn)

    async def _connect(self, key: tuple[str, int], timeout: float | None) -> _Conn:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(key[0], key[1], limit=_MAX_HEADER_BYTES), timeout
            )
        except asyncio.TimeoutError:
            raise httpx2.ConnectTimeout(f"connecting to {key[0]}:{key[1]} timed out") from None
        except OSError as err:
            raise httpx2.ConnectError(f"cannot connect to {key[0]}:{key[1]}: {err}") from None
        return _Conn(reader, writer)

    @staticmethod
    def _head(request: httpx2.Request, body: bytes) -> bytes:
        url = request.url
        target = url.raw_path or b"/"
        lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
        seen_host = False
        for name, value in request.headers.raw:
            lname = name.lower()
            if lname in (b"content-length", b"transfer-encoding", b"connection"):
                continue
            if lname == b"accept-encoding":
                # Bodies come back uncompressed: nothing to decode, nothing to get wrong.
                continue
            if lname == b"host":
                seen_host = True
            lines.append(name + b": " + value)
        if not seen_host:
            lines.append(b"Host: " + url.netloc)
        lines.append(b"Accept-Encoding: identity")
        if body or request.method not in ("GET", "HEAD"):
            lines.append(b"Content-Length: " + str(len(body)).encode("ascii"))
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _exchange(
        self,
        conn: _Conn,
        key: tuple[str, int],
        head: bytes,
        body: bytes,
        request: httpx2.Request,
        timeouts: dict,
    ) -> httpx2.Response:
        reused = conn.used
        conn.used = True
        try:
            conn.writer.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                conn.writer.write(body)
            await asyncio.wait_for(conn.writer.drain(), timeouts.get("write"))
        except asyncio.TimeoutError:
            raise httpx2.WriteTimeout("writing the request timed out", request=request) from None
        except OSError as err:
            if reused:
                raise _StaleConnection() from None
            raise httpx2.WriteError(str(err), request=request) from None

        read_timeout = timeouts.get("read")
        try:
            status, headers, keep_alive, content = await asyncio.wait_for(
                self._read_response(conn.reader, request), read_timeout
            )
        except asyncio.TimeoutError:
            raise httpx2.ReadTimeout("timed out waiting for the response", request=request) from None
        except _NoResponse:
            if reused:
                raise _StaleConnection() from None
            raise httpx2.RemoteProtocolError(
                "server closed the connection without a response", request=request
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError) as err:
            raise httpx2.RemoteProtocolError(
                f"connection broken while reading the response: {err!r}", request=request
            ) from None
        except asyncio.LimitOverrunError as err:
            raise httpx2.RemoteProtocolError(f"response head too large: {err}", request=request) from None
        except ValueError as err:
            raise httpx2.RemoteProtocolError(f"malformed response: {err}", request=request) from None

        if keep_alive:
            self._give_back(key, conn)
        else:
            conn.close()
        return httpx2.Response(status, headers=headers, content=content, request=request)

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader, request: httpx2.Request):
        while True:
            try:
                raw_head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as err:
                if not err.partial:
                    raise _NoResponse() from None
                raise
            except ConnectionError:  # reset before a response head arrived
                raise _NoResponse() from None
            lines = raw_head[:-4].split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                raise ValueError(f"bad status line {lines[0][:80]!r}")
            status = int(parts[1])
            if 100 <= status < 200:  # interim response: read the real one
                continue
            break
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        keep_alive = parts[0] == b"HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            value = value.strip()
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value)
            elif lname == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
                continue  # the body handed to httpx is de-chunked
            elif lname == b"connection":
                v = value.lower()
                keep_alive = b"close" not in v and (keep_alive or b"keep-alive" in v)
            headers.append((name.strip(), value))
        if request.method == "HEAD" or status in (204, 304):
            content = b""
        elif chunked:
            chunks = []
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                        pass
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(chunks)
        elif length is not None:
            content = await reader.readexactly(length)
        else:
            content = await reader.read()
            keep_alive = False
        return status, headers, keep_alive, content


class _StaleConnection(Exception):
    pass


class _NoResponse(Exception):
    pass
