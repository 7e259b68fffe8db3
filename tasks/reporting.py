"""How stages report to Prefect: a markdown summary and tables per stage output."""

from __future__ import annotations

import sys

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from rich.console import Console
from rich.progress import Progress, TextColumn

from bolt.store import ArtifactStore, Manifest, ShardInfo


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return "-".join(p.lower().replace("_", "-").replace(".", "-") for p in parts)


def report_stage(store: ArtifactStore, manifest: Manifest, run_name: str) -> None:
    counts = "\n".join(f"| {k} | {v} |" for k, v in sorted(manifest.counts.items()))
    tokens = "\n".join(f"| {k} | {v} |" for k, v in sorted(manifest.tokens.items()))
    files = "\n".join(
        f"- [{f.path}]({store.uri(manifest.stage, manifest.fingerprint, f.path)})"
        for f in manifest.files
    )
    markdown = (
        f"# {manifest.stage} `{manifest.fingerprint}`\n\n"
        f"Stored at `{store.uri(manifest.stage, manifest.fingerprint)}`: {len(manifest.shards)} shards, "
        f"{manifest.records} records.\n\n| count | value |\n|---|---|\n{counts}\n\n"
        + (f"| tokens | value |\n|---|---|\n{tokens}\n\n" if tokens else "")
        + (f"Files:\n{files}\n" if files else "")
    )
    create_markdown_artifact(
        markdown,
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
