"""Terminal-safe output: what rich prints for untrusted text is the text, made visible."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from appliance._term import safe, safe_json

pytestmark = pytest.mark.unit


def _printed(markup: str) -> str:
    out = io.StringIO()
    Console(file=out, width=1000, emoji=False, color_system=None).print(
        markup, soft_wrap=True, highlight=False)
    return out.getvalue().rstrip("\n")


@pytest.mark.parametrize(("text", "shown"), [
    ("[/bogus] [bold]x[/bold]", "[/bogus] [bold]x[/bold]"),  # markup printed, not obeyed
    ("a\x1b[2Jb\x1b]52;c;eA==\x07", "a\\x1b[2Jb\\x1b]52;c;eA==\\x07"),
    ("name\n1 indexed\rx", "name\\n1 indexed\\rx"),
    ("\u202etxt.exe\u200b", "\\u202etxt.exe\\u200b"),
    ("\x9b31m\x7f", "\\x9b31m\\x7f"),
    ("C:\\[b]", "C:\\[b]"),
])
def test_safe_prints_untrusted_text_as_itself(text: str, shown: str) -> None:
    assert _printed(f"[red]{safe(text)}[/red]") == shown
    assert safe(text, markup=False) == shown


def test_running_text_keeps_its_lines_but_not_carriage_returns() -> None:
    assert safe("one\ntwo\tthree\rfour", markup=False, single_line=False) == (
        "one\ntwo\tthree\\rfour")


def test_safe_json_is_the_same_json_without_terminal_controls() -> None:
    value = {"text": "é\x9b[2J\x1b\u202e\x7f\nline", "n": [1]}
    text = safe_json(value)
    assert json.loads(text) == value
    assert not any(c in text for c in "\x9b\x1b\u202e\x7f") and "é" in text
