"""Issue 19's reward methods on hand-built rows: verdict parsing, principle combination
and applicability, the principles backend with scripted judges, principle extraction,
the RocketEval fit and blend, STICK's refinement prompt and rounds, and the config."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import ValidationError

from bolt.config import (
    EngineConfig,
    ModelEntry,
    Principle,
    RewardBackend,
    RewardKind,
    SamplingConfig,
    output_value,
)
from bolt.engines.base import ChatRequest, Completion, TokenLogprobs
from bolt.longcot import render_longcot
from bolt.records import Generation, Query
from bolt.rewards import RewardItem
from bolt.rewards import principle_extraction as px
from bolt.rewards import reweighting as rw
from bolt.rewards.principles import (
    NO_APPLICABLE_PRINCIPLE,
    NO_READABLE_VERDICT,
    NO_SIGNAL_SCORE,
    PrinciplesReward,
    applies,
    combine_principles,
)
from bolt.rewards.refinement import (
    ItemJudge,
    checklist_outcome,
    refine,
    refinement_messages,
    refinement_stats,
)
from bolt.rewards.scoring import rewards_identity
from bolt.rewards.verdicts import (
    AMBIGUOUS_VERDICT,
    EMPTY_REPLY,
    NO_VERDICT,
    PARSED,
    EngineYesNoJudge,
    Verdict,
    completion_verdict,
    p_yes_from_top_logprobs,
    parse_verdict,
)

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("reply", "p_yes", "reason"),
    [
        ("Yes", 1.0, None),
        ("no.", 0.0, None),
        ("**Yes**, the answer is accurate.", 1.0, None),
        ("Answer: No", 0.0, None),
        ("Yes, there is no error.", 1.0, None),  # a prose "no" after the verdict is prose
        ("The response is fine, so my verdict is: yes", 1.0, None),
        ("I think [[No]]", 0.0, None),
        ("", None, EMPTY_REPLY),
        ("   ...", None, EMPTY_REPLY),
        ("The response satisfies it; there is no issue.", None, NO_VERDICT),
        ("Their verdict: yes. Final answer: no", None, AMBIGUOUS_VERDICT),
    ],
)
def test_parse_verdict(reply, p_yes, reason):
    assert parse_verdict(reply) == (p_yes, reason)


def test_p_yes_from_top_logprobs_sums_spellings():
    top = {" Yes": math.log(0.3), "yes": math.log(0.1), "No": math.log(0.1), "The": -0.5}
    assert p_yes_from_top_logprobs(top) == pytest.approx(0.8)
    assert p_yes_from_top_logprobs({"The": -0.1}) is None


def test_completion_verdict_prefers_logprobs_over_the_text():
    plain = Completion("r", 0, "No", "stop", 10, 1, None)
    assert completion_verdict(plain) == Verdict(0.0, PARSED, None, 10, 1)

    top = {"No": math.log(0.25), "Yes": math.log(0.75)}
    with_logprobs = replace(plain, logprobs=(TokenLogprobs("No", top),))
    verdict = completion_verdict(with_logprobs)
    assert verdict.source == "from_logprobs" and verdict.p_yes == pytest.approx(0.75)


class ScriptedEngine:
    """Answers each request with the next scripted text (cycling)."""

    name, model, model_path = "scripted", "scripted", "scripted"

    def __init__(self, replies):
        self.replies, self.calls = list(replies), []

    def generate(self, requests, sampling, *, stop=None, guided_regex=None, logprobs=None):
        self.calls.append(requests)
        self.logprobs_asked = logprobs
        out = []
        for i, r in enumerate(requests):
            text = self.replies[(sum(len(c) for c in self.calls[:-1]) + i) % len(self.replies)]
            out.append([Completion(r.id, 0, text, "stop", 20, 3, None)])
        return out

    def count_prompt_tokens(self, messages):
        return 20


def test_engine_judge_counts_parsed_and_rejected_replies():
    judge = EngineYesNoJudge(ScriptedEngine(["Yes", "No", "Maybe so."]))
    verdicts = judge.judge(["q1", "q2", "q3"])
    assert [v.p_yes for v in verdicts] == [1.0, 0.0, None]
    assert verdicts[2].reason == NO_VERDICT
    assert judge.stats["prompts"] == 3 and judge.stats[PARSED] == 3
    assert judge.stats[f"rejected.{NO_VERDICT}"] == 1
    assert judge.stats["prompt_tokens"] == 60 and judge.stats["output_tokens"] == 9


# ---------------------------------------------------------------- principles


def item(query="Write a Python function that adds two numbers.", topic="coding", key="q:0"):
    return RewardItem(
        query, render_longcot("t", "def add(a, b): return a + b"), None, key, "q", topic
    )


def test_combine_principles_is_the_weighted_mean_of_readable_verdicts():
    assert combine_principles([(1.0, 1.0), (3.0, 0.0)]) == (0.25, None)
    assert combine_principles([(1.0, 0.8), (2.0, None)]) == (pytest.approx(0.8), None)
    assert combine_principles([(1.0, None)]) == (None, NO_READABLE_VERDICT)
    assert combine_principles([]) == (None, NO_APPLICABLE_PRINCIPLE)


def test_applies_by_topic_and_regex():
    anywhere = Principle(text="The response is accurate.")
    code = Principle(text="The code is readable.", applies_to={"topics": ["coding"]})
    python = Principle(text="Follows PEP 8.", applies_to={"query_regex": r"(?i)\bpython\b"})
    both = Principle(text="x", applies_to={"topics": ["math"], "query_regex": "Python"})
    coding, writing = item(), item(query="Write a poem about Python snakes.", topic="writing")
    assert applies(anywhere, coding) and applies(anywhere, writing)
    assert applies(code, coding) and not applies(code, writing)
    assert applies(python, coding) and applies(python, writing)
    assert not applies(both, coding)
    assert not applies(code, item(topic=None))


class ScriptedYesNo:
    """A yes/no judge that answers by a rule on the prompt's principle line."""

    def __init__(self, rule):
        self.rule, self.stats, self.seen = rule, Counter(), []

    def judge(self, contents):
        self.seen += contents
        out = []
        for c in contents:
            principle = c.split("Principle: ", 1)[1].split("\n", 1)[0]
            p = self.rule(principle)
            out.append(Verdict(p, PARSED, None if p is not None else NO_VERDICT))
        self.stats["prompts"] += len(contents)
        return out


