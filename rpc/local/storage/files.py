"""The bytes of objects on disk: one immutable file per object version, under `<root>/objects/`.

A file is named after the version (a fresh UUID per upload), never after the object's key, so no key can
reach outside the folder and a reader never sees a file change under it. An upload is written to
`<root>/tmp/`, flushed and renamed into place before its row is committed; the file a new version replaces
is removed after the commit. So a crash leaves at most a file without a row (a temporary one, or a version
whose commit never happened, or one just replaced), and `sweep()` removes those when the stack starts.
"""

from __future__ import annotations

import contextlib
import hashlib
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
    """One upload's bytes: written as they arrive, hashed on the way (the object's ETag is their MD5)."""

    def __init__(self, files: ObjectFiles) -> None:
        self.files = files
        self.version = str(uuid.uuid4())
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._temporary = files.tmp / self.version
        self._fd: int | None = os.open(self._temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def write(self, chunk: bytes) -> None:
        assert self._fd is not None
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]
        self._md5.update(chunk)
        self.size += len(chunk)

    @property
    def etag(self) -> str:
        return f'"{self._md5.hexdigest()}"'

    def finish(self) -> None:
        """Flush the bytes to disk and move them into place (blocking: run it in a thread)."""
        assert self._fd is not None
        os.fsync(self._fd)
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
