"""Decontamination inside the stages: a real Arena-Hard v0.1 prompt planted among the
curation sources and among the online prompts is set aside before any model sees it,
lands in the stage's rejects with its reason and the matching benchmark item, and is
counted in the stage's manifest; a paraphrase below the 13-gram threshold is kept.

The stages run as the flows run them (``run_curation``, ``run_prompts``) on a local
store, with the index the flows build (``index_for``) and a scripted engine that records
what the labeller is asked (``tests.stand_ins.HashEngine``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bolt import decontamination as dc
from bolt.config import QuerySource
from bolt.config_loader import load_config
from bolt.curation.stage import curation_fingerprint, run_curation
from bolt.evals import Benchmark
from bolt.evals.contamination import index_for
from bolt.online import stage as online
from bolt.records import Query, Reject
from bolt.stages import Stage
from bolt.store import ArtifactStore
from tests.conftest import TINY_CONFIG
from tests.stand_ins import HashEngine

REPO = Path(__file__).parents[2]
ARENA_HARD = REPO / "data/evals/official/arena-hard/v0.1/question.jsonl"
DEMO = REPO / "data/queries/demo.jsonl"
# Two real v0.1 prompts (46 and 40 words): one planted in each stage.
CURATION_UID = "7bcf40b22c164f36a85efcbf169da647"  # Playwright scripts on one EC2 instance
ONLINE_UID = "51139d7be0fe4a07bc2d577614ac4487"  # Tools For Thought frameworks


def _arena_prompt(uid: str) -> str:
    for line in ARENA_HARD.open(encoding="utf-8"):
        row = json.loads(line)
        if row["uid"] == uid:
            return row["prompt"]
    raise KeyError(uid)


def _paraphrase(prompt: str) -> str:
    """Every 12th word replaced: no 13 consecutive words of the prompt survive."""
    return " ".join("banana" if i % 12 == 11 else w for i, w in enumerate(prompt.split()))


def _source(tmp_path: Path, name: str, planted_uid: str) -> tuple[QuerySource, str]:
    """The demo queries plus the planted prompt (wrapped in a user's own words) and its
    paraphrase, as one JSONL source."""
    rows = [json.loads(line) for line in DEMO.open(encoding="utf-8")]
    prompt = _arena_prompt(planted_uid)
    rows.insert(7, {"id": "planted", "text": f"Hi! Could you help me with this? {prompt}"})
    rows.insert(20, {"id": "paraphrase", "text": _paraphrase(prompt)})
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return QuerySource(name=name, uri=str(path), text_field="text", id_field="id"), prompt


def _config(tmp_path: Path):
    cfg = load_config(
        TINY_CONFIG,
        [f"storage.root=file://{tmp_path}/store", "data.max_queries=40", "data.topic_cap=30"],
    )
    # two benchmarks, so the match is attributed to the right one; all their items
    cfg.eval.benchmarks = [Benchmark.mt_bench, Benchmark.arena_hard]
    cfg.eval.data = {Benchmark.arena_hard: str(ARENA_HARD)}
    assert cfg.data.decontamination.enabled  # on by default
    return cfg


class RecordingEngine(HashEngine):
    """The scripted labeller, keeping every prompt it is sent."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def generate(self, requests, sampling, **kw):
        self.seen += [str(m["content"]) for r in requests for m in r.messages]
        return super().generate(requests, sampling, **kw)


def _planted_reject(rejects: list[Reject], source_id: str, uid: str, prompt: str) -> Reject:
    (planted,) = [r for r in rejects if r.reason.startswith(dc.REASON_PREFIX)]
    assert planted.reason == "contaminated:arena_hard"
    assert planted.source == source_id
    # the detail names the benchmark item and carries the matching text
    assert uid in planted.detail
    assert " ".join(dc.words(prompt)[:13]) in planted.detail
    return planted


def test_curation_rejects_and_counts_a_planted_arena_hard_prompt(tmp_path):
    cfg = _config(tmp_path)
    source, prompt = _source(tmp_path, "mixed", CURATION_UID)
    cfg.data.sources = [source]
    store = ArtifactStore.from_config(cfg.storage)
    engine = RecordingEngine()
    manifest = run_curation(
        cfg, store, lambda: engine, context_length=8192, contamination=index_for(cfg)
    )

    assert manifest.counts["contaminated"] == 1
    assert manifest.counts["rejected.contaminated:arena_hard"] == 1
    assert not any(k.startswith("rejected.contaminated:mt_bench") for k in manifest.counts)
    rejects = list(store.read_file_records(manifest, "rejects.jsonl.gz", Reject))
    _planted_reject(rejects, "mixed-planted", CURATION_UID, prompt)

    # set aside before labelling: the labeller never saw it; the paraphrase went on
    candidates = store.manifest(Stage.curation_candidates, curation_fingerprint(cfg))
    queries = {q.id: q for q in store.read_records(candidates, Query)}
    assert "mixed-planted" not in queries and "mixed-paraphrase" in queries
    assert candidates.counts["read"] == candidates.counts["candidates"] + 1 + sum(
        r.reason.startswith(("exact_duplicate", "near_duplicate"))
        for r in store.read_file_records(candidates, "rejects.jsonl.gz", Reject)
    )
    assert engine.seen and not any(" ".join(prompt.split()[:13]) in text for text in engine.seen)
    assert any(" ".join(_paraphrase(prompt).split()[:13]) in text for text in engine.seen)


def test_online_prompts_reject_and_count_a_planted_arena_hard_prompt(tmp_path):
    cfg = _config(tmp_path)
    source, prompt = _source(tmp_path, "prompts", ONLINE_UID)
    cfg.online.prompt_sources = [source]
    store = ArtifactStore.from_config(cfg.storage)
    manifest = online.run_prompts(cfg, store, 1, contamination=index_for(cfg))

    assert manifest.counts["contaminated"] == 1
    assert manifest.counts["contaminated:arena_hard"] == 1
    assert "contaminated:mt_bench" not in manifest.counts
    assert manifest.counts["read"] == 77  # 75 demo queries, the planted one, the paraphrase
    rejects = list(store.read_file_records(manifest, "rejects.jsonl.gz", Reject))
    planted = _planted_reject(rejects, "prompts-planted", ONLINE_UID, prompt)
    assert planted.stage == Stage.online_prompts and planted.raw.endswith(prompt.strip()[-50:])
    chosen = [q.id for q in store.read_records(manifest, Query)]
    assert len(chosen) == cfg.online.prompts_per_iteration
    assert "prompts-planted" not in chosen

    # off: the same prompt is kept and nothing is counted
    cfg.data.decontamination.enabled = False
    off = online.run_prompts(cfg, store, 1, contamination=index_for(cfg))
    assert off.fingerprint != manifest.fingerprint
    assert "contaminated" not in off.counts
    assert list(store.read_file_records(off, "rejects.jsonl.gz", Reject)) == []


@pytest.mark.parametrize("uid", [CURATION_UID, ONLINE_UID])
def test_the_planted_prompts_are_real_arena_hard_items(uid):
    index = index_for(_config(Path("/nonexistent")))
    found = index.match(_arena_prompt(uid))
    assert found is not None and (found.benchmark, found.item_id) == ("arena_hard", uid)
    assert index.match(_paraphrase(_arena_prompt(uid))) is None