def test_principles_reward_weighs_applicable_principles_and_counts_rejects():
    principles = [
        Principle(text="The response is accurate.", weight=3.0),
        Principle(text="The code is readable.", applies_to={"topics": ["coding"]}),
        Principle(text="The poem rhymes.", applies_to={"topics": ["writing"]}),
    ]
    answers = {"The response is accurate.": 1.0, "The code is readable.": 0.0}
    judge = ScriptedYesNo(lambda p: answers.get(p))
    reward = PrinciplesReward(principles, judge)
    # The poem principle applies to the writing item only, and its verdict is unreadable.
    scores = reward.score([item(), item(topic="writing", key="q:1"), item(topic="law", key="q:2")])
    assert scores[0] == pytest.approx(0.75)  # (3 * 1 + 1 * 0) / 4
    assert scores[1] == pytest.approx(1.0)  # the unreadable poem verdict is left out
    assert scores[2] == pytest.approx(1.0)
    assert len(judge.seen) == 5  # one prompt per applicable (item, principle)
    assert "def add" in judge.seen[0] and "<thoughts>" not in judge.seen[0]


def test_an_item_without_any_verdict_is_a_counted_reasoned_reject():
    only_code = [Principle(text="The code is readable.", applies_to={"topics": ["coding"]})]
    reward = PrinciplesReward(only_code, ScriptedYesNo(lambda p: None))
    details = reward.score_detailed([item(key="a"), item(topic="law", key="b")])
    assert [(d.score, d.reason) for d in details] == [
        (None, NO_READABLE_VERDICT),
        (None, NO_APPLICABLE_PRINCIPLE),
    ]
    assert reward.score([item(key="a")]) == [NO_SIGNAL_SCORE]
    assert reward.rejects == {"a": NO_READABLE_VERDICT, "b": NO_APPLICABLE_PRINCIPLE}
    assert reward.stats["items.no_readable_verdict"] == 2
    assert reward.stats["items.no_applicable_principle"] == 1


# ---------------------------------------------------------------- config


def principles_backend(**fields):
    return RewardBackend(kind="principles", name="p", model="judge", **fields)


def test_principles_config_errors_name_the_key():
    with pytest.raises(ValidationError, match=r"principles\n.*principles is empty"):
        principles_backend(principles=[])
    with pytest.raises(ValidationError, match="more than once.*The answer is correct"):
        principles_backend(
            principles=[{"text": "The answer is correct."}, {"text": "the  answer is CORRECT."}]
        )
    with pytest.raises(ValidationError, match="needs `principles`"):
        principles_backend()
    with pytest.raises(ValidationError, match="applies_to.query_regex"):
        principles_backend(principles=[{"text": "x", "applies_to": {"query_regex": "("}}])
    with pytest.raises(ValidationError, match="for kind principles only"):
        RewardBackend(kind="format", name="f", principles=[{"text": "x"}])
    with pytest.raises(ValidationError, match="for kind lm_checklist only"):
        RewardBackend(kind="format", name="f", checklist_weights="w.json")


