"""The AI layer every capability uses: chat (whole or streamed), structured output validated against a pydantic
model, and embeddings, through the OpenAI SDK: OpenAI itself or, by `OPENAI_BASE_URL`, any compatible
provider (DeepSeek, Gemini's endpoint, a local server). Without `OPENAI_API_KEY` the AI features are off and
say so: 503 `ai_not_configured`.

The SDK times each attempt out (`OPENAI_TIMEOUT_S`) and retries 429s, 5xx, timeouts and lost connections with
exponential backoff, honouring Retry-After (`OPENAI_MAX_RETRIES`). What still fails becomes one of our client
errors (502 `ai_provider_error`, 504 `ai_timeout`); the provider's own words go to the log, never to clients.

A call on a user's behalf is refused once the user has spent their tokens of the day (UTC,
`AI_DAILY_TOKENS_PER_USER`: 429 `ai_budget_exceeded`), and its tokens are added to their day in
`private.ai_usage` when it ends. Calls running at once are each checked before any is recorded, so a day
may end a few calls past the budget, never more. Recording needs the database: an AI without one (the
worker's, for now) neither checks nor records.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

import anyio
import msgspec
import psycopg
from openai import APITimeoutError, AsyncOpenAI, AsyncStream, DefaultAioHttpClient, OpenAIError, omit
from openai.lib import type_to_response_format_param
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ValidationError

from rpc.platform.db import SERVICE, Database
from rpc.platform.errors import ApiError
from rpc.platform.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

TOKENS_TODAY = "select private.ai_tokens_today(%s) as used"
RECORD_USAGE = "select private.record_ai_usage(%s, %s, %s)"


class AIError(ApiError):
    """What the AI layer raises: client errors that the platform's handlers answer as they are."""


class AINotConfigured(AIError):
    def __init__(self) -> None:
        super().__init__(503, "ai_not_configured", "the AI features are not configured on this server")


class AIProviderError(AIError):
    def __init__(self, message: str = "the AI provider failed to answer, try again") -> None:
        super().__init__(502, "ai_provider_error", message)


class AITimeout(AIError):
    def __init__(self) -> None:
        super().__init__(504, "ai_timeout", "the AI provider took too long to answer, try again")


