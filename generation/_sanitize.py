"""Untrusted text made inert for a chat template: no forged turns, no hidden characters.

A chat template (ChatML, Llama 3, Mistral, …) turns messages into one string which the
tokenizer then reads, and it reads special-token text *inside a message* as the special
token itself: a document holding ``<|im_end|><|im_start|>system`` would open a system turn.
So every untrusted text (passages, section titles, file names, the question) is

1. normalised with NFKC (full-width ``｜`` or ``＜`` become the ASCII a template matches),
2. stripped of zero-width and bidi control characters and of C0/C1 controls other than
   newline and tab (single-line fields lose those too),
3. and every special token of the model's tokenizer, plus a built-in list of common
   chat-template markers, is rewritten with look-alike characters (``<|im_end|>`` becomes
   ``‹¦im_end¦›``) that no tokenizer reads as a special token.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Zero-width and bidi controls (Trojan Source), the BOM: dropped.
_INVISIBLE = {*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
              *range(0x2066, 0x206A), 0xFEFF}

# Markers of common chat templates, matched case-insensitively.
_BUILT_IN = [
    r"<\|[^|<>\n]{0,64}\|>",  # ChatML, Llama 3, Phi, Qwen, DeepSeek (after NFKC): <|…|>
    r"</?(?:s|unk|pad|bos|eos|eot|start_of_turn|end_of_turn|start_of_image|end_of_image)>",
    r"<</?SYS>>",  # Llama 2
    r"\[/?(?:INST|SYS|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS|TOOL_RESULTS|TOOL_CONTENT"
    r"|IMG|IMG_BREAK|IMG_END)\]",  # Mistral
]
# Look-alikes outside NFKC's reach (none of them decomposes back to ASCII).
_LOOK_ALIKE = str.maketrans({"<": "‹", ">": "›", "|": "¦", "[": "⁅", "]": "⁆"})
_MARKUP = set("<>|[]")


def _is_dropped(char: str, keep_newlines: bool) -> bool:
    code = ord(char)
    if code in _INVISIBLE:
        return True
    if char in "\n\t":
        return not keep_newlines
    return unicodedata.category(char) == "Cc"  # C0, DEL, C1


def clean(text: str, *, single_line: bool = False) -> str:
    """NFKC, without invisible or control characters (single line: whitespace for them)."""
    text = unicodedata.normalize("NFKC", text)
    if single_line:
        text = re.sub(r"[\r\n\t\v\f\x85\u2028\u2029]+", " ", text)
    return "".join(ch for ch in text if not _is_dropped(ch, not single_line))


def _defang(token: str) -> str:
    inert = token.translate(_LOOK_ALIKE)
    return inert if inert != token else token[:1] + " " + token[1:]


class TokenGuard:
    """Neutralises special tokens: the model's own (``special_tokens``) and the built-in list."""

    def __init__(self, special_tokens: Iterable[str] = ()) -> None:
        literal = sorted({t for t in special_tokens if t.strip()}, key=len, reverse=True)
        patterns = [re.escape(t) for t in literal]
        self.special_tokens = tuple(literal)
        self._literal = re.compile("|".join(patterns)) if patterns else None
        self._built_in = re.compile("|".join(_BUILT_IN), re.IGNORECASE)

    @classmethod
    def for_model(cls, folder: Path | None) -> TokenGuard:
        """The guard for a model folder (its tokenizer's tokens), or the built-in list only."""
        return cls(special_tokens_of(folder) if folder is not None else ())

    def __call__(self, text: str, *, single_line: bool = False) -> str:
        text = clean(text, single_line=single_line)
        for _ in range(8):  # a rewrite cannot create a token, but stay safe: until stable
            before = text
            if self._literal is not None:
                text = self._literal.sub(lambda m: _defang(m.group(0)), text)
            text = self._built_in.sub(lambda m: _defang(m.group(0)), text)
            if text == before:
                return text
        return text.translate(_LOOK_ALIKE)


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def special_tokens_of(folder: Path) -> frozenset[str]:
    """Special and added tokens from ``tokenizer.json`` / ``tokenizer_config.json`` if present.

    Added tokens that are not marked special are kept when they look like markup (they
    contain ``<``, ``>``, ``|``, ``[`` or ``]``): ordinary added words stay untouched.
    """
    found: set[str] = set()
    root = folder

    def load(name: str) -> dict[str, Any]:
        try:
            data = json.loads((root / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def add(value: Any, special: bool) -> None:
        text = _token_text(value)
        if text and (special or _MARKUP & set(text)):
            found.add(unicodedata.normalize("NFKC", text))
            found.add(text)

    for entry in load("tokenizer.json").get("added_tokens") or []:
        if isinstance(entry, dict):
            add(entry, bool(entry.get("special")))
    config = load("tokenizer_config.json")
    for entry in (config.get("added_tokens_decoder") or {}).values():
        if isinstance(entry, dict):
            add(entry, bool(entry.get("special")))
    for key in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token",
                "mask_token"):
        add(config.get(key), True)
    for key in ("additional_special_tokens", "extra_special_tokens"):
        extra = config.get(key) or []
        for value in extra.values() if isinstance(extra, dict) else extra:
            add(value, True)
    return frozenset(found)
