"""How stages report to Prefect: artifacts a person reads in the UI.

- per stage output (``report_stage``): a markdown summary (records, counts, what was left
  out by reason, tokens, time and judge spend, links to its plots and files in the
  store) and a table of its stats;
- per pipeline run (``report_run``, after each stage): every output so far with its
  records, left-out count, tokens, time and cost, and the cost so far;
- at the end (``report_results``): each model's headline scores with their judge, the
  reward of the policy's samples per online iteration, and links to the reports and
  plots (rows from ``bolt.summary``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from rich.console import Console
from rich.progress import Progress, TextColumn

from bolt.config import PipelineConfig
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest, ShardInfo
from bolt.summary import (
    RunResults,
    cost_rows,
    file_rows,
    iteration_chain,
    iteration_outputs,
    iteration_rows,
    left_out,
    output_seconds,
    score_rows,
    trajectory_evals,
)

# A trained model's weights are many files under this folder: one line in a summary.
MODEL_PREFIXES = ("model/", "checkpoints/")
# Scalar stats worth a line in a stage summary (the rest is in the stats table).
HEADLINE_STATS = ("first_loss", "final_loss", "final_reward_margin", "mean_reward_gap")


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return "-".join(p.lower().replace("_", "-").replace(".", "-") for p in parts)


def cell(value: Any) -> str:
    """A markdown table cell: numbers short, nothing that breaks the row."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {cell(v)}" for k, v in value.items()) or "—"
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as a GitHub markdown table of ``columns`` (empty string for no rows)."""
    if not rows:
        return ""
    head = f"| {' | '.join(columns)} |\n|{'---|' * len(columns)}\n"
    return head + "".join(f"| {' | '.join(cell(r.get(c)) for c in columns)} |\n" for r in rows)


def _links(store: ArtifactStore, manifest: Manifest) -> tuple[list[str], list[str]]:
    """Markdown links to an output's plots, and to its other files (weights as one line)."""
    plots, files, weights = [], [], {}
    for f in manifest.files:
        link = f"[{f.path}]({store.uri(manifest.stage, manifest.fingerprint, f.path)})"
        folder = next((p for p in MODEL_PREFIXES if f.path.startswith(p)), None)
        if folder is not None:
            count, size = weights.get(folder, (0, 0))
            weights[folder] = (count + 1, size + f.bytes)
        elif f.path.endswith((".png", ".svg")):
            plots.append(f"- {link}")
        else:
            files.append(f"- {link}")
    for folder, (count, size) in weights.items():
        uri = store.uri(manifest.stage, manifest.fingerprint, folder.rstrip("/"))
        files.append(f"- [{folder}]({uri}): {count} files, {size / 1e6:,.1f} MB")
    return plots, files


def stage_markdown(store: ArtifactStore, manifest: Manifest) -> str:
    """The summary of one stage output (pure: the store is asked for URIs only)."""
    dropped = left_out(manifest)
    counts = [
        {"count": k, "value": v} for k, v in sorted(manifest.counts.items()) if k not in dropped
    ]
    reasons = [{"left out": k, "records": v} for k, v in dropped.items()]
    tokens = [{"tokens": k, "value": v} for k, v in sorted(manifest.tokens.items())]
    stats = [{"stat": k, "value": manifest.stats[k]} for k in HEADLINE_STATS if k in manifest.stats]
    judge = manifest.stats.get("judge_usage") or {}
    seconds = output_seconds(manifest)
    plots, files = _links(store, manifest)
    parts = [
        f"# {manifest.stage} `{manifest.fingerprint}`",
        f"Stored at `{store.uri(manifest.stage, manifest.fingerprint)}`: {len(manifest.shards)} "
        f"shards, {manifest.records:,} records, {seconds:,.1f} s"
        + (f", judge spend ${judge.get('judge_usd', 0):.4f}" if judge else "")
        + ".",
        md_table(counts, ["count", "value"]),
        ("## Left out, by reason\n\n" + md_table(reasons, ["left out", "records"]))
        if reasons
        else "",
        md_table(tokens, ["tokens", "value"]),
        md_table(stats, ["stat", "value"]),
        ("## Plots\n\n" + "\n".join(plots)) if plots else "",
        ("## Files\n\n" + "\n".join(files)) if files else "",
    ]
    return "\n\n".join(p.strip() for p in parts if p) + "\n"


def report_stage(store: ArtifactStore, manifest: Manifest, run_name: str) -> None:
    create_markdown_artifact(
        stage_markdown(store, manifest),
        key=artifact_key(run_name, manifest.stage, "summary"),
        description=f"{manifest.stage} output summary",
    )
    rows = [{"stat": k, "value": str(v)} for k, v in sorted(manifest.stats.items())]
    if rows:
        create_table_artifact(
            rows,
            key=artifact_key(run_name, manifest.stage, "stats"),
            description=f"{manifest.stage} stats",
        )


