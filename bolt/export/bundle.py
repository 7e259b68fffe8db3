"""One export: the chosen SFT set, SFT model, and each online iteration's training data
and policy, written under ``out/`` as Hugging Face folders, each with its card:

    out/sft-data/         the SFT set (dataset)
    out/pairs-iter<k>/    iteration k's preference pairs (dataset; DPO, DRIFT)
    out/groups-iter<k>/   iteration k's scored groups (dataset; GRPO)
    out/sft/              the SFT model (model)
    out/dpo-iter<k>/      iteration k's policy (model; grpo-iter<k>, drift-iter<k>)

Each folder name is also the suffix of its repository's id when pushed.
"""

from __future__ import annotations

from pathlib import Path

from bolt.config import OnlineAlgorithm, PipelineConfig
from bolt.export.datasets import Exported, export_groups, export_pairs, export_sft_set
from bolt.export.lineage import Index, Iteration, Selection, select
from bolt.export.models import ModelExport, export_model
from bolt.store import ArtifactStore, Manifest


def base_model_id(cfg: PipelineConfig, sft: Manifest) -> str | None:
    """The Hub id of the SFT model's base model, when its catalog entry has one."""
    name = (sft.config.get("sft") or {}).get("base_model")
    entry = cfg.models.catalog.get(name) if name else None
    return entry.hf_id if entry is not None else None


# Per online algorithm: how a card names the policy and what it trained on.
TRAINED = {
    OnlineAlgorithm.dpo: ("online DPO", "Online DPO iteration {k} (BOLT §3.3)", "preference pairs"),
    OnlineAlgorithm.grpo: (
        "GRPO",
        "GRPO iteration {k} (RLMT: group-relative advantages, KL to the reference)",
        "scored groups",
    ),
    OnlineAlgorithm.drift: (
        "DRIFT",
        "DRIFT iteration {k} (DPO with an NLL term on the chosen side)",
        "dissatisfaction-anchored preference pairs",
    ),
}


def data_folder(it: Iteration) -> str:
    return f"{'groups' if it.algorithm == OnlineAlgorithm.grpo else 'pairs'}-iter{it.index}"


def _repo(prefix: str | None, name: str) -> list[str]:
    return [f"{prefix}-{name}"] if prefix else []


def _model_specs(
    cfg: PipelineConfig, index: Index, sel: Selection, prefix: str | None
) -> list[tuple[str, ModelExport]]:
    assert sel.sft is not None
    base = base_model_id(cfg, sel.sft)
    base_name = (sel.sft.config.get("sft") or {}).get("base_model")
    last = max((it.index for it in sel.iterations if it.policy), default=0)
    specs = [
        (
            "sft",
            ModelExport(
                manifest=sel.sft,
                title=f"{cfg.name}: BOLT LongCoT SFT model",
                summary=(
                    f"`{base_name}` fine-tuned on the LongCoT SFT set "
                    f"`filter/{sel.sft.upstream.get('filter')}` (BOLT §3.2)."
                ),
                lineage=index.lineage(sel.sft),
                base_model=base,
                datasets=_repo(prefix, "sft-data"),
                evaluation=sel.evals.get("sft"),
                trajectory=sel.trajectory if last == 0 else None,
                tags=["sft"],
            ),
        )
    ]
    for it in sel.iterations:
        if it.policy is None:
            continue
        name, what, data = TRAINED[it.algorithm]
        start = "the SFT model" if it.index == 1 else f"the iteration {it.index - 1} policy"
        summary = (
            f"{what.format(k=it.index)}, trained from {start} on the {data} "
            f"`{it.data.stage}/{it.data.fingerprint}`; base model `{base_name}`."
        )
        spec = ModelExport(
            manifest=it.policy,
            title=f"{cfg.name}: BOLT {name} policy, iteration {it.index}",
            summary=summary,
            lineage=index.lineage(it.policy),
            base_model=base,
            datasets=_repo(prefix, data_folder(it)),
            evaluation=sel.evals.get(f"policy-{it.index}"),
            trajectory=sel.trajectory if it.index == last else None,
            tags=[str(it.algorithm)],
            algorithm=str(it.algorithm),
        )
        specs.append((f"{it.algorithm}-iter{it.index}", spec))
    return specs


def export_selection(
    store: ArtifactStore,
    cfg: PipelineConfig,
    index: Index,
    sel: Selection,
    out: Path,
    license: str = "other",
    repo_prefix: str | None = None,
) -> list[Exported]:
    """Write the folders of ``sel`` under ``out``, datasets first."""
    done: list[Exported] = []
    if sel.sft_set is not None:
        title = f"{cfg.name}: BOLT LongCoT SFT set"
        lineage = index.lineage(sel.sft_set)
        done.append(export_sft_set(store, sel.sft_set, lineage, out / "sft-data", title, license))
    for it in sel.iterations:
        name, _, data = TRAINED[it.algorithm]
        title = f"{cfg.name}: BOLT {name} {data}, iteration {it.index}"
        write = export_groups if it.algorithm == OnlineAlgorithm.grpo else export_pairs
        lineage = index.lineage(it.data)
        done.append(write(store, it.data, lineage, out / data_folder(it), title, license))
    if sel.sft is not None:
        for name, spec in _model_specs(cfg, index, sel, repo_prefix):
            done.append(export_model(store, spec, out / name, license))
    return done


def export(
    store: ArtifactStore,
    cfg: PipelineConfig,
    out: Path,
    sft_fp: str | None = None,
    filter_fp: str | None = None,
    license: str = "other",
    repo_prefix: str | None = None,
) -> tuple[Selection, list[Exported]]:
    """Choose (see :func:`bolt.export.lineage.select`) and write every folder."""
    index = Index.of(store)
    sel = select(index, cfg, sft_fp, filter_fp)
    return sel, export_selection(store, cfg, index, sel, out, license, repo_prefix)
