"""The lean HTTP/1.1 transport against hand-written servers: chunked bodies, stale
keep-alive connections, servers that close after each answer."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from t2s.llm.client import LLM, LLMError

COMPLETION = json.dumps({
    "id": "x", "object": "chat.completion", "model": "raw",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "raw answer"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
}).encode()


class RawServer:
    """An asyncio server whose answer bytes a test writes itself."""

    def __init__(self, answer):
        self.answer = answer  # async fn(reader, writer, n) -> keep going?
        self.connections = 0
        self.requests = 0

    async def _handle(self, reader, writer):
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1]) for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                self.requests += 1
                if not await self.answer(writer, self.requests):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def __enter__(self):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait()
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"


def make_llm(base_url, **settings):
    role = {"model": "raw", "base_url": base_url, "api_key_env": "", "max_retries": 0,
            "backoff_base": 0.001, **settings}
    return LLM(roles={"agent": role}, env={}, cache_mode="off")


async def chunked(writer, n):
    body = COMPLETION
    parts = [body[:10], body[10:50], body[50:]]
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-Trailer: y\r\n\r\n"
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    await writer.drain()
    return True


async def close_after_each(writer, n):
    """Keep-alive is not refused in the headers, but the server hangs up anyway."""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(COMPLETION), COMPLETION))
    await writer.drain()
    return False


async def explicit_close(writer, n):
    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(COMPLETION), COMPLETION))
    await writer.drain()
    return False


async def http10_until_eof(writer, n):
    writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + COMPLETION)
    await writer.drain()
    return False


async def garbage_status(writer, n):
    writer.write(b"SPDY/9 what\r\n\r\n")
    await writer.drain()
    return False


@pytest.mark.parametrize("answer", [chunked, close_after_each, explicit_close, http10_until_eof])
def test_bodies_and_connection_handling(answer):
    with RawServer(answer) as srv:
        llm = make_llm(srv.base_url)

        async def three():
            return [await llm.chat("agent", [{"role": "user", "content": f"q{i}"}]) for i in range(3)]

        results = llm.run(three())
    assert [r.content for r in results] == ["raw answer"] * 3
    assert results[0].usage.total_tokens == 5
    assert srv.requests == 3
    if answer is chunked:
        assert srv.connections == 1  # kept alive and reused
    else:
        assert srv.connections == 3


def test_a_stale_pooled_connection_is_replaced_without_an_error():
    with RawServer(close_after_each) as srv:
        llm = make_llm(srv.base_url)

        async def go():
            first = await llm.chat("agent", [{"role": "user", "content": "a"}])
            await asyncio.sleep(0.05)  # the server has hung up by now
            second = await llm.chat("agent", [{"role": "user", "content": "b"}])
            return first, second

        first, second = llm.run(go())
    assert second.content == "raw answer" and second.attempts == 1


def test_unparseable_response_is_a_clear_error():
    with RawServer(garbage_status) as srv:
        with pytest.raises(LLMError, match="connection failed"):
            make_llm(srv.base_url).chat_sync("agent", [{"role": "user", "content": "a"}])
