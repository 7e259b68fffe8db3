"""The markdown every exported card is made of, from the manifests alone: what made the
output (its stage config and upstream fingerprints), what went in and what was dropped
and why (counts, reject reasons), its statistics, and the paper to cite.

Pure text: no store, no network. The cards themselves (YAML front matter through
``huggingface_hub``'s ``DatasetCard`` / ``ModelCard``) are assembled in
``bolt.export.datasets`` and ``bolt.export.models``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bolt.store import Manifest

PAPER = (
    "BOLT: Bootstrap Long Chain-of-Thought in Language Models without Distillation "
    "(Pang et al., 2025, [arXiv 2502.03860](https://arxiv.org/abs/2502.03860))"
)
CITATION = """@article{pang2025bolt,
  title   = {BOLT: Bootstrap Long Chain-of-Thought in Language Models without Distillation},
  author  = {Pang, Bo and Dong, Hanze and Xu, Jiacheng and Savarese, Silvio and Zhou, Yingbo and Xiong, Caiming},
  journal = {arXiv preprint arXiv:2502.03860},
  year    = {2025}
}"""
RLMT_PAPER = (
    "RLMT (GRPO on thinking, rewarded by a preference model): Language Models that Think, "
    "Chat Better (Bhaskar et al., 2025, [arXiv 2509.20357](https://arxiv.org/abs/2509.20357))"
)
RLMT_CITATION = """@article{bhaskar2025rlmt,
  title   = {Language Models that Think, Chat Better},
  author  = {Bhaskar, Adithya and Ye, Xi and Chen, Danqi},
  journal = {arXiv preprint arXiv:2509.20357},
  year    = {2025}
}"""
DRIFT_PAPER = (
    "DRIFT (DPO pairs anchored on real user dissatisfaction): Learning from Abundant User "
    "Dissatisfaction in Real-World Preference Learning (Wang et al., 2025, "
    "[arXiv 2510.02341](https://arxiv.org/abs/2510.02341))"
)
DRIFT_CITATION = """@article{wang2025drift,
  title   = {DRIFT: Learning from Abundant User Dissatisfaction in Real-World Preference Learning},
  author  = {Wang, Yifan and Li, Bolian and Wu, Junlin and Tan, Zhaoxuan and Liu, Zheli and Zhang, Ruqi and Grama, Ananth and Zeng, Qingkai},
  journal = {arXiv preprint arXiv:2510.02341},
  year    = {2025}
}"""
# The online algorithms other than BOLT's DPO (``online.algorithm``): their paper is
# cited beside BOLT's on what they trained or made.
METHOD_PAPERS = {"grpo": (RLMT_PAPER, RLMT_CITATION), "drift": (DRIFT_PAPER, DRIFT_CITATION)}
TAGS = ["bolt", "long-cot"]
# Counts whose key names a reason something was left out (``dropped.format``, ...).
REASON_PREFIXES = ("dropped.", "skipped.", "rejected.", "rejects.", "unusable.")
# Manifest stats that are long series: plotted in the store, too long for a card.
SERIES_STATS = ("loss_curve", "margin_curve", "points", "summaries", "table")


def fmt(value: Any) -> str:
    """A table cell: numbers rounded for reading, nothing shown as an en dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str).replace("|", "\\|")
    return str(value).replace("|", "\\|").replace("\n", " ")