def run_outputs(store: ArtifactStore, done: Iterable[Manifest]) -> list[Manifest]:
    """The outputs of a pipeline run in order, with what the returned ones were made of:
    the scores before the SFT set, each online iteration's sub-stages, each evaluated
    model's answers and grades before the trajectory."""
    found: list[Manifest] = []
    for m in done:
        if m.stage == Stage.filter and (
            s := store.manifest(Stage.score, m.upstream.get(Stage.score, ""))
        ):
            found.append(s)
        if m.stage == Stage.online_policy:
            for it in iteration_chain(store, m, read_rewards=False):
                found += iteration_outputs(it)
            continue
        if m.stage == Stage.eval_trajectory:
            for _, evaluated in trajectory_evals(store, m):
                answers = store.manifest(Stage.eval_answers, evaluated.upstream.get("answers", ""))
                found += [answers, evaluated] if answers else [evaluated]
        found.append(m)
    return list({(m.stage, m.fingerprint): m for m in found}.values())


RUN_COLUMNS = [
    "stage",
    "fingerprint",
    "records",
    "left_out",
    "tokens",
    "seconds",
    "usd",
    "usd_so_far",
]


def run_markdown(cfg: PipelineConfig, rows: Sequence[Mapping[str, Any]]) -> str:
    so_far = rows[-1]["usd_so_far"] if rows else 0.0
    price = (
        f"{cfg.compute.nodes * cfg.compute.gpus_per_node} GPUs at ${cfg.compute.gpu_hour_usd}/h"
        if cfg.compute.gpus_per_node
        else "a CPU-only config: no accelerator cost"
    )
    return (
        f"# {cfg.name}: {len(rows)} output{'' if len(rows) == 1 else 's'} so far, "
        f"${so_far:,.4f}\n\n"
        f"Cost: each output's time on the configured devices ({price}), plus judge API "
        f"spend; a cached output shows what it cost when it was made.\n\n"
        + md_table(rows, RUN_COLUMNS)
    )


def report_run(cfg: PipelineConfig, store: ArtifactStore, done: Sequence[Manifest]) -> None:
    """The run so far, one artifact updated after each stage (the UI shows the latest)."""
    rows = cost_rows(cfg.compute, run_outputs(store, done))
    create_markdown_artifact(
        run_markdown(cfg, rows),
        key=artifact_key(cfg.name, "run"),
        description=f"{cfg.name}: every output so far, with its cost",
    )


SCORE_COLUMNS = ["model", "benchmark", "metric", "score", "judge", "items"]
ITERATION_COLUMNS = [
    "iteration",
    "sampled_from",
    "samples",
    "mean_reward",
    "backend_rewards",
    "pairs",
    "first_loss",
    "final_loss",
    "reward_margin",
    "groups",
    "kl",
]


def results_markdown(cfg: PipelineConfig, store: ArtifactStore, results: RunResults) -> str:
    scores = score_rows(results.evals)
    iterations = iteration_rows(results.iterations, store.uri)
    links = [
        f"- {r['model']}: [{r['what']}]({r['path']})"
        for r in file_rows(results.evals, results.trajectory, store.uri)
    ]
    policies = [f"- {r['model']}: `{r['policy']}`" for r in iterations]
    parts = [
        f"# {cfg.name}: results",
        "## Scores\n\n"
        + (md_table(scores, SCORE_COLUMNS) or "No model was evaluated in this run."),
        (
            f"## Online {results.algorithms()}\n\nEach iteration's samples come from the model "
            "before it.\n\n" + md_table(iterations, ITERATION_COLUMNS) + "\n" + "\n".join(policies)
        )
        if iterations
        else "",
        ("## Reports and plots\n\n" + "\n".join(links)) if links else "",
    ]
    return "\n\n".join(p.strip() for p in parts if p) + "\n"


def report_results(cfg: PipelineConfig, store: ArtifactStore, results: RunResults) -> None:
    create_markdown_artifact(
        results_markdown(cfg, store, results),
        key=artifact_key(cfg.name, "results"),
        description=f"{cfg.name}: scores per model, rewards per online iteration, reports",
    )


def summary_row(store: ArtifactStore, manifest: Manifest) -> dict[str, object]:
    return {
        "fingerprint": manifest.fingerprint,
        "records": manifest.records,
        "uri": store.uri(manifest.stage, manifest.fingerprint),
    }


class ShardProgress:
    """Progress of a sharded stage: a Prefect progress artifact, and a terminal bar when
    a person is watching (stderr is a TTY), both showing output tokens/s."""

    def __init__(self, stage: str, fingerprint: str, total: int):
        self.total, self.done, self.tokens, self.seconds = total, 0, 0, 0.0
        self.artifact = create_progress_artifact(
            0.0, description=f"{stage} {fingerprint}: shards finished"
        )
        self.bar = None
        if sys.stderr.isatty():
            self.bar = Progress(
                *Progress.get_default_columns(),
                TextColumn("{task.fields[rate]}"),
                console=Console(stderr=True),
            )
            self.bar.start()
            self.task = self.bar.add_task(f"{stage} shards", total=total, rate="")

    def advance(self, shard: ShardInfo) -> None:
        self.done += 1
        self.tokens += shard.meta.get("output_tokens", 0)
        self.seconds += shard.meta.get("seconds", 0.0)
        update_progress_artifact(self.artifact, 100.0 * self.done / self.total)
        if self.bar is not None:
            rate = f"{self.tokens / self.seconds:.0f} tok/s" if self.seconds else ""
            self.bar.update(self.task, completed=self.done, rate=rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
