"""OpenAI-compatible grounded chat: one model, ``greffier``, that answers from the documents.

A chat request is translated into one :func:`~._answers.ask` (so the audit entry, the signed
receipt and the saved conversation are the same as for ``POST /v1/ask``):

- the **last message** must be the user's and is the question;
- **earlier turns** give context in one way only: when the question is a follow-up (three
  words or fewer, a pronoun that refers back, or a leading "and…", "what about…"), the
  previous *user* turn is put before it, and that combined text is what retrieval, the model
  and the audit log see (the response says so in ``greffier.question``);
- **system and developer messages** from the client are accepted for compatibility and
  dropped: Greffier's own rules are the only system instructions the model gets, and a
  question outside the documents is refused before any model call whatever they say;
- **assistant turns** are never sent anywhere (a client can write anything into them).

Sampling knobs (temperature, top_p, max_tokens, stop, seed, penalties) are accepted and not
applied: the appliance's configured sampling is used and recorded in the receipt. Anything
Greffier cannot honour (n > 1, tools, log-probabilities, JSON mode, audio) is refused (422).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from security import InvalidRequestError, NotFoundError

from ._answers import ask
from ._models import AskIn, AskOut, CitationOut
from ._principal import Principal
from ._runtime import Runtime

MODEL_ID = "greffier"
MAX_MESSAGES = 64
MAX_MESSAGE_CHARS = 16_000
MAX_QUESTION_CHARS = 2000  # as AskIn.question
_MIN_CONTEXT_CHARS = 16  # less room than this for the previous turn: answer without it

_WORD = re.compile(r"\w+", re.UNICODE)
# Words that point back at an earlier turn (English, French), and openings of a follow-up.
_REFERS_BACK = frozenset({
    "it", "its", "that", "this", "these", "those", "they", "them", "their", "same",
    "ça", "cela", "ceci", "celui", "celle", "ceux", "celles", "elle", "elles", "ils", "lui",
    "leur", "leurs", "même",
})
_FOLLOW_UP_OPENINGS = ("and ", "but ", "also ", "what about ", "how about ", "et ", "mais ",
                       "aussi ", "et pour ", "quid ")
_SHORT_WORDS = 3


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_Text = Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)]


class TextPart(_Strict):
    type: Literal["text"]
    text: _Text


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"] = Field(
        description="system and developer messages are dropped (Greffier's rules apply); "
        "tool messages are refused.")
    content: _Text | Annotated[list[TextPart], Field(max_length=16)] | None = Field(
        None, description="Text, or a list of text parts (no images, no audio).")
    name: str | None = Field(None, max_length=64)
    refusal: str | None = Field(None, max_length=MAX_MESSAGE_CHARS)

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)


class StreamOptions(_Strict):
    include_usage: bool = Field(False, description="Accepted; no usage is reported.")
    include_obfuscation: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text"] = Field(description="Only plain text answers.")


class ChatIn(_Strict):
    """``POST /v1/chat/completions``: every field OpenAI's clients send is named here."""

    model: str = Field(min_length=1, max_length=128, description=f'"{MODEL_ID}".')
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=1, description="One answer per request.")
    temperature: float | None = Field(None, ge=0, le=2, description="Not applied.")
    top_p: float | None = Field(None, ge=0, le=1, description="Not applied.")
    max_tokens: int | None = Field(None, ge=1, description="Not applied.")
    max_completion_tokens: int | None = Field(None, ge=1, description="Not applied.")
    stop: str | list[str] | None = Field(None, max_length=4, description="Not applied.")
    seed: int | None = Field(None, description="Not applied.")
    presence_penalty: float | None = Field(None, ge=-2, le=2, description="Not applied.")
    frequency_penalty: float | None = Field(None, ge=-2, le=2, description="Not applied.")
    logit_bias: dict[str, float] | None = Field(None, max_length=0, description="Refused.")
    logprobs: Literal[False] | None = Field(None, description="Not available.")
    top_logprobs: Literal[0] | None = Field(None, description="Not available.")
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = Field(None, max_length=0, description="Greffier calls no tool.")
    tool_choice: Literal["none", "auto"] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[Any] | None = Field(None, max_length=0, description="Refused.")
    function_call: Literal["none", "auto"] | None = None
    modalities: list[Literal["text"]] | None = Field(None, max_length=1)
    user: str | None = Field(None, max_length=256, description="Ignored: the caller is "
                             "the authenticated account.")
    metadata: dict[str, str] | None = Field(None, max_length=16, description="Ignored.")
    store: bool | None = Field(None, description="Ignored: every answer is audited and "
                               "kept in the caller's conversations.")
    service_tier: str | None = Field(None, max_length=32, description="Ignored.")


