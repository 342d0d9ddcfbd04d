"""The appliance's guard: searches share it, changes hold it alone.

Searches, and the retrieval and recording of an answer, only read the store and append to
the audit log (which has its own lock): any number run at once. An ingest's commits, an
erasure, a change of access and sealing hold the guard alone; they wait for the searches in
progress, and a waiting change lets no new search in before it (it is not starved).

Held alone, the guard is re-entrant for its holder, who may also search meanwhile. The
``with guard:`` form, ``acquire`` and ``release`` take it alone (what an ``RLock`` did):
``release`` by a thread that does not hold it raises ``RuntimeError``, as an ``RLock``'s does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Guard:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None  # the thread holding the guard alone
        self._depth = 0  # how many times it holds it
        self._readers = 0
        self._waiting = 0  # threads waiting to hold it alone
        self._local = threading.local()  # this thread's shared depth

    # -- alone -------------------------------------------------------------------------
    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            if getattr(self._local, "shared", 0):
                raise RuntimeError("A thread searching cannot take the guard alone "
                                   "(it would wait for itself).")
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: self._owner is None and self._readers == 0)
            finally:
                self._waiting -= 1
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("cannot release un-acquired guard")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()

    def __enter__(self) -> Guard:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- shared ------------------------------------------------------------------------
    @contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        depth = getattr(self._local, "shared", 0)
        with self._cond:
            if self._owner != me and depth == 0:  # the holder, or a nested search: go on
                self._cond.wait_for(lambda: self._owner is None and self._waiting == 0)
            self._readers += 1
        self._local.shared = depth + 1
        try:
            yield
        finally:
            self._local.shared = depth
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()