def test_new_fields_enter_the_reward_identity_only_when_set():
    plain = RewardBackend(kind=RewardKind.lm_checklist, name="c", model="judge")
    assert set(output_value(plain)) == {"kind", "name", "model", "weight"}
    weighted = plain.model_copy(update={"checklist_weights": "w.json"})
    assert output_value(weighted)["checklist_weights"] == "w.json"
    served = principles_backend(
        principles=[{"text": "x"}], judge_engine=EngineConfig(kind="openai", base_url="http://h")
    )
    identity = rewards_identity([served], {"judge": ModelEntry(path="/m")})["rewards"][0]
    assert identity["principles"][0]["text"] == "x" and identity["judge_engine"]["kind"] == "openai"


# ---------------------------------------------------------------- principle extraction

FEEDBACK = (
    "The response gets the year of the treaty wrong: it was 1648, not 1658. "
    "Otherwise it is well organised and easy to follow."
)


def test_parse_principles_keeps_grounded_entries_and_rejects_the_rest():
    answer = (
        "Here you go:\n```json\n"
        + json.dumps(
            [
                {
                    "principle": "The response is accurate.",
                    "satisfied": "no",
                    "evidence": "gets the year of the treaty  WRONG",
                },
                {
                    "principle": "The response is well organised.",
                    "satisfied": "yes",
                    "evidence": "well organised and easy to follow",
                },
                {
                    "principle": "The response is concise.",
                    "satisfied": "yes",
                    "evidence": "short and to the point",
                },
                {"principle": "The response is accurate.", "satisfied": "no", "evidence": "1648"},
                {"principle": "Tone is friendly.", "satisfied": "partially", "evidence": "easy"},
                {"principle": "Cites sources.", "satisfied": "maybe", "evidence": "treaty"},
                {"principle": "", "satisfied": "yes", "evidence": "treaty"},
                "not an object",
            ]
        )
        + "\n```"
    )
    result = px.parse_principles(answer, FEEDBACK)
    assert [(p.text, p.satisfied) for p in result.principles] == [
        ("The response is accurate.", False),
        ("The response is well organised.", True),
    ]
    first = result.principles[0]
    assert (
        FEEDBACK[first.start : first.end] == first.evidence == "gets the year of the treaty wrong"
    )
    assert [reason for _, reason in result.rejected] == [
        px.EVIDENCE_NOT_FOUND,
        px.DUPLICATE,
        px.PARTIAL,
        px.BAD_SATISFIED,
        px.MISSING_FIELD,
        px.NOT_AN_OBJECT,
    ]
    assert result.reject_reason is None


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("I cannot help with that.", px.NO_JSON),
        ('{"principle": "x"}', px.NO_JSON),
        ("[]", px.NO_PRINCIPLE),
        (
            '[{"principle": "Accurate.", "satisfied": "no", "evidence": "made up"}]',
            px.EVIDENCE_NOT_FOUND,
        ),
    ],
)
def test_an_answer_without_usable_principles_is_a_reasoned_reject(answer, reason):
    result = px.parse_principles(answer, FEEDBACK)
    assert result.principles == () and result.reject_reason == reason


def test_extract_principles_runs_an_engine_and_makes_an_artifact(tmp_path):
    good = json.dumps(
        [
            {
                "principle": "The response is accurate.",
                "satisfied": "no",
                "evidence": "1648, not 1658",
            }
        ]
    )
    engine = ScriptedEngine([good, "no idea"])
    rows = [
        px.FeedbackRow(f"r{i}", "When was the Peace of Westphalia?", "1658.", FEEDBACK)
        for i in range(3)
    ]
    records = px.extract_principles(rows, engine)
    assert [r.reject_reason for r in records] == [None, px.NO_JSON, None]
    assert "1648" in engine.calls[0][0].messages[0]["content"]
    path = px.write_extractions(records, tmp_path / "principles.jsonl")
    assert px.read_extractions(path) == records
    assert px.principle_list(records, min_rows=2) == [{"text": "The response is accurate."}]
    principles_backend(principles=px.principle_list(records))  # a valid backend config


