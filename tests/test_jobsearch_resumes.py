"""Resumes: uploads through supabase-py's storage client to the local stack's bucket `resumes`, read by the
real worker (the child process with its limits, Storage with the service key, the AI through the real SDK
against tests/ai_server.py), followed through PostgREST; RLS on resumes and suggestions under every actor.

Files are built here: PDFs with pypdf (text drawn with a font, a scan's inline image, an encryption),
DOCX with python-docx, zip bombs with zipfile, and a real executable (`true`) renamed.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import docx
import httpx
import procrastinate
import psycopg
import pytest
from postgrest.exceptions import APIError
from procrastinate.periodic import PeriodicRegistry
from psycopg.rows import dict_row
from pypdf import PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject
from storage3.exceptions import StorageApiError

from app import CAPABILITIES
from rpc.jobsearch.extract import Unreadable, extract
from rpc.jobsearch.resumes import ResumeReading, Section, skill_phrases, split_sections
from rpc.platform.jobs import Queue
from rpc.platform.settings import Settings
from tests.ai_server import AIServer, Reply
from tests.support import (
    ANON_KEY,
    User,
    actor,
    add_member,
    as_anon,
    as_user,
    make_company,
    make_executive,
    make_user,
    token_for,
    value,
    work_until_idle,
)
from tests.test_local_storage import client_for

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT = "text/plain"

RESUME_LINES = [
    "Jane Doe",
    "jane@example.com",
    "Summary",
    "Platform engineer who likes to go the extra mile.",
    "Experience",
    "Acme - built machine learning pipelines in Python on Kubernetes",
    "Skills",
    "Python, SQL, Docker",
]


# Files ------------------------------------------------------------------------------------------------------


def pdf_page(writer: PdfWriter, operators: bytes) -> None:
    """A page drawn by `operators`, with Helvetica as /F1."""
    page = writer.add_blank_page(612, 792)
    helvetica = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): helvetica})}
    )
    content = ContentStream(None, None)
    content.set_data(operators)
    page.replace_contents(content)


def text_operators(lines: list[str]) -> bytes:
    shown = b" ".join(b"(" + line.encode("latin-1") + b") Tj T*" for line in lines)
    return b"BT /F1 11 Tf 14 TL 72 720 Td " + shown + b" ET"


def pdf_bytes(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def text_pdf(pages: list[list[str]], password: str | None = None) -> bytes:
    writer = PdfWriter()
    for lines in pages:
        pdf_page(writer, text_operators(lines))
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner-" + password, algorithm="AES-256")
    return pdf_bytes(writer)


def scanned_pdf() -> bytes:
    """A scan: one page that is an image (inline, grey) and no text at all."""
    writer = PdfWriter()
    pixels = bytes(range(0, 256, 4)) * 4  # 16 x 16, 8 bits
    pdf_page(writer, b"q 468 0 0 600 72 100 cm BI /W 16 /H 16 /CS /G /BPC 8 ID " + pixels + b" EI Q")
    return pdf_bytes(writer)


def resume_docx(lines: list[str] = RESUME_LINES) -> bytes:
    document = docx.Document()
    for line in lines:
        if line in ("Summary", "Experience", "Skills"):
            document.add_heading(line, level=1)
        else:
            document.add_paragraph(line)
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "2019-2024"
    table.cell(0, 1).text = "Globex, data engineering"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb(unpacked_mb: int = 300) -> bytes:
    """A .docx-shaped zip whose document part unpacks to `unpacked_mb` MB of blanks (about 300 KB packed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w") as part:
            block = b" " * (1 << 20)
            for _ in range(unpacked_mb):
                part.write(block)
    return out.getvalue()


def lying_zip_bomb() -> bytes:
    """A bomb whose central directory says the document unpacks to 1 KB: zipfile reads no more than that
    (and the part then fails its CRC), so the lie buys no memory."""
    data = bytearray(zip_bomb(64))
    entry = data.find(b"PK\x01\x02")  # the central directory's entries, each with its name at +46
    while data[entry + 46 : entry + 46 + len(b"word/document.xml")] != b"word/document.xml":
        entry = data.find(b"PK\x01\x02", entry + 4)
    struct.pack_into("<I", data, entry + 24, 1024)  # the uncompressed size
    return bytes(data)


def executable() -> bytes:
    found = shutil.which("true")
    assert found is not None
    return Path(found).read_bytes()


# The stack and the worker --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def committed_module(database) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database.superuser, autocommit=True) as connection:
        yield connection


@dataclass
class Worker:
    """rpc.platform.jobs' app on this module's database, its periodic schedule set aside."""

    app: procrastinate.App
    queue: Queue
    settings: Settings

    async def work(self, settings: Settings | None = None) -> None:
        """The real worker on the resumes queue until nothing is due."""
        await work_until_idle(self.app, self.queue, settings or self.settings, ["resumes"])


@pytest.fixture(scope="module")
async def worker(database, api_url) -> AsyncIterator[Worker]:
    settings = database.settings(supabase_url=api_url)
    queue = Queue(settings, CAPABILITIES)
    app = queue.app()
    app.periodic_registry = PeriodicRegistry()
    async with queue.opened(app):
        yield Worker(app, queue, settings)


def clear_jobs(conn: psycopg.Connection) -> None:
    conn.execute(
        "truncate procrastinate.procrastinate_jobs, procrastinate.procrastinate_events,"
        " procrastinate.procrastinate_periodic_defers"
    )


@pytest.fixture(autouse=True)
def no_jobs(committed_module: psycopg.Connection) -> None:
    """Each test starts with no jobs (the module's database is shared)."""
    clear_jobs(committed_module)


@pytest.fixture
def alice(committed_module: psycopg.Connection) -> User:
    return make_user(committed_module, full_name="Alice Applicant")


@pytest.fixture
def bob(committed_module: psycopg.Connection) -> User:
    return make_user(committed_module, full_name="Bob Other")


def bucket(api_url: str, user: User | None):
    return client_for(api_url, user).storage.from_("resumes")


def upload(api_url: str, user: User, name: str, data: bytes, content_type: str, **options: str) -> str:
    path = f"{user.id}/{name}"
    bucket(api_url, user).upload(path, data, {"content-type": content_type, **options})
    return path


RESUME: LiteralString = (
    "select id::text, user_id::text, status, failure_reason, media_type, page_count, text, sections,"
    " content_hash, is_primary from public.resumes where object_path = %s"
)


def resume_at(conn: psycopg.Connection, path: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(RESUME, (path,)).fetchone()


def read(conn: psycopg.Connection, path: str) -> dict[str, Any]:
    row = resume_at(conn, path)
    assert row is not None, f"no resume at {path}"
    return row


def suggested(conn: psycopg.Connection, resume_id: str) -> dict[str, str]:
    """slug -> the words that named it."""
    rows = conn.execute(
        "select k.slug, s.matched_text from public.resume_skill_suggestions s"
        " join public.skills k on k.id = s.skill_id where s.resume_id = %s",
        (resume_id,),
    ).fetchall()
    return dict(rows)


def jobs_for(conn: psycopg.Connection, resume_id: str) -> list[tuple[str, str]]:
    return conn.execute(
        "select task_name, status::text from procrastinate.procrastinate_jobs where args ->> 'resume_id' = %s",
        (resume_id,),
    ).fetchall()


# Uploads, each allowed type ---------------------------------------------------------------------------------


async def test_an_upload_queues_its_reading_in_the_same_transaction(committed_module, api_url, alice):
    path = upload(api_url, alice, "cv.txt", "\n".join(RESUME_LINES).encode(), TEXT)
    row = read(committed_module, path)
    assert (row["status"], row["user_id"], row["text"]) == ("queued", alice.id, None)
    assert jobs_for(committed_module, row["id"]) == [("jobsearch:process_resume", "todo")]


async def test_a_pdf_is_read_with_its_pages_sections_and_skills(committed_module, api_url, worker, alice):
    data = text_pdf([RESUME_LINES[:4], RESUME_LINES[4:]])
    path = upload(api_url, alice, "cv.pdf", data, PDF)
    await worker.work()
    row = read(committed_module, path)
    assert (row["status"], row["failure_reason"], row["media_type"], row["page_count"]) == (
        "ready",
        None,
        PDF,
        2,
    )
    assert "machine learning pipelines in Python on Kubernetes" in row["text"]
    assert row["content_hash"] == hashlib.sha256(data).hexdigest()
    assert [(s["kind"], s["title"]) for s in row["sections"]] == [
        ("header", ""),
        ("summary", "Summary"),
        ("experience", "Experience"),
        ("skills", "Skills"),
    ]
    skills = suggested(committed_module, row["id"])
    assert {"python", "kubernetes", "machine-learning", "sql", "docker"} <= set(skills)
    assert skills["machine-learning"] == "machine learning"
    # "go the extra mile" is prose: the language Go is written with a capital.
    assert "go" not in skills
    assert row["is_primary"] is True  # the user's first resume


async def test_a_docx_is_read_with_its_tables(committed_module, api_url, worker, alice):
    path = upload(api_url, alice, "cv.docx", resume_docx(), DOCX)
    await worker.work()
    row = read(committed_module, path)
    assert (row["status"], row["media_type"]) == ("ready", DOCX)
    assert row["page_count"] == 1  # what python-docx's template records
    assert "2019-2024 | Globex, data engineering" in row["text"]
    assert [s["kind"] for s in row["sections"]] == ["header", "summary", "experience", "skills"]
    assert {"python", "kubernetes", "docker", "data-engineering"} <= set(
        suggested(committed_module, row["id"])
    )


async def test_a_text_file_is_read(committed_module, api_url, worker, alice):
    path = upload(api_url, alice, "cv.txt", ("\ufeff" + "\r\n".join(RESUME_LINES)).encode(), TEXT)
    await worker.work()
    row = read(committed_module, path)
    assert (row["status"], row["media_type"], row["page_count"]) == ("ready", TEXT, None)
    assert row["text"] == "\n".join(RESUME_LINES)


# Uploads that fail, each with its reason ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "data", "reason"),
    [
        ("cv.pdf", PDF, executable(), "executable"),
        ("cv.txt", TEXT, b"", "empty"),
        ("cv.docx", DOCX, zip_bomb(), "too_large"),
        ("cv.docx", DOCX, lying_zip_bomb(), "corrupt"),
        ("cv.pdf", PDF, text_pdf([RESUME_LINES], password="secret"), "encrypted"),
        ("cv.pdf", PDF, scanned_pdf(), "no_text"),
        ("cv.pdf", PDF, b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R", "corrupt"),
        ("cv.docx", DOCX, b"PK\x03\x04 not really a zip", "corrupt"),
        ("cv.txt", TEXT, "Jane Doe".encode("utf-16"), "unsupported_type"),
        ("cv.txt", TEXT, b"Jos\xe9 in Latin-1", "unsupported_type"),
    ],
    ids=[
        "renamed-executable",
        "empty",
        "zip-bomb",
        "zip-bomb-lying-about-its-size",
        "encrypted-pdf",
        "pdf-without-text-layer",
        "truncated-pdf",
        "broken-zip",
        "utf16-text",
        "latin1-text",
    ],
)
async def test_a_file_that_cannot_be_read_fails_with_its_reason(
    committed_module, api_url, worker, alice, name, content_type, data, reason
):
    path = upload(api_url, alice, name, data, content_type)
    await worker.work()
    row = read(committed_module, path)
    assert (row["status"], row["failure_reason"]) == ("failed", reason)
    assert (row["text"], row["media_type"], row["content_hash"]) == (None, None, None)
    # The job ended well (the worker is fine) and wrote the reason: no retry is waiting.
    assert jobs_for(committed_module, row["id"]) == [("jobsearch:process_resume", "succeeded")]


async def test_the_worker_reads_on_after_a_bomb(committed_module, api_url, worker, alice):
    bomb = upload(api_url, alice, "bomb.docx", zip_bomb(), DOCX)
    fine = upload(api_url, alice, "fine.txt", b"Jane Doe, Python developer", TEXT)
    await worker.work()
    assert read(committed_module, bomb)["status"] == "failed"
    assert read(committed_module, fine)["status"] == "ready"


def test_the_bucket_refuses_a_file_over_10_mb_and_nothing_is_queued(committed_module, api_url, alice):
    path = f"{alice.id}/big.txt"
    with pytest.raises(StorageApiError) as refused:
        bucket(api_url, alice).upload(path, b"a" * (11 * 1024 * 1024), {"content-type": TEXT})
    assert refused.value.status == "413"
    assert resume_at(committed_module, path) is None
    assert value(committed_module, "select count(*) from procrastinate.procrastinate_jobs") == 0


def test_the_bucket_refuses_other_types_by_their_declared_type(committed_module, api_url, alice):
    path = f"{alice.id}/photo.png"
    with pytest.raises(StorageApiError) as refused:
        bucket(api_url, alice).upload(path, b"\x89PNG\r\n\x1a\n", {"content-type": "image/png"})
    assert refused.value.status == "415"
    assert resume_at(committed_module, path) is None


# The child's limits -----------------------------------------------------------------------------------------


async def test_reading_that_takes_too_long_is_a_timeout():
    with pytest.raises(Unreadable) as failed:
        await extract(resume_docx(), timeout_s=0.001, memory_bytes=512 * 1024 * 1024)
    assert failed.value.reason == "timeout"


def long_docx(paragraphs: int) -> bytes:
    """A valid DOCX of `paragraphs` short paragraphs: 300,000 pack to about 80 KB and unpack to 15 MB of
    XML, whose tree takes far more (read without a memory limit, it succeeds)."""
    template = zipfile.ZipFile(io.BytesIO(resume_docx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in template.infolist():
            data = template.read(part.filename)
            if part.filename == "word/document.xml":
                head, _, tail = data.partition(b"<w:body>")
                data = (
                    head
                    + b"<w:body>"
                    + b"<w:p><w:r><w:t>Python developer</w:t></w:r></w:p>" * paragraphs
                    + tail
                )
            archive.writestr(part.filename, data)
    return out.getvalue()


async def test_reading_that_needs_more_memory_than_allowed_is_too_large():
    with pytest.raises(Unreadable) as failed:
        await extract(long_docx(300_000), timeout_s=30, memory_bytes=128 * 1024 * 1024)
    assert failed.value.reason == "too_large"


# The same file twice, a new version, a removal ------------------------------------------------------------


async def test_the_same_file_twice_is_one_resume_at_the_newest_path(committed_module, api_url, worker, alice):
    data = resume_docx()
    first = upload(api_url, alice, "first.docx", data, DOCX)
    await worker.work()
    kept = read(committed_module, first)["id"]
    second = upload(api_url, alice, "second.docx", data, DOCX)
    await worker.work()
    assert resume_at(committed_module, first) is None
    row = read(committed_module, second)
    assert (row["id"], row["status"]) == (kept, "ready")
    assert value(committed_module, "select count(*) from public.resumes where user_id = %s", (alice.id,)) == 1
    # The earlier object stays in Storage: only the resume follows the newer upload.
    assert bucket(api_url, alice).download(first) == data


async def test_the_same_file_from_two_users_is_two_resumes(committed_module, api_url, worker, alice, bob):
    data = resume_docx()
    mine = upload(api_url, alice, "cv.docx", data, DOCX)
    theirs = upload(api_url, bob, "cv.docx", data, DOCX)
    await worker.work()
    assert read(committed_module, mine)["id"] != read(committed_module, theirs)["id"]
    assert read(committed_module, theirs)["status"] == "ready"


async def test_a_new_version_is_read_again_and_a_removal_removes_the_resume(
    committed_module, api_url, worker, alice
):
    path = upload(api_url, alice, "cv.txt", b"Jane Doe, Python developer", TEXT)
    await worker.work()
    before = read(committed_module, path)
    bucket(api_url, alice).upload(
        path, b"Jane Doe, Kubernetes operator", {"content-type": TEXT, "upsert": "true"}
    )
    queued = read(committed_module, path)
    assert (queued["id"], queued["status"], queued["text"]) == (before["id"], "queued", None)
    await worker.work()
    after = read(committed_module, path)
    assert (after["status"], after["text"]) == ("ready", "Jane Doe, Kubernetes operator")
    assert set(suggested(committed_module, after["id"])) >= {"kubernetes"}
    assert "python" not in suggested(committed_module, after["id"])
    bucket(api_url, alice).remove([path])
    assert resume_at(committed_module, path) is None


async def test_a_moved_file_takes_its_resume_along(committed_module, api_url, worker, alice):
    path = upload(api_url, alice, "old.txt", b"Jane Doe, Python developer", TEXT)
    await worker.work()
    bucket(api_url, alice).move(path, f"{alice.id}/new.txt")
    assert resume_at(committed_module, path) is None
    assert read(committed_module, f"{alice.id}/new.txt")["status"] == "queued"
    await worker.work()
    assert read(committed_module, f"{alice.id}/new.txt")["status"] == "ready"


async def test_a_resume_removed_before_its_job_runs_is_no_error(committed_module, api_url, worker, alice):
    path = upload(api_url, alice, "gone.txt", b"Jane Doe", TEXT)
    resume_id = read(committed_module, path)["id"]
    bucket(api_url, alice).remove([path])
    await worker.work()
    assert jobs_for(committed_module, resume_id) == [("jobsearch:process_resume", "succeeded")]


async def test_a_stranded_resume_is_queued_again_by_the_sweep(committed_module, api_url, worker, alice):
    path = upload(api_url, alice, "cv.txt", b"Jane Doe, Python developer", TEXT)
    resume_id = read(committed_module, path)["id"]
    clear_jobs(committed_module)  # its job lost
    assert value(committed_module, "select private.requeue_stranded_resumes()") >= 1
    assert jobs_for(committed_module, resume_id) == [("jobsearch:process_resume", "todo")]
    assert value(committed_module, "select private.requeue_stranded_resumes()") == 0  # once
    await worker.work()
    assert read(committed_module, path)["status"] == "ready"
    assert jobs_for(committed_module, resume_id) == [("jobsearch:process_resume", "succeeded")]


# Bucket policies: own folder only ---------------------------------------------------------------------------


def test_only_the_owner_reads_writes_and_removes_in_their_folder(committed_module, api_url, alice, bob):
    path = upload(api_url, alice, "private.txt", b"Jane Doe", TEXT)
    assert bucket(api_url, alice).download(path) == b"Jane Doe"
    for stranger in (bob, None):
        with pytest.raises(StorageApiError) as refused:
            bucket(api_url, stranger).download(path)
        assert refused.value.status in ("400", "404")
        assert bucket(api_url, stranger).list(alice.id) == []
    with pytest.raises(StorageApiError) as refused:
        bucket(api_url, bob).upload(f"{alice.id}/planted.txt", b"evil", {"content-type": TEXT})
    assert refused.value.status == "403"
    with pytest.raises(StorageApiError):
        bucket(api_url, bob).upload(path, b"evil", {"content-type": TEXT, "upsert": "true"})
    assert bucket(api_url, bob).remove([path]) == []
    assert bucket(api_url, alice).download(path) == b"Jane Doe"
    assert resume_at(committed_module, f"{alice.id}/planted.txt") is None


# POST /functions/v1/resumes/process ---------------------------------------------------------------------------


def process(api_url: str, user: User | None, path: str) -> httpx.Response:
    token = token_for(user) if user else ANON_KEY
    return httpx.post(
        f"{api_url}/functions/v1/resumes/process",
        json={"path": path},
        headers={"Authorization": f"Bearer {token}", "apikey": ANON_KEY},
    )


async def test_the_owner_has_a_resume_read_again(committed_module, api_url, worker, alice):
    path = upload(api_url, alice, "cv.txt", b"Jane Doe, Python developer", TEXT)
    await worker.work()
    before = read(committed_module, path)
    response = process(api_url, alice, path)
    assert response.status_code == 202
    assert response.json() == {"id": before["id"], "status": "queued"}
    queued = read(committed_module, path)
    # What was read stays until the new reading replaces it: the bytes are the same.
    assert (queued["status"], queued["text"]) == ("queued", before["text"])
    await worker.work()
    assert read(committed_module, path)["status"] == "ready"


def test_someone_elses_path_is_not_found(committed_module, api_url, alice, bob):
    path = upload(api_url, alice, "cv.txt", b"Jane Doe", TEXT)
    clear_jobs(committed_module)
    for path_asked in (path, f"{bob.id}/nothing.txt"):
        response = process(api_url, bob, path_asked)
        assert response.status_code == 404
        assert response.json()["error"] == "file_not_found"
    assert value(committed_module, "select count(*) from procrastinate.procrastinate_jobs") == 0


@pytest.mark.parametrize("body", [{"path": ""}, {"path": "x" * 1025}, {"file": "x"}, []])
def test_bad_input_is_a_client_error(api_url, alice, body):
    response = httpx.post(
        f"{api_url}/functions/v1/resumes/process",
        json=body,
        headers={"Authorization": f"Bearer {token_for(alice)}", "apikey": ANON_KEY},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "validation_failed"


def test_the_process_function_needs_a_signed_in_user(api_url, alice):
    response = process(api_url, None, f"{alice.id}/cv.txt")
    assert (response.status_code, response.json()["error"]) == (403, "insufficient_role")


# Sections and skills -----------------------------------------------------------------------------------------


def test_headings_split_a_resume_into_sections():
    text = "Jane Doe\n\nPROFESSIONAL EXPERIENCE\nAcme\nSkills & Expertise: Python, SQL\nEducation\nBSc"
    assert split_sections(text) == [
        {"kind": "header", "title": "", "content": "Jane Doe"},
        {"kind": "experience", "title": "PROFESSIONAL EXPERIENCE", "content": "Acme"},
        {"kind": "skills", "title": "Skills & Expertise", "content": "Python, SQL"},
        {"kind": "education", "title": "Education", "content": "BSc"},
    ]


def test_runs_of_words_stop_at_lines_and_list_separators():
    phrases = {p["text"] for p in skill_phrases("Machine learning, Node.js\nC++ (k8s)", [])}
    assert {"Machine learning", "Node.js", "C++", "k8s"} <= phrases
    assert "learning Node.js" not in phrases
    assert "Node.js C++" not in phrases


async def test_the_longest_skill_name_wins_where_names_overlap(committed_module, api_url, worker, alice):
    suffix = uuid.uuid4().hex[:6]
    short, long_ = f"Zephyr{suffix}", f"Zephyr{suffix} analytics"
    for name in (short, long_):
        committed_module.execute(
            "insert into public.skills (slug, name, category) values (%s, %s, 'data')",
            (name.lower().replace(" ", "-"), name),
        )
    path = upload(api_url, alice, "cv.txt", f"Built {long_} dashboards".encode(), TEXT)
    await worker.work()
    names = committed_module.execute(
        "select k.name from public.resume_skill_suggestions s join public.skills k on k.id = s.skill_id"
        " where s.resume_id = %s and k.name like %s",
        (read(committed_module, path)["id"], f"Zephyr{suffix}%"),
    ).fetchall()
    assert names == [(long_,)]


async def test_skills_the_user_already_holds_are_not_proposed(committed_module, api_url, worker):
    python = value(committed_module, "select id from public.skills where slug = 'python'")
    executive = make_executive(committed_module)
    committed_module.execute(
        "insert into public.executive_skills (executive_id, skill_id) values (%s, %s)", (executive.id, python)
    )
    path = upload(api_url, executive, "cv.txt", b"Python and Kubernetes", TEXT)
    await worker.work()
    assert set(suggested(committed_module, read(committed_module, path)["id"])) == {"kubernetes"}


# With AI configured --------------------------------------------------------------------------------------------


@pytest.fixture
def ai_settings(database, api_url, ai: AIServer) -> Settings:
    ai.reset()
    return database.settings(
        supabase_url=api_url, openai_api_key="sk-test", openai_base_url=ai.url, openai_max_retries=0
    )


async def test_with_ai_the_sections_and_skills_are_the_ais_reading(
    committed_module, api_url, worker, alice, ai, ai_settings
):
    reading = ResumeReading(
        sections=[
            Section(kind="header", title="", content="Jane Doe"),
            Section(kind="experience", title="Where I worked", content="Acme, 2019-2024"),
        ],
        skills=["Terraform", "a skill no ontology knows"],
    )
    ai.script(Reply(content=reading.model_dump_json()))
    path = upload(api_url, alice, "cv.txt", b"Jane Doe\nWhere I worked\nAcme, 2019-2024\nPython", TEXT)
    await worker.work(ai_settings)
    row = read(committed_module, path)
    assert row["status"] == "ready"
    assert row["sections"] == [s.model_dump() for s in reading.sections]
    # The AI's skill names resolve through the ontology, like the resume's own words.
    assert set(suggested(committed_module, row["id"])) == {"terraform", "python"}
    [request] = ai.requests
    assert request["response_format"]["type"] == "json_schema"
    assert "Where I worked" in request["messages"][-1]["content"]
    # Read on Alice's behalf: her tokens, counted against her budget.
    assert usage_today(committed_module, alice.id) > 0


def usage_today(conn: psycopg.Connection, user_id: str) -> int:
    row = conn.execute(
        "select total_tokens from private.ai_usage where user_id = %s and day = (now() at time zone 'utc')::date",
        (user_id,),
    ).fetchone()
    return row[0] if row else 0


async def test_a_user_over_their_ai_budget_has_the_headings_split_it(
    committed_module, api_url, worker, alice, ai, ai_settings
):
    committed_module.execute(
        "insert into private.ai_usage (user_id, day, requests, prompt_tokens)"
        " values (%s, (now() at time zone 'utc')::date, 1, %s)"
        " on conflict (user_id, day) do update set prompt_tokens = excluded.prompt_tokens",
        (alice.id, ai_settings.ai_daily_tokens_per_user),
    )
    try:
        path = upload(api_url, alice, "cv.txt", "\n".join(RESUME_LINES).encode(), TEXT)
        await worker.work(ai_settings)
    finally:
        committed_module.execute("delete from private.ai_usage where user_id = %s", (alice.id,))
    row = read(committed_module, path)
    assert row["status"] == "ready"
    assert [s["kind"] for s in row["sections"]] == ["header", "summary", "experience", "skills"]
    assert ai.requests == []


@pytest.mark.parametrize(
    "reply",
    [Reply(status=500), Reply(content='{"sections": "not a list"}'), Reply(content=None)],
    ids=["provider-error", "answer-of-the-wrong-form", "no-sections"],
)
async def test_with_ai_failing_the_headings_split_it_and_it_is_still_read(
    committed_module, api_url, worker, alice, ai, ai_settings, reply
):
    ai.script(reply)
    path = upload(api_url, alice, "cv.txt", "\n".join(RESUME_LINES).encode(), TEXT)
    await worker.work(ai_settings)
    row = read(committed_module, path)
    assert row["status"] == "ready"
    assert [s["kind"] for s in row["sections"]] == ["header", "summary", "experience", "skills"]
    assert len(ai.requests) == 1


# RLS: resumes and suggestions under every actor ----------------------------------------------------------------


@dataclass(frozen=True)
class World:
    owner: User
    other: User
    member: User
    admin: User
    resume_id: str
    path: str


@pytest.fixture(scope="module")
async def world(committed_module, api_url, worker) -> World:
    """An owner's resume, read by the worker, with skills proposed; people around it."""
    owner = make_user(committed_module, full_name="Owner")
    other = make_user(committed_module, full_name="Other")
    member = make_user(committed_module, full_name="Recruiter")
    company = make_company(committed_module, make_user(committed_module), verified=True)
    add_member(committed_module, company, member, "recruiter")
    admin = make_user(committed_module, full_name="Admin", roles=("admin",))
    path = upload(api_url, owner, "cv.docx", resume_docx(), DOCX)
    await worker.work()
    resume_id = read(committed_module, path)["id"]
    assert suggested(committed_module, resume_id)
    return World(owner, other, member, admin, resume_id, path)


USERS = ["owner", "other", "member", "admin"]


def user_id(world: World, who: str) -> str:
    return getattr(world, who).id


@pytest.mark.parametrize(("who", "sees"), [("owner", 1), ("other", 0), ("member", 0), ("admin", 0)])
def test_a_resume_is_read_by_its_owner_only(conn, world, who, sees):
    assert (
        actor(conn, world, who).count("select * from public.resumes where id = %s", (world.resume_id,))
        == sees
    )


@pytest.mark.parametrize(
    ("who", "sees"), [("owner", True), ("other", False), ("member", False), ("admin", False)]
)
def test_suggestions_are_read_by_their_owner_only(conn, world, who, sees):
    count = actor(conn, world, who).count(
        "select * from public.resume_skill_suggestions where resume_id = %s", (world.resume_id,)
    )
    assert (count > 0) is sees


@pytest.mark.parametrize(
    "query",
    [
        "select * from public.resumes",
        "select * from public.resume_skill_suggestions",
        "update public.resumes set is_primary = true",
        "update public.resume_skill_suggestions set accepted_at = now()",
    ],
)
def test_anon_reads_and_changes_nothing(conn, world, query):
    as_anon(conn).refused(query, sqlstate="42501")


@pytest.mark.parametrize("who", ["anon", *USERS])
def test_nobody_inserts_a_resume_not_even_for_themselves(conn, world, who):
    forger = "00000000-0000-0000-0000-000000000000" if who == "anon" else user_id(world, who)
    actor(conn, world, who).refused(
        "insert into public.resumes (user_id, object_path, status, text) values (%s, %s, 'ready', 'forged')"
        " returning id",
        (forger, f"{forger}/forged.pdf"),
        sqlstate="42501",
    )


@pytest.mark.parametrize("who", ["anon", *USERS])
def test_nobody_inserts_a_suggestion_not_even_for_themselves(conn, world, who):
    forger = "00000000-0000-0000-0000-000000000000" if who == "anon" else user_id(world, who)
    skill = value(conn, "select id from public.skills where slug = 'corporate-strategy'")
    actor(conn, world, who).refused(
        "insert into public.resume_skill_suggestions (resume_id, skill_id, user_id, matched_text)"
        " values (%s, %s, %s, 'forged') returning *",
        (world.resume_id, skill, forger),
        sqlstate="42501",
    )


@pytest.mark.parametrize("who", ["anon", *USERS])
@pytest.mark.parametrize("table", ["resumes", "resume_skill_suggestions"])
def test_nobody_deletes_rows_the_file_removal_does(conn, world, who, table):
    column = "id" if table == "resumes" else "resume_id"
    actor(conn, world, who).refused(
        f"delete from public.{table} where {column} = %s",  # noqa: S608 (names from the parameters above)
        (world.resume_id,),
        sqlstate="42501",
    )


@pytest.mark.parametrize(("who", "changed"), [("owner", 1), ("other", 0), ("member", 0), ("admin", 0)])
def test_only_the_owner_chooses_the_primary_resume(conn, world, who, changed):
    assert (
        actor(conn, world, who).count(
            "update public.resumes set is_primary = false where id = %s", (world.resume_id,)
        )
        == changed
    )


@pytest.mark.parametrize(
    "assignment",
    [
        "status = 'ready'",
        "failure_reason = 'corrupt'",
        "text = 'rewritten'",
        "user_id = user_id",
        "object_path = object_path",
        "content_hash = null",
        "sections = '[]'",
    ],
)
def test_the_owner_changes_nothing_but_the_primary_choice(conn, world, assignment):
    as_user(conn, world.owner).refused(
        f"update public.resumes set {assignment} where id = %s",  # noqa: S608 (the assignments above)
        (world.resume_id,),
        sqlstate="42501",
    )


@pytest.mark.parametrize(
    ("who", "accepts"), [("owner", True), ("other", False), ("member", False), ("admin", False)]
)
def test_only_the_owner_accepts_suggestions_and_the_clock_is_the_databases(conn, world, who, accepts):
    accepted = actor(conn, world, who).rows(
        "update public.resume_skill_suggestions set accepted_at = '1999-01-01' where resume_id = %s"
        " returning accepted_at > now() - interval '1 minute' as now",
        (world.resume_id,),
    )
    assert bool(accepted) is accepts
    assert all(row["now"] for row in accepted)


@pytest.mark.parametrize("assignment", ["skill_id = skill_id", "user_id = user_id", "matched_text = 'x'"])
def test_the_owner_changes_nothing_of_a_suggestion_but_its_acceptance(conn, world, assignment):
    as_user(conn, world.owner).refused(
        f"update public.resume_skill_suggestions set {assignment} where resume_id = %s",  # noqa: S608
        (world.resume_id,),
        sqlstate="42501",
    )


# Through PostgREST, as the frontend ------------------------------------------------------------------------------


def test_the_frontend_follows_its_upload_through_postgrest(api_url, world):
    mine = (
        client_for(api_url, world.owner)
        .table("resumes")
        .select("id,status,failure_reason,page_count")
        .eq("object_path", world.path)
        .execute()
    )
    assert mine.data == [{"id": world.resume_id, "status": "ready", "failure_reason": None, "page_count": 1}]
    for who in (world.other, world.member, world.admin):
        assert (
            client_for(api_url, who)
            .table("resumes")
            .select("id")
            .eq("object_path", world.path)
            .execute()
            .data
            == []
        )
    with pytest.raises(APIError) as refused:
        client_for(api_url).table("resumes").select("id").execute()
    assert refused.value.code == "42501"


def test_postgrest_refuses_an_insert_and_a_status_change(api_url, world):
    owner = client_for(api_url, world.owner)
    with pytest.raises(APIError) as refused:
        owner.table("resumes").insert(
            {"user_id": world.owner.id, "object_path": f"{world.owner.id}/x.pdf"}
        ).execute()
    assert refused.value.code == "42501"
    with pytest.raises(APIError) as refused:
        owner.table("resumes").update({"status": "ready"}).eq("id", world.resume_id).execute()
    assert refused.value.code == "42501"


async def test_choosing_another_primary_resume_unsets_the_first(committed_module, api_url, worker, alice):
    first = upload(api_url, alice, "first.txt", b"Jane Doe, Python developer", TEXT)
    second = upload(api_url, alice, "second.txt", b"Jane Doe, Kubernetes operator", TEXT)
    await worker.work()
    assert read(committed_module, first)["is_primary"] is True
    assert read(committed_module, second)["is_primary"] is False
    client_for(api_url, alice).table("resumes").update({"is_primary": True}).eq(
        "id", read(committed_module, second)["id"]
    ).execute()
    assert (read(committed_module, first)["is_primary"], read(committed_module, second)["is_primary"]) == (
        False,
        True,
    )


async def test_an_accepted_skill_joins_an_executives_skills(committed_module, api_url, worker):
    executive = make_executive(committed_module)
    path = upload(api_url, executive, "cv.txt", b"Python and Kubernetes", TEXT)
    await worker.work()
    kubernetes = value(committed_module, "select id from public.skills where slug = 'kubernetes'")
    held = "select count(*) from public.executive_skills where executive_id = %s and skill_id = %s"
    assert value(committed_module, held, (executive.id, kubernetes)) == 0  # proposed, not applied
    client_for(api_url, executive).table("resume_skill_suggestions").update(
        {"accepted_at": "2000-01-01T00:00:00Z"}
    ).eq("resume_id", read(committed_module, path)["id"]).eq("skill_id", kubernetes).execute()
    assert value(committed_module, held, (executive.id, kubernetes)) == 1
    python = value(committed_module, "select id from public.skills where slug = 'python'")
    assert value(committed_module, held, (executive.id, python)) == 0


async def test_a_job_seekers_accepted_suggestions_are_their_skills(committed_module, api_url, worker, alice):
    path = upload(api_url, alice, "cv.txt", b"Python and Kubernetes", TEXT)
    await worker.work()
    resume_id = read(committed_module, path)["id"]
    client_for(api_url, alice).table("resume_skill_suggestions").update({"accepted_at": "now"}).eq(
        "resume_id", resume_id
    ).execute()
    accepted = committed_module.execute(
        "select count(*) from public.resume_skill_suggestions where resume_id = %s and accepted_at is not null",
        (resume_id,),
    ).fetchone()
    assert accepted == (2,)
    # A new version of the file keeps what was accepted and proposes nothing accepted again.
    bucket(api_url, alice).upload(
        path, b"Python, Kubernetes and SQL", {"content-type": TEXT, "upsert": "true"}
    )
    await worker.work()
    rows = committed_module.execute(
        "select k.slug, s.accepted_at is not null from public.resume_skill_suggestions s"
        " join public.skills k on k.id = s.skill_id where s.resume_id = %s order by k.slug",
        (resume_id,),
    ).fetchall()
    assert rows == [("kubernetes", True), ("python", True), ("sql", False)]


async def test_short_words_name_skills_only_as_skills_are_written(committed_module, api_url, worker, alice):
    # "Doe" is an alias of design of experiments (as DOE), "go" and "ai" are prose; "Go", "AI", "k8s" are not.
    path = upload(api_url, alice, "cv.txt", b"Jane Doe\nI go where ai helps\nGo, AI, k8s", TEXT)
    await worker.work()
    assert set(suggested(committed_module, read(committed_module, path)["id"])) == {
        "go",
        "artificial-intelligence",
        "kubernetes",
    }
