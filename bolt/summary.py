"""What a finished run came for, read from the store's manifests: each model's headline
scores with the judge that gave them, the reward of the policy's samples in every online
iteration, where the reports and plots are, and what each output cost.

``collect`` walks the store from the run's last policy and its trajectory (the only
reads); the ``*_rows`` functions are pure: manifests in, table rows out. `bolt run`
prints the rows (``bolt_cli``), the pipeline flow shows them as Prefect artifacts
(``tasks.reporting``).

The online chain is followed by upstream links, by the algorithm that trained each
policy: a DPO policy's ``pairs`` -> their ``scores`` -> those scores' ``samples``; a GRPO
policy's ``groups`` -> ``scores`` -> ``samples`` (RLMT); a DRIFT policy's ``pairs`` ->
the ``samples`` (the policy's revisions) and the ``feedback`` rows they revise; then the
``policy`` the samples came from (``sft/<fp>`` for iteration 1). Each iteration's
samples are drawn from the policy before it, so iteration k's reward is that of
DPO-(k-1)'s (GRPO-(k-1)'s) samples, the SFT model's for k = 1; DRIFT scores nothing (its
pairs are preferred by construction), so its iterations have no reward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from bolt.config import ComputeConfig, OnlineAlgorithm
from bolt.export.lineage import Index, eval_labels, eval_of, model_label, policy_algorithm
from bolt.records import ScoredGeneration
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest

# store.uri: (stage, fingerprint, file name) -> where the file is
Uri = Callable[[str, str, str], str]
# What a count's key starts with when it counts things left out, by reason: curation's
# ``rejected.<reason>``, the filter's ``dropped.<reason>``, pairing's ``skipped.<reason>``,
# decontamination's ``contaminated:<benchmark>``.
LEFT_OUT = ("rejected.", "dropped.", "skipped.", "contaminated:")


@dataclass(frozen=True)
class Iteration:
    """One online round: what it sampled and scored, what it trained on and its policy."""

    index: int
    policy: Manifest
    algorithm: OnlineAlgorithm = OnlineAlgorithm.dpo
    pairs: Manifest | None = None  # DPO, DRIFT
    groups: Manifest | None = None  # GRPO
    scores: Manifest | None = None  # DPO, GRPO
    samples: Manifest | None = None
    feedback: Manifest | None = None  # DRIFT: the dissatisfaction rows revised
    reference: Manifest | None = None  # DPO, DRIFT: the reference log-probs
    # the reward of every sample: the weighted sum, and each backend's own
    rewards: list[float] = field(default_factory=list)
    backend_rewards: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class RunResults:
    # (model label, its eval manifest) in training order: SFT, DPO-1, ...
    evals: list[tuple[str, Manifest]] = field(default_factory=list)
    iterations: list[Iteration] = field(default_factory=list)
    trajectory: Manifest | None = None

    def algorithms(self) -> str:
        """The online algorithms of the iterations, as labels name them (``DPO``)."""
        return "/".join(dict.fromkeys(str(it.algorithm).upper() for it in self.iterations))

    def manifests(self) -> list[Manifest]:
        """Every output these results come from (for their cost), each once."""
        found = [m for it in self.iterations for m in iteration_outputs(it)]
        found += [m for _, m in self.evals]
        found += [self.trajectory] if self.trajectory else []
        return list({(m.stage, m.fingerprint): m for m in found}.values())


def iteration_outputs(it: Iteration) -> list[Manifest]:
    """An iteration's stored outputs in the order they were made, its policy last."""
    parts = (it.feedback, it.samples, it.scores, it.groups, it.pairs, it.reference, it.policy)
    return [m for m in parts if m is not None]


# -- reading the store -------------------------------------------------------------


def _by_id(store: ArtifactStore, stage: str, fp: str | None) -> Manifest | None:
    return store.manifest(stage, fp) if fp else None


def _policy_id_manifest(store: ArtifactStore, policy_id: str | None) -> Manifest | None:
    stage, _, fp = (policy_id or "").rpartition("/")
    return store.manifest(stage, fp) if stage == Stage.online_policy else None


