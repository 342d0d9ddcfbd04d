"""Embeddings: sentence-transformers encoders from local folders, and model identity."""

from ._encoder import Encoder, SentenceTransformerEncoder, Vectors, default_model_dir
from ._identity import ModelIdentity, weights_digest

__all__ = [
    "Encoder",
    "ModelIdentity",
    "SentenceTransformerEncoder",
    "Vectors",
    "default_model_dir",
    "weights_digest",
]
