"""The bytes of objects on disk: one immutable file per object version, under `<root>/objects/`.

A file is named after the version (a fresh UUID per upload), never after the object's key, so no key can
reach outside the folder and a reader never sees a file change under it. An upload is written to
`<root>/tmp/` and renamed into place before its row is committed; the file a new version replaces is
removed after the commit. So a crash of the app leaves at most a file without a row (a temporary one, a
version whose commit never happened, or one just replaced), and `sweep()` removes those when the stack
starts. Like Storage's own file backend (what `supabase start` runs), files are not fsynced: a power
loss may take the last seconds of writes with it, a price a local stack pays for uploads at disk speed.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


class ObjectFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.tmp = root / "tmp"

    def prepare(self) -> None:
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, version: str) -> Path:
        # Two characters of fan-out keep directories small; versions are UUIDs we made, never client text.
        return self.objects / version[:2] / version

    def writer(self) -> Upload:
        return Upload(self)

    def link(self, version: str) -> str:
        """A new version with the same bytes (a copy): a hard link, since versions never change."""
        copy = str(uuid.uuid4())
        target = self.path(copy)
        target.parent.mkdir(exist_ok=True)
        os.link(self.path(version), target)
        return copy

    def remove(self, version: str | None) -> None:
        if version:
            with contextlib.suppress(FileNotFoundError):
                self.path(version).unlink()

    def sweep(self, versions: set[str]) -> int:
        """Remove temporary files and every version no row names (call before serving); how many."""
        removed = 0
        for path in [*self.tmp.iterdir(), *(p for d in self.objects.iterdir() for p in d.iterdir())]:
            if path.parent == self.tmp or path.name not in versions:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


class Upload:
    """One upload's bytes. Its methods block: the caller runs them in a thread, a batch of chunks at a time,
    so the writing of one upload overlaps the event loop's work for others.

    Its ETag names the version: a strong validator, since a version's bytes never change. (Storage's file
    backend hashes the bytes with MD5 by default, 2 ms a megabyte that supabase-js and supabase-py never
    check; its other choice, modification time and size, can repeat.)
    """

    def __init__(self, files: ObjectFiles) -> None:
        self.files = files
        self.version = str(uuid.uuid4())
        self.size = 0
        self.etag = f'"{uuid.UUID(self.version).hex}"'
        self._temporary = files.tmp / self.version
        self._fd: int | None = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def write(self, chunks: list[bytes]) -> None:
        assert self._fd is not None
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]
            self.size += len(chunk)

    def finish(self, chunks: list[bytes]) -> None:
        """Write the last chunks and move the file into place."""
        self.write(chunks)
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        target = self.files.path(self.version)
        target.parent.mkdir(exist_ok=True)
        os.rename(self._temporary, target)

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._temporary.unlink(missing_ok=True)
        self.files.remove(self.version)
