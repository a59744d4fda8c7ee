"""Careers chat: `POST /functions/v1/ai/chat` answers a signed-in user's message in a new conversation or
one of theirs, streamed as Server-Sent Events, with their profile, saved listings and primary resume as
context.

Before the provider is called there is one statement (`private.chat_turn`: the conversation, the user's
message and an empty answer stored, the history and the context read, as service_role with the caller's
claims). The response starts when the provider's does, with the `start` event, so the reader has its
headers and ids while the model thinks; whatever is refused before that (AI not configured, the day's
budget spent, the provider's error or timeout after its retries) is the AI layer's error JSON, and the
turn is removed again: an error response stores nothing.

The stream: `event: <name>` and one `data:` line of JSON per event, which `fetch` readers, EventSource and
`supabase.functions.invoke` (it returns the stream for text/event-stream) all read.
    start   {"conversation_id", "user_message_id", "message_id"}
    delta   {"text"}, one per provider delta
    done    {"message_id", "status": "complete"}
    error   {"error", "message"}, instead of done, when the provider fails once it has started
The answer is stored once, when it ends: complete; failed after an error event (what was streamed, never
sent back to the provider as history); incomplete when the client goes away (what was streamed; the
provider's stream is closed at once, so its tokens stop).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Annotated, Any, LiteralString
from uuid import UUID

import anyio
import msgspec
from litestar import Controller, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody
from litestar.response import Stream

from rpc.jobsearch.settings import JobsearchSettings, get_jobsearch_settings
from rpc.platform.ai import AI, AIError, AINotConfigured, ChatStream
from rpc.platform.db import Session
from rpc.platform.errors import ApiError
from rpc.platform.functions import SOME_TEXT, provide_ai

log = logging.getLogger(__name__)

TURN: LiteralString = "select private.chat_turn(%s, %s, %s, %s, %s) as turn"
# Write-once: an answer that has ended is never rewritten (a late disconnect after `done` changes nothing).
# Its conversation moves up the owner's list here, not in the turn's statement before the first token.
FINISH: LiteralString = """
with answer as (
  update public.chat_messages set content = %s, status = %s, completed_at = clock_timestamp()
  where id = %s and completed_at is null
  returning conversation_id
)
update public.chat_conversations c set updated_at = now() from answer where c.id = answer.conversation_id
"""
# A turn refused before its answer started: its two messages, and its conversation if the turn started it.
DISCARD: LiteralString = """
with removed as (delete from public.chat_messages where id in (%s, %s))
delete from public.chat_conversations where id = %s and %s
"""

# Token budgets are turned into characters at the rate the AI layer estimates usage it was not told
# (rpc.platform.ai.estimated_tokens): about four characters a token, close for English prose.
CHARS_PER_TOKEN = 4
MESSAGE_CHARS = 8000
# The saved listings read for the context, newest first; the budget usually keeps fewer.
CONTEXT_LISTINGS = 20
TRUNCATED = " [...]"

SYSTEM_PROMPT = (
    "You are Talentbase's careers assistant. Help the user with their job search: which roles fit them, "
    "how to present their experience, how to prepare for applications and interviews. Be concrete and "
    "brief. Use what you are told about the user below; do not invent facts about them or about employers."
)
PROFILE_LABELS = {
    "full_name": "Name",
    "headline": "Headline",
    "bio": "About",
    "seniority": "Seniority",
    "years_experience": "Years of experience",
    "industries": "Industries",
    "functions": "Functions",
    "location": "Location",
    "remote_preference": "Remote preference",
    "engagement_types": "Wants",
    "skills": "Skills",
}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ChatRequest(msgspec.Struct, forbid_unknown_fields=True):
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=MESSAGE_CHARS, pattern=SOME_TEXT)]
    conversation_id: UUID | None = None


def cut(text: str, chars: int) -> str:
    """`text` in at most `chars` characters: cut after its last whole word that fits, and marked so."""
    if len(text) <= chars:
        return text
    room = chars - len(TRUNCATED)
    if room <= 0:
        return ""
    head = text[:room]
    if not text[room].isspace():
        # The word cut in half goes, unless it is all there is (a loop from the end: a regex anchored at
        # the end would try every position of the resume, 0.6 ms before the first token).
        end = len(head)
        while end and not head[end - 1].isspace():
            end -= 1
        head = head[:end] or head
    return head.rstrip() + TRUNCATED


def listing_line(listing: dict[str, Any]) -> str:
    where = ", ".join(str(x) for x in (listing["location"], listing["remote_policy"]) if x)
    kind = ", ".join(str(x) for x in (listing["engagement_type"], listing["seniority"]) if x)
    details = "; ".join(part for part in (where, kind) if part)
    line = f"- {listing['title']} at {listing['company']}" + (f" ({details})" if details else "")
    description = " ".join((listing["description"] or "").split())
    return f"{line}: {description}" if description else line


def context(turn: dict[str, Any], chars: int) -> str:
    """What the assistant is told about the user, in at most `chars` characters, in three sections: the
    profile (cut if it alone is too long); the saved listings, newest first, whole lines only, in at most
    half of what the profile left when there is a resume; the primary resume's text in the rest, cut after
    a whole word. A section with no room at all is left out."""
    values = turn["profile"] or {}
    profile = "\n".join(
        f"{label}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, label in PROFILE_LABELS.items()
        if (value := values.get(key)) is not None
    )
    resume = (turn["resume"] or "").strip()
    sections: list[str] = []

    def left() -> int:
        return chars - len("\n\n".join(sections)) - (2 if sections else 0)

    def add(heading: str, body: str) -> None:
        if body := cut(body, left() - len(heading)):
            sections.append(heading + body)

    add("About the user:\n", profile)
    heading = "Saved job listings:"
    room = (left() // 2 if resume else left()) - len(heading)
    lines: list[str] = []
    for line in map(listing_line, turn["listings"]):
        room -= len(line) + 1
        if room < 0:
            break
        lines.append(line)
    if lines:
        sections.append("\n".join([heading, *lines]))
    add("Primary resume:\n", resume)
    return "\n\n".join(sections)


def prompt(turn: dict[str, Any], message: str, context_chars: int) -> list[dict[str, Any]]:
    about = context(turn, context_chars)
    system = f"{SYSTEM_PROMPT}\n\n{about}" if about else SYSTEM_PROMPT
    return [{"role": "system", "content": system}, *turn["history"], {"role": "user", "content": message}]


def event(name: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event; JSON escapes newlines, so one data line always holds it."""
    return b"event: " + name.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