def test_feedback_rows_read_in_both_layouts(tmp_path):
    """The hand-made rows file: context as turns or a string, feedback as a list or a string."""
    rows = px.read_feedback_rows(REPO / "tests/fixtures/feedback_rows.handmade.jsonl")
    assert [r.id for r in rows] == ["fb-capital", "fb-sort", "fb-email"]
    assert rows[0].context == "user: What is the capital of Australia?"
    assert rows[0].feedback.startswith("The response is wrong: the capital")
    assert rows[1].context.startswith("Write a Python function")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", r"rows.jsonl:2: not JSON"),
        ("[1, 2]", r"rows.jsonl:2: expected a JSON object, got list"),
        ('{"id": "b", "context": "c", "response": "r"}', r"rows.jsonl:2: missing 'feedback'"),
        ('{"id": "a", "context": "c", "response": "r", "feedback": "f"}', r"id 'a' is used"),
        ('{"id": "b", "context": "c", "response": "", "feedback": "f"}', r"'response' must be"),
        ('{"id": "b", "context": [{"role": "user"}], "response": "r", "feedback": "f"}', r"turns"),
        ('{"id": "b", "context": "c", "response": "r", "feedback": ["ok", ""]}', r"'feedback'"),
    ],
)
def test_a_bad_feedback_row_names_its_line_and_what_was_expected(tmp_path, line, message):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": "a", "context": "c", "response": "r", "feedback": "f"}\n' + line)
    with pytest.raises(px.FeedbackFileError, match=message):
        px.read_feedback_rows(path)


def test_an_empty_feedback_file_is_an_error(tmp_path):
    (tmp_path / "rows.jsonl").write_text("\n")
    with pytest.raises(px.FeedbackFileError, match="no rows"):
        px.read_feedback_rows(tmp_path / "rows.jsonl")


# ---------------------------------------------------------------- RocketEval reweighting


def test_kl_blend_weight_is_the_normalised_entropy_of_the_scores():
    assert rw.kl_blend_weight([5, 5, 5], 10) == 0.0
    assert rw.kl_blend_weight(list(range(1, 11)), 10) == pytest.approx(1.0)
    assert rw.kl_blend_weight([1, 10, 1, 10], 10) == pytest.approx(math.log(2) / math.log(10))


def table(seed=0):
    """Item a decides the reference score (10 when passed, else 1); item b is noise."""
    rng = random.Random(seed)
    rows = []
    for i in range(12):
        a = float(i % 2)
        rows.append(rw.FitRow("q1", ("a?", "b?"), (a, rng.random()), 10.0 if a else 1.0))
    return rows


def test_fit_finds_the_deciding_item_and_blends_by_the_kl_weight():
    weights = rw.fit_weights(table())
    entry = weights.queries["q1"]
    assert entry.weights[0] > 0.9 and sum(entry.weights) == pytest.approx(1.0)
    assert entry.blend == pytest.approx(math.log(2) / math.log(10))
    assert entry.n_train == 12
    score, source = weights.score("q1", ("a?", "b?"), (1.0, 0.0))
    assert source == "query"
    assert score == pytest.approx(entry.blend * 1.0 + (1 - entry.blend) * 0.5)
    score, _ = weights.score("q1", ("a?", "b?"), (0.0, 1.0))
    assert score == pytest.approx((1 - entry.blend) * 0.5)


def test_the_stored_trees_predict_as_sklearn_does(tmp_path):
    from sklearn.ensemble import ExtraTreesRegressor

    rows = table(seed=3)
    x = [r.p_yes for r in rows]
    y = [(r.score - 1) / 9 for r in rows]
    model = ExtraTreesRegressor(n_estimators=10, max_depth=2, random_state=42).fit(x, y)
    path = rw.write_weights(rw.fit_weights(rows), tmp_path / "w.json")
    entry = rw.load_weights(str(path)).queries["q1"]
    rng = random.Random(1)
    probes = [(rng.random(), rng.random()) for _ in range(50)]
    assert [entry.predict(p) for p in probes] == pytest.approx(list(model.predict(probes)))


def test_weights_are_used_only_for_their_own_checklist():
    weights = rw.fit_weights(table(), pooled=True)
    assert weights.score("q1", ("other?", "b?"), (1.0, 0.0)) == (0.5, "stale")
    score, source = weights.score("q9", ("x?",), (1.0,))
    assert source == "pooled" and 0.0 <= score <= 1.0
    unpooled = rw.fit_weights(table())
    assert unpooled.score("q9", ("x?",), (0.25, 0.75)) == (0.5, "mean")


