"""DRIFT for real on CPU (online.algorithm: drift), driven by the online flow
(``flows.online.online_flow``) on the session's Prefect server: two iterations over the
hand-made dissatisfaction rows (data/online/dissatisfaction.handmade.jsonl, DRIFT's
release format, two of its rows unusable on purpose): the policy's revision of each
dissatisfying turn (the policy's own engine), DRIFT's pairs, the reference pass and DPO
with the NLL term (rpo_alpha, DeepSpeed ZeRO-2, one process); the SFT model and both
policies evaluated in the loop and the trajectory; the export finds both iterations and
their evaluations. A rerun of the flow recomputes nothing: every stage task is Cached,
no shard runs and the store gains no output. Everything is read back from the store.

The engines are transformers (``online_helpers.online_config`` says why). The DRIFT
policy is trained by the DPO job (``bolt.train.dpo``, rpo_alpha > 0): its kills and
resumes are the reliability suite's (test_dpo_survives_five_seeded_kills[drift]).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bolt.config import OnlineAlgorithm
from bolt.export.lineage import Index, select
from bolt.records import PreferencePair
from bolt.stages import Stage
from bolt.store import ArtifactStore
from bolt.train.fingerprints import rpo_alpha
from tests.integration.online_helpers import (
    by_iteration,
    commit_sft,
    online_config,
    state_kinds,
    task_states,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The flow's tasks: a stage's (cached by its fingerprint), or a shard's (run while the
# stage's manifest is not committed); one shard of 2 rows per iteration here.
SHARD_TASKS = ["online-revisions-shard"]
STAGE_TASKS = ["online-feedback", "online-drift-pairs", "online-reference", "online-dpo"]


def test_drift_online_flow_two_iterations_cached_rerun_and_trajectory(
    tiny_config, smollm2_path, prefect_api, tmp_path
):
    from prefect import tags

    from flows.online import online_flow

    cfg = online_config(tiny_config, tmp_path, OnlineAlgorithm.drift)
    assert rpo_alpha(cfg.online) == 0.001
    store = ArtifactStore.from_config(cfg.storage)
    sft = commit_sft(store, Path(smollm2_path))
    run_tag = f"test-{uuid.uuid4().hex[:8]}"
    with tags(run_tag):
        kept = online_flow(cfg, sft)

    feedback1, feedback2 = by_iteration(store, Stage.online_feedback)
    assert feedback1.counts["rows"] == 2 and feedback1.counts["rejected"] == 2
    assert feedback1.counts["rejected.no_assistant_turn"] == 1
    assert feedback1.counts["rejected.empty_feedback"] == 1
    assert feedback2.fingerprint != feedback1.fingerprint
    pairs1, pairs2 = by_iteration(store, Stage.online_pairs)
    assert pairs1.counts["pairs"] >= 1 and pairs2.counts["pairs"] >= 1
    for pair in store.read_records(pairs1, PreferencePair):
        assert pair.prompt[-1].role == "user"  # the original prompt: no feedback turn
        assert "feedback" not in pair.prompt[-1].content.lower()
    policy1, policy2 = by_iteration(store, Stage.online_policy)
    assert [p.upstream["pairs"] for p in (policy1, policy2)] == [
        pairs1.fingerprint,
        pairs2.fingerprint,
    ]
    # Iteration 2 revised with the iteration-1 policy, iteration 1 with the SFT model.
    revisions = [
        store.require(Stage.online_samples, p.upstream["samples"]) for p in (pairs1, pairs2)
    ]
    assert [r.upstream for r in revisions] == [
        {"feedback": feedback1.fingerprint, "policy": f"{Stage.sft}/{sft.fingerprint}"},
        {
            "feedback": feedback2.fingerprint,
            "policy": f"{Stage.online_policy}/{policy1.fingerprint}",
        },
    ]
    assert [step for step, _ in policy1.stats["loss_curve"]] == [1, 2]
    assert policy1.stats["final_reward_margin"] is not None
    assert [step for step, _ in policy2.stats["loss_curve"]] == [1, 2]

    (trajectory,) = store.list_manifests(Stage.eval_trajectory)
    assert [label for label, _ in trajectory.stats["points"]] == ["SFT", "DRIFT-1", "DRIFT-2"]
    assert any(f.path == "trajectory.png" for f in trajectory.files)
    assert kept == policy2  # keep_best_by is GRPO's: DRIFT keeps the last iteration
    # The export finds both iterations and each model's quick evaluation by its label.
    selection = select(Index.of(store), cfg, sft_fp=sft.fingerprint)
    assert [(it.algorithm, it.data, it.policy) for it in selection.iterations] == [
        ("drift", pairs1, policy1),
        ("drift", pairs2, policy2),
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
