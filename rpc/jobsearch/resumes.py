"""Resumes: reading what users upload to the `resumes` bucket, and `POST /functions/v1/resumes/process`.

An upload queues its own reading (triggers on storage.objects, see the resumes migration); this module is
the job that reads it, and the function that queues it again for a file the caller owns. The job downloads
the object with the service key, reads it in a child process under limits (rpc/jobsearch/extract.py),
splits the text into sections (structured AI output when AI is configured, else at recognised headings),
finds the skills of the ontology it names, and stores all that in one transaction
(`private.finish_resume`). Whatever happens, the row ends `ready` or `failed` with a reason the frontend
can word: a file never takes the worker down, and a row left waiting by a job that died is queued again.
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import aclosing
from typing import Annotated, Any, Literal, LiteralString
from uuid import UUID

import msgspec
import procrastinate
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.types import ControllerRouterHandler
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from rpc.jobsearch.extract import Extracted, Unreadable, extract
from rpc.jobsearch.tasks import tasks
from rpc.platform.ai import AI
from rpc.platform.db import Session
from rpc.platform.errors import ApiError
from rpc.platform.functions import NO_NUL
from rpc.platform.jobs import job_settings
from rpc.platform.storage import Storage

log = logging.getLogger(__name__)

BUCKET = "resumes"
# The bucket's own limit (the migration); a larger object, should the bucket's limit change, is not read.
MAX_RESUME_BYTES = 10 * 1024 * 1024
# What reading one file may take: wall time (and as much CPU), and address space (the child's interpreter
# and libraries included, about 50 MB).
EXTRACT_TIMEOUT_S = 30.0
EXTRACT_MEMORY_BYTES = 512 * 1024 * 1024
# Downloads that fail on Storage's side are tried this many times in all, then the resume fails.
DOWNLOAD_ATTEMPTS = 3
# Skills are looked for in the first this many characters (a ten-page resume has about 30,000).
SKILL_TEXT_CHARS = 50_000
# The AI reads at most this much of a resume (the start of a longer one).
AI_TEXT_CHARS = 30_000

# -- queries --------------------------------------------------------------------------------------------

# As the caller: RLS decides whether the object is theirs.
OWN_OBJECT: LiteralString = "select 1 from storage.objects where bucket_id = 'resumes' and name = %s"
# As the service role, once the caller's right is known.
QUEUE_AGAIN: LiteralString = (
    "select resume_id as id, resume_status as status from private.queue_resume(%s, false)"
)
# The job's, on the queue's connection (postgres).
START: LiteralString = """
update public.resumes set status = 'processing', failure_reason = null where id = %(resume_id)s
returning user_id, object_path
"""
BACK_TO_QUEUE: LiteralString = """
update public.resumes set status = 'queued' where id = %(resume_id)s and status = 'processing'
"""
FINISH: LiteralString = """
select private.finish_resume(
  %(resume_id)s, %(content_hash)s, %(media_type)s, %(page_count)s, %(text)s, %(sections)s, %(phrases)s
)::text as kept
"""
FAIL: LiteralString = "select private.fail_resume(%(resume_id)s, %(reason)s)"
REQUEUE_STRANDED: LiteralString = "select private.requeue_stranded_resumes() as requeued"


# -- sections -------------------------------------------------------------------------------------------

SectionKind = Literal[
    "header",  # what comes before the first heading: name and contact details, usually
    "summary",
    "experience",
    "education",
    "skills",
    "projects",
    "certifications",
    "languages",
    "awards",
    "publications",
    "volunteering",
    "interests",
    "references",
    "other",
]


class Section(BaseModel):
    kind: SectionKind
    title: str  # the heading as written; empty when there is none
    content: str


class ResumeReading(BaseModel):
    """What the AI is asked for (strict structured output: every field required, no bounds in the schema)."""

    sections: list[Section]
    skills: list[str]  # the skills the resume names, in its words


READING_PROMPT = (
    "You read resumes. Split the resume the user sends into its sections, in order: for each its kind, "
    "its heading exactly as written (empty if it has none) and its content exactly as written. Text before "
    "the first heading is of kind header. Also list every skill the resume names (tools, languages, methods, "
    "areas of expertise), each in the resume's own words. Never add anything the resume does not say."
)

# Recognised headings by section kind, normalised (lower case, "&" and "/" as "and", single spaces).
HEADING_NAMES: dict[SectionKind, str] = {
    "summary": "summary|profile|professional summary|professional profile|career summary|executive summary|"
    "about|about me|objective|career objective|personal statement|overview",
    "experience": "experience|work experience|professional experience|employment|employment history|"
    "work history|career history|relevant experience|career",
    "education": "education|education and training|academic background|academic qualifications|"
    "qualifications|training",
    "skills": "skills|key skills|core skills|technical skills|skills and expertise|competencies|"
    "core competencies|expertise|areas of expertise|technologies|tools|tools and technologies",
    "projects": "projects|key projects|selected projects|personal projects",
    "certifications": "certifications|certificates|licences|licenses|certifications and licences|"
    "certifications and licenses",
    "languages": "languages|language skills",
    "awards": "awards|honours|honors|awards and honours|awards and honors|achievements",
    "publications": "publications|papers|talks|publications and talks",
    "volunteering": "volunteering|volunteer experience|volunteer work",
    "interests": "interests|hobbies|hobbies and interests",
    "references": "references",
}
HEADINGS: dict[str, SectionKind] = {
    heading: kind for kind, headings in HEADING_NAMES.items() for heading in headings.split("|")
}
# A heading alone on its line, or one followed by a colon and the section's first words ("Skills: Go, SQL").
HEADING_LINE = re.compile(r"[#*•\-=_\s]*(?P<name>[A-Za-z][A-Za-z &/]{1,40}?)\s*(?::\s*(?P<rest>.*))?")


def heading_of(line: str) -> tuple[SectionKind, str, str] | None:
    """(kind, heading as written, the rest of the line) when the line opens a section."""
    match = HEADING_LINE.fullmatch(line.strip())
    if match is None:
        return None
    name = match.group("name").strip()
    key = re.sub(r"\s+", " ", name.lower().replace("&", " and ").replace("/", " and ")).strip()
    kind = HEADINGS.get(key)
    return None if kind is None else (kind, name, (match.group("rest") or "").strip())


def split_sections(text: str) -> list[dict[str, str]]:
    """The heuristic reading: a new section at each line that is a recognised heading."""
    sections: list[dict[str, str]] = []
    kind: SectionKind = "header"
    title, lines = "", []
    for line in [*text.split("\n"), None]:
        heading = heading_of(line) if line is not None else None
        if line is not None and heading is None:
            lines.append(line)
            continue
        content = "\n".join(lines).strip()
        if content or title:
            sections.append({"kind": kind, "title": title, "content": content})
        if heading is not None:
            kind, title, rest = heading
            lines = [rest] if rest else []
    return sections


async def read_sections(ai: AI, text: str, user_id: UUID) -> tuple[list[dict[str, str]], list[str]]:
    """Sections and skill names: the AI's reading when it is configured and gives one, else the headings'
    (with no skill names: those come from the words alone). The AI is an addition, never a reason to fail:
    a provider down, a budget spent or an answer of the wrong form fall back to the headings."""
    if ai.enabled:
        messages = [
            {"role": "system", "content": READING_PROMPT},
            {"role": "user", "content": text[:AI_TEXT_CHARS]},
        ]
        try:
            reading = await ai.structured(messages, ResumeReading, user_id=user_id)
        except Exception as exc:
            log.warning("resume sections by headings: the AI's reading failed: %s", exc)
        else:
            sections = [
                {"kind": s.kind, "title": s.title.strip()[:200], "content": s.content.strip()}
                for s in reading.sections[:50]
                if s.content.strip() or s.title.strip()
            ]
            if sections:
                return sections, [name.strip()[:100] for name in reading.skills[:100] if name.strip()]
            log.warning("resume sections by headings: the AI found none")
    return split_sections(text), []


# -- skills -----------------------------------------------------------------------------------------------

# Where a run of words ends: a line, a list's separators, brackets, a sentence's end.
# Bullets and dashes by code point: \u2022 \u00b7 \u25aa \u25cf \u25e6, en and em dash.
RUN_BREAK = re.compile(
    "[\\n,;:()\\[\\]{}|\u2022\u00b7\u25aa\u25cf\u25e6\u2013\u2014]|\\.(?=\\s|$)|\\s[-/&]\\s"
)
# A word as skills are written: "C++", "C#", "Node.js", ".NET", "CI/CD", "P&L", "k8s".
WORD = re.compile(r"\.?[A-Za-z0-9][A-Za-z0-9+#&./'-]*")
MAX_RUN = 4  # words in the longest skill name worth looking for


def skill_phrases(text: str, named: list[str]) -> list[dict[str, Any]]:
    """Every run of 1-4 words within a line or list item, as `private.resume_skills` takes them (start and
    length in words), then the skill names the AI gave, each a run of its own.

    A word of three letters or fewer on its own is mostly prose or a name: all in lower case ("go", "it")
    it is left out; capitalised ("Go", "Doe") it counts only as a skill's name written so (the language
    Go, not the surname as an alias); in capitals ("AI", "DOE") or with a digit or sign ("k8s", "C++")
    it counts as any run does."""
    phrases: list[dict[str, Any]] = []
    position = 0
    for run in RUN_BREAK.split(text[:SKILL_TEXT_CHARS]):
        words = [word.rstrip(".'/-") for word in WORD.findall(run)]
        words = [word for word in words if word]
        for i, word in enumerate(words):
            short = len(word) <= 3 and word.isalpha() and not word.isupper()
            if not (short and word.islower()):
                phrases.append({"text": word, "start": position + i, "length": 1, "exact": short})
            for length in range(2, min(MAX_RUN, len(words) - i) + 1):
                phrases.append(
                    {"text": " ".join(words[i : i + length]), "start": position + i, "length": length}
                )
        position += len(words)
    phrases.extend({"text": name, "start": position + k, "length": 1} for k, name in enumerate(named))
    return phrases


# -- the job ----------------------------------------------------------------------------------------------


class StorageUnavailable(Exception):
    """Storage failed on its side: the download is worth another try."""


async def download(storage: Storage, path: str) -> bytes:
    """The object's bytes, never more than MAX_RESUME_BYTES of them."""
    data = bytearray()
    try:
        async with aclosing(storage.chunks(BUCKET, path)) as chunks:
            async for chunk in chunks:
                data += chunk
                if len(data) > MAX_RESUME_BYTES:
                    raise Unreadable("too_large")
    except ApiError as exc:
        if exc.status >= 500:
            raise StorageUnavailable from exc
        raise Unreadable("missing") from None  # removed since it was queued (or a name Storage refuses)
    return bytes(data)