def test_fit_refuses_bad_rows():
    with pytest.raises(ValueError, match="outside"):
        rw.fit_weights([rw.FitRow("q", ("a?",), (1.0,), -1.0)])
    mixed = [rw.FitRow("q", ("a?",), (1.0,), 5.0), rw.FitRow("q", ("b?",), (0.0,), 1.0)]
    with pytest.raises(ValueError, match="different checklists"):
        rw.fit_weights(mixed)
    with pytest.raises(ValueError, match="not a valid checklist weights"):
        bad = json.dumps({"format": "something else"})
        path = __import__("pathlib").Path(__import__("tempfile").mkdtemp()) / "w.json"
        path.write_text(bad)
        rw.load_weights(str(path))


def test_fit_cli_writes_the_artifact(tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(
            json.dumps(
                {
                    "query_id": r.query_id,
                    "questions": r.questions,
                    "p_yes": r.p_yes,
                    "score": r.score,
                }
            )
            for r in table()
        )
    )
    rw.main(["--table", str(rows), "--out", str(tmp_path / "w.json")])
    assert "1 queries" in capsys.readouterr().out
    assert json.loads((tmp_path / "w.json").read_text())["format"] == rw.FORMAT


# ---------------------------------------------------------------- STICK refinement


def test_refinement_prompt_lists_the_failed_items_after_the_answer():
    base = [{"role": "system", "content": "S"}, {"role": "user", "content": "Write a haiku."}]
    messages = refinement_messages(base, "An answer.", ["Is it 17 syllables?", "Does it rhyme?"])
    assert messages[:2] == base
    assert messages[2] == {"role": "assistant", "content": "An answer."}
    feedback = messages[3]["content"]
    assert messages[3]["role"] == "user"
    assert "2 requirements" in feedback
    assert "1. Is it 17 syllables?\n2. Does it rhyme?" in feedback
    with pytest.raises(ValueError, match="at least one failed"):
        refinement_messages(base, "An answer.", [])


def test_checklist_outcome_leaves_unjudged_items_out():
    assert checklist_outcome(["a", "b", "c", "d"], [0.9, 0.2, None, 0.5], 0.5) == (
        ["b"],
        ["c"],
        pytest.approx(2 / 3),
    )
    assert checklist_outcome(["a"], [None], 0.5) == ([], ["a"], None)


def generation(query_id, index, text):
    return Generation(
        query_id=query_id,
        sample_index=index,
        prompt_tokens=5,
        raw_text=text,
        output_tokens=3,
        engine="scripted",
        model="scripted",
    )


class KeywordJudge:
    """Passes a question when its keyword (the question's first word) is in the response."""

    def item_probabilities(self, items, questions):
        return [
            [1.0 if q.split()[0].lower() in i.response.lower() else 0.0 for q in asked]
            for i, asked in zip(items, questions, strict=True)
        ]


def test_refine_revises_failing_samples_and_keeps_every_version():
    queries = {"q": Query(id="q", text="Name a fruit and a colour.", source="t")}
    checklists = {"q": ["Apple named?", "Red named?"]}
    originals = [generation("q", 0, "apple red"), generation("q", 1, "pear")]
    engine = ScriptedEngine(["apple", "apple red"])  # round 1, then round 2
    versions = refine(
        originals,
        checklists,
        engine,
        KeywordJudge(),
        3,
        queries=queries,
        sampling=SamplingConfig(n=4, temperature=0.7),
    )
    lineage = [(v.version_id, v.round, v.parent_id, v.pass_rate) for v in versions]
    assert lineage == [
        ("q:0", 0, None, 1.0),
        ("q:1", 0, None, 0.0),
        ("q:3", 1, "q:1", 0.5),  # stride 2: round 1 of sample 1 is sample 3
        ("q:5", 2, "q:3", 1.0),  # passes everything: no round 3
    ]
    assert all(v.origin_sample_index == (0 if v.version_id == "q:0" else 1) for v in versions)
    first_request = engine.calls[0][0]
    assert isinstance(first_request, ChatRequest)
    assert first_request.messages[1] == {"role": "assistant", "content": "pear"}
    assert "Apple named?" in first_request.messages[2]["content"]
    second_feedback = engine.calls[1][0].messages[2]["content"]
    assert "Red named?" in second_feedback and "Apple named?" not in second_feedback
    assert refinement_stats(versions)["versions_per_round"] == {"0": 2, "1": 1, "2": 1}


def test_item_judge_reads_yes_no_verdicts_for_each_question():
    judge = ItemJudge(EngineYesNoJudge(ScriptedEngine(["Yes", "hmm"])))
    items = [RewardItem("Q", render_longcot("t", "R"), None, "q:0")]
    assert judge.item_probabilities(items, [["A?", "B?"]]) == [[1.0, None]]