class SourceOut(BaseModel):
    """A numbered source given to the model; answers cite it as [number]."""

    number: int
    text: str
    doc_id: str
    document: str = Field(description="The document's file name.")
    page: int | None
    section: str
    version: int
    content_sha256: str


class GreffierOut(BaseModel):
    """The ``greffier`` extension field: where the answer comes from."""

    answer_id: str
    receipt_id: str = Field(description="GET /v1/answers/{receipt_id}/receipt.")
    refused: bool = Field(description="Nothing relevant in the documents: no model call.")
    degraded: bool = Field(description="The model was unavailable: passages only.")
    notice: str
    question: str = Field(description="The question as retrieval and the model saw it.")
    context_from_history: bool = Field(description="The previous user turn was prepended.")
    llm: str = Field(description="The language model that wrote the answer.")
    citations: list[CitationOut]
    sources: list[SourceOut]


@dataclass(frozen=True)
class ChatTurn:
    """What a chat request asks, once checked."""

    question: str
    context_from_history: bool


@dataclass(frozen=True)
class ChatResult:
    content: str  # what the client shows as the assistant's message
    greffier: GreffierOut


def prepare(who: Principal, req: ChatIn) -> ChatTurn:
    """Check the caller, the model and the messages before anything runs (so a stream
    never starts for a request that would fail)."""
    who.require("ask")
    if req.model != MODEL_ID:
        raise NotFoundError(f"No model {req.model[:128]!r}.",
                            hint=f'Use the model "{MODEL_ID}" (GET /v1/models).')
    last = req.messages[-1]
    question = last.text().strip()
    if last.role != "user" or not question:
        raise InvalidRequestError("The last message must be the user's question.",
                                  hint="End messages with a non-empty user message.")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidRequestError(
            f"The question (last user message) is longer than {MAX_QUESTION_CHARS} "
            "characters.", hint="Ask a shorter question.")
    previous = next((m.text().strip() for m in reversed(req.messages[:-1])
                     if m.role == "user" and m.text().strip()), "")
    if not previous or not follows_up(question):
        return ChatTurn(question, False)
    room = MAX_QUESTION_CHARS - len(question) - 3
    if room < _MIN_CONTEXT_CHARS:
        return ChatTurn(question, False)
    return ChatTurn(f"{_one_line(previous)[:room]} — {question}", True)


def follows_up(question: str) -> bool:
    """A question that needs the previous turn to be understood: very short, opening like a
    continuation, or holding a word that refers back."""
    words = [w.lower() for w in _WORD.findall(question)]
    lowered = " ".join(question.lower().split())
    return (len(words) <= _SHORT_WORDS or lowered.startswith(_FOLLOW_UP_OPENINGS)
            or any(w in _REFERS_BACK for w in words))


def chat(rt: Runtime, who: Principal, req: ChatIn,
         on_token: Callable[[str], None] = lambda t: None) -> ChatResult:
    """Answer a chat request from the documents: audited, with a signed receipt, kept in the
    caller's conversations (all by :func:`ask`)."""
    turn = prepare(who, req)
    out = ask(rt, who, AskIn(question=turn.question, stream=False, conversation_id=None),
              on_token=on_token)
    return ChatResult(content(out), greffier_out(out, turn))


def content(out: AskOut) -> str:
    """The assistant message: the answer; when the model was unavailable, the notice and
    the passages found (so a plain chat client still shows them)."""
    if not out.degraded:
        return out.answer
    lines = [out.notice, ""]
    for p in out.passages:
        where = p.document + (f", page {p.page}" if p.page else "")
        lines.append(f"[{p.number}] {where}: {_one_line(p.text)[:300]}")
    return "\n".join(lines).strip()


def greffier_out(out: AskOut, turn: ChatTurn) -> GreffierOut:
    return GreffierOut(
        answer_id=out.id, receipt_id=out.receipt_id, refused=out.refused,
        degraded=out.degraded, notice=out.notice, question=turn.question,
        context_from_history=turn.context_from_history, llm=out.model,
        citations=out.citations,
        sources=[SourceOut(number=p.number, text=p.text, doc_id=p.doc_id, document=p.document,
                           page=p.page, section=p.section, version=p.version,
                           content_sha256=p.content_sha256) for p in out.passages])


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def models(rt: Runtime, who: Principal) -> list[dict[str, Any]]:
    """The one model, listed to callers who may ask; the language model behind it is named
    in the ``greffier`` extension field."""
    if not who.can("ask"):
        return []
    return [{"id": MODEL_ID, "object": "model", "created": int(rt.started),
             "owned_by": "greffier",
             "greffier": {"llm": rt.settings.llm.model_name,
                          "description": "Answers from the company's documents, with "
                          "numbered sources and a signed receipt."}}]


def _one_line(text: str) -> str:
    return " ".join(text.split())
