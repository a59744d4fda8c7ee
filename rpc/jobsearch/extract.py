"""A resume's bytes read safely: the type from the bytes (never the name), the text and the page count, in a
child process of its own under limits on memory, CPU and time, so that a hostile file (a zip bomb, a PDF
that makes the parser loop or balloon) costs that process, never the worker.

The parent (`extract()`) starts `python -I <this file>` with the bytes on stdin; the child (`main()`) sets
its limits, reads, and writes one JSON object on stdout: the text, or the reason it could not. Run as a
script, the child imports only the standard library, pypdf and python-docx (not the app), which keeps its
start and its memory small; the parent side below imports nothing the child does.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT = "text/plain"

# A resume is a few pages: more text than this is cut, not stored whole.
MAX_TEXT_CHARS = 200_000
# What a DOCX may unpack to, all its parts together, as its zip directory declares them (zipfile reads no
# more than declared: a part that lies is cut short, and then fails its CRC).
MAX_UNPACKED_BYTES = 64 * 1024 * 1024

EXECUTABLE_MAGIC = (
    b"\x7fELF",  # Linux and most Unixes
    b"\xfe\xed\xfa\xce",  # Mach-O, 32 and 64 bit, both byte orders
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal (also Java classes)
    b"#!",  # scripts
)
# Windows (PE) and DOS programs start so; their header has NUL bytes where a text that happens to start
# with these letters has none.
DOS_MAGIC = b"MZ"
ZIP_MAGIC = b"PK\x03\x04"
# Office's Compound File: a legacy .doc, or an encrypted DOCX (which Office wraps in one).
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
APP_PAGES = re.compile(rb"<(?:\w+:)?Pages>\s*(\d+)\s*</(?:\w+:)?Pages>")


class Unreadable(Exception):
    """A file that cannot be read as a resume, with the reason the frontend is shown (resumes.failure_reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Extracted:
    media_type: str
    text: str
    page_count: int | None


# The child: reading ------------------------------------------------------------------------------------


def read(data: bytes) -> Extracted:
    """What the bytes are and say; raises Unreadable."""
    if not data:
        raise Unreadable("empty")
    if data.startswith(EXECUTABLE_MAGIC) or (data.startswith(DOS_MAGIC) and b"\x00" in data[:64]):
        raise Unreadable("executable")
    if data.startswith(b"%PDF-"):
        return read_pdf(data)
    if data.startswith(ZIP_MAGIC):
        return read_docx(data)
    if data.startswith(CFB_MAGIC):
        raise Unreadable("encrypted" if ENCRYPTED_PACKAGE in data else "unsupported_type")
    return read_text(data)


def read_pdf(data: bytes) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, LimitReachedError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Many PDFs are encrypted with an empty user password (restrictions only): those open.
            try:
                opened = reader.decrypt("")
            except (DependencyError, NotImplementedError):
                opened = 0
            if not opened:
                raise Unreadable("encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except LimitReachedError:
        raise Unreadable("too_large") from None
    except Unreadable:
        raise
    except Exception as exc:
        raise failure(exc) from None
    return Extracted(PDF, tidy("\n\n".join(pages)), len(pages))


def read_docx(data: bytes) -> Extracted:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise Unreadable("corrupt") from None
    names = {part.filename for part in parts}
    if "word/document.xml" not in names:
        raise Unreadable("unsupported_type")  # another zip (an archive, a Java or Android package)
    if any(part.flag_bits & 0x1 for part in parts):
        raise Unreadable("encrypted")
    if sum(part.file_size for part in parts) > MAX_UNPACKED_BYTES:
        raise Unreadable("too_large")
    from docx import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = Document(io.BytesIO(data))
        lines: list[str] = []
        # Paragraphs and tables in document order: resumes often lay out experience in tables.
        for block in document.element.body.iterchildren():
            tag = block.tag.rpartition("}")[2]
            if tag == "p":
                lines.append(Paragraph(block, document).text)
            elif tag == "tbl":
                for row in Table(block, document).rows:
                    cells: list[str] = []
                    for cell in row.cells:
                        if cell.text and (not cells or cells[-1] != cell.text):  # merged cells repeat
                            cells.append(cell.text)
                    lines.append(" | ".join(cells))
        recorded = APP_PAGES.search(archive.read("docProps/app.xml")) if "docProps/app.xml" in names else None
    except Exception as exc:
        raise failure(exc) from None
    return Extracted(DOCX, tidy("\n".join(lines)), int(recorded.group(1)) if recorded else None)


def failure(exc: Exception) -> Unreadable:
    """What a parser's error says of the file, this process's only input: it needed more memory than the
    limit allows (a MemoryError, however the parser wrapped it), or it is damaged."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, MemoryError) or xml_out_of_memory(cause):
            return Unreadable("too_large")
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return Unreadable("corrupt")


def xml_out_of_memory(exc: BaseException) -> bool:
    """libxml2, which python-docx parses with (through lxml), reports running out of memory as a syntax
    error of its own kind."""
    etree = sys.modules.get("lxml.etree")
    return (
        etree is not None
        and isinstance(exc, etree.XMLSyntaxError)
        and exc.code == etree.ErrorTypes.ERR_NO_MEMORY
    )


def read_text(data: bytes) -> Extracted:
    if b"\x00" in data:
        raise Unreadable("unsupported_type")  # binary, or UTF-16: neither is what the bucket takes as text
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        raise Unreadable("unsupported_type") from None
    return Extracted(TEXT, tidy(text), None)


def tidy(text: str) -> str:
    """Unix line ends, no trailing blanks, at most one empty line in a row, at most MAX_TEXT_CHARS; a text
    with no words in it is a file with no text layer (a scan) or a blank one. No NULs: a PDF's text may
    have them (unmapped glyphs), and Postgres text cannot hold them."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t\f\v]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not any(c.isalnum() for c in text):
        raise Unreadable("no_text")
    return text[:MAX_TEXT_CHARS]


def main() -> None:
    """The child: `python -I extract.py <memory bytes> <cpu seconds>`, the file on stdin."""
    import resource

    memory, cpu = int(sys.argv[1]), int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # SIGXCPU at the soft limit ends it, as SIGKILL at the hard one would if it were caught.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # it writes no file
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    data = sys.stdin.buffer.read()
    try:
        found = read(data)
        result: dict[str, Any] = {
            "media_type": found.media_type,
            "text": found.text,
            "pages": found.page_count,
        }
    except Unreadable as exc:
        result = {"failure": exc.reason}
    except MemoryError:
        result = {"failure": "too_large"}
    except RecursionError:
        result = {"failure": "corrupt"}
    sys.stdout.write(json.dumps(result))


# The parent: running the child -------------------------------------------------------------------------

CHILD = Path(__file__)


async def extract(data: bytes, *, timeout_s: float, memory_bytes: int) -> Extracted:
    """Read `data` in a child process that may use `memory_bytes` of address space and `timeout_s` of wall
    time (and as much CPU); raises Unreadable, whatever the file does to the child."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        str(CHILD),
        str(memory_bytes),
        str(max(1, int(timeout_s) + 1)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={},
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(data), timeout_s)
    except TimeoutError:
        raise Unreadable("timeout") from None
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise Unreadable("timeout")
    try:
        result = json.loads(output)
    except ValueError:
        # It died without a word: the parser crashed on the file (or ran out of memory where Python could
        # not raise MemoryError, inside a C library).
        raise Unreadable("corrupt") from None
    if "failure" in result:
        raise Unreadable(result["failure"])
    return Extracted(result["media_type"], result["text"], result["pages"])


if __name__ == "__main__":
    main()
