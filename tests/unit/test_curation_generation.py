"""bolt.curation.generation: Magpie and Instruct-SkillMix generate in shards of their own
(``bolt.sharding``): a receipt per shard, a rerun makes only the shards without one, and
a set shard size enters the curation fingerprint (engines are seeded once, not per
request). The engine is scripted: each answer depends on its request id only, so the
records are the same however the shards are cut."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from bolt.config import output_fields
from bolt.config.data import MagpieSource
from bolt.config_loader import load_config
from bolt.curation import generation
from bolt.curation.stage import curation_fingerprint, run_candidates
from bolt.engines.base import Completion
from bolt.records import Query
from bolt.stages import Stage
from bolt.store import ArtifactStore
from tests.conftest import REPO

SKILLS_ANSWER = (
    "Skill: budgeting - plan money over time\n"
    "Skill: persuasion - argue a case well\n"
    "Skill: statistics - reason about data\n"
    "Query type: planning - help organise something\n"
)


def words(key: str) -> str:
    """Eight hex words of ``key``'s hash: texts no dedup mistakes for copies."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    return " ".join(digest[i : i + 8] for i in range(0, 64, 8))


def response(request_id: str) -> str:
    return f"The plan for {request_id}: " + "first list the costs, then argue for each. " * 4


def pair(request_id: str) -> str:
    instruction = f"For {request_id}, plan {words(request_id)}."
    return f"### Instruction\n{instruction}\n### Response\n{response(request_id)}"


class Scripted:
    """A local engine (a tokenizer, ``render_prompt``) answering by request id: Magpie
    requests a query naming the request and sample, the skills request a list, every
    SkillMix request a pair naming its mix. ``die_at`` raises at that request id."""

    name = "transformers"

    def __init__(self, tokenizer, die_at: str | None = None):
        self._tokenizer, self.die_at = tokenizer, die_at
        self.asked: list[str] = []

    def render_prompt(self, messages):
        return [0]

    def generate(self, requests, sampling, *, stop=None, guided_regex=None, logprobs=None):
        ids = [r.id for r in requests]
        if self.die_at in ids:
            raise RuntimeError(f"engine died at {self.die_at}")
        self.asked += ids
        return [[self._answer(r.id, i) for i in range(sampling.n)] for r in requests]

    def _answer(self, request_id: str, i: int) -> Completion:
        if request_id.startswith("magpie-"):
            text = f"How would you solve {words(f'{request_id}/{i}')}?"
        elif "-skills-" in request_id:
            text = SKILLS_ANSWER
        else:
            text = pair(request_id)
        return Completion(request_id, i, text, "stop", 1, 1, None)


@pytest.fixture
def tokenizer(smollm2_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_path)


def _cfg(root, *overrides):
    return load_config(
        REPO / "configs/tiny-curation-methods.yaml",
        [
            f"storage.root=file://{root}",
            "data.synthetic_sources.0.queries=6",
            "data.synthetic_sources.1.examples=4",
            *overrides,
        ],
    )


def _generate(cfg, engine):
    store = ArtifactStore.from_config(cfg.storage)
    fp = curation_fingerprint(cfg)
    receipts = generation.run_generation(cfg, store, fp, lambda model: engine)
    return store, fp, receipts


def _records(store, fp, receipts):
    queries, rejects = generation.generated(store, fp, receipts)
    return [q.model_dump() for q in queries], [r.model_dump() for r in rejects]


SHARDED = ("data.synthetic_sources.0.shard_size=2", "data.synthetic_sources.1.shard_size=2")


