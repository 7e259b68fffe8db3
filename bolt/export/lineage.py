"""Which stored outputs an export takes, found from the manifests alone.

The user names the SFT model (or the SFT set) by fingerprint, or takes the newest one;
the rest is found by walking the manifests' upstream links: the SFT set is the SFT
model's ``filter`` upstream; iteration k's pairs are those whose scores come from
samples of the policy before it (``sft/<fp>`` for k = 1); its policy is the one trained
on those pairs. Evaluations name their model by label only (``SFT``, ``DPO-k`` in the
pipeline's final eval, ``online-k`` in the quick eval after iteration k), so an eval is
matched by label and by being newer than its model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bolt.config import PipelineConfig
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest


class ExportError(ValueError):
    """The store does not hold what the export was asked for."""


@dataclass(frozen=True)
class Iteration:
    index: int
    pairs: Manifest
    policy: Manifest | None


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


def iterations(index: Index, sft: Manifest) -> list[Iteration]:
    """The online iterations that started from ``sft``, in order, while they chain."""
    found: list[Iteration] = []
    policy_id = f"{sft.stage}/{sft.fingerprint}"
    for k in range(1, 1000):
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
        pairs = index.newest(
            Stage.online_pairs,
            lambda m, scores=scores, k=k: (
                m.upstream.get("scores") in scores and m.config.get("iteration") == k
            ),
        )
        if pairs is None:
            break
        policy = index.newest(
            Stage.online_policy,
            lambda m, fp=pairs.fingerprint: m.upstream.get("pairs") == fp,
        )
        found.append(Iteration(k, pairs, policy))
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
    selection.iterations = iterations(index, sft)
    if (evaluated := eval_of(index, sft, ["SFT"])) is not None:
        selection.evals["sft"] = evaluated
    for it in selection.iterations:
        if it.policy is not None:
            labels = [f"DPO-{it.index}", f"online-{it.index}"]
            if (evaluated := eval_of(index, it.policy, labels)) is not None:
                selection.evals[f"policy-{it.index}"] = evaluated
    fps = {m.fingerprint for m in selection.evals.values()}
    selection.trajectory = index.newest(
        Stage.eval_trajectory, lambda m: bool(fps & set(m.upstream.values()))
    )
    return selection
