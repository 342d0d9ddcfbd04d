"""Generation: prompts with fenced, numbered sources; the vLLM client; citations; refusal."""

from ._answer import DEGRADED, Answerer, Relevance
from ._citations import attribute, parse_citations
from ._client import GenerationUnavailable, Generator, VllmGenerator
from ._prompt import NOT_FOUND, SYSTEM, TEMPLATE_VERSION, Prompt, build_prompt, defuse
from ._sanitize import TokenGuard, clean, special_tokens_of
from ._types import Answer, Citation, Sampling

__all__ = [
    "DEGRADED",
    "NOT_FOUND",
    "SYSTEM",
    "TEMPLATE_VERSION",
    "Answer",
    "Answerer",
    "Citation",
    "GenerationUnavailable",
    "Generator",
    "Prompt",
    "Relevance",
    "Sampling",
    "TokenGuard",
    "VllmGenerator",
    "attribute",
    "build_prompt",
    "clean",
    "defuse",
    "parse_citations",
    "special_tokens_of",
]
