"""The job search assistant's own settings, read from the same environment (and `.env`) as the platform's."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class JobsearchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    # Careers chat, in tokens estimated at four characters each (see rpc/jobsearch/chat.py).
    chat_context_tokens: int = Field(1500, ge=0, description="the profile, saved listings and resume")
    chat_history_tokens: int = Field(4000, ge=0, description="earlier messages of the conversation")
    chat_max_tokens: int = Field(1024, ge=1, description="the longest answer")


@lru_cache
def get_jobsearch_settings() -> JobsearchSettings:
    return JobsearchSettings()
