"""Decontamination: planted overlaps from the official Arena-Hard v0.1 prompts are found,
paraphrases below the 13-gram threshold are kept, and the rejects are counted."""

from pathlib import Path

import pytest

from bolt import decontamination as dc
from bolt.evals import Benchmark
from bolt.evals.data import item_id, load_items
from bolt.records import Query, Reject

REPO = Path(__file__).parents[2]
ARENA_HARD = REPO / "data/evals/official/arena-hard/v0.1/question.jsonl"


@pytest.fixture(scope="module")
def arena():
    items = load_items(Benchmark.arena_hard, str(ARENA_HARD))
    prompts = {"arena_hard": [(item_id(Benchmark.arena_hard, i), dc.prompt_text(i)) for i in items]}
    return {i.uid: i.prompt for i in items}, dc.build_index(prompts)


def _span(text: str, start: int, n: int) -> str:
    return " ".join(text.split()[start : start + n])


def _long_prompts(by_id: dict[str, str], count: int) -> list[tuple[str, str]]:
    return [(uid, p) for uid, p in sorted(by_id.items()) if len(dc.words(p)) >= 40][:count]


def test_normalisation():
    assert dc.words("Hello,   WORLD!\n\\frac{a}{b} x_1 — ok") == [
        "hello",
        "world",
        "frac",
        "a",
        "b",
        "x",
        "1",
        "ok",
    ]


def test_planted_overlaps_are_found(arena):
    by_id, index = arena
    for uid, prompt in _long_prompts(by_id, 5):
        planted = f"Please help me with this. {_span(prompt, 5, 14).upper()} Thanks!"
        found = index.match(planted)
        assert found is not None and found.benchmark == "arena_hard", uid
        assert found.item_id == uid and found.reason == "contaminated:arena_hard"
        assert found.text in " ".join(dc.words(prompt))


def test_a_whole_prompt_copied_is_found(arena):
    by_id, index = arena
    uid = "328c149ed45a41c0b9d6f14659e63599"  # "Use ABC notation to write a melody ..."
    found = index.match(f"Q: {by_id[uid]}")
    assert found is not None and found.item_id == uid
    assert found.overlap == 2  # 14 words: two 13-grams


def test_paraphrases_below_the_threshold_are_kept(arena):
    by_id, index = arena
    for _, prompt in _long_prompts(by_id, 5):
        tokens = dc.words(prompt)
        # every 12th word replaced: no 13 consecutive words survive
        paraphrase = " ".join("banana" if i % 12 == 11 else w for i, w in enumerate(tokens))
        assert index.match(paraphrase) is None
        assert index.match(" ".join(tokens[:12])) is None  # 12 words: below n
    assert index.match("Use ABC notation to write a melody.") is None


def test_short_prompts_are_matched_whole_or_not_at_all():
    index = dc.build_index(
        {
            "mt_bench": [
                ("1", "Write a haiku"),
                ("2", "Name three famous painters of the Dutch Golden Age"),
            ]
        }
    )
    assert index.short_lengths == {9}
    assert index.match("please write a haiku about cats") is None  # 3 words: not checked
    found = index.match("Hi! Name three famous painters of the Dutch Golden Age, please.")
    assert (found.benchmark, found.item_id) == ("mt_bench", "2")


def test_min_overlap_and_the_benchmark_with_most_grams():
    text = " ".join(f"w{i}" for i in range(30))
    prompts = {"a": [("x", text)], "b": [("y", " ".join(f"w{i}" for i in range(14)))]}
    strict = dc.build_index(prompts, ngram=13, min_overlap=5)
    assert strict.match(" ".join(f"w{i}" for i in range(16))) is None  # 4 grams of a
    found = strict.match(text)
    assert (found.benchmark, found.overlap) == ("a", 18)
    assert dc.build_index(prompts).match(text).benchmark == "a"  # 18 grams beat 2


def test_rejects_and_counts(arena):
    by_id, index = arena
    uid, prompt = _long_prompts(by_id, 1)[0]
    queries = [
        Query(id="clean", text="What is the capital of France?", source="s"),
        Query(id="dirty", text=f"Hey: {prompt}", source="s"),
    ]

    def reject(q: Query, found: dc.Match) -> Reject:
        return Reject(stage="data", reason=found.reason, source=q.id, detail=dc.match_detail(found))

    kept, rejects = dc.decontaminate(queries, index, text=lambda q: q.text, reject=reject)
    assert [q.id for q in kept] == ["clean"]
    assert [r.reason for r in rejects] == ["contaminated:arena_hard"]
    assert uid in rejects[0].detail and " ".join(dc.words(prompt)[:13]) in rejects[0].detail
    assert dc.contamination_counts(rejects) == {"contaminated": 1, "contaminated:arena_hard": 1}
    assert dc.decontaminate(queries, None, text=lambda q: q.text, reject=reject) == (queries, [])


def test_prompt_text_reads_each_layout():
    assert dc.prompt_text({"turns": ["one", "two"]}) == "one\ntwo"
    assert (
        dc.prompt_text(
            {
                "conversation_input": [
                    {"role": "user", "content": "u"},
                    {"role": "assistant", "content": "a"},
                ]
            }
        )
        == "u"
    )
    assert dc.prompt_text({"problem": "p", "solution": "s"}) == "p"
    assert dc.prompt_text({"answer": "nothing to ask"}) == ""


def test_index_for_the_config(tmp_path):
    from bolt.config_loader import load_config
    from bolt.evals.contamination import index_for

    cfg = load_config(REPO / "configs/tiny-cpu.yaml")
    cfg.eval.benchmarks = [Benchmark.arena_hard]
    cfg.eval.data = {Benchmark.arena_hard: str(ARENA_HARD)}
    index = index_for(cfg)
    assert dict(index.n_prompts) == {"arena_hard": 500}
    assert index_for(cfg) is index  # built once
    assert dc.fingerprint_payload(cfg)["decontamination"]["ngram"] == 13
    cfg.data.decontamination.enabled = False
    assert index_for(cfg) is None and dc.fingerprint_payload(cfg) == {}


def test_a_stage_needs_the_index_while_on():
    from bolt.config_loader import load_config

    cfg = load_config(REPO / "configs/tiny-cpu.yaml")
    with pytest.raises(ValueError, match="data.decontamination is on"):
        dc.required(cfg, None)
    index = dc.build_index({})
    assert dc.required(cfg, index) is index
    cfg.data.decontamination.enabled = False
    assert dc.required(cfg, None) is None and dc.required(cfg, index) is None