def _upstream_of(store: ArtifactStore, policy: Manifest) -> dict[str, Manifest | None]:
    """A policy's training data (``pairs``, or GRPO's ``groups``), the ``scores`` it was
    made from (DPO, GRPO) or the ``feedback`` rows (DRIFT), and the ``samples`` drawn."""
    grpo = policy_algorithm(policy) == OnlineAlgorithm.grpo
    kind, stage = ("groups", Stage.online_groups) if grpo else ("pairs", Stage.online_pairs)
    data = _by_id(store, stage, policy.upstream.get(kind))
    links = data.upstream if data else {}
    scores = _by_id(store, Stage.online_scores, links.get("scores"))
    samples = links.get("samples") or (scores.upstream.get("samples") if scores else None)
    return {
        kind: data,
        "scores": scores,
        "feedback": _by_id(store, Stage.online_feedback, links.get("feedback")),
        "samples": _by_id(store, Stage.online_samples, samples),
    }


def _iteration(
    store: ArtifactStore, policy: Manifest, position: int, read_rewards: bool
) -> Iteration:
    upstream = _upstream_of(store, policy)
    scores = upstream["scores"]
    rows = list(store.read_records(scores, ScoredGeneration)) if scores and read_rewards else []
    backends: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.rewards.items():
            backends.setdefault(name, []).append(value)
    return Iteration(
        index=int(policy.config.get("iteration") or position),
        policy=policy,
        algorithm=policy_algorithm(policy),
        **upstream,
        reference=_by_id(store, Stage.online_reference, policy.upstream.get("reference")),
        rewards=[row.reward for row in rows],
        backend_rewards=backends,
    )


def iteration_chain(
    store: ArtifactStore, policy: Manifest, read_rewards: bool = True
) -> list[Iteration]:
    """The online iterations that led to ``policy``, first to last, with every sample's
    reward read from the scores (the scores manifest holds counts only) unless
    ``read_rewards`` is false."""
    policies: list[Manifest] = []
    current: Manifest | None = policy
    while current is not None and current.stage == Stage.online_policy:
        policies.append(current)
        samples = _upstream_of(store, current)["samples"]
        current = _policy_id_manifest(store, samples.upstream.get("policy") if samples else None)
        if current is not None and current in policies:
            break  # a loop in the links: never in a store this code wrote
    policies.reverse()
    return [_iteration(store, p, k, read_rewards) for k, p in enumerate(policies, 1)]


def trajectory_evals(store: ArtifactStore, trajectory: Manifest) -> list[tuple[str, Manifest]]:
    """The (label, eval manifest) the trajectory was drawn from, in its order."""
    labels = trajectory.config.get("checkpoints") or list(trajectory.upstream)
    found = [
        (label, store.manifest(Stage.eval, trajectory.upstream.get(label, ""))) for label in labels
    ]
    return [(label, m) for label, m in found if m is not None]


def collect(
    store: ArtifactStore,
    policy: Manifest | None = None,
    trajectory: Manifest | None = None,
) -> RunResults:
    """The results of a run whose last policy and trajectory are given (either may be
    ``None``: a run stopped early). A DPO iteration the final evaluation did not cover
    shows its quick evaluation (``DPO-k``, ``GRPO-k`` or ``DRIFT-k``; ``online-k`` in
    stores of older versions) when there is one."""
    results = RunResults(trajectory=trajectory)
    results.iterations = iteration_chain(store, policy) if policy is not None else []
    named = dict(trajectory_evals(store, trajectory)) if trajectory is not None else {}
    quick = Index(store.list_manifests(Stage.eval)) if results.iterations else None
    if "SFT" in named:
        results.evals.append(("SFT", named.pop("SFT")))
    for it in results.iterations:
        label = model_label(it.index, it.algorithm)
        found = named.pop(label, None)
        if found is None and quick is not None:
            found = eval_of(quick, it.policy, eval_labels(it.index, it.algorithm))
        if found is not None:
            results.evals.append((label, found))
    results.evals += named.items()  # labels of another pipeline version, last
    return results


# -- rows --------------------------------------------------------------------------


def _summaries(manifest: Manifest) -> list[Mapping[str, Any]]:
    return manifest.stats.get("summaries", [])


def score_rows(evals: Sequence[tuple[str, Manifest]]) -> list[dict[str, Any]]:
    """Per model and benchmark: the headline number (a summary's first metric, as the
    eval report writes them) and who graded it (the judge model, or ``rule``)."""
    rows = []
    for label, manifest in evals:
        for s in _summaries(manifest):
            metrics = s.get("metrics") or {}
            metric, score = next(iter(metrics.items()), (None, None))
            rows.append(
                {
                    "model": label,
                    "benchmark": s.get("benchmark"),
                    "metric": metric,
                    "score": score,
                    "judge": s.get("judge") or "rule",
                    "items": s.get("n_items"),
                    "evaluated_as": manifest.config.get("model", label),
                }
            )
    return rows


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return fmean(values) if values else None