class AIBudgetExceeded(AIError):
    def __init__(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        super().__init__(
            429,
            "ai_budget_exceeded",
            "you have used today's AI allowance; it renews at midnight UTC",
            {"Retry-After": str(max(1, int((midnight - now).total_seconds())))},
        )


@contextmanager
def provider_errors(what: str, model: str) -> Iterator[None]:
    """The SDK's errors, once its retries are spent, as ours; the provider's words in the log only."""
    try:
        yield
    except APITimeoutError as exc:
        log.warning("%s with %s timed out", what, model)
        raise AITimeout from exc
    except OpenAIError as exc:
        log.warning("%s with %s failed: %s", what, model, exc)
        raise AIProviderError from exc


def estimated_tokens(text: str) -> int:
    """About four characters a token: what an ended call costs when the provider did not say (a stream cut
    or left before its usage chunk, a provider that sends no usage)."""
    return -(-len(text) // 4)


def prompt_text(messages: Sequence[ChatCompletionMessageParam]) -> str:
    return "".join(str(message.get("content") or "") for message in messages)


class AI:
    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        """`db`: where usage is checked and recorded (the app's request pool)."""
        self.db = db
        self.chat_model = settings.chat_model
        self.structured_model = settings.structured_model
        self.embeddings_model = settings.embeddings_model
        self.daily_tokens = settings.ai_daily_tokens_per_user
        self.settings = settings
        self.client = self.new_client()

    def new_client(self) -> AsyncOpenAI | None:
        key = self.settings.openai_api_key
        if key is None:
            return None
        return AsyncOpenAI(
            api_key=key.get_secret_value(),
            base_url=self.settings.openai_base_url,
            timeout=self.settings.openai_timeout_s,
            max_retries=self.settings.openai_max_retries,
            # The SDK's aiohttp transport rather than its httpx one: measured side by side, 1.1 to 1.4 ms less
            # before a streamed chat's first token, and a fifth less of the app's CPU per answer. Its session
            # opens on the first request, in the event loop that makes it.
            http_client=DefaultAioHttpClient(),
        )

    async def close(self) -> None:
        """Its connections to the provider closed, when the app (its lifespan) or the worker that uses it
        ends; a new client takes its place, for an app served again."""
        client, self.client = self.client, self.new_client()
        if client is not None:
            await client.close()

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def configured(self) -> AsyncOpenAI:
        if self.client is None:
            raise AINotConfigured
        return self.client

    async def check_budget(self, user_id: UUID | None, spent_today: int | None = None) -> None:
        """AIBudgetExceeded if the user has spent their tokens of the day (`spent_today`: what the caller
        has just read of it, private.ai_tokens_today, in a statement of its own)."""
        if user_id is None or self.db is None or not self.daily_tokens:
            return
        if spent_today is None:
            [row] = await self.db.fetch(SERVICE, TOKENS_TODAY, (user_id,))
            spent_today = row["used"]
        if spent_today >= self.daily_tokens:
            raise AIBudgetExceeded

    async def record(self, user_id: UUID | None, prompt_tokens: int, completion_tokens: int) -> None:
        """Add a call's tokens to its user's day. A failure is logged, not raised: the call has been paid
        for and its answer is worth more to the caller than the record."""
        if self.db is None:
            return
        try:
            await self.db.fetch(SERVICE, RECORD_USAGE, (user_id, prompt_tokens, completion_tokens))
        except (psycopg.Error, PoolTimeout):
            log.exception(
                "AI usage of %s not recorded (%d + %d tokens)", user_id, prompt_tokens, completion_tokens
            )

    async def record_usage(
        self,
        user_id: UUID | None,
        usage: CompletionUsage | None,
        messages: Sequence[ChatCompletionMessageParam],
        answer: str,
    ) -> None:
        if usage is not None:
            await self.record(user_id, usage.prompt_tokens, usage.completion_tokens)
        else:
            await self.record(user_id, estimated_tokens(prompt_text(messages)), estimated_tokens(answer))

    async def complete(
        self, what: str, model: str, messages: list[dict[str, Any]], user_id: UUID | None, **options: Any
    ) -> str:
        """One whole answer's text, its usage recorded."""
        client = self.configured()
        await self.check_budget(user_id)
        params = cast(list[ChatCompletionMessageParam], messages)
        with provider_errors(what, model):
            response: ChatCompletion = await client.chat.completions.create(
                model=model, messages=params, **options
            )
        message = response.choices[0].message if response.choices else None
        await self.record_usage(user_id, response.usage, params, (message and message.content) or "")
        if message is None or message.content is None:
            log.warning("%s with %s: no answer (refusal: %s)", what, model, message and message.refusal)
            raise AIProviderError("the AI provider gave no answer, try again")
        return message.content

    async def chat(
        self, messages: list[dict[str, Any]], *, user_id: UUID | None, max_tokens: int | None = None
    ) -> str:
        """The model's answer to `messages` (OpenAI's chat format), whole."""
        return await self.complete(
            "chat", self.chat_model, messages, user_id, max_tokens=omit if max_tokens is None else max_tokens
        )

    async def stream_chat(
        self,
        messages: list[dict[str, Any]],
        *,
        user_id: UUID | None,
        max_tokens: int | None = None,
        spent_today: int | None = None,
    ) -> ChatStream:
        """The model's answer, once the provider has accepted the request (its response has started): what
        can be refused before that is raised here (not configured, over budget, the provider's error or
        timeout after the SDK's retries); what goes wrong after it, while the answer streams, is raised by
        the stream. Close the stream when done with it, read or not."""
        client = self.configured()
        await self.check_budget(user_id, spent_today)
        body: dict[str, Any] = {
            "model": self.chat_model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        with provider_errors("streamed chat", self.chat_model):
            # The SDK's own request (retries, timeouts, errors, the server-sent events), sent with its
            # generic `post`: `chat.completions.create` first walks every message through its TypedDict
            # transform, about 0.3 ms a message, all of it before the first token of a long conversation.
            # Messages of plain strings need no transform, and go encoded by msgspec (0.1 ms less than the
            # SDK's json.dumps for a long conversation). The chunks stay the JSON they came as (`object`):
            # the SDK's typed chunk costs 0.2 ms to build, twice before the first word.
            stream = await client.post(
                "/chat/completions",
                content=msgspec.json.encode(body),
                cast_to=ChatCompletion,
                stream=True,
                stream_cls=AsyncStream[object],
            )
        return ChatStream(self, stream, user_id, cast(list[ChatCompletionMessageParam], messages))

    async def structured(self, messages: list[dict[str, Any]], schema: type[T], *, user_id: UUID | None) -> T:
        """The model's answer as an instance of `schema`, asked for with its JSON schema (strict) and
        validated: an answer that does not match is AIProviderError, and nothing of it is returned."""
        content = await self.complete(
            "structured output",
            self.structured_model,
            messages,
            user_id,
            response_format=type_to_response_format_param(schema),
        )
        try:
            return schema.model_validate_json(content)
        except ValidationError as exc:
            log.warning("%s answered no %s: %s", self.structured_model, schema.__name__, exc)
            raise AIProviderError(
                "the AI provider's answer did not have the expected form, try again"
            ) from exc

    async def embed(
        self, texts: list[str], *, dimensions: int, user_id: UUID | None = None
    ) -> list[list[float]]:
        """One vector of `dimensions` per text, in order: on `user_id`'s behalf (their budget, their usage), or
        the platform's own work without one."""
        client = self.configured()
        await self.check_budget(user_id)
        with provider_errors("embeddings", self.embeddings_model):
            response = await client.embeddings.create(
                model=self.embeddings_model, input=texts, dimensions=dimensions
            )
        await self.record(user_id, response.usage.prompt_tokens, 0)
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        if len(vectors) != len(texts) or any(len(vector) != dimensions for vector in vectors):
            log.warning(
                "%s did not return %d vectors of %d dimensions", self.embeddings_model, len(texts), dimensions
            )
            raise AIProviderError
        return vectors


def chunk_parts(chunk: object) -> tuple[str, bool, CompletionUsage | None]:
    """A streamed chunk's text (its choices' deltas), whether it finishes a choice, and its usage, read from
    its JSON: AIProviderError if it has no chunk's shape. A usage without its counts is left out: the call's
    tokens are then estimated."""
    try:
        if not isinstance(chunk, dict):
            raise TypeError(type(chunk))
        choices = chunk.get("choices") or []
        text = "".join((choice.get("delta") or {}).get("content") or "" for choice in choices)
        finishes = any(choice.get("finish_reason") is not None for choice in choices)
    except (AttributeError, TypeError) as exc:
        log.warning("a streamed chat chunk of an unknown shape: %.200r", chunk)
        raise AIProviderError("the AI provider's answer was malformed, try again") from exc
    try:
        usage = CompletionUsage.model_validate(chunk["usage"]) if chunk.get("usage") else None
    except ValidationError:
        log.warning("a streamed chat chunk's usage of an unknown shape: %.200r", chunk["usage"])
        usage = None
    return text, finishes, usage


class ChatStream:
    """A streamed answer in text deltas (`async for`). A delta raises AIProviderError if the stream breaks off
    (or ends without a finish), AITimeout if it stalls. Its usage is recorded once, when the stream ends or
    is closed, however it ends: the provider's count when its last chunk came, else an estimate of what was
    sent and received. `aclose()` it when leaving early, so that happens at once and the connection is
    released; closing it unread is allowed."""

    def __init__(
        self,
        ai: AI,
        stream: AsyncStream[object],
        user_id: UUID | None,
        messages: Sequence[ChatCompletionMessageParam],
    ) -> None:
        self.ai, self.stream, self.user_id, self.messages = ai, stream, user_id, messages
        self.received: list[str] = []
        self.usage: CompletionUsage | None = None
        self.ended = False
        self.deltas = self._deltas()

    def __aiter__(self) -> AsyncIterator[str]:
        return self.deltas

    async def _deltas(self) -> AsyncIterator[str]:
        model = self.ai.chat_model
        finished = False
        try:
            with provider_errors("streamed chat", model):
                async for chunk in self.stream:
                    text, finishes, usage = chunk_parts(chunk)
                    finished = finished or finishes
                    self.usage = usage or self.usage
                    if text:
                        self.received.append(text)
                        yield text
            if not finished:
                log.warning("streamed chat with %s ended without a finish", model)
                raise AIProviderError("the AI provider's answer broke off, try again")
        finally:
            await self._end()

    async def aclose(self) -> None:
        await self.deltas.aclose()  # which ends the stream if its reading had started
        await self._end()

    async def _end(self) -> None:
        # Shielded: also when the consumer was cancelled (a client gone), the record must still be written.
        with anyio.CancelScope(shield=True):
            if self.ended:
                return
            self.ended = True
            await self.stream.close()
            await self.ai.record_usage(self.user_id, self.usage, self.messages, "".join(self.received))
