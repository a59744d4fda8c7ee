"""A small OpenAI-compatible server for tests: the real `openai` SDK talks to it over HTTP on 127.0.0.1.

Embeddings are deterministic bags of words (each word hashed to a dimension, the vector normalised), so
texts that share words are close and the tests can predict the order. `fail_next` makes the next
requests answer 500, as a provider outage would. Later AI capabilities add their endpoints here.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from litestar import Litestar, Response, post
from litestar.params import JSONBody


class AIServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0

    def app(self) -> Litestar:
        @post("/v1/embeddings")
        async def embeddings(data: JSONBody[dict[str, Any]]) -> Response[dict[str, Any]]:
            self.requests.append(data)
            if self.fail_next:
                self.fail_next -= 1
                return Response({"error": {"message": "overloaded", "type": "server_error"}}, status_code=500)
            texts = data["input"] if isinstance(data["input"], list) else [data["input"]]
            dimensions = int(data.get("dimensions") or 1536)
            return Response(
                {
                    "object": "list",
                    "model": data["model"],
                    "data": [
                        {"object": "embedding", "index": i, "embedding": bag_of_words(text, dimensions)}
                        for i, text in enumerate(texts)
                    ],
                    "usage": {"prompt_tokens": 0, "total_tokens": 0},
                },
                status_code=200,
            )

        return Litestar([embeddings], logging_config=None)


def bag_of_words(text: str, dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dimensions] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
