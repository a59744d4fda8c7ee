"""A small OpenAI-compatible server for tests: the real `openai` SDK talks to it over HTTP on 127.0.0.1.

Embeddings are deterministic bags of words (each word hashed to a dimension, the vector normalised), so
texts that share words are close and the tests can predict the order.

Chat completions answer as OpenAI does, whole or streamed (Server-Sent Events, one chunk per word, the usage
in a last chunk of its own when `stream_options.include_usage` asks for it). Unless a test scripts the
answers (`script(Reply(...))`, taken in order; `default` when none is left), a chat answers "You said: "
and the last user message, and a request for structured output (`response_format` json_schema) a JSON
instance of its schema. A scripted reply may be any content (valid for the schema or not), a failure
(a status, with headers such as Retry-After), a delay before the first byte, between chunks or between
words once the first has gone (a model's pace), a stream cut off after so many words, or chunks of any JSON (`chunk` and `choice` build them). `fail_next` makes
the next requests of either kind answer 500, as a provider outage would.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Response, post
from litestar.params import JSONBody
from litestar.response import Stream

MODEL_FINGERPRINT = "fp_tests"


@dataclass
class Reply:
    """One answer of /v1/chat/completions."""

    content: str | None = None  # None: the echo, or an instance of the requested schema
    status: int = 200  # another: an error body of OpenAI's shape, with `headers`
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the first byte (the status line)
    chunk_delay_s: float = 0.0  # streamed: before each chunk after the first
    word_delay_s: float = 0.0  # streamed: before each word after the first, as a model paces them
    cut_after: int | None = None  # streamed: the connection dropped after this many words
    chunks: list[Any] | None = None  # streamed: these chunks' JSON as they are, then [DONE]


class StreamCut(Exception):
    """Raised inside a streamed answer so that uvicorn drops the connection mid-body."""


class AIServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request, in order
        self.fail_next = 0
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self.url = ""  # the base URL an OpenAI client takes, once served (tests/conftest.py: `ai`)

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.arrivals.clear()
        self.replies.clear()
        self.fail_next = 0
        self.default = Reply()

    def arrive(self, data: dict[str, Any]) -> Response[dict[str, Any]] | None:
        """Note the request; an outage's 500 if one is due."""
        self.requests.append(data)
        self.arrivals.append(time.monotonic())
        if self.fail_next:
            self.fail_next -= 1
            return error(500, "overloaded", {})
        return None

    def app(self) -> Litestar:
        @post("/v1/embeddings")
        async def embeddings(data: JSONBody[dict[str, Any]]) -> Response[dict[str, Any]]:
            if failure := self.arrive(data):
                return failure
            texts = data["input"] if isinstance(data["input"], list) else [data["input"]]
            dimensions = int(data.get("dimensions") or 1536)
            tokens = sum(len(words(text)) for text in texts)
            return Response(
                {
                    "object": "list",
                    "model": data["model"],
                    "data": [
                        {"object": "embedding", "index": i, "embedding": bag_of_words(text, dimensions)}
                        for i, text in enumerate(texts)
                    ],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
                status_code=200,
            )

        @post("/v1/chat/completions")
        async def chat_completions(data: JSONBody[dict[str, Any]]) -> Response[Any] | Stream:
            if failure := self.arrive(data):
                return failure
            reply = self.replies.popleft() if self.replies else self.default
            await asyncio.sleep(reply.delay_s)
            if reply.status != 200:
                return error(reply.status, "scripted failure: internal detail 7f3a", reply.headers)
            content = reply.content if reply.content is not None else default_answer(data)
            pieces = re.findall(r"\s*\S+|\s+$", content)
            prompt_tokens = sum(len(words(message_text(m))) for m in data["messages"])
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(pieces),
                "total_tokens": prompt_tokens + len(pieces),
            }
            head = {
                "id": f"chatcmpl-{hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:24]}",
                "created": int(time.time()),
                "model": data["model"],
                "system_fingerprint": MODEL_FINGERPRINT,
            }
            if not data.get("stream"):
                message = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
                return Response(
                    {
                        **head,
                        "object": "chat.completion",
                        "choices": [
                            {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
                        ],
                        "usage": usage,
                    },
                    status_code=200,
                )
            include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
            return Stream(
                sse(head, pieces, usage if include_usage else None, reply),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )

        return Litestar([embeddings, chat_completions], logging_config=None)


async def sse(
    head: dict[str, Any], pieces: list[str], usage: dict[str, int] | None, reply: Reply
) -> AsyncIterator[bytes]:
    """OpenAI's chunks: the role first, then a word each, then the finish, then the usage when asked for
    (every chunk before it carrying `"usage": null`), then [DONE]."""

    def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        body = {**head, "object": "chat.completion.chunk", "choices": [choice]}
        if usage is not None:
            body["usage"] = None
        return event(body)

    if reply.chunks is not None:
        for body in reply.chunks:
            yield event(body)
        yield b"data: [DONE]\n\n"
        return
    yield chunk({"role": "assistant", "content": "", "refusal": None}, None)
    for sent, piece in enumerate(pieces):
        if reply.cut_after is not None and sent >= reply.cut_after:
            raise StreamCut
        await asyncio.sleep(reply.chunk_delay_s + (reply.word_delay_s if sent else 0.0))
        yield chunk({"content": piece}, None)
    await asyncio.sleep(reply.chunk_delay_s)
    yield chunk({}, "stop")
    if usage is not None:
        yield event({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


def chunk(choices: Any, **fields: Any) -> dict[str, Any]:
    """A streamed chunk's JSON, for a scripted `Reply(chunks=...)`: `choices` as given (any shape)."""
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": choices, **fields}


def choice(text: Any, finish_reason: str | None = None) -> dict[str, Any]:
    """A chunk's choice whose delta carries `text` (any value)."""
    return {"index": 0, "delta": {"content": text}, "finish_reason": finish_reason}


def event(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def error(status: int, message: str, headers: dict[str, str]) -> Response[dict[str, Any]]:
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return Response(body, status_code=status, headers=headers)


def default_answer(data: dict[str, Any]) -> str:
    response_format = data.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format["json_schema"]["schema"]
        return json.dumps(instance_of(schema, schema.get("$defs", {})))
    last = next((m for m in reversed(data["messages"]) if m["role"] == "user"), {"content": ""})
    return f"You said: {message_text(last)}"


def instance_of(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """The plainest JSON a (strict) JSON schema accepts: empty strings and lists, zeros, first choices."""
    if "$ref" in schema:
        return instance_of(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return instance_of(schema[key][0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {name: instance_of(sub, defs) for name, sub in schema.get("properties", {}).items()}
    return {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False}.get(kind)


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # parts: the text ones count
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def bag_of_words(text: str, dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    for word in words(text):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dimensions] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
