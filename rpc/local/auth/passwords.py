"""Passwords as GoTrue keeps them: bcrypt, cost 10, `$2a$` hashes, checked off the event loop.

Hashing takes tens of milliseconds of CPU by design; a bounded pool of low-priority threads (bcrypt
releases the GIL) keeps a storm of sign-ins from stalling every other request. An unknown email is checked against a hash
all the same, so the answer and its timing are the same as for a wrong password.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import bcrypt

from rpc.local.auth.config import AuthConfig
from rpc.local.auth.errors import validation_failed, weak_password

COST = 10
MAX_BYTES = 72  # bcrypt reads no further: a longer password would be checked by its first 72 bytes only


class Hasher:
    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bcrypt", initializer=yield_the_cpu)
        # For emails nobody has: the same work as checking a real hash.
        self._decoy = bcrypt.hashpw(b"no such user", bcrypt.gensalt(COST, prefix=b"2a"))

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        hashed = await loop.run_in_executor(
            self._pool, bcrypt.hashpw, password.encode(), bcrypt.gensalt(COST, prefix=b"2a")
        )
        return hashed.decode()

    async def check(self, password: str, hashed: str | None) -> bool:
        """Whether `password` matches `hashed`; with no hash, a decoy is checked and False returned."""
        encoded = (hashed or "").encode()
        if not encoded.startswith((b"$2a$", b"$2b$", b"$2y$")):
            encoded = self._decoy
            hashed = None
        loop = asyncio.get_running_loop()
        matches = await loop.run_in_executor(
            self._pool, bcrypt.checkpw, password.encode()[:MAX_BYTES], encoded
        )
        return matches and hashed is not None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def yield_the_cpu() -> None:
    """A hashing thread runs at the lowest priority (Linux sets it per thread): bcrypt takes every core
    left over, and the event loop, serving everything else, never waits behind it for one."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def check_strength(config: AuthConfig, password: str) -> None:
    """GoTrue's rules: at most 72 bytes, `minimum_password_length`, one of each required character set."""
    if len(password.encode()) > MAX_BYTES:
        raise validation_failed(f"Password cannot be longer than {MAX_BYTES} characters")
    messages, reasons = [], []
    if len(password) < config.minimum_password_length:
        reasons.append("length")
        messages.append(f"Password should be at least {config.minimum_password_length} characters.")
    if any(not any(char in password for char in required) for required in config.required_characters):
        reasons.append("characters")
        sets = ", ".join(config.required_characters)
        messages.append(f"Password should contain at least one character of each: {sets}.")
    if reasons:
        raise weak_password(" ".join(messages), reasons)
