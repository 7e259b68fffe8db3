"""Instruct-SkillMix: instructions that need a random pair of skills.

Kaur et al., 2024, "Instruct-SkillMix: A Powerful Pipeline for LLM Instruction Tuning",
arXiv 2408.14774 (code: princeton-pli/Instruct-SkillMix). Two steps, each run by a
strong model: (1) skill extraction: the model lists instruction-following skills and
query types, either when asked directly or by reading an existing dataset's queries;
(2) generation: draw k = 2 random skills and one query type, have the model write an
(instruction, response) pair exhibiting both, then critique and refine it. 4k such
pairs took Llama-3-8B-Base to 42.76% LC win rate on AlpacaEval 2.0; 20% of low-quality
answers ("shirkers") made it plummet, so the quality gate here sets aside responses
that are too short or refuse.

The skills list is a reusable artifact: a JSONL file, one ``{"kind": "skill" |
"query_type", "name": ..., "description": ...}`` per line, written by extraction or by
hand; an empty or malformed file fails naming the file and line. The draws are seeded
by the run's seed and the source's name, so a rerun draws the same mixes.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from bolt.config.data import SkillMixSource
from bolt.curation.sources import query_id
from bolt.engines.base import ChatRequest, Engine
from bolt.prompts import render_template
from bolt.records import Query, Reject
from bolt.stages import Stage

# Enters the curation fingerprint of a config whose SkillMix source keeps responses.
# 2: the response is the query's reference_answer (1 kept it in meta, where nothing read it).
CODE_VERSION = "2"
KINDS = ("skill", "query_type")
MAX_RAW_CHARS = 2000
REFUSALS = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry, (but )?i|i can(no|')t|i cannot|i'?m (not able|unable)|"
    r"i am (not able|unable)|as an ai\b|i won'?t be able)",
    re.IGNORECASE,
)
_ITEM = re.compile(
    r"^[\s*\-\d.)#]*\**\s*(skill|query[ _]type)\s*\**\s*[:=]\s*\**\s*(.+?)\s*$", re.IGNORECASE
)
_SECTION = re.compile(r"^\s*#{2,}\s*(critique|instruction|response)\s*:?\s*$", re.IGNORECASE)


class SkillsFileError(ValueError):
    """A skills list that is empty or malformed; the message names the file and line."""


@dataclass(frozen=True)
class Skill:
    name: str
    description: str = ""


@dataclass(frozen=True)
class Skills:
    skills: tuple[Skill, ...]
    query_types: tuple[Skill, ...]


@dataclass(frozen=True)
class Mix:
    index: int
    skills: tuple[Skill, ...]
    query_type: Skill


# --- the skills list: read, write, extract ------------------------------------------


def read_skills(path: str | Path, need_skills: int = 2) -> Skills:
    """The skills list at ``path``; ``SkillsFileError`` naming the file and line if bad."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SkillsFileError(f"{path}: cannot read the skills list ({error})") from None
    found: dict[str, list[Skill]] = {kind: [] for kind in KINDS}
    for lineno, line in enumerate(lines, start=1):
        if line.strip():
            kind, skill = _skill_line(path, lineno, line)
            found[kind].append(skill)
    if not any(found.values()):
        raise SkillsFileError(f"{path}:1: the skills list is empty")
    if len(found["skill"]) < need_skills:
        raise SkillsFileError(
            f"{path}:{len(lines)}: {len(found['skill'])} skills, at least {need_skills} needed"
        )
    if not found["query_type"]:
        raise SkillsFileError(f"{path}:{len(lines)}: no query_type entry")
    return Skills(tuple(found["skill"]), tuple(found["query_type"]))


def _skill_line(path: Path, lineno: int, line: str) -> tuple[str, Skill]:
    where = f"{path}:{lineno}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise SkillsFileError(f"{where}: not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(row, dict):
        raise SkillsFileError(f"{where}: expected a JSON object, got {type(row).__name__}")
    unknown = sorted(set(row) - {"kind", "name", "description"})
    if unknown:
        raise SkillsFileError(f"{where}: unknown keys {unknown}")
    if row.get("kind") not in KINDS:
        raise SkillsFileError(
            f"{where}: kind must be one of {list(KINDS)}, got {row.get('kind')!r}"
        )
    name, description = row.get("name"), row.get("description", "")
    if not isinstance(name, str) or not name.strip():
        raise SkillsFileError(f"{where}: name must be a non-empty string")
    if not isinstance(description, str):
        raise SkillsFileError(f"{where}: description must be a string")
    return row["kind"], Skill(name.strip(), description.strip())