async def read_resume(
    context: procrastinate.JobContext, resume_id: str, user_id: UUID, path: str
) -> str | None:
    """Download, read and store one resume; the id of the row that holds it (see finish_resume)."""
    storage = Storage(job_settings(context))
    try:
        data = await download(storage, path)
    finally:
        await storage.close()
    extracted: Extracted = await extract(data, timeout_s=EXTRACT_TIMEOUT_S, memory_bytes=EXTRACT_MEMORY_BYTES)
    ai: AI = context.additional_context["ai"]
    sections, named = await read_sections(ai, extracted.text, user_id)
    row = await context.app.connector.execute_query_one_async(
        FINISH,
        resume_id=resume_id,
        content_hash=hashlib.sha256(data).hexdigest(),
        media_type=extracted.media_type,
        page_count=extracted.page_count,
        text=extracted.text,
        sections=Jsonb(sections),
        phrases=Jsonb(skill_phrases(extracted.text, named)),
    )
    return row["kept"]


@tasks.task(
    name="process_resume",
    queue="resumes",
    pass_context=True,
    retry=procrastinate.RetryStrategy(
        max_attempts=DOWNLOAD_ATTEMPTS - 1, exponential_wait=4, retry_exceptions={StorageUnavailable}
    ),
)
async def process_resume(context: procrastinate.JobContext, resume_id: str) -> None:
    """Read one resume (queued by the triggers on storage.objects or by `resumes/process`)."""
    connector = context.app.connector
    rows = await connector.execute_query_all_async(START, resume_id=resume_id)
    if not rows:
        return  # its file was removed meanwhile, and the resume with it
    try:
        kept = await read_resume(context, resume_id, rows[0]["user_id"], rows[0]["object_path"])
    except Unreadable as exc:
        log.info("resume %s could not be read: %s", resume_id, exc.reason)
        await connector.execute_query_async(FAIL, resume_id=resume_id, reason=exc.reason)
        return
    except StorageUnavailable:
        assert context.job is not None
        if context.job.attempts + 1 < DOWNLOAD_ATTEMPTS:
            log.warning("resume %s: Storage failed, trying again later", resume_id)
            await connector.execute_query_async(BACK_TO_QUEUE, resume_id=resume_id)
            raise
        log.error("resume %s: Storage failed %d times, giving up", resume_id, DOWNLOAD_ATTEMPTS)
        await connector.execute_query_async(FAIL, resume_id=resume_id, reason="internal")
        return
    except Exception:
        log.exception("resume %s: reading failed", resume_id)
        await connector.execute_query_async(FAIL, resume_id=resume_id, reason="internal")
        return
    if kept is not None and kept != resume_id:
        log.info("resume %s is a copy of resume %s, which now points at its file", resume_id, kept)