class Answer:
    """One streamed answer: its events, and its message stored once however it ends."""

    def __init__(self, session: Session, turn: dict[str, Any], stream: ChatStream) -> None:
        self.session, self.turn, self.stream = session, turn, stream
        self.streamed: list[str] = []
        self.stored = False
        self.events: AsyncGenerator[bytes, None] | None = None

    async def store(self, status: str) -> bool:
        """The answer's final content and status; shielded, so a client leaving meanwhile cannot cut it
        short. False (logged) if the database refused."""
        with anyio.CancelScope(shield=True):
            try:
                await self.session.fetch(FINISH, ("".join(self.streamed), status, self.turn["message_id"]))
            except Exception:
                log.exception("chat answer %s not stored (%s)", self.turn["message_id"], status)
                return False
        self.stored = True
        return True

    async def stream_events(self) -> AsyncGenerator[bytes, None]:
        turn = self.turn
        yield event("start", {key: turn[key] for key in ("conversation_id", "user_message_id", "message_id")})
        try:
            async for delta in self.stream:
                self.streamed.append(delta)
                yield event("delta", {"text": delta})
        except AIError as exc:
            await self.store("failed")
            yield event("error", {"error": exc.code, "message": exc.message})
            return
        if await self.store("complete"):
            yield event("done", {"message_id": turn["message_id"], "status": "complete"})
        else:
            yield event("error", {"error": "answer_not_stored", "message": "the answer could not be saved"})

    def response(self) -> Stream:
        self.events = self.stream_events()
        return Stream(
            self.events,
            media_type="text/event-stream",
            headers=SSE_HEADERS,
            background=BackgroundTask(self.settle),
        )

    async def settle(self) -> None:
        """After the response, however it ended: a client that went away mid-answer leaves it incomplete
        with what was streamed, and the provider's stream is closed (its usage recorded)."""
        if self.events is not None:
            await self.events.aclose()
        await self.stream.aclose()
        if not self.stored:
            await self.store("incomplete")


class Assistant:
    """The careers assistant for one signed-in caller."""

    def __init__(self, user_session: Session, ai: AI, settings: JobsearchSettings) -> None:
        self.user_session, self.ai, self.settings = user_session, ai, settings

    async def answer(self, message: str, conversation_id: UUID | None) -> Stream:
        """The turn stored and the provider asked; the response that streams its answer."""
        if not self.ai.enabled:
            raise AINotConfigured
        session = self.user_session.privileged()
        settings = self.settings
        context_chars = settings.chat_context_tokens * CHARS_PER_TOKEN
        history_chars = settings.chat_history_tokens * CHARS_PER_TOKEN
        [row] = await session.fetch(
            TURN, (conversation_id, message, history_chars, context_chars, CONTEXT_LISTINGS)
        )
        if (turn := row["turn"]) is None:
            raise ApiError(404, "conversation_not_found", "no conversation of yours has this id")
        try:
            stream = await self.ai.stream_chat(
                prompt(turn, message, context_chars),
                user_id=UUID(self.user_session.caller.user_id),
                max_tokens=settings.chat_max_tokens,
                spent_today=turn["spent_today"],
            )
        except BaseException:
            await session.fetch(
                DISCARD,
                (turn["user_message_id"], turn["message_id"], turn["conversation_id"], turn["created"]),
            )
            raise
        return Answer(session, turn, stream).response()


def provide_assistant(user_session: NamedDependency[Session], state: State) -> Assistant:
    # The handler's one dependency, resolved after the session it needs: Litestar resolves a handler's
    # sibling dependencies (the session, the AI, the settings) in a task group, about 0.4 ms before the
    # first token (litestar#4563).
    return Assistant(user_session, provide_ai(state), get_jobsearch_settings())


class ChatController(Controller):
    path = "/ai"
    tags = ["jobsearch"]
    dependencies = {"assistant": Provide(provide_assistant, sync_to_thread=False)}

    @post(
        "/chat",
        operation_id="ai_chat",
        status_code=200,
        media_type="text/event-stream",
        summary="The careers assistant's answer to the user's message, streamed as Server-Sent Events",
        description="Starts a conversation unless `conversation_id` names one of the caller's. Events: "
        "start, delta (many), then done or error. Refusals before the answer starts are JSON errors.",
    )
    async def chat(self, data: JSONBody[ChatRequest], assistant: NamedDependency[Assistant]) -> Stream:
        return await assistant.answer(data.message, data.conversation_id)


route_handlers = [ChatController]