def json_block(obj: Any) -> str:
    return "```json\n" + json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n```"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A markdown table of ``rows`` (columns: the union of their keys, in first-seen order)."""
    if not rows:
        return "(none)"
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def pairs_table(mapping: Mapping[str, Any], key: str = "key", value: str = "value") -> str:
    return table([{key: k, value: v} for k, v in mapping.items()], [key, value])


def numbers(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """n, mean, standard deviation, min, median and max of the values that are set."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return {"n": 0, "mean": None, "std": None, "min": None, "median": None, "max": None}
    return {
        "n": len(xs),
        "mean": statistics.fmean(xs),
        "std": statistics.pstdev(xs),
        "min": min(xs),
        "median": statistics.median(xs),
        "max": max(xs),
    }


def stats_table(columns: Mapping[str, Mapping[str, Any]]) -> str:
    """Summaries (from :func:`numbers`) side by side: one row per summary name."""
    return table([{"": name, **summary} for name, summary in columns.items()])


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of a dataset of ``n`` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M" if n < 1_000_000 else "1M<n<10M"


def reject_reasons(manifest: Manifest) -> dict[str, int]:
    """The counts of what a stage left out, by reason."""
    return {k: v for k, v in manifest.counts.items() if k.startswith(REASON_PREFIXES)}


def ref(manifest: Manifest) -> str:
    return f"{manifest.stage}/{manifest.fingerprint}"


def counts_section(manifest: Manifest) -> str:
    reasons = reject_reasons(manifest)
    kept = {k: v for k, v in manifest.counts.items() if k not in reasons}
    parts = ["## Counts", "", pairs_table(kept, "count", "value") if kept else "(none)"]
    parts += ["", "### Left out, by reason", ""]
    parts.append(pairs_table(reasons, "reason", "rows") if reasons else "Nothing was left out.")
    return "\n".join(parts)


def scalar_stats(manifest: Manifest) -> dict[str, Any]:
    """The manifest's stats without its long series (curves, eval tables)."""
    return {k: v for k, v in manifest.stats.items() if k not in SERIES_STATS}


def lineage_rows(lineage: Sequence[Manifest]) -> list[dict[str, Any]]:
    return [
        {
            "stage": str(m.stage),
            "fingerprint": f"`{m.fingerprint}`",
            "created": m.created_at,
            "records": m.records,
            "counts": ", ".join(f"{k} {v:,}" for k, v in m.counts.items()) or "–",
        }
        for m in lineage
    ]


def provenance_section(manifest: Manifest, lineage: Sequence[Manifest], uri: str) -> str:
    """How it was made: the stage config, the upstream fingerprints, every stored output
    it was made from, and where it lives in the store."""
    upstream = {k: f"`{v}`" for k, v in manifest.upstream.items()}
    parts = [
        "## How it was made",
        "",
        (
            f"Stored output `{ref(manifest)}` ({uri}), created {manifest.created_at} by "
            f"bolt {manifest.bolt_version} (stage code version {manifest.code_version})."
        ),
        "",
        "### Stage config",
        "",
        json_block(manifest.config),
        "",
        "### Upstream fingerprints",
        "",
        pairs_table(upstream, "input", "fingerprint") if upstream else "(none)",
        "",
        "### Every stored output it was made from",
        "",
        table(lineage_rows(lineage)) if lineage else "(none found in the store)",
    ]
    return "\n".join(parts)


def stats_section(title: str, manifest: Manifest, computed: Mapping[str, Mapping[str, Any]]) -> str:
    """The manifest's own statistics, then those computed from the exported rows."""
    parts = [f"## {title}", ""]
    if own := scalar_stats(manifest):
        parts += ["From the manifest:", "", json_block(own), ""]
    if computed:
        parts += ["From the exported rows:", "", stats_table(computed)]
    return "\n".join(parts).rstrip()


def citation_section(algorithm: str | None = None) -> str:
    """BOLT's citation, and the paper of the online ``algorithm`` (``grpo``, ``drift``)
    that trained the model or made the data, where it is not BOLT's own DPO."""
    method = METHOD_PAPERS.get(str(algorithm)) if algorithm else None
    lines = ["## Citation", "", f"Made with the BOLT pipeline, a reproduction of {PAPER}."]
    if method is not None:
        lines += ["", f"Trained with {method[0]}."]
    lines += ["", "Please cite:", "", "```bibtex", CITATION]
    if method is not None:
        lines += ["", method[1]]
    return "\n".join([*lines, "```"])


def join(*sections: str) -> str:
    return "\n\n".join(s.strip() for s in sections if s and s.strip()) + "\n"
