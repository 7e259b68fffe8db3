"""Every stage fingerprint of every shipped config, pinned.

A fingerprint names a stage's output folder and is its cache key: a refactor that moves
code must not change one, or every user's finished work would be redone. A change here
must be deliberate (a fingerprint that was wrong), and the golden file is then refreshed
with ``BOLT_REFRESH_GOLDENS=1`` and the reason given in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bolt.bootstrap.stage import bootstrap_fingerprint
from bolt.config_loader import load_config
from bolt.curation.stage import curation_fingerprint
from bolt.evals.stage import Baseline, EvalModel, answers_fingerprint, eval_fingerprint
from bolt.filtering.stage import filter_fingerprint, score_fingerprint
from bolt.online import stage as online
from bolt.prompts import load_examples
from bolt.source_digests import SourceDigests
from bolt.store import Manifest
from bolt.train.fingerprints import policy_fingerprint, sft_fingerprint
from bolt.train.reference import reference_fingerprint

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests/golden/fingerprints.json"
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
# What a HEAD of every s3:// source answers here: the goldens pin how a source's content
# enters the key without reaching S3 (at run time the HEAD goes through storage.s3).
GOLDEN_OBJECT = {"ETag": '"5d41402abc4b2a76b9719d911017c592"'}


def _digests(cfg) -> SourceDigests:
    return SourceDigests.of_config(cfg, head=lambda uri: GOLDEN_OBJECT)


def _manifest(stage: str, fp: str) -> Manifest:
    return Manifest(stage=stage, fingerprint=fp, code_version="1", config={})


def stage_fingerprints(path: Path) -> dict[str, str]:
    """Each stage's fingerprint from fixed upstream fingerprints (the chain's shape, not
    its data: what is pinned is how each stage's config enters its key)."""
    from bolt.bootstrap.stage import examples_dir

    cfg = load_config(path)
    examples = load_examples(examples_dir(cfg))
    digests = _digests(cfg)
    out = {
        "curation": curation_fingerprint(cfg, digests),
        "bootstrap": bootstrap_fingerprint(cfg, "d" * 16, examples),
        "score": score_fingerprint(cfg, "b" * 16),
        "filter": filter_fingerprint(cfg, "s" * 16, "d" * 16),
        "sft": sft_fingerprint(cfg, "f" * 16),
    }
    for iteration in (1, 2):
        out[f"online-prompts-{iteration}"] = online.prompts_fingerprint(cfg, iteration, digests)
        out[f"online-pairs-{iteration}"] = online.pairs_fingerprint(cfg, "c" * 16, iteration)
        out[f"online-policy-{iteration}"] = policy_fingerprint(
            cfg, "p" * 16, "r" * 16, "i" * 16, iteration
        )
    out["online-samples"] = online.samples_fingerprint(cfg, "q" * 16, "i" * 16)
    out["online-scores"] = online.scores_fingerprint(cfg, "a" * 16)
    out["online-reference"] = reference_fingerprint(cfg, "p" * 16, "i" * 16)
    out |= _algorithm_fingerprints(cfg)
    model = EvalModel("SFT", "/models/sft", {"folder": "/models/sft", "files": [["a", 1]]})
    out["eval-answers"] = answers_fingerprint(cfg, model, {})
    answers = _manifest("eval_answers", "e" * 16)
    baseline = Baseline(model, _manifest("eval_answers", "g" * 16), _manifest("eval", "h" * 16))
    out["eval"] = eval_fingerprint(cfg, answers, None)
    out["eval-with-baseline"] = eval_fingerprint(cfg, answers, baseline)
    return out


def _algorithm_fingerprints(cfg) -> dict[str, str]:
    """The stages only GRPO or DRIFT run, for the configs that run them (a DPO config's
    entries are the ones pinned before these algorithms existed)."""
    from bolt.config import OnlineAlgorithm
    from bolt.online import drift, grpo_data
    from bolt.train.fingerprints import grpo_policy_fingerprint

    out = {}
    if cfg.online.algorithm == OnlineAlgorithm.grpo:
        out["online-grpo-scores"] = grpo_data.grpo_scores_fingerprint(cfg, "a" * 16)
        for iteration in (1, 2):
            out[f"online-groups-{iteration}"] = grpo_data.groups_fingerprint(
                cfg, "c" * 16, iteration
            )
            out[f"online-grpo-policy-{iteration}"] = grpo_policy_fingerprint(
                cfg, "g" * 16, "i" * 16, "r" * 16, iteration
            )
    if cfg.online.algorithm == OnlineAlgorithm.drift:
        out["online-drift-samples"] = drift.drift_samples_fingerprint(cfg, "f" * 16, "i" * 16)
        for iteration in (1, 2):
            out[f"online-feedback-{iteration}"] = drift.feedback_fingerprint(
                cfg, iteration, _digests(cfg)
            )
            out[f"online-drift-pairs-{iteration}"] = drift.drift_pairs_fingerprint(
                cfg, "q" * 16, iteration
            )
    return out


def _all() -> dict[str, dict[str, str]]:
    return {p.name: stage_fingerprints(p) for p in CONFIGS}


def test_every_stage_fingerprint_of_every_shipped_config_is_unchanged():
    if os.environ.get("BOLT_REFRESH_GOLDENS"):
        GOLDEN.write_text(json.dumps(_all(), indent=2, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert _all() == {name: golden[name] for name in (p.name for p in CONFIGS)}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_the_golden_file_covers_every_shipped_config(path):
    assert path.name in json.loads(GOLDEN.read_text())
