"""OpenAI-compatible routes: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Existing clients (the ``openai`` SDK, Open WebUI, LibreChat) use Greffier as a model named
``greffier`` with an API token as their key. The standard fields keep their meaning; the
sources, citations and receipt id travel in an extension field ``greffier``, on the response
and on the last chunk of a stream. No ``usage`` is reported: the appliance does not see the
model service's token counts, and it does not invent them.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from security import GreffierError, NotFoundError

from ..service import _chat as use
from ..service._chat import ChatIn, GreffierOut
from ._deps import Caller, Rt
from ._problems import status_of

router = APIRouter(prefix="/v1", tags=["openai"])


class ModelOut(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    greffier: dict[str, str] = Field(description="llm: the language model behind it.")


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelOut]


class MessageOut(BaseModel):
    role: Literal["assistant"]
    content: str
    refusal: None = None


class ChoiceOut(BaseModel):
    index: int
    message: MessageOut
    finish_reason: Literal["stop"]
    logprobs: None = None


class ChatOut(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChoiceOut]
    greffier: GreffierOut


@router.get("/models", response_model=ModelList, summary="OpenAI-compatible: the models")
def models(rt: Rt, who: Caller) -> dict[str, Any]:
    return {"object": "list", "data": use.models(rt, who)}


@router.get("/models/{model_id}", response_model=ModelOut,
            summary="OpenAI-compatible: one model", responses={404: {"description": "None."}})
def model(model_id: str, rt: Rt, who: Caller) -> dict[str, Any]:
    for found in use.models(rt, who):
        if found["id"] == model_id:
            return found
    raise NotFoundError(f"No model {model_id[:128]!r}.",
                        hint=f'Use the model "{use.MODEL_ID}" (GET /v1/models).')


@router.post("/chat/completions", response_model=ChatOut,
             summary="OpenAI-compatible: a grounded answer, with its sources",
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "JSON, or when stream is true `data:` chunks "
                              "(chat.completion.chunk), the last one with the `greffier` "
                              "field, then `data: [DONE]`."},
                        404: {"description": "Unknown model."}})
async def chat_completions(body: ChatIn, rt: Rt, who: Caller) -> Any:
    use.prepare(who, body)  # 403, 404, 422 before any stream starts
    created = int(time.time())
    ident = use.completion_id()
    if not body.stream:
        result = await asyncio.to_thread(use.chat, rt, who, body)
        return ChatOut(id=ident, object="chat.completion", created=created, model=body.model,
                       choices=[ChoiceOut(index=0, finish_reason="stop", message=MessageOut(
                           role="assistant", content=result.content))],
                       greffier=result.greffier)
    return StreamingResponse(_chunks(rt, who, body, ident, created),
                             media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})


async def _chunks(rt: Rt, who: Caller, body: ChatIn, ident: str, created: int
                  ) -> AsyncIterator[str]:
    """A role chunk, content chunks as the model writes, a last chunk carrying what was not
    streamed (a refusal, the degraded notice), ``finish_reason`` and the sources."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def put(kind: str, value: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def work() -> None:
        try:
            put("result", use.chat(rt, who, body, on_token=lambda t: put("token", t)))
        except GreffierError as exc:
            status, code = status_of(exc)
            put("error", {"message": exc.message, "type": code, "code": status})
        except Exception:  # reported in the stream; the log has the details
            put("error", {"message": "Internal error.", "type": "internal", "code": 500})
        finally:
            put("end", None)

    def chunk(delta: dict[str, Any], finish: str | None = None,
              **extra: Any) -> str:
        data = {"id": ident, "object": "chat.completion.chunk", "created": created,
                "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    threading.Thread(target=work, daemon=True, name="chat-stream").start()
    yield chunk({"role": "assistant", "content": ""})
    streamed: list[str] = []
    while True:
        kind, value = await queue.get()
        if kind == "end":
            break
        if kind == "token":
            streamed.append(value)
            yield chunk({"content": value})
        elif kind == "error":
            yield f"data: {json.dumps({'error': value}, ensure_ascii=False)}\n\n"
        else:
            rest = _rest(value.content, "".join(streamed))
            yield chunk({"content": rest} if rest else {}, "stop",
                        greffier=value.greffier.model_dump())
    yield "data: [DONE]\n\n"


def _rest(content: str, streamed: str) -> str:
    """What the client has not seen yet: nothing after a full answer, the whole text of a
    refusal, the notice after a stream the model service broke off."""
    if content.startswith(streamed):
        return content[len(streamed):]
    return "\n\n" + content if streamed else content
