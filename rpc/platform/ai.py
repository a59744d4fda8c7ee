"""The OpenAI-compatible client every capability uses (`OPENAI_API_KEY`, and `OPENAI_BASE_URL` for any
OpenAI-compatible provider: DeepSeek, Gemini's endpoint, a local server). Without a key the AI features are
off, and callers say so rather than fail."""

from __future__ import annotations

from openai import AsyncOpenAI, OpenAIError

from rpc.platform.settings import Settings


class AI:
    def __init__(self, settings: Settings) -> None:
        key = settings.openai_api_key
        self.embeddings_model = settings.embeddings_model
        self.client = (
            AsyncOpenAI(
                api_key=key.get_secret_value(),
                base_url=settings.openai_base_url,
                timeout=settings.openai_timeout_s,
                max_retries=2,
            )
            if key is not None
            else None
        )

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def embed(self, texts: list[str], *, dimensions: int) -> list[list[float]]:
        """One vector of `dimensions` per text, in order; OpenAIError if the provider returns anything else."""
        if self.client is None:
            raise OpenAIError("no AI provider is configured (OPENAI_API_KEY)")
        response = await self.client.embeddings.create(
            model=self.embeddings_model, input=texts, dimensions=dimensions
        )
        vectors = [item.embedding for item in sorted(response.data, key=lambda item: item.index)]
        if len(vectors) != len(texts) or any(len(vector) != dimensions for vector in vectors):
            raise OpenAIError(
                f"{self.embeddings_model} did not return {len(texts)} vectors of {dimensions} dimensions"
            )
        return vectors
