"""What people asked and were answered: receipts, conversations (sealed), feedback.

A conversation is readable by its owner only: an admin runs the appliance but reads no
conversation, and an auditor reads receipts (which hold hashes), never the text.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from security import InvalidRequestError, NotFoundError

from ..db import Answer, Conversation, Feedback, Message
from ._identity_common import Core
from ._identity_models import ConversationOut, ConversationSummary, MessageOut, when
from ._principal import Principal

TITLE_CHARS = 80
COMMENT_CHARS = 2000


class Conversations(Core):
    """Answers and their receipts, conversations, feedback."""

    def save_answer(self, who: Principal, answer_id: str, kind: str, receipt: dict[str, Any],
                    conversation_id: str | None, question: str | None,
                    answer_text: str | None) -> str | None:
        """Keep an answer's receipt; for an answer with its text, append the question and
        the answer to the caller's conversation (a new one when ``conversation_id`` is
        None). Returns the conversation's id (None for a search)."""
        if kind not in ("search", "answer"):
            raise InvalidRequestError(f"Unknown answer kind {kind!r}.",
                                      hint="Use 'search' or 'answer'.")
        now = self.clock()
        with self.db.session() as s:
            conv = None
            if conversation_id is not None:
                conv = self._own(s, who, conversation_id, lock=True)
            elif kind == "answer" and question is not None and answer_text is not None:
                conv = Conversation(id=uuid.uuid4().hex, user_id=who.user_id,
                                    created_at=now, updated_at=now)
                conv.title_sealed = self.seal(_title(question), "conversations", conv.id,
                                              "title")
                s.add(conv)
                s.flush()
            s.add(Answer(id=answer_id, user_id=who.user_id, kind=kind, created_at=now,
                         receipt=receipt, conversation_id=conv.id if conv else None))
            s.flush()
            if conv is None:
                return None
            if question is not None and answer_text is not None:
                seq = s.scalar(select(func.coalesce(func.max(Message.seq), 0))
                               .where(Message.conversation_id == conv.id)) or 0
                for offset, (role, text, link) in enumerate(
                        (("user", question, None), ("assistant", answer_text, answer_id)), 1):
                    message = Message(id=uuid.uuid4().hex, conversation_id=conv.id,
                                      seq=seq + offset, role=role, answer_id=link,
                                      created_at=now)
                    message.content_sealed = self.seal(text, "messages", message.id, "content")
                    s.add(message)
                conv.updated_at = now
            return conv.id

    def answer_receipt(self, by: Principal, answer_id: str) -> dict[str, Any]:
        """An answer's signed receipt: for whoever got the answer, or for an auditor (whose
        reading is audited)."""
        with self.db.session() as s:
            row = s.get(Answer, answer_id)
            own = row is not None and row.user_id == by.user_id and by.can("receipts")
            if row is None or not (own or by.can("audit")):
                raise NotFoundError(f"No answer {answer_id!r} that you may see.",
                                    hint="Receipts go to whoever asked, and to auditors.")
            if not own:
                self.audit("receipt.read", by.audit_name, {"answer_id": answer_id})
            return dict(row.receipt)

    def conversations(self, by: Principal, *, offset: int = 0,
                      limit: int = 100) -> list[ConversationSummary]:
        """The caller's own conversations, the latest first."""
        by.require("ask")
        with self.db.session() as s:
            rows = s.scalars(select(Conversation).where(Conversation.user_id == by.user_id)
                             .order_by(Conversation.updated_at.desc(), Conversation.id)
                             .offset(max(0, offset)).limit(max(1, min(limit, 500))))
            return [ConversationSummary(id=c.id, title=self._title(c),
                                        created_at=when(c.created_at),
                                        updated_at=when(c.updated_at)) for c in rows]

    def conversation(self, by: Principal, conv_id: str) -> ConversationOut:
        """One of the caller's own conversations, every message opened. Anybody else's,
        an admin's request included, is reported missing (404), not forbidden."""
        with self.db.session() as s:
            conv = self._own(s, by, conv_id)
            by.require("ask")  # the owner, through a token that may not read it
            messages = s.scalars(select(Message).where(Message.conversation_id == conv.id)
                                 .order_by(Message.seq))
            return ConversationOut(
                id=conv.id, title=self._title(conv), created_at=when(conv.created_at),
                updated_at=when(conv.updated_at),
                messages=[MessageOut(role="user" if m.role == "user" else "assistant",
                                     content=self.unseal(m.content_sealed, "messages", m.id,
                                                         "content"),
                                     answer_id=m.answer_id, created_at=when(m.created_at))
                          for m in messages])

    def add_feedback(self, by: Principal, answer_id: str, rating: int,
                     comment: str | None = None) -> None:
        """Rate one of the caller's answers (-1 or 1), with an optional comment (sealed).
        A second rating replaces the first."""
        if rating not in (-1, 1):
            raise InvalidRequestError("A rating is -1 or 1.", hint="1: useful; -1: not.")
        if comment is not None and len(comment) > COMMENT_CHARS:
            raise InvalidRequestError(f"A comment is at most {COMMENT_CHARS} characters.")
        now = self.clock()
        with self.db.session() as s:
            answer = s.get(Answer, answer_id)
            if answer is None or answer.user_id != by.user_id:
                raise NotFoundError(f"No answer {answer_id!r} of yours.",
                                    hint="Rate an answer you were given.")
            row = s.get(Feedback, (answer_id, by.user_id))
            if row is None:
                row = Feedback(answer_id=answer_id, user_id=by.user_id)
                s.add(row)
            row.rating, row.created_at = rating, now
            row.comment_sealed = None if not comment else self.seal(
                comment, "feedback", f"{answer_id}:{by.user_id}", "comment")
            self.audit("feedback", by.audit_name, {"answer_id": answer_id, "rating": rating})

    def _own(self, s: Session, who: Principal, conv_id: str, *,
             lock: bool = False) -> Conversation:
        conv = s.get(Conversation, conv_id, with_for_update=lock)
        if conv is None or conv.user_id != who.user_id:
            # Somebody else's conversation is reported as missing, not as forbidden.
            raise NotFoundError(f"No conversation {conv_id!r} of yours.",
                                hint="List your conversations to see their ids.")
        return conv

    def _title(self, conv: Conversation) -> str:
        return self.unseal(conv.title_sealed, "conversations", conv.id, "title")


def _title(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS - 1] + "…"
