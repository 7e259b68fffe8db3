"""How stages report to Prefect: a markdown summary and tables per stage output."""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from bolt.store import ArtifactStore, Manifest


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
