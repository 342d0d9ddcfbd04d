"""The appliance's guard: searches run together, a change runs alone and is not starved;
then the same through a real runtime's search use case."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apiharness import Api, api_settings

from appliance._guard import Guard
from appliance.service import _answers as use
from appliance.service._models import SearchIn


def _until(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _start(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def test_searches_share_the_guard_and_a_change_waits_for_them() -> None:
    guard = Guard()
    inside: list[str] = []
    leave = threading.Event()

    def search(name: str) -> Callable[[], None]:
        def run() -> None:
            with guard.shared():
                inside.append(name)
                leave.wait(10)
                inside.remove(name)
        return run

    readers = [_start(search(f"s{n}")) for n in range(3)]
    _until(lambda: len(inside) == 3)  # three searches inside at once
    changed: list[float] = []
    writer = _start(lambda: (guard.acquire(), changed.append(time.monotonic()),
                             guard.release()))
    _until(lambda: guard._waiting == 1)
    late = _start(search("late"))  # arrives while the change waits: goes after it
    time.sleep(0.1)
    assert not changed and "late" not in inside
    leave.set()
    for t in (*readers, writer, late):
        t.join(10)
    assert changed and not inside


def test_the_holder_re_enters_and_searches_and_others_cannot_release() -> None:
    guard = Guard()
    with guard, guard:  # re-entrant
        with guard.shared():  # the holder may search meanwhile
            pass
        errors: list[BaseException] = []

        def release() -> None:
            try:
                guard.release()
            except RuntimeError as exc:
                errors.append(exc)

        _start(release).join(5)
        assert errors  # not its guard
    with pytest.raises(RuntimeError):
        guard.release()  # no longer held
    with guard.shared(), pytest.raises(RuntimeError, match="wait for itself"):
        guard.acquire()


def test_a_nested_search_goes_on_while_a_change_waits() -> None:
    guard = Guard()
    entered = threading.Event()
    go = threading.Event()
    nested: list[bool] = []

    def search() -> None:
        with guard.shared():
            entered.set()
            go.wait(10)
            with guard.shared():  # must not wait behind the change (it waits for us)
                nested.append(True)

    reader = _start(search)
    entered.wait(5)
    writer = _start(lambda: (guard.acquire(), guard.release()))
    _until(lambda: guard._waiting == 1)
    go.set()
    reader.join(5)
    writer.join(5)
    assert nested and not reader.is_alive() and not writer.is_alive()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(api_settings(tmp_path))
    api.user("rita", "reader")
    yield api
    api.close()


@pytest.mark.integration
def test_a_search_runs_beside_another_and_waits_for_a_change(api: Api) -> None:
    who = api.principal("rita")
    held, release = threading.Event(), threading.Event()

    def hold(how: str) -> Callable[[], None]:
        def run() -> None:
            with api.rt.reading() if how == "search" else api.rt.using():
                held.set()
                release.wait(10)
        return run

    holder = _start(hold("search"))
    held.wait(5)
    out = use.search(api.rt, who, SearchIn(query="congés"))  # does not wait for the other
    assert out.passages == []
    release.set()
    holder.join(5)

    held.clear()
    release.clear()
    holder = _start(hold("change"))
    held.wait(5)
    done: list[float] = []
    searcher = _start(lambda: (use.search(api.rt, who, SearchIn(query="congés")),
                               done.append(time.monotonic())))
    time.sleep(0.3)
    assert not done  # waits for the change
    release.set()
    searcher.join(10)
    holder.join(5)
    assert done
