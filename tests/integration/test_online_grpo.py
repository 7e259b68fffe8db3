"""RLMT's GRPO for real on CPU (online.algorithm: grpo), driven by the online flow
(``flows.online.online_flow``) on the session's Prefect server: two iterations of
prompts, samples (a group of 3 per prompt from the policy's own engine), strict-mode
scores on the response only (LM checklist on SmolLM2 + format rule), groups with
advantages and the GRPO job (k3 KL to the SFT model, DeepSpeed ZeRO-2, one process); the
SFT model and both policies evaluated in the loop, the trajectory, and the policy kept
by the best MATH500 headline; the export finds both iterations and their evaluations.
A rerun of the flow recomputes nothing: every stage task is Cached, no shard runs and
the store gains no output. Everything is read back from the store.

The engines are transformers (``online_helpers.online_config`` says why). The GRPO job's
kills and resumes are the reliability suite's (test_grpo_survives_five_seeded_kills).
"""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest

from bolt.config import OnlineAlgorithm
from bolt.export.lineage import Index, select
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt.train.fingerprints import MODEL_DIR
from tests.integration.online_helpers import (
    by_iteration,
    commit_sft,
    online_config,
    state_kinds,
    task_states,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The flow's tasks: a stage's (cached by its fingerprint), or a shard's (run while the
# stage's manifest is not committed); one shard of 2 prompts per iteration here.
SHARD_TASKS = ["online-samples-shard", "online-grpo-scores-shard"]
STAGE_TASKS = ["online-prompts", "online-groups", "online-grpo"]


def test_grpo_online_flow_two_iterations_cached_rerun_and_trajectory(
    tiny_config, smollm2_path, prefect_api, tmp_path
):
    from prefect import tags

    from flows.online import online_flow

    cfg = online_config(tiny_config, tmp_path, OnlineAlgorithm.grpo)
    store = ArtifactStore.from_config(cfg.storage)
    sft = commit_sft(store, Path(smollm2_path))
    run_tag = f"test-{uuid.uuid4().hex[:8]}"
    with tags(run_tag):
        kept = online_flow(cfg, sft)

    groups1, groups2 = by_iteration(store, Stage.online_groups)
    scores1 = store.require(Stage.online_scores, groups1.upstream["scores"])
    assert groups1.counts["samples"] == 6 and groups1.counts["groups"] == 2
    assert scores1.counts["scored"] == 6 and "malformed_thinking" in scores1.counts
    policy1, policy2 = by_iteration(store, Stage.online_policy)
    assert (policy1.upstream, policy2.upstream) == (
        {"groups": groups1.fingerprint},
        {"groups": groups2.fingerprint},
    )

    # Iteration 2 sampled from the iteration-1 policy, iteration 1 from the SFT model.
    def sampled_from(groups: Manifest) -> str:
        scores = store.require(Stage.online_scores, groups.upstream["scores"])
        return store.require(Stage.online_samples, scores.upstream["samples"]).upstream["policy"]

    assert [sampled_from(g) for g in (groups1, groups2)] == [
        f"{Stage.sft}/{sft.fingerprint}",
        f"{Stage.online_policy}/{policy1.fingerprint}",
    ]
    assert [step for step, _ in policy1.stats["loss_curve"]] == [1, 2]
    assert all(math.isfinite(loss) for _, loss in policy1.stats["loss_curve"])
    # The reference is the initial policy in iteration 1: no KL before the first update.
    kls = [kl for _, kl in policy1.stats["kl_curve"]]
    assert kls[0] == pytest.approx(0.0, abs=1e-9) and kls[1] > 0, kls
    assert any(f.path.startswith(f"{MODEL_DIR}/") for f in policy1.files)
    assert [step for step, _ in policy2.stats["loss_curve"]] == [1, 2]
    assert policy2.stats["kl_curve"][0][1] > 0  # policy 1 is not the SFT reference

    (trajectory,) = store.list_manifests(Stage.eval_trajectory)
    assert [label for label, _ in trajectory.stats["points"]] == ["SFT", "GRPO-1", "GRPO-2"]
    assert "math500" in trajectory.stats["points"][0][1]
    assert any(f.path == "trajectory.png" for f in trajectory.files)
    assert kept in (policy1, policy2)
    # The export finds both iterations and each model's quick evaluation by its label.
    selection = select(Index.of(store), cfg, sft_fp=sft.fingerprint)
    assert [(it.algorithm, it.policy) for it in selection.iterations] == [
        ("grpo", policy1),
        ("grpo", policy2),
    ]
    assert sorted(selection.evals) == ["policy-1", "policy-2", "sft"]
    names = STAGE_TASKS + SHARD_TASKS
    want = {name: ["Completed"] for name in names}
    first = task_states(run_tag, names, lambda found: state_kinds(found) == want)
    assert state_kinds(first) == want

    # The rerun: every stage task is a cache hit on its fingerprint, no shard runs again,
    # and the store gains nothing.
    outputs = {(m.stage, m.fingerprint, m.created_at) for m in store.list_manifests()}
    rerun_tag = f"test-{uuid.uuid4().hex[:8]}"
    with tags(rerun_tag):
        assert online_flow(cfg, sft) == kept
    want = {name: ["Cached", "Cached"] for name in STAGE_TASKS}
    assert task_states(rerun_tag, names, lambda found: found == want) == want
    assert {(m.stage, m.fingerprint, m.created_at) for m in store.list_manifests()} == outputs
