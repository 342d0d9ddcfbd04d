"""Search, ask (JSON or server-sent events), receipts."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from security import GreffierError

from ..service import _answers as use
from ..service._models import AskIn, AskOut, SearchIn, SearchOut
from ._deps import Caller, Rt
from ._problems import status_of

router = APIRouter(prefix="/v1", tags=["answers"])


@router.post("/search", response_model=SearchOut, summary="Hybrid search, with a receipt")
def search(body: SearchIn, rt: Rt, who: Caller) -> SearchOut:
    return use.search(rt, who, body)


@router.post("/ask", response_model=AskOut, summary="A grounded answer with citations",
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "JSON, or server-sent events when stream is "
                              "true: `token` events, then one `answer` event (AskOut)."}})
async def ask(body: AskIn, rt: Rt, who: Caller) -> Any:
    if not body.stream:
        return await asyncio.to_thread(use.ask, rt, who, body)
    return StreamingResponse(_events(rt, who, body), media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})


async def _events(rt: Rt, who: Caller, body: AskIn) -> AsyncIterator[str]:
    """Tokens as they come, then the whole answer (sources, receipt id) as the last event."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    gone = threading.Event()  # the client left: stop generating

    def put(kind: str, value: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def on_token(token: str) -> None:
        if gone.is_set():
            raise ClientGoneError("The client closed the stream.")
        put("token", token)

    def work() -> None:
        try:
            out = use.ask(rt, who, body, on_token=on_token)
            put("answer", out.model_dump())
        except ClientGoneError:
            pass  # "ask.begin" without "ask" in the audit log: an abandoned question
        except GreffierError as exc:
            status, code = status_of(exc)
            put("error", {"status": status, "code": code, "detail": exc.message})
        except Exception:  # reported as an event; the log has the details
            put("error", {"status": 500, "code": "internal", "detail": "Internal error."})
        finally:
            put("end", None)

    threading.Thread(target=work, daemon=True, name="ask-stream").start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                break
            yield f"event: {kind}\ndata: {json.dumps(value, ensure_ascii=False)}\n\n"
    finally:
        gone.set()


class ClientGoneError(Exception):
    """Raised into the generation when the client has closed its stream."""


@router.get("/answers/{answer_id}/receipt", summary="The signed receipt of an answer",
            responses={404: {"description": "No such answer, or not yours."}})
def receipt(answer_id: str, rt: Rt, who: Caller) -> dict[str, Any]:
    return use.receipt(rt, who, answer_id)
