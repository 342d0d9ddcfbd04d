"""Untrusted text made safe for the terminal: no markup, no escape sequences, no forged lines.

Document text, section titles, paths, file names, questions, model output and error messages
that quote any of them are untrusted. Printed raw they can crash rich (``[/bogus]`` is a
markup error), drive the terminal (``ESC [ 2 J`` clears it, ``ESC ] 52`` writes the
clipboard), hide or reorder text (bidi controls), or forge a report line (a newline or a
carriage return in a file name). :func:`safe` shows every such character as a visible escape
(``\\x1b``, ``\\n``, ``\\u202e``) and escapes rich markup::

    console.print(f"[red]failed[/] {safe(path)}")     # rich markup around untrusted text
    click.echo(f"wrote {safe(path, markup=False)}")   # plain output
"""

from __future__ import annotations

import json
import unicodedata

from rich.console import Console
from rich.markup import escape

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}
# Invisible or reordering characters (zero-width, bidi embeddings, overrides and isolates,
# word joiners, BOM) and the Unicode line/paragraph separators: shown, never obeyed.
_FORMAT = {*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
           *range(0x2066, 0x206A), 0x2028, 0x2029, 0xFEFF}


def _visible(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _unsafe(char: str, single_line: bool) -> bool:
    if char in "\n\t":
        return single_line
    return ord(char) in _FORMAT or unicodedata.category(char) == "Cc"  # C0, DEL, C1, ESC, CR


def safe(text: object, *, markup: bool = True, single_line: bool = True) -> str:
    """``text`` as a string that prints as itself: control characters as visible escapes.

    ``markup`` (default): also escape rich markup, for ``Console.print`` and table cells; give
    ``markup=False`` for ``click.echo`` or ``print(..., markup=False)``. ``single_line``
    (default): newlines and tabs are escaped too, so one field stays on one line; give
    ``single_line=False`` for running text (an answer, a passage).
    """
    shown = "".join(_visible(c) if _unsafe(c, single_line) else c for c in str(text))
    return escape(shown) if markup else shown


def safe_json(value: object) -> str:
    """Indented JSON (non-ASCII kept readable) in which no character can drive a terminal.

    ``json.dumps`` escapes C0 controls but, with ``ensure_ascii=False``, lets DEL, C1 controls
    (U+009B is an 8-bit CSI) and bidi controls through; those only occur inside strings, where
    ``\\uXXXX`` is the same value.
    """
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return "".join(f"\\u{ord(c):04x}" if c != "\n" and (
        ord(c) in _FORMAT or unicodedata.category(c) == "Cc") else c for c in text)


def console(*, stderr: bool = False) -> Console:
    """A rich console that does not turn ``:name:`` in untrusted text into emoji."""
    return Console(stderr=stderr, emoji=False)
