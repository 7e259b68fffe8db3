"""Issue 19's methods for real on SmolLM2-135M-Instruct (CPU): the principles backend
through its transformers judge (exact next-token P(Yes)) and through a real engine
(P(Yes) from the reply's top log-probabilities, else the parsed verdict; both counted), RocketEval weights fitted on the judge's own answers and
loaded by the checklist backend, and one STICK refinement round on 2 samples."""

from __future__ import annotations

import pytest

from bolt.config import (
    EngineConfig,
    ModelEntry,
    ModelsConfig,
    RewardBackend,
    RewardKind,
    SamplingConfig,
)
from bolt.engines import make_engine
from bolt.longcot import render_longcot
from bolt.records import Generation, Query
from bolt.rewards import RewardItem, make_reward
from bolt.rewards import reweighting as rw
from bolt.rewards.principles import PrinciplesReward
from bolt.rewards.refinement import ItemJudge, refine
from bolt.rewards.verdicts import FROM_LOGITS, FROM_LOGPROBS, PARSED

# SmolLM2 forward passes and short generations on a shared 2-core CPU: about a minute.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUERY = "What is the capital of France?"
PRINCIPLES = [
    {"text": "The response answers the question that was asked.", "weight": 2.0},
    {"text": "The response is factually accurate."},
    {"text": "The code in the response is readable.", "applies_to": {"topics": ["coding"]}},
]


def items() -> list[RewardItem]:
    return [
        RewardItem(
            QUERY,
            render_longcot("Easy.", "The capital of France is Paris."),
            None,
            "q:0",
            "q",
            "geography",
        ),
        RewardItem(
            QUERY,
            render_longcot("Hmm.", "Bananas are rich in potassium."),
            None,
            "q:1",
            "q",
            "geography",
        ),
    ]


@pytest.fixture(scope="module")
def one_thread():
    import torch

    # Two OpenMP threads on two shared cores spin-wait on each other (tests/integration/
    # test_engines_hf.py measured 20x slower generation).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models(smollm2_path) -> ModelsConfig:
    return ModelsConfig(catalog={"smol": ModelEntry(path=str(smollm2_path))})


@pytest.fixture(scope="module")
def hf_engine(smollm2_path, one_thread):
    engine = make_engine(EngineConfig(kind="transformers"), str(smollm2_path), seed=0)
    yield engine
    engine.close()


def test_principles_backend_reads_p_yes_from_the_judges_logits(models, one_thread):
    backend = RewardBackend(
        kind=RewardKind.principles, name="principles", model="smol", principles=PRINCIPLES
    )
    reward = make_reward(backend, models)
    assert isinstance(reward, PrinciplesReward)
    details = reward.score_detailed(items())
    scores = [d.score for d in details]
    assert all(s is not None and 0.0 < s < 1.0 for s in scores)
    # The coding principle applies to neither item: 2 items x 2 principles were asked.
    assert reward.stats["prompts"] == 4 and reward.stats[FROM_LOGITS] == 4
    assert [len(d.verdicts) for d in details] == [2, 2]
    weighted = (2 * details[0].verdicts[0][1].p_yes + details[0].verdicts[1][1].p_yes) / 3
    assert scores[0] == pytest.approx(weighted)
    assert reward.rejects == {}


def test_principles_backend_on_a_real_engine_reads_logprobs_and_counts_verdicts(models, hf_engine):
    backend = RewardBackend(
        kind=RewardKind.principles,
        name="principles",
        model="smol",
        principles=PRINCIPLES,
        judge_engine=EngineConfig(kind="transformers"),
    )
    reward = make_reward(backend, models, judge_engine=hf_engine)
    details = reward.score_detailed(items())
    stats = reward.stats
    assert stats["prompts"] == 4 and stats.get(FROM_LOGPROBS, 0) + stats.get(PARSED, 0) == 4
    rejected = sum(v for k, v in stats.items() if k.startswith("rejected."))
    verdicts = [v for d in details for _, v in d.verdicts]
    assert sum(v.p_yes is not None for v in verdicts) + rejected == 4
    # A verdict read from log-probabilities is a probability, a parsed one is 0 or 1.
    assert all(0.0 < v.p_yes < 1.0 for v in verdicts if v.source == FROM_LOGPROBS)
    assert all(
        v.p_yes in (0.0, 1.0) for v in verdicts if v.source == PARSED and v.p_yes is not None
    )
    for d in details:
        assert (d.score is None) == (d.reason is not None)
    assert stats["output_tokens"] > 0


def test_reweighted_checklist_uses_weights_fitted_on_its_own_answers(models, tmp_path, one_thread):
    from bolt.rewards.lm_checklist import LMChecklistReward

    class FixedChecklist:
        model = "fixed"

        def checklists(self, queries):
            from bolt.rewards.checklist import Checklist

            questions = ("Does the answer name Paris?", "Is the answer one sentence?")
            return [Checklist(questions, False) for _ in queries]

    plain = make_reward(
        RewardBackend(kind=RewardKind.lm_checklist, name="c", model="smol"),
        models,
        checklist_engine=object(),  # type: ignore[arg-type]
        checklist_cache_dir=tmp_path,
    )
    assert isinstance(plain, LMChecklistReward)
    plain.maker = FixedChecklist()  # type: ignore[assignment]
    questions = FixedChecklist().checklists([None])[0].questions
    answers = plain.item_probabilities(items(), [questions, questions])
    rows = [
        rw.FitRow("q", questions, tuple(p), score)
        for p, score in zip(answers, (9.0, 2.0), strict=True)
    ]
    path = rw.write_weights(rw.fit_weights(rows), tmp_path / "weights.json")
    weighted = make_reward(
        RewardBackend(
            kind=RewardKind.lm_checklist, name="c", model="smol", checklist_weights=str(path)
        ),
        models,
        checklist_engine=object(),  # type: ignore[arg-type]
        checklist_cache_dir=tmp_path,
    )
    weighted.maker = FixedChecklist()  # type: ignore[attr-defined]
    scores = weighted.score(items())
    assert weighted.stats == {"query": 2}  # type: ignore[attr-defined]
    entry = rw.load_weights(str(path)).queries["q"]
    expected = [entry.score(p, p) for p in answers]
    assert scores == pytest.approx(expected)


