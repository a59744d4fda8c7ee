"""Matching's own settings, read from the same environment (and `.env`) as the platform's."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MatchingWeights(BaseModel):
    """How much each signal counts in a match score (relative weights; see the matching scores migration)."""

    skills: float = Field(40, ge=0)
    seniority: float = Field(15, ge=0)
    industry: float = Field(10, ge=0)
    engagement: float = Field(10, ge=0)
    compensation: float = Field(10, ge=0)
    availability: float = Field(10, ge=0)
    location: float = Field(5, ge=0)
    semantic: float = Field(15, ge=0)


class MatchingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    # Signal weights (JSON, e.g. {"skills": 50}; unnamed signals keep their defaults). Not public: scoring
    # runs in Postgres, where the API roles cannot read them.
    matching_weights: MatchingWeights = MatchingWeights()
    matching_default_limit: int = Field(20, ge=1, le=100)


@lru_cache
def get_matching_settings() -> MatchingSettings:
    return MatchingSettings()
