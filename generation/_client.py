"""The model service client: vLLM's OpenAI-compatible API through the official client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from security import GreffierError

from ._types import Sampling


class GenerationUnavailable(GreffierError):
    """The model service is down, timed out or refused the request."""


class Generator(Protocol):
    """Streams the completion of a chat."""

    model: str

    def stream(self, messages: list[dict[str, str]], sampling: Sampling) -> Iterator[str]: ...


class VllmGenerator:
    """A vLLM server reached with the ``openai`` client (no retries: degrade fast instead)."""

    def __init__(self, base_url: str, api_key: str, model: str, *, timeout_s: float = 60.0
                 ) -> None:
        self.base_url = base_url
        self.model = model
        self._api_key = api_key
        self._timeout = timeout_s
        self._client: Any = None

    def _get(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key,
                                         timeout=self._timeout, max_retries=0)
        return self._client

    def stream(self, messages: list[dict[str, str]], sampling: Sampling) -> Iterator[str]:
        import openai

        try:
            response = self._get().chat.completions.create(
                model=self.model, messages=messages, stream=True,
                temperature=sampling.temperature, top_p=sampling.top_p,
                max_tokens=sampling.max_tokens,
                **({"seed": sampling.seed} if sampling.seed is not None else {}))
            for event in response:
                if event.choices and event.choices[0].delta.content:
                    yield event.choices[0].delta.content
        except (openai.APIConnectionError, openai.APITimeoutError,
                openai.APIStatusError) as exc:
            raise GenerationUnavailable(
                f"The model service at {self.base_url} is unavailable: {type(exc).__name__}.",
                hint="Start it with `greffier llm serve`; search works meanwhile.") from exc