def test_one_refinement_round_on_two_samples(hf_engine, models, tmp_path):
    from bolt.rewards.checklist import ChecklistMaker
    from bolt.rewards.lm_checklist import load_causal_lm
    from bolt.rewards.verdicts import LogitYesNoJudge

    model, tokenizer = load_causal_lm(models, "smol", device="cpu", s3=None)
    judge = ItemJudge(LogitYesNoJudge(model, tokenizer, batch_size=4, device="cpu"))

    query = Query(id="q", text="Name the capital of France in one sentence.", source="t")
    originals = [
        Generation(
            query_id="q",
            sample_index=i,
            prompt_tokens=10,
            raw_text=text,
            output_tokens=8,
            engine="transformers",
            model="smol",
        )
        for i, text in enumerate(["I like trains.", "Bananas are yellow."])
    ]
    maker = ChecklistMaker(hf_engine, tmp_path, max_new_tokens=96)
    checklist = maker.checklists([(query.text, None)])[0]
    versions = refine(
        originals,
        {"q": checklist.questions},
        hf_engine,
        judge,
        1,
        queries={"q": query},
        sampling=SamplingConfig(n=1, temperature=0.0, max_new_tokens=40),
        pass_threshold=0.99,  # SmolLM2's p(Yes) is rarely that sure: revisions happen
    )
    originals_out = [v for v in versions if v.round == 0]
    revisions = [v for v in versions if v.round == 1]
    assert [v.version_id for v in originals_out] == ["q:0", "q:1"]
    failing = [v for v in originals_out if v.failed_items]
    assert len(revisions) == len(failing) >= 1
    for revision in revisions:
        parent = next(v for v in versions if v.version_id == revision.parent_id)
        assert revision.generation.sample_index == 2 + parent.origin_sample_index
        assert revision.generation.raw_text != parent.generation.raw_text
        assert revision.questions == list(checklist.questions)
        assert revision.pass_rate is None or 0.0 <= revision.pass_rate <= 1.0


def test_principle_extraction_cli_on_smollm2(tmp_path, smollm2_path, one_thread):
    """`bolt principles extract` on the three hand-made feedback rows, SmolLM2 on the
    transformers engine: a record per row, every kept principle grounded in its row's
    feedback (the span is the evidence), every other row set aside with a reason, and the
    principles file loads as a reward backend's list."""
    import json

    import yaml
    from typer.testing import CliRunner

    from bolt.config import Principle
    from bolt.rewards import principle_extraction as px
    from bolt_cli.main import app
    from tests.conftest import REPO, TINY_CONFIG

    rows = REPO / "tests/fixtures/feedback_rows.handmade.jsonl"
    out, listed = tmp_path / "extractions.jsonl", tmp_path / "principles.yaml"
    result = CliRunner().invoke(
        app,
        [
            "principles", "extract", str(rows), "--out", str(out),
            "--principles-out", str(listed), "--max-new-tokens", "160",
            "--config", str(TINY_CONFIG), "--set", "engine.kind=transformers",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = px.read_extractions(out)
    feedback = {r.id: r.feedback for r in px.read_feedback_rows(rows)}
    assert [r.row_id for r in records] == list(feedback)
    assert all(r.raw for r in records)  # the model's answer is kept whatever it was
    for record in records:
        assert bool(record.principles) != bool(record.reject_reason), record
        for p in record.principles:
            assert feedback[record.row_id][p["start"] : p["end"]] == p["evidence"]
    assert f"{out}: 3 rows" in result.output
    found = yaml.safe_load(listed.read_text())["principles"]
    for entry in found:
        Principle(**entry)  # raises on an entry a reward backend would refuse
    assert len(found) == len(px.principle_list(records)), json.dumps(found)

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "context": "c", "response": "r"}\n')
    refused = CliRunner().invoke(
        app, ["principles", "extract", str(bad), "--out", str(tmp_path / "none.jsonl")]
    )
    assert refused.exit_code == 2 and "bad.jsonl:1: missing 'feedback'" in refused.output


def test_guided_extraction_on_vllm_makes_every_answer_parse(vllm_engine):
    """The same rows on the session's vLLM engine with the answer's shape enforced: no row
    is set aside for want of a JSON list; what is rejected is rejected for what it says
    (evidence not in the feedback, a duplicate), with its reason."""
    from bolt.rewards import principle_extraction as px
    from tests.conftest import REPO

    rows = px.read_feedback_rows(REPO / "tests/fixtures/feedback_rows.handmade.jsonl")
    records = px.extract_principles(rows, vllm_engine, max_new_tokens=256, guided=True)
    assert len(records) == len(rows)
    for record, row in zip(records, rows, strict=True):
        assert record.reject_reason != px.NO_JSON, record.raw
        assert record.principles or record.rejected, record
        for p in record.principles:
            assert row.feedback[p["start"] : p["end"]] == p["evidence"]
        assert {reason for _, reason in record.rejected} <= {
            px.EVIDENCE_NOT_FOUND, px.DUPLICATE, px.TOO_LONG, px.PARTIAL,
        }  # fmt: skip
