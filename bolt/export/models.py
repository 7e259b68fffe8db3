"""The SFT model and each online policy (DPO, GRPO or DRIFT) as Hugging Face model folders: the stored
weights, config and tokenizer as training saved them (``<stage>/<fp>/model/``), the
plots of its training and evaluation under ``plots/``, and a ``README.md`` model card
with the training config, the data it was trained on and the eval table.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from bolt.export import cards
from bolt.export.datasets import Exported
from bolt.store import ArtifactStore, Manifest
from bolt.train.fingerprints import MODEL_DIR

PLOTS_DIR = "plots"


@dataclass(frozen=True)
class ModelExport:
    """What a model card says beyond its own manifest."""

    manifest: Manifest
    title: str
    summary: str  # one paragraph: what the model is
    lineage: list[Manifest]
    base_model: str | None = None  # the Hub id of the base model, where known
    datasets: Sequence[str] = ()  # Hub ids of the exported data it was trained on
    evaluation: Manifest | None = None
    trajectory: Manifest | None = None
    tags: Sequence[str] = ()
    algorithm: str | None = None  # the online algorithm that trained it: its paper is cited


def fetch_model(store: ArtifactStore, manifest: Manifest, folder: Path) -> Path:
    """The stored model files into ``folder`` (sha256-checked against the manifest)."""
    if not any(f.path.startswith(MODEL_DIR + "/") for f in manifest.files):
        raise FileNotFoundError(f"{cards.ref(manifest)} stores no {MODEL_DIR}/ folder")
    folder.mkdir(parents=True, exist_ok=True)
    store.get_dir(manifest, MODEL_DIR, folder)
    return folder


def copy_plots(store: ArtifactStore, sources: Sequence[Manifest | None], folder: Path) -> list[str]:
    """Every top-level PNG of the given manifests into ``plots/``, named after their stage
    (``plots/sft-loss.png``, ``plots/eval-headline.png``); their paths in the folder."""
    copied = []
    for manifest in sources:
        if manifest is None:
            continue
        for info in manifest.files:
            if "/" in info.path or not info.path.endswith(".png"):
                continue
            name = f"{PLOTS_DIR}/{manifest.stage}-{info.path}"
            store.get_file(manifest, info.path, folder / name)
            copied.append(name)
    return copied


def eval_section(store: ArtifactStore, evaluation: Manifest | None) -> str:
    if evaluation is None:
        return "## Evaluation\n\nThis model has no evaluation in the store."
    rows = evaluation.stats.get("table", [])
    usage = evaluation.stats.get("judge_usage") or {}
    label = evaluation.config.get("model")
    judge = (evaluation.config.get("eval") or {}).get("judge")
    parts = [
        "## Evaluation",
        "",
        (
            f"Evaluated as `{label}` in stored output `{cards.ref(evaluation)}` "
            f"({store.uri(evaluation.stage, evaluation.fingerprint, 'report.md')})."
        ),
        "",
        cards.table(rows) if rows else "(no rows)",
    ]
    if judge:
        parts += ["", "Judge:", "", cards.json_block(judge)]
    if usage:
        parts += ["", "Judge usage:", "", cards.pairs_table(usage, "figure", "value")]
    return "\n".join(parts)


def plots_section(plots: Sequence[str]) -> str:
    if not plots:
        return ""
    lines = ["## Plots", ""]
    for path in plots:
        lines += [f"![{Path(path).stem}]({path})", ""]
    return "\n".join(lines)


def training_section(manifest: Manifest) -> str:
    parts = ["## Training", ""]
    figures: dict[str, Any] = {**manifest.counts, **manifest.timings}
    figures |= {f"tokens.{k}": v for k, v in manifest.tokens.items()}
    figures |= cards.scalar_stats(manifest)
    parts += [cards.pairs_table(figures, "figure", "value")]
    return "\n".join(parts)


def usage_section() -> str:
    return (
        "## Use\n\n```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        'model = AutoModelForCausalLM.from_pretrained("<this repo or folder>")\n```\n\n'
        "The model answers in BOLT's LongCoT format: internal thoughts, then the response."
    )


def card_data(spec: ModelExport, license: str) -> ModelCardData:
    extra = {"license_name": "see-card"} if license == "other" else {}
    return ModelCardData(
        base_model=spec.base_model,
        library_name="transformers",
        pipeline_tag="text-generation",
        license=license,
        tags=[*cards.TAGS, *spec.tags],
        datasets=list(spec.datasets) or None,
        **extra,
    )


def export_model(store: ArtifactStore, spec: ModelExport, folder: Path, license: str) -> Exported:
    """Fetch the model, copy its plots, write its card."""
    manifest = spec.manifest
    with tempfile.TemporaryDirectory() as tmp:
        fetch_model(store, manifest, Path(tmp) / "model")
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(Path(tmp) / "model", folder)
    plots = copy_plots(store, [manifest, spec.evaluation, spec.trajectory], folder)
    body = cards.join(
        f"# {spec.title}\n\n{spec.summary}",
        usage_section(),
        training_section(manifest),
        eval_section(store, spec.evaluation),
        plots_section(plots),
        cards.provenance_section(
            manifest, spec.lineage, store.uri(manifest.stage, manifest.fingerprint)
        ),
        cards.citation_section(spec.algorithm),
    )
    card = ModelCard(f"---\n{card_data(spec, license).to_yaml()}\n---\n\n{body}")
    card.save(folder / "README.md")
    return Exported("model", folder.name, folder, cards.ref(manifest))
