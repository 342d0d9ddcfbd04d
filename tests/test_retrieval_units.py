"""The analyzer and fusion, on hand-made inputs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from retrieval import Analyzer, FusionPolicy, Passage, Source, convex, dbsf, rrf

pytestmark = pytest.mark.unit


def test_french_analysis_folds_elisions_accents_stems_and_stopwords() -> None:
    analyzer = Analyzer()
    terms = analyzer.terms("L'élève d'aujourd'hui révise les congés payés", "fr")
    assert "l" not in terms and "les" not in terms
    assert "elev" in terms  # élève → stem, accent folded
    assert analyzer.terms("congé", "fr") == analyzer.terms("Congés", "fr")
    # Hyphenated compounds: the parts and the whole.
    assert {"vingt", "cinq", "vingtcinq"} <= set(analyzer.terms("vingt-cinq", "fr"))


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("l’œuvre", "oeuvres"),  # curly apostrophe, ligature, plural
        ("qu'il", "il"),  # elided relative pronoun, then a stop word: nothing left
        ("jusqu'à l'été", "ete"),
        ("électricité", "ELECTRICITE"),  # accents and case
        ("ingénieurs", "ingénieur"),
        ("d'Artagnan", "artagnan"),
    ],
)
def test_french_tricky_words_match(left: str, right: str) -> None:
    analyzer = Analyzer()
    assert analyzer.terms(left, "fr") == analyzer.terms(right, "fr")


def test_aujourdhui_and_presquile_keep_their_meaning() -> None:
    analyzer = Analyzer()
    assert analyzer.terms("aujourd'hui", "fr") == ["aujourd", "hui"]
    assert "presqu" in analyzer.terms("presqu'île", "fr")


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
    policy = FusionPolicy(model_languages=("en",), dense_weight=0.5, foreign_dense_weight=0.2)
    assert policy.dense_share("en") == 0.5
    assert policy.dense_share("fr") == 0.2
    assert policy.dense_share("und") == 0.2
    assert FusionPolicy(dense_weight=0.5).dense_share("fr") == 0.5  # multilingual model


def test_dbsf_hand_computed() -> None:
    # mean 2, population std sqrt(2/3): range mean ± 3 std
    std = (2 / 3) ** 0.5
    assert dbsf([1.0, 2.0, 3.0]) == pytest.approx(
        [(v - (2 - 3 * std)) / (6 * std) for v in (1.0, 2.0, 3.0)])
    assert dbsf([5.0]) == [1.0] and dbsf([2.0, 2.0]) == [1.0, 1.0] and dbsf([]) == []


def _scored(cid: str, score: float) -> Passage:
    return replace(_p(cid), score=score)


def test_convex_fusion_keeps_a_strong_margin() -> None:
    # BM25 is sure of "a" (far ahead); the dense leg mildly prefers "b".
    sparse = [_scored("a", 30.0), _scored("b", 5.0), _scored("c", 4.5), _scored("d", 4.0)]
    dense = [_scored("b", 0.61), _scored("a", 0.60), _scored("c", 0.30), _scored("d", 0.29)]
    fused = convex([(dense, 0.2), (sparse, 0.8)], limit=4)
    assert fused[0].chunk_id == "a"
    # Reciprocal ranks lose the margin: with equal weights "a" and "b" tie on 1/61 + 1/62.
    tied = rrf([(dense, 1.0), (sparse, 1.0)], k=60, limit=2)
    assert tied[0].score == pytest.approx(tied[1].score)


def test_fusion_policy_dispatch() -> None:
    sparse = [_scored("a", 3.0), _scored("b", 1.0)]
    dense = [_scored("b", 0.9), _scored("a", 0.1)]
    english = FusionPolicy(model_languages=("en",), dense_weight=0.9, foreign_dense_weight=0.1)
    assert english.fuse(dense, sparse, "en", 2)[0].chunk_id == "b"
    assert english.fuse(dense, sparse, "fr", 2)[0].chunk_id == "a"
    assert FusionPolicy(method="rrf").fuse(dense, sparse, "en", 2)[0].chunk_id in {"a", "b"}
