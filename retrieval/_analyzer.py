"""The sparse (BM25) side: a French- and English-aware analyzer producing term vectors.

Text → lower case → elisions removed (l', d', qu', jusqu'…) → words, with hyphenated
compounds kept whole and split → accents and ligatures folded → stop words dropped →
Snowball stem in the text's language (both languages when it is undetermined) → term id.

Term ids are a 32-bit BLAKE2b of the term, keyed when a key is given, so the index does not
spell out its vocabulary (the security layer supplies the key). Document weights are the
BM25 term-frequency part, ``tf·(k1+1) / (tf + k1·(1 − b + b·len/avg_len))``; the store
multiplies by IDF at query time (Qdrant's ``idf`` modifier).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from functools import lru_cache
from typing import Any

from ingest import detect_language, strip_accents

from ._types import SparseVector

_ELISION = re.compile(r"\b(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|quoiqu)['’]", re.IGNORECASE)
_WORD = re.compile(r"\w+(?:-\w+)*", re.UNICODE)

_STOP_FR = frozenset(strip_accents(w) for w in (
    "a à au aux avec ce ces cet cette dans de des du elle elles en et eux il ils je la le les "
    "leur leurs lui ma mais me même mes moi mon ne nos notre nous on ou où par pas pour qu que "
    "qui sa se ses son sur ta te tes toi ton tu un une vos votre vous y été être avoir ai as "
    "avons avez ont est sont était étaient sera seront fait faire peut plus moins très aussi "
    "comme donc car si sans sous entre chez vers ça cela ceci quel quelle quels quelles dont "
    "lequel laquelle lesquels duquel auquel combien comment pourquoi quand quoi").split())
_STOP_EN = frozenset((
    "a an and are as at be been being but by can could did do does for from had has have he "
    "her his how i if in into is it its me my no not of on or our she so than that the their "
    "them then there these they this those to too us was we were what when where which while "
    "who whom why will with would you your yours shall should may might must").split())


@lru_cache(maxsize=4)
def _stemmer(language: str) -> Any:
    import Stemmer

    return Stemmer.Stemmer(language)


class Analyzer:
    """Produces BM25 sparse vectors for documents and queries."""

    def __init__(self, *, k1: float = 1.2, b: float = 0.75, avg_len: float = 120.0,
                 key: bytes | None = None) -> None:
        self.k1, self.b, self.avg_len = k1, b, avg_len
        self._key = key or b""

    def rekey(self, key: bytes) -> None:
        """Term ids under a new index key (after a key rotation: re-index every chunk)."""
        self._key = key

    def terms(self, text: str, lang: str) -> list[str]:
        """Analysed terms of a text in ``lang`` (``fr``, ``en`` or ``und``)."""
        languages = {"fr": ("french",), "en": ("english",)}.get(lang, ("french", "english"))
        words: list[str] = []
        for match in _WORD.finditer(_ELISION.sub(" ", text.lower())):
            word = match.group()
            if "-" in word:
                parts = [p for p in word.split("-") if p]
                words.extend(parts)
                words.append("".join(parts))
            else:
                words.append(word)
        out: list[str] = []
        for word in words:
            folded = strip_accents(word)
            if folded in _STOP_FR or folded in _STOP_EN:
                continue
            if len(folded) < 2 and not folded.isdigit():
                continue
            if word.isdigit():
                out.append(word)
                continue
            # Fold accents before stemming: users often type "electricite" for "électricité",
            # and both must reach the same term.
            stems = {_stemmer(language).stemWord(folded) for language in languages}
            out.extend(sorted(stems))
        return out

    def term_id(self, term: str) -> int:
        digest = hashlib.blake2b(term.encode("utf-8"), digest_size=4, key=self._key).digest()
        return int.from_bytes(digest, "big")

    def document_vector(self, text: str, lang: str | None = None) -> SparseVector:
        terms = self.terms(text, lang or detect_language(text))
        length = len(terms)
        norm = self.k1 * (1 - self.b + self.b * length / self.avg_len)
        weights: dict[int, float] = {}
        for term, tf in Counter(terms).items():
            tid = self.term_id(term)
            weights[tid] = weights.get(tid, 0.0) + tf * (self.k1 + 1) / (tf + norm)
        return _sparse(weights)

    def query_vector(self, text: str, lang: str | None = None) -> SparseVector:
        weights = {self.term_id(t): 1.0 for t in self.terms(text, lang or detect_language(text))}
        return _sparse(weights)


def _sparse(weights: dict[int, float]) -> SparseVector:
    ordered = sorted(weights.items())
    return SparseVector(tuple(i for i, _ in ordered), tuple(v for _, v in ordered))
