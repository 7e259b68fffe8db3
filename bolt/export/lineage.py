"""Which stored outputs an export takes, found from the manifests alone.

The user names the SFT model (or the SFT set) by fingerprint, or takes the newest one;
the rest is found by walking the manifests' upstream links: the SFT set is the SFT
model's ``filter`` upstream; iteration k's training data are made from samples of the
policy before it (``sft/<fp>`` for k = 1), by ``online.algorithm``:

- DPO (BOLT §3.3): pairs <- scores <- samples;
- GRPO (RLMT, arXiv 2509.20357): groups <- scores <- samples;
- DRIFT (arXiv 2510.02341): pairs <- samples (the policy's revisions; the rows it
  revised are the pairs' ``feedback`` upstream).

Its policy is the one trained on that data. Evaluations name their model by label only
(``SFT``, ``DPO-k`` / ``GRPO-k`` / ``DRIFT-k``, and ``online-k`` in stores of older
versions), so an eval is matched by label and by being newer than its model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bolt.config import OnlineAlgorithm, PipelineConfig
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest


class ExportError(ValueError):
    """The store does not hold what the export was asked for."""


@dataclass(frozen=True)
class Iteration:
    index: int
    data: Manifest  # what the policy trained on: pairs (DPO, DRIFT) or groups (GRPO)
    policy: Manifest | None
    algorithm: OnlineAlgorithm = OnlineAlgorithm.dpo


def model_label(iteration: int | str, algorithm: str = OnlineAlgorithm.dpo) -> str:
    """The pipeline's name of a model: ``SFT`` (iteration 0), else the algorithm and the
    iteration (``DPO-2``, ``GRPO-1``, ``DRIFT-2``), as the online loop labels its evals."""
    return "SFT" if iteration == 0 else f"{str(algorithm).upper()}-{iteration}"


def eval_labels(iteration: int, algorithm: str = OnlineAlgorithm.dpo) -> list[str]:
    """The labels an iteration's policy may be evaluated under, preferred first: DPO's
    quick evals were ``online-k`` before the loop named them ``DPO-k``."""
    label = model_label(iteration, algorithm)
    return [label, f"online-{iteration}"] if algorithm == OnlineAlgorithm.dpo else [label]


def policy_algorithm(policy: Manifest) -> OnlineAlgorithm:
    """The algorithm that trained a policy, from its config (DPO in stores written before
    there were others)."""
    online = policy.config.get("online") or {}
    return OnlineAlgorithm(online.get("algorithm") or OnlineAlgorithm.dpo)


def data_algorithm(data: Manifest) -> OnlineAlgorithm:
    """The algorithm an iteration's training data is for: groups are GRPO's; pairs made
    straight from samples (no scores) are DRIFT's."""
    if data.stage == Stage.online_groups:
        return OnlineAlgorithm.grpo
    if data.config.get("algorithm") == OnlineAlgorithm.drift or "samples" in data.upstream:
        return OnlineAlgorithm.drift
    return OnlineAlgorithm.dpo


@dataclass
class Selection:
    """What one export takes (each ``None`` or empty where the store has none)."""

    sft_set: Manifest | None
    sft: Manifest | None
    iterations: list[Iteration] = field(default_factory=list)
    # "sft" or "policy-<k>" -> the eval manifest of that model
    evals: dict[str, Manifest] = field(default_factory=dict)
    trajectory: Manifest | None = None


class Index:
    """Every committed manifest of a store, by stage and by fingerprint."""

    def __init__(self, manifests: Iterable[Manifest]):
        self.by_stage: dict[str, list[Manifest]] = defaultdict(list)
        self.by_fp: dict[str, list[Manifest]] = defaultdict(list)
        for m in manifests:
            self.by_stage[str(m.stage)].append(m)
            self.by_fp[m.fingerprint].append(m)

    @classmethod
    def of(cls, store: ArtifactStore) -> Index:
        return cls(store.list_manifests())

    def stage(self, stage: str) -> list[Manifest]:
        return self.by_stage.get(str(stage), [])

    def get(self, stage: str, fingerprint: str) -> Manifest | None:
        return next((m for m in self.by_fp.get(fingerprint, []) if m.stage == stage), None)

    def resolve(self, upstream_value: str) -> Manifest | None:
        """An upstream value: a fingerprint, or ``stage/fingerprint`` (a policy id)."""
        stage, _, fp = upstream_value.rpartition("/")
        found = self.by_fp.get(fp, [])
        if stage:
            found = [m for m in found if m.stage == stage]
        return found[0] if len(found) == 1 else None

    def lineage(self, manifest: Manifest) -> list[Manifest]:
        """Every stored output ``manifest`` was made from, nearest first, each once."""
        seen: dict[str, Manifest] = {}
        todo = list(manifest.upstream.values())
        while todo:
            found = self.resolve(todo.pop(0))
            if found is None or (key := f"{found.stage}/{found.fingerprint}") in seen:
                continue
            seen[key] = found
            todo += list(found.upstream.values())
        return list(seen.values())

    def newest(self, stage: str, where: Callable[[Manifest], bool] = lambda m: True):
        found = [m for m in self.stage(stage) if where(m)]
        return max(found, key=lambda m: m.created_at) if found else None