def write_skills(path: str | Path, skills: Skills) -> Path:
    path = Path(path)
    rows = [("skill", s) for s in skills.skills] + [("query_type", s) for s in skills.query_types]
    text = "".join(
        json.dumps({"kind": k, "name": s.name, "description": s.description}) + "\n"
        for k, s in rows
    )
    path.write_text(text, encoding="utf-8")
    return path


def extraction_prompt(source: SkillMixSource, queries: list[str] | None = None) -> list[dict]:
    """Ask for skills directly, or (``queries`` given) for those the queries need."""
    wanted = {"skills": source.skills_wanted, "query_types": max(2, source.skills_wanted // 3)}
    # (extraction_regex asks for the same numbers)
    if queries is None:
        text = render_template("skillmix_skills.j2", **wanted)
    else:
        text = render_template("skillmix_skills_from_queries.j2", queries=queries, **wanted)
    return [{"role": "user", "content": text}]


def parse_skills(text: str) -> Skills:
    """``Skill: name - description`` and ``Query type: ...`` lines; duplicates dropped."""
    found: dict[str, dict[str, Skill]] = {kind: {} for kind in KINDS}
    for line in text.splitlines():
        match = _ITEM.match(line)
        if not match:
            continue
        kind = "skill" if match.group(1).lower() == "skill" else "query_type"
        parts = re.split(r"\s+[-\u2013\u2014]\s+|:\s+", match.group(2), maxsplit=1)
        name, description = parts[0], parts[1] if len(parts) > 1 else ""
        name = name.strip().strip("*\"'`").strip()
        if name and name.lower() not in found[kind]:
            found[kind][name.lower()] = Skill(name, description.strip())
    return Skills(tuple(found["skill"].values()), tuple(found["query_type"].values()))


def extraction_regex(skills: int, query_types: int) -> str:
    """The answer shape guided decoding forces: the asked-for numbers of item lines."""
    item = r" [A-Za-z][A-Za-z0-9 ,'/&()-]{1,40} - [^\n]{5,100}\n"
    return f"(Skill:{item}){{{skills}}}(Query type:{item}){{{query_types}}}"


EXTRACTION_ANSWERS = 3  # a small model repeats one skill: ask again, keep every distinct one


def extract_skills(
    engine: Engine, source: SkillMixSource, queries: list[str] | None = None
) -> Skills:
    """The model's skills list (its answer shape forced when ``source.guided``, on vLLM).
    A model that names one skill several times is asked again, up to
    ``EXTRACTION_ANSWERS`` answers, and the distinct skills of all of them are kept; too
    few after that fails naming the source and model."""
    sampling = source.sampling.model_copy(update={"n": 1})
    prompt = extraction_prompt(source, queries)
    wanted = (source.skills_wanted, max(2, source.skills_wanted // 3))
    regex = extraction_regex(*wanted) if source.guided else None
    answers: list[str] = []
    for attempt in range(EXTRACTION_ANSWERS):
        request = ChatRequest(f"{source.name}-skills-{attempt}", prompt)
        answers.append(engine.generate([request], sampling, guided_regex=regex)[0][0].text)
        skills = parse_skills("\n".join(answers))
        if len(skills.skills) >= source.skills_per_example and skills.query_types:
            return skills
    raise ValueError(
        f"skill extraction for source {source.name!r} by {source.model!r} gave "
        f"{len(skills.skills)} distinct skills and {len(skills.query_types)} query types in "
        f"{len(answers)} answers (need {source.skills_per_example} and 1); the first began: "
        f"{answers[0][:300]!r}"
    )


# --- generation ---------------------------------------------------------------------


def draw_mixes(skills: Skills, k: int, count: int, seed: int, name: str) -> list[Mix]:
    """``count`` seeded draws of k distinct skills and one query type (same seed, same mixes)."""
    if len(skills.skills) < k:
        raise ValueError(f"{len(skills.skills)} skills cannot make mixes of {k}")
    rng = random.Random(f"skillmix:{seed}:{name}")
    return [
        Mix(i, tuple(rng.sample(skills.skills, k)), rng.choice(skills.query_types))
        for i in range(count)
    ]


def generation_prompt(mix: Mix) -> list[dict[str, str]]:
    text = render_template("skillmix_generate.j2", skills=mix.skills, query_type=mix.query_type)
    return [{"role": "user", "content": text}]


def critique_prompt(mix: Mix, instruction: str, response: str) -> list[dict[str, str]]:
    text = render_template(
        "skillmix_critique.j2",
        skills=mix.skills,
        query_type=mix.query_type,
        instruction=instruction,
        response=response,
    )
    return [{"role": "user", "content": text}]


# The pair's shape under guided decoding, each part bounded to fit a small token budget.
PAIR_REGEX = r"### Instruction\n[^#\n][^#]{9,400}\n### Response\n[^#\n][^#]{19,900}"


def parse_pair(text: str) -> tuple[str, str] | None:
    """(instruction, response) from ``### Instruction`` / ``### Response`` sections; the
    last of each wins (a critique answer repeats them after its critique)."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        match = _SECTION.match(line)
        if match:
            current = match.group(1).lower()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    instruction = "\n".join(sections.get("instruction", [])).strip()
    response = "\n".join(sections.get("response", [])).strip()
    return (instruction, response) if instruction and response else None


def shirker(response: str, min_words: int) -> tuple[str, str] | None:
    """(reason, detail) for a response the quality gate sets aside, None for a good one."""
    if REFUSALS.match(response):
        return "shirker_refusal", "the response refuses the request"
    words = len(response.split())
    if words < min_words:
        return "shirker_too_short", f"{words} words < {min_words}"
    return None


def skillmix_queries(
    engine: Engine, source: SkillMixSource, mixes: list[Mix]
) -> tuple[list[Query], list[Reject]]:
    """One pair per mix (critiqued and refined when ``source.critique``), as queries
    whose ``reference_answer`` is the response (``keep_responses``); bad pairs as
    rejects."""
    sampling = source.sampling.model_copy(update={"n": 1})
    requests = [ChatRequest(f"{source.name}-{m.index}", generation_prompt(m)) for m in mixes]
    regex = PAIR_REGEX if source.guided else None
    drafts = [c[0].text for c in engine.generate(requests, sampling, guided_regex=regex)]
    pairs = [parse_pair(text) for text in drafts]
    refined: dict[int, tuple[str, str] | None] = {}
    if source.critique:
        todo = [(m, p) for m, p in zip(mixes, pairs, strict=True) if p is not None]
        critiques = engine.generate(
            [
                ChatRequest(f"{source.name}-{m.index}-critique", critique_prompt(m, *p))
                for m, p in todo
            ],
            sampling,
            guided_regex=("### Critique\n[^#]{10,400}\n" + PAIR_REGEX) if source.guided else None,
        )
        refined = {
            m.index: parse_pair(c[0].text) for (m, _), c in zip(todo, critiques, strict=True)
        }
    queries, rejects = [], []
    for mix, draft, pair in zip(mixes, drafts, pairs, strict=True):
        where = f"{source.name}#{mix.index}"
        if pair is None:
            rejects.append(
                _reject("unparsable_pair", where, draft, "no Instruction/Response sections")
            )
            continue
        better = refined.get(mix.index)
        instruction, response = better or pair
        bad = shirker(response, source.min_response_words)
        if bad is not None:
            rejects.append(_reject(bad[0], where, f"{instruction}\n\n{response}", bad[1]))
            continue
        meta = {
            "generator": "skillmix",
            "model": source.model,
            "skills": [s.name for s in mix.skills],
            "query_type": mix.query_type.name,
            "refined": better is not None,
        }
        queries.append(
            Query(
                id=query_id(source.name, instruction),
                text=instruction,
                source=source.name,
                reference_answer=response if source.keep_responses else None,
                meta=meta,
            )
        )
    return queries, rejects


def _reject(reason: str, where: str, raw: str, detail: str) -> Reject:
    return Reject(
        stage=Stage.curation, reason=reason, source=where, raw=raw[:MAX_RAW_CHARS], detail=detail
    )
