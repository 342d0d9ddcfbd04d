"""Fast, deterministic language identification for French and English.

Counts function words, which dominate any running text. Short or mixed texts that give
no clear signal are ``und`` (undetermined); the sparse analyzer then stems both ways.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-zà-öø-ÿœæ]+", re.IGNORECASE)

_FR = frozenset(
    "le la les un une des du de au aux et est sont ou où que qui quoi dont ne pas plus "
    "pour par sur dans avec sans sous entre chez ce cette ces cet son sa ses leur leurs "
    "nous vous ils elles il elle on je tu mais donc car comme aussi être avoir été fait "
    "quel quelle quels quelles combien pourquoi comment quand lui y en se si très".split()
)
_EN = frozenset(
    "the a an and or of to in on at by for with from is are was were be been being has "
    "have had do does did this that these those it its which who whom what when where "
    "why how not no but if than then there their they them he she we you i can will "
    "would should could may might must shall".split()
)
_FR_ONLY_CHARS = frozenset("éèêàùçœ")


def _fold(word: str) -> str:
    return word.lower()


def detect_language(text: str, *, min_hits: int = 2) -> str:
    """Return ``"fr"``, ``"en"`` or ``"und"`` for a text."""
    words = [_fold(w) for w in _WORD.findall(text[:4000])]
    fr = sum(1 for w in words if w in _FR)
    en = sum(1 for w in words if w in _EN)
    accents = sum(1 for ch in text[:4000].lower() if ch in _FR_ONLY_CHARS)
    fr_score = fr + min(accents, 3) * 0.5
    if max(fr_score, en) < min_hits:
        if accents >= 2 and en == 0:
            return "fr"
        return "und"
    if fr_score > en * 1.2:
        return "fr"
    if en > fr_score * 1.2:
        return "en"
    return "und"


_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})


def strip_accents(text: str) -> str:
    """Fold accents and ligatures: ``Élève`` → ``Eleve``, ``œuvre`` → ``oeuvre``."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