@tasks.periodic(cron="*/5 * * * *", periodic_id="requeue_stranded_resumes")
@tasks.task(
    name="requeue_stranded_resumes",
    queue="maintenance",
    queueing_lock="requeue_stranded_resumes",
    pass_context=True,
)
async def requeue_stranded_resumes(context: procrastinate.JobContext, timestamp: int) -> None:
    """Resumes waiting with no job to read them (a job cancelled at shutdown, or one that failed before it
    could record why) are queued again."""
    row = await context.app.connector.execute_query_one_async(REQUEUE_STRANDED)
    if row["requeued"]:
        log.warning("queued %s stranded resumes again", row["requeued"])


# -- POST /functions/v1/resumes/process ----------------------------------------------------------------------

ObjectPath = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=NO_NUL)]


class ProcessRequest(msgspec.Struct, forbid_unknown_fields=True):
    path: ObjectPath  # the object's name in bucket `resumes`: `<user id>/<file name>`


class ResumeQueued(msgspec.Struct):
    id: UUID
    status: str


class ResumesController(Controller):
    path = "/resumes"
    tags = ["jobsearch"]

    @post(
        "/process",
        operation_id="resumes_process",
        status_code=202,
        summary="Read a resume the caller uploaded to bucket `resumes` again; follow its row's status",
    )
    async def process(
        self, data: JSONBody[ProcessRequest], user_session: NamedDependency[Session]
    ) -> ResumeQueued:
        # Someone else's file and no file at all answer alike.
        if not await user_session.fetch(OWN_OBJECT, (data.path,)):
            raise ApiError(404, "file_not_found", "you have no file at that path in bucket resumes")
        rows = await user_session.privileged().fetch(QUEUE_AGAIN, (data.path,))
        if not rows:  # outside a user's folder, or an empty folder's placeholder: no resume there
            raise ApiError(404, "file_not_found", "that file is not a resume")
        return ResumeQueued(rows[0]["id"], rows[0]["status"])


route_handlers: list[ControllerRouterHandler] = [ResumesController]
