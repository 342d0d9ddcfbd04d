"""Who may read what: the access entries of uploads and of a document's change of access,
and the last check on everything that leaves (passages, documents).

The store filters every read by the caller's :class:`~retrieval.AccessScope`
(``Principal.scope``); this module checks again, on what each passage's sources and each
document say, before anything is returned. A document the caller may not read is "not
found": its existence is not revealed either.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field
from sqlalchemy import select

from ingest import DocumentRecord
from retrieval import GROUP_PREFIX, USER_PREFIX, Passage
from security import ForbiddenError, InvalidRequestError, NotFoundError

from ..db import Database, Group, User
from ._identity_models import ConversationOut
from ._principal import Principal
from ._runtime import Runtime


class AccessIn(BaseModel):
    """Who may read a document: groups and accounts, by name. Empty: nobody (its past
    readers lose it at their next request)."""

    groups: list[str] = Field(default_factory=list, max_length=100)
    users: list[str] = Field(default_factory=list, max_length=100)


class AccessOut(BaseModel):
    doc_id: str
    groups: list[str]
    users: list[str]


def readable_passages(who: Principal, passages: Iterable[Passage]) -> list[Passage]:
    """The second check: a passage leaves only if every source it still names is one
    ``who`` may read (the store already dropped the others) and it names one."""
    scope = who.scope
    return [p for p in passages if p.sources and all(scope.allows(s.acl) for s in p.sources)]


class NotReadable(NotFoundError):
    """A document exists but the caller may not read it: answered exactly like a missing
    one (404), and recorded in the audit log as a denial."""

    denied_reason = "document not readable by the caller"


def readable(who: Principal, doc: DocumentRecord | None, doc_id: str) -> DocumentRecord:
    """The document if ``who`` may read it; otherwise the same 404 as a missing one."""
    hint = "List the documents you may read with GET /v1/documents."
    if doc is None:
        raise NotFoundError(f"No document {doc_id!r}.", hint=hint)
    if not who.scope.allows(doc.acl):
        raise NotReadable(f"No document {doc_id!r}.", hint=hint)
    return doc


def upload_acl(rt: Runtime, who: Principal, group_names: Iterable[str]) -> tuple[str, ...]:
    """An upload is readable by its uploader, and by the groups he grants among his own."""
    wanted = sorted(set(group_names))
    ids = _group_ids(rt, wanted)
    foreign = [name for name in wanted if ids[name] not in who.group_ids]
    if foreign:
        raise ForbiddenError(f"You may only grant groups you belong to: {', '.join(foreign)}.",
                             hint="Ask an admin to grant other groups afterwards.")
    return tuple(sorted({who.own_entry} | {GROUP_PREFIX + ids[n] for n in wanted}))


def access_acl(rt: Runtime, req: AccessIn) -> tuple[str, ...]:
    """Access entries for an admin's change: names must exist."""
    groups = _group_ids(rt, sorted(set(req.groups)))
    with rt.identity.db.session() as s:
        users = dict(s.execute(select(User.name, User.id).where(User.name.in_(req.users))).all())
    missing = sorted(set(req.users) - set(users))
    if missing:
        raise InvalidRequestError(f"No account named {', '.join(missing)}.")
    return tuple(sorted({GROUP_PREFIX + g for g in groups.values()}
                        | {USER_PREFIX + u for u in users.values()}))


def access_out(rt: Runtime, doc: DocumentRecord) -> AccessOut:
    """A document's access entries by name (a deleted group or account is shown by id)."""
    group_ids = [e[len(GROUP_PREFIX):] for e in doc.acl if e.startswith(GROUP_PREFIX)]
    user_ids = [e[len(USER_PREFIX):] for e in doc.acl if e.startswith(USER_PREFIX)]
    with rt.identity.db.session() as s:
        groups = dict(s.execute(select(Group.id, Group.name)
                                .where(Group.id.in_(group_ids))).all())
        users = dict(s.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all())
    return AccessOut(doc_id=doc.doc_id, groups=sorted(groups.get(g, g) for g in group_ids),
                     users=sorted(users.get(u, u) for u in user_ids))


def set_access(rt: Runtime, who: Principal, doc_id: str, req: AccessIn) -> AccessOut:
    """An admin changes who may read a document: re-stamped at once, audited."""
    who.require("documents.access")
    acl = access_acl(rt, req)
    with rt.using() as app:
        doc = app.set_access(doc_id, acl, user=who.audit_name)
    return access_out(rt, doc)


def get_access(rt: Runtime, who: Principal, doc_id: str) -> AccessOut:
    """Who may read a document: to an admin, or to a reader of it."""
    with rt.using() as app:
        doc = app.catalog.document_by_id(doc_id)
    if not who.can("documents.access"):
        who.require("documents.read")
        doc = readable(who, doc, doc_id)
    elif doc is None:
        raise NotFoundError(f"No document {doc_id!r}.")
    return access_out(rt, doc)


WITHHELD = ("[Withheld: this answer drew on a document you may no longer read. Ask again "
            "to get an answer from what you may read now.]")


def visible_conversation(rt: Runtime, who: Principal, conv: ConversationOut) -> ConversationOut:
    """A conversation as its owner may still read it: an answer that drew on a document
    he lost access to (or that was erased) is withheld; his own questions stay."""
    scope = who.scope
    messages = []
    with rt.using() as app:
        for message in conv.messages:
            if message.role == "assistant" and message.answer_id:
                receipt = rt.identity.answer_receipt(who, message.answer_id)
                docs = {p.get("doc_id") for p in receipt.get("passages", [])}
                records = [app.catalog.document_by_id(str(d)) for d in docs]
                if any(r is None or not scope.allows(r.acl) for r in records):
                    message = message.model_copy(update={"content": WITHHELD})
            messages.append(message)
    return conv.model_copy(update={"messages": messages})


def group_entries(db: Database, names: Iterable[str]) -> tuple[str, ...]:
    """Access entries of existing groups, by name (the CLI's ``--group``)."""
    return tuple(GROUP_PREFIX + g for g in _ids_in(db, sorted(set(names))).values())


def _group_ids(rt: Runtime, names: list[str]) -> dict[str, str]:
    return _ids_in(rt.identity.db, names)


def _ids_in(db: Database, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    with db.session() as s:
        found = dict(s.execute(select(Group.name, Group.id).where(Group.name.in_(names))).all())
    missing = [n for n in names if n not in found]
    if missing:
        raise InvalidRequestError(f"No group named {', '.join(missing)}.",
                                  hint="An admin creates groups (POST /v1/groups).")
    return found
