"""What the orchestration of each sharded stage costs, with an engine that answers at once.

Every stage runs its real code (``bolt.sharding``: planning, receipts, resume checks;
fingerprints, including the S3 HEAD of content digests; encoding and writing every shard,
side file and manifest to moto's S3 server on loopback) on an Engine (``bolt/engines/
base.py``'s protocol) that returns at once, a judge that does too and the rule-based format
reward: what is left is the pipeline's own cost. It is given per 10k queries (per 10k
items for the evaluation) and projected onto the paper run: each stage's cost at the
paper's sizes as a share of its generation wall time in `bolt plan` (configs/paper-8b.yaml),
counting the orchestration as serial (it partly runs beside the engines: an upper bound).

    python bench/stage_overhead.py [--queries 10000] [--n 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from common import write_result

from bolt.config import SamplingConfig
from bolt.curation.labels import CRITERIA
from bolt.engines.base import ChatRequest, Completion, EngineStats

PAPER = REPO / "configs/paper-8b.yaml"
TINY = REPO / "configs/tiny-cpu.yaml"
ANSWER = (
    "<thoughts>Weigh both branches, then check.</thoughts><response>The answer is 4.</response>"
)
LABELS = "\n".join(f"{c}: 1" for c in CRITERIA)  # every criterion met: all kept


class InstantEngine:
    """Answers every request at once: labels to labelling prompts, LongCoT to the rest."""

    name, model, model_path = "instant", "instant", "instant"
    stats = EngineStats()

    def generate(
        self, requests: list[ChatRequest], sampling: SamplingConfig, **_: object
    ) -> list[list[Completion]]:
        out = []
        for r in requests:
            text = str(r.messages[-1]["content"])
            answer = LABELS if "domain_knowledge" in text else ANSWER
            if text.startswith("Classify the user's query"):
                answer = "Topic: math"
            out.append([Completion(r.id, i, answer, "stop", 100, 20, 0) for i in range(sampling.n)])
        return out

    def count_prompt_tokens(self, messages: list) -> int:
        return 100

    def close(self) -> None:
        pass


class InstantJudge:
    name = "instant"

    def __init__(self) -> None:
        from bolt.evals.judges import JudgeUsage

        self.usage = JudgeUsage()

    def judge(self, requests: list) -> list:
        from bolt.evals.judges import JudgeReply, ReplyFormat

        replies = {
            ReplyFormat.rating: "Rating: [[7]]",
            ReplyFormat.wb_score: '{"score": "6"}',
            ReplyFormat.wb_choice: '{"choice": "A+"}',
            ReplyFormat.verdict: "My final verdict is [[A>B]]",
        }
        return [
            JudgeReply(r.id, replies[r.reply_format], prompt_tokens=100, output_tokens=10)
            for r in requests
        ]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=10000, help="queries of each stage's run")
    p.add_argument("--n", type=int, default=8, help="samples per query (bootstrap, online)")
    return p.parse_args()


def _s3():
    """moto's S3 server on loopback, and a fresh bucket."""
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    # moto accepts any credentials; nothing here may reach a real AWS account
    for key, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"overhead-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    return server, endpoint, bucket


def _source(endpoint: str, bucket: str, queries: int) -> str:
    """``queries`` distinct queries as a JSONL object in the bucket."""
    import random

    import boto3

    rng = random.Random(0)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(5000)
    ]
    # Distinct word sets: MinHash keeps them all (what is measured is the stages, not dedup).
    rows = [json.dumps({"text": " ".join(rng.sample(words, 14)) + "?"}) for _ in range(queries)]
    body = ("\n".join(rows) + "\n").encode()
    boto3.client("s3", endpoint_url=endpoint).put_object(Bucket=bucket, Key="q.jsonl", Body=body)
    return f"s3://{bucket}/q.jsonl"


def _config(args: argparse.Namespace, endpoint: str, bucket: str, source: str):
    from bolt.config_loader import load_config

    q = args.queries
    return load_config(
        TINY,
        [
            f"storage.root=s3://{bucket}/run",
            f"storage.s3.endpoint_url={endpoint}",
            f"data.sources=[{{name: bench, uri: '{source}', format: jsonl, text_field: text}}]",
            "data.decontamination.enabled=false",
            "data.topic_cap=null",
            f"data.max_queries={q}",
            "data.shard_size=2048",
            "data.difficulty_threshold=0",
            f"bootstrap.sampling.n={args.n}",
            "bootstrap.shard_size=2048",
            "bootstrap.guided_decoding=false",
            f"online.sampling.n={args.n}",
            f"online.prompts_per_iteration={q}",
            "online.shard_size=2048",
            "filter.rewards=[{kind: format, name: format}]",
            "online.rewards=[{kind: format, name: format}]",
            "eval.shard_size=32",
            "eval.max_items=null",
        ],
    )


def _timed(results: dict, name: str, items: int, run):
    started = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - started
    results[name] = {"items": items, "seconds": round(seconds, 3)}
    results[name]["seconds_per_10k"] = round(seconds / items * 10_000, 3)
    return out


