"""What a chat call returns: :class:`ChatResult` with its text, tool calls (:class:`ToolCall`)
and token :class:`Usage`."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel


class Usage(BaseModel):
    """The tokens one call (or a sum of calls) used, as the server reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens


class ToolCall(BaseModel):
    """One tool call of an assistant message: its id, the tool's name and the arguments."""

    id: str
    name: str
    #: The arguments exactly as the model wrote them (a JSON string, maybe invalid).
    arguments: str = ""

    def parsed_arguments(self) -> Any:
        """The arguments decoded as JSON (``ValueError`` if the model wrote garbage)."""
        return json.loads(self.arguments or "{}")

    def to_openai(self) -> dict[str, Any]:
        """The call in OpenAI's chat format, as it goes back into a conversation."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class ChatResult(BaseModel):
    """What one chat call returned (from the endpoint or the response cache): the text,
    the tool calls, the usage, and which role, phase and model it was for."""

    content: str | None = None
    tool_calls: list[ToolCall] = []
    usage: Usage = Usage()
    finish_reason: str | None = None
    #: The model name the server reported (falls back to the requested one).
    model: str = ""
    role: str = ""
    phase: str = ""
    cached: bool = False
    #: Wall time of the call, retries and backoff included (0 for cache hits).
    latency_s: float = 0.0
    attempts: int = 0

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [tc.to_openai() for tc in self.tool_calls]
        return msg

    def _cache_value(self) -> dict[str, Any]:
        return self.model_dump(include={"content", "tool_calls", "usage", "finish_reason", "model"})