def iteration_rows(iterations: Sequence[Iteration], uri: Uri) -> list[dict[str, Any]]:
    """Per online iteration: the model it made and the one its samples came from, their
    reward (none for DRIFT: its pairs need no reward), what it trained on (pairs; GRPO's
    groups, with the flat ones that only the KL term trains on), the loss from its first
    to its last step, the last implicit-reward margin (DPO, DRIFT) or KL to the
    reference (GRPO), and where the policy is."""
    rows = []
    for it in iterations:
        stats = it.policy.stats
        groups = it.groups.counts if it.groups else {}
        rows.append(
            {
                "iteration": it.index,
                "model": model_label(it.index, it.algorithm),
                "sampled_from": model_label(it.index - 1, it.algorithm),
                "samples": len(it.rewards),
                "mean_reward": _mean(it.rewards),
                "backend_rewards": {k: _mean(v) for k, v in sorted(it.backend_rewards.items())},
                "pairs": it.pairs.counts.get("pairs") if it.pairs else None,
                "groups": groups.get("groups"),
                "flat_groups": groups.get("flat_groups"),
                "first_loss": stats.get("first_loss"),
                "final_loss": stats.get("final_loss"),
                "reward_margin": stats.get("final_reward_margin"),
                "kl": stats.get("final_kl"),
                "policy": uri(it.policy.stage, it.policy.fingerprint, ""),
            }
        )
    return rows


def file_rows(
    evals: Sequence[tuple[str, Manifest]], trajectory: Manifest | None, uri: Uri
) -> list[dict[str, Any]]:
    """Where to read the results: each model's report and plots, then the trajectory."""
    rows = []
    for label, manifest in evals:
        for f in manifest.files:
            if f.path.endswith((".md", ".png")):
                rows.append(
                    {
                        "what": f.path,
                        "model": label,
                        "path": uri(manifest.stage, manifest.fingerprint, f.path),
                    }
                )
    if trajectory is not None:
        rows += [
            {
                "what": f.path,
                "model": ", ".join(trajectory.config.get("checkpoints", [])),
                "path": uri(trajectory.stage, trajectory.fingerprint, f.path),
            }
            for f in trajectory.files
        ]
    return rows


# -- cost --------------------------------------------------------------------------


def output_seconds(manifest: Manifest) -> float:
    """The time an output took: its wall time where it has one (training), else the sum
    of its timings (the shards' compute)."""
    timings = manifest.timings
    if "wall_seconds" in timings:
        return float(timings["wall_seconds"])
    return float(sum(v for k, v in timings.items() if k.endswith("seconds")))


def output_cost(compute: ComputeConfig, manifest: Manifest) -> dict[str, float]:
    """An estimate of what an output cost: its time on the configured accelerators at
    ``compute.gpu_hour_usd`` (none on a CPU-only config), plus any judge's API spend."""
    seconds = output_seconds(manifest)
    device_hours = seconds / 3600 * compute.nodes * compute.gpus_per_node
    judge = float((manifest.stats.get("judge_usage") or {}).get("judge_usd", 0.0))
    return {
        "seconds": seconds,
        "device_hours": device_hours,
        "usd": device_hours * compute.gpu_hour_usd + judge,
    }


def left_out(manifest: Manifest) -> dict[str, int]:
    """What an output set aside, by reason (``rejected.<reason>`` and the like)."""
    return {k: v for k, v in sorted(manifest.counts.items()) if k.startswith(LEFT_OUT)}


def cost_rows(compute: ComputeConfig, manifests: Sequence[Manifest]) -> list[dict[str, Any]]:
    """Per output in run order: records, kept/left-out counts, tokens, time and cost,
    with the cost of the run so far."""
    rows, so_far = [], 0.0
    for m in manifests:
        cost = output_cost(compute, m)
        so_far += cost["usd"]
        rows.append(
            {
                "stage": str(m.stage),
                "fingerprint": m.fingerprint,
                "records": m.records,
                "left_out": sum(left_out(m).values()),
                "tokens": sum(v for v in m.tokens.values() if isinstance(v, int | float)),
                "seconds": round(cost["seconds"], 1),
                "usd": round(cost["usd"], 4),
                "usd_so_far": round(so_far, 4),
            }
        )
    return rows