def measure(args: argparse.Namespace, cfg) -> dict:
    """Each stage once, in process (``bolt.sharding.in_process``), timed."""
    from bolt.bootstrap.stage import run_bootstrap
    from bolt.curation.stage import curation_fingerprint, run_curation
    from bolt.evals.stage import EvalModel, load_benchmarks, run_answers, run_eval
    from bolt.filtering.stage import run_score
    from bolt.online import stage as online
    from bolt.rewards.format_reward import FormatReward
    from bolt.store import ArtifactStore

    store, engine = ArtifactStore.from_config(cfg.storage), InstantEngine()
    fmt = lambda: {"format": (FormatReward(), 1.0)}
    r: dict = {}
    q = args.queries
    started = time.perf_counter()
    curation_fingerprint(cfg)  # the sources' content digests: one S3 HEAD here
    r["curation_fingerprint_seconds"] = round(time.perf_counter() - started, 4)
    data = _timed(r, "curation", q, lambda: run_curation(cfg, store, lambda: engine, 8192))
    q = data.counts["kept"]  # what every later stage reads
    boot = _timed(r, "bootstrap", q, lambda: run_bootstrap(cfg, store, data, lambda: engine))
    _timed(r, "filter_score", q, lambda: run_score(cfg, store, boot, data, fmt))
    samples = _timed(
        r,
        "online_samples",
        q,
        lambda: online.run_samples(cfg, store, data, "sft/x", lambda: engine),
    )
    _timed(r, "online_scores", q, lambda: online.run_scores(cfg, store, samples, data, fmt))
    items = load_benchmarks(cfg)
    count = sum(len(v) for v in items.values())
    model, judge = EvalModel("m", "none", {"name": "m"}), InstantJudge()
    answers = _timed(
        r, "eval_answers", count, lambda: run_answers(cfg, store, model, items, lambda: engine)
    )
    _timed(
        r,
        "eval_judging",
        count,
        lambda: run_eval(cfg, store, model, items, answers, lambda b: judge),
    )
    r["curation"]["label_shards"] = len(store.finished_shards("data-labels", data.fingerprint))
    return r


def paper_projection(measured: dict) -> dict:
    """Each stage's orchestration at the paper's sizes against its plan wall time."""
    from bolt.bootstrap.stage import examples_dir
    from bolt.config_loader import load_config
    from bolt.plan import few_shot_prompt_tokens, plan
    from bolt.prompts import load_examples

    cfg = load_config(PAPER)
    examples = load_examples(examples_dir(cfg))
    chars = sum(len(e.query) + len(e.assistant_text()) for e in examples)
    few_shot = few_shot_prompt_tokens(chars, len(examples), cfg.bootstrap.examples_per_prompt)
    rows = {s.stage: s for s in plan(cfg, cfg.plan.source_queries, few_shot)}
    sources = cfg.plan.source_queries or 0
    kept = round(sources * cfg.plan.difficulty_pass_rate)
    prompts = cfg.online.prompts_per_iteration * cfg.online.iterations
    online_hours = sum(s.wall_hours for k, s in rows.items() if k.endswith((".sample", ".score")))
    per = lambda name: measured[name]["seconds_per_10k"] / 10_000
    stages = {
        "curation": (per("curation") * sources, rows["data"].wall_hours),
        "bootstrap": (per("bootstrap") * kept, rows["bootstrap"].wall_hours),
        "filter": (per("filter_score") * kept, rows["filter"].wall_hours),
        "online": ((per("online_samples") + per("online_scores")) * prompts, online_hours),
        "eval": (
            (per("eval_answers") + per("eval_judging")) * _eval_items(cfg),
            rows["eval"].wall_hours,
        ),
    }
    out = {
        name: {
            "orchestration_hours": round(seconds / 3600, 4),
            "plan_wall_hours": round(hours, 3),
            "share": round(seconds / 3600 / hours, 5) if hours else None,
        }
        for name, (seconds, hours) in stages.items()
    }
    total = sum(v["orchestration_hours"] for v in out.values())
    wall = sum(v["plan_wall_hours"] for v in out.values())
    out["total"] = {
        "orchestration_hours": round(total, 4),
        "plan_wall_hours": round(wall, 3),
        "share": round(total / wall, 5),
    }
    return out


def _eval_items(cfg) -> int:
    from bolt.plan import BENCHMARK_ITEMS

    models = 2 + cfg.online.iterations
    return models * sum(BENCHMARK_ITEMS[b.value] for b in cfg.eval.benchmarks)


def main() -> None:
    args = parse_args()
    server, endpoint, bucket = _s3()
    try:
        with tempfile.TemporaryDirectory() as home:
            os.environ.setdefault("BOLT_MODEL_CACHE", home)  # the local digest cache
            cfg = _config(args, endpoint, bucket, _source(endpoint, bucket, args.queries))
            measured = measure(args, cfg)
    finally:
        server.stop()
    projection = paper_projection(measured)
    share = projection["total"]["share"]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "headline": f"orchestration {share:.2%} of the paper run's generation wall time",
        "headline_share": share,
        "goal_share": 0.02,
        "machine": "2-core CPU, moto S3 server on loopback",
        "queries": args.queries,
        "samples_per_query": args.n,
        "per_stage": measured,
        "paper_projection": projection,
    }
    per_10k = ", ".join(
        f"{k} {v['seconds_per_10k']:.1f} s" for k, v in measured.items() if isinstance(v, dict)
    )
    summary = (
        f"per 10k queries (eval: items), instant engine, moto S3: {per_10k}; paper-8b "
        f"projection **{share:.2%}** of generation wall time (goal < 2%)"
    )
    write_result("stage_overhead", result, summary, "python bench/stage_overhead.py")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
