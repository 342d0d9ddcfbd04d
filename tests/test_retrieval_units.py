"""The analyzer and fusion, on hand-made inputs."""

from __future__ import annotations

import pytest

from retrieval import Analyzer, Passage, Source, rrf
from retrieval._fusion import FusionPolicy

pytestmark = pytest.mark.unit


def test_french_analysis_folds_elisions_accents_stems_and_stopwords() -> None:
    analyzer = Analyzer()
    terms = analyzer.terms("L'élève d'aujourd'hui révise les congés payés", "fr")
    assert "l" not in terms and "les" not in terms
    assert "elev" in terms  # élève → stem, accent folded
    assert analyzer.terms("congé", "fr") == analyzer.terms("Congés", "fr")
    # Hyphenated compounds: the parts and the whole.
    assert {"vingt", "cinq", "vingtcinq"} <= set(analyzer.terms("vingt-cinq", "fr"))


def test_english_stemming_and_undetermined_language() -> None:
    analyzer = Analyzer()
    assert analyzer.terms("running foxes", "en") == ["run", "fox"]
    both = analyzer.terms("congés", "und")
    assert "cong" in both  # the French stem is among the candidates


def test_sparse_vectors_are_sorted_and_bm25_saturated() -> None:
    analyzer = Analyzer(avg_len=10)
    vec = analyzer.document_vector("apple apple apple banana", "en")
    assert list(vec.indices) == sorted(vec.indices)
    weights = dict(zip(vec.indices, vec.values, strict=True))
    apple, banana = analyzer.term_id("appl"), analyzer.term_id("banana")
    assert weights[apple] > weights[banana]
    assert weights[apple] < 3 * weights[banana]  # saturation, not raw counts
    query = analyzer.query_vector("apples", "en")
    assert list(query.values) == [1.0] and list(query.indices) == [apple]


def test_keyed_term_ids_hide_the_vocabulary() -> None:
    assert Analyzer().term_id("secret") != Analyzer(key=b"k" * 32).term_id("secret")


def _p(cid: str) -> Passage:
    return Passage(cid, "t", 0.0, "h", 0, None, "", "en", "txt", "text",
                   (Source("d", "/p", 1),), "m")


def test_rrf_hand_computed() -> None:
    dense = [_p("a"), _p("b"), _p("c")]
    sparse = [_p("c"), _p("a")]
    fused = rrf([(dense, 1.0), (sparse, 1.0)], k=60, limit=3)
    scores = {p.chunk_id: p.score for p in fused}
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert [p.chunk_id for p in fused] == ["a", "c", "b"]


def test_language_aware_weights() -> None:
    policy = FusionPolicy(model_languages=("en",), foreign_dense_weight=0.25)
    assert policy.weights("en") == (1.0, 1.0)
    assert policy.weights("fr") == (0.25, 1.0)
    assert FusionPolicy().weights("fr") == (1.0, 1.0)