def test_a_shard_made_before_a_crash_is_not_generated_again(tmp_path, tokenizer):
    cfg = _cfg(tmp_path / "run", *SHARDED)
    # Magpie shards 0 and 1 (requests magpie-0..3) finish; shard 2 (magpie-4) dies.
    with pytest.raises(RuntimeError, match="engine died"):
        _generate(cfg, Scripted(tokenizer, die_at="magpie-4"))
    store, fp = ArtifactStore.from_config(cfg.storage), curation_fingerprint(cfg)
    assert sorted(store.finished_shards(Stage.curation_generated, fp)) == [0, 1]
    # Then SkillMix's second shard (mixes 2, 3) dies, after its skills list was stored.
    with pytest.raises(RuntimeError, match="engine died"):
        _generate(cfg, Scripted(tokenizer, die_at="skillmix-2"))
    assert sorted(store.finished_shards(Stage.curation_generated, fp)) == [0, 1, 2, 3]
    engine = Scripted(tokenizer)
    store, fp, receipts = _generate(cfg, engine)
    # Only the unfinished shard ran: no Magpie request, no second skills extraction.
    assert engine.asked == ["skillmix-2", "skillmix-3"]
    assert [r.index for r in receipts] == [0, 1, 2, 3, 4]
    assert [r.meta["source"] for r in receipts] == ["magpie"] * 3 + ["skillmix"] * 2
    ref_cfg = _cfg(tmp_path / "ref", *SHARDED)
    assert _records(store, fp, receipts) == _records(*_generate(ref_cfg, Scripted(tokenizer)))


def test_the_records_are_the_same_however_cut_and_a_set_size_forks_the_fingerprint(
    tmp_path, tokenizer
):
    runs = {}
    for name, overrides in {
        "unset": (),
        "2": SHARDED,
        "3": ("data.synthetic_sources.0.shard_size=3", "data.synthetic_sources.1.shard_size=3"),
    }.items():
        cfg = _cfg(tmp_path / name, *overrides)
        store, fp, receipts = _generate(cfg, Scripted(tokenizer))
        runs[name] = (fp, [r.records + r.meta["rejects"] for r in receipts])
        runs[name] += _records(store, fp, receipts)
    assert runs["unset"][1] == [6, 4] and runs["2"][1] == [2, 2, 2, 2, 2]
    assert runs["3"][1] == [3, 3, 3, 1]
    assert runs["unset"][2:] == runs["2"][2:] == runs["3"][2:]
    assert len({fp for fp, *_ in runs.values()}) == 3
    # Unset, the size is not in the fingerprint: shipped configs keep theirs.
    for source in _cfg(tmp_path).data.synthetic_sources:
        assert "shard_size" not in output_fields(source)
    for source in _cfg(tmp_path, *SHARDED).data.synthetic_sources:
        assert output_fields(source)["shard_size"] == 2


def test_the_candidates_hold_the_generated_queries_and_skills(tmp_path, tokenizer):
    cfg = _cfg(
        tmp_path,
        *SHARDED,
        "data.sources.0.limit=5",
        "data.decontamination.enabled=false",
        # MinHash only: no embedding model to load here.
        "data.semantic_dedup=null",
        "data.selection=shuffled",
        "data.mig=null",
        "data.embedding=null",
    )
    store = ArtifactStore.from_config(cfg.storage)
    fp = curation_fingerprint(cfg)
    candidates = run_candidates(cfg, store, fp, lambda model: Scripted(tokenizer), None)
    queries = list(store.read_records(candidates, Query))
    assert {q.source for q in queries} == {"demo", "magpie", "skillmix"}
    skillmix = [q for q in queries if q.source == "skillmix"]
    # The pair's response is the query's reference answer (it was lost in meta before).
    assert len(skillmix) == 4
    for query in skillmix:
        request_id = query.text.split()[1].rstrip(",")
        assert query.reference_answer == response(request_id).strip()
        assert "reference_response" not in query.meta
    assert [f.path for f in candidates.files if f.path.startswith("skills/")] == [
        "skills/skillmix.jsonl"
    ]
    assert candidates.counts["read"] == 5 + 6 + 4


def test_magpie_shards_hold_whole_requests():
    with pytest.raises(ValidationError, match="not a multiple of sampling.n"):
        MagpieSource(
            kind="magpie",
            name="m",
            model="m",
            queries=8,
            shard_size=3,
            sampling={"n": 2, "temperature": 0.9, "max_new_tokens": 8},
        )