def _by_prefix(index: Index, stage: str, prefix: str) -> Manifest:
    found = [m for m in index.stage(stage) if m.fingerprint.startswith(prefix)]
    if len(found) != 1:
        raise ExportError(f"{stage}/{prefix} matches {len(found)} committed outputs, not one")
    return found[0]


def _config_section(cfg: PipelineConfig, section: str) -> Any:
    return getattr(cfg, section).model_dump(mode="json")


def pick(
    index: Index,
    stage: str,
    cfg: PipelineConfig,
    section: str,
    where: Callable[[Manifest], bool] = lambda m: True,
) -> Manifest | None:
    """The newest output of ``stage`` made with this config's ``section``, else the
    newest one at all (the config may have changed since)."""
    same = index.newest(
        stage, lambda m: where(m) and m.config.get(section) == _config_section(cfg, section)
    )
    return same or index.newest(stage, where)


def training_data(index: Index, policy_id: str, k: int) -> list[Manifest]:
    """Iteration ``k``'s training data made from samples of ``policy_id``, whatever the
    algorithm: DPO's pairs and GRPO's groups (through their scores), DRIFT's pairs
    (straight from the revisions)."""
    samples = {
        m.fingerprint
        for m in index.stage(Stage.online_samples)
        if m.upstream.get("policy") == policy_id
    }
    scores = {
        m.fingerprint
        for m in index.stage(Stage.online_scores)
        if m.upstream.get("samples") in samples
    }
    made = [
        m
        for stage in (Stage.online_pairs, Stage.online_groups)
        for m in index.stage(stage)
        if m.upstream.get("scores") in scores or m.upstream.get("samples") in samples
    ]
    return [m for m in made if m.config.get("iteration") == k]


def iterations(
    index: Index, sft: Manifest, algorithm: OnlineAlgorithm = OnlineAlgorithm.dpo
) -> list[Iteration]:
    """The online iterations that started from ``sft``, in order, while they chain. Where
    one policy's samples fed more than one algorithm, ``algorithm``'s data is taken, else
    the newest."""
    found: list[Iteration] = []
    policy_id = f"{sft.stage}/{sft.fingerprint}"
    for k in range(1, 1000):
        made = training_data(index, policy_id, k)
        if not made:
            break
        mine = [m for m in made if data_algorithm(m) == algorithm]
        data = max(mine or made, key=lambda m: m.created_at)
        kind = data_algorithm(data)
        key = "groups" if kind == OnlineAlgorithm.grpo else "pairs"
        policy = index.newest(
            Stage.online_policy,
            lambda m, key=key, fp=data.fingerprint: m.upstream.get(key) == fp,
        )
        found.append(Iteration(k, data, policy, kind))
        if policy is None:
            break
        policy_id = f"{policy.stage}/{policy.fingerprint}"
    return found


def eval_of(index: Index, model: Manifest, labels: Sequence[str]) -> Manifest | None:
    """The newest eval of a model by one of ``labels`` (first label preferred), newer
    than the model itself."""
    for label in labels:
        found = index.newest(
            Stage.eval,
            lambda m, label=label: (
                m.config.get("model") == label and m.created_at >= model.created_at
            ),
        )
        if found is not None:
            return found
    return None


def select(
    index: Index,
    cfg: PipelineConfig,
    sft_fp: str | None = None,
    filter_fp: str | None = None,
) -> Selection:
    """The SFT model (named, or the newest made from the named SFT set, or the newest)
    and everything that hangs off it."""
    named_set = _by_prefix(index, Stage.filter, filter_fp) if filter_fp else None
    if sft_fp:
        sft = _by_prefix(index, Stage.sft, sft_fp)
    elif named_set is not None:
        fp = named_set.fingerprint
        sft = pick(index, Stage.sft, cfg, "sft", lambda m: m.upstream.get("filter") == fp)
    else:
        sft = pick(index, Stage.sft, cfg, "sft")
    if sft is not None:
        sft_set = index.get(Stage.filter, sft.upstream.get("filter", ""))
    else:
        sft_set = named_set or pick(index, Stage.filter, cfg, "filter")
    if sft is None and sft_set is None:
        raise ExportError("the store holds neither an SFT set (filter) nor an SFT model (sft)")
    selection = Selection(sft_set, sft)
    if sft is None:
        return selection
    selection.iterations = iterations(index, sft, cfg.online.algorithm)
    if (evaluated := eval_of(index, sft, ["SFT"])) is not None:
        selection.evals["sft"] = evaluated
    for it in selection.iterations:
        if it.policy is not None:
            labels = eval_labels(it.index, it.algorithm)
            if (evaluated := eval_of(index, it.policy, labels)) is not None:
                selection.evals[f"policy-{it.index}"] = evaluated
    fps = {m.fingerprint for m in selection.evals.values()}
    selection.trajectory = index.newest(
        Stage.eval_trajectory, lambda m: bool(fps & set(m.upstream.values()))
    )
    return selection
