"""`bolt plan`: what a config will cost before it runs.

Per stage: tokens to read and to generate, FLOPs, device-hours, wall-clock hours on the
configured cluster, storage and cost. Model FLOPs follow the usual transformer
estimates (Kaplan et al., 2020): a forward pass costs 2 x params per token, a training
step 6 x params per token. Device time = FLOPs / (peak x MFU), or, for generation, the
measured tokens/s when the config declares one (`plan.generation_tokens_per_device_s`).
Every assumption lives in `PlanConfig`, so the figures are reproducible from the file.
"""

from __future__ import annotations

import gzip
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bolt.config import (
    JudgeConfig,
    JudgeKind,
    OnlineAlgorithm,
    PipelineConfig,
    ReferencePolicy,
    RewardBackend,
    RewardKind,
    TrainCommon,
)
from bolt.evals.registry import BENCHMARKS
from bolt.placement import parallel_devices
from bolt.stages import Stage

# Dense bf16 tensor TFLOPS per device, from the vendors' datasheets (no sparsity).
PEAK_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10G": 125.0,
}
# Items per benchmark as published (MT-Bench has two turns per question).
BENCHMARK_ITEMS = {
    "mt_bench": 160,
    "arena_hard": 500,
    "wildbench": 1024,
    "zebralogic": 1000,
    "math500": 500,
}
LABEL_OUTPUT_TOKENS = 24  # guided difficulty / topic answers are a few tokens
LABEL_PROMPT_TOKENS = 450  # the difficulty rubric around a query
CHECKLIST_QUESTIONS = 5  # LM-judge checklist reward: one forward per question
CHARS_PER_TOKEN = 4.0
TRAINING_BYTES_PER_PARAM = 14  # resumable checkpoint: bf16 weights + fp32 master + Adam m, v
WEIGHT_BYTES_PER_PARAM = 2  # a bf16 model


class PlanError(ValueError):
    """A figure the plan needs is missing from the config."""


@dataclass
class StagePlan:
    # A config section of STAGE_SECTIONS (online rows add the iteration and step), not a
    # store Stage: the filter row covers scoring too, the eval row answering and judging.
    stage: str
    model_params_b: float
    tokens_read: int = 0  # prefill / forward-only / trained tokens
    tokens_generated: int = 0
    flops: float = 0.0
    device_hours: float = 0.0
    wall_hours: float = 0.0
    storage_gb: float = 0.0
    cost_usd: float = 0.0
    api_hours: float = 0.0  # waiting on API calls, no device held (part of wall_hours)
    notes: list[str] = field(default_factory=list)


def peak_tflops(cfg: PipelineConfig) -> float:
    if cfg.plan.peak_tflops:
        return cfg.plan.peak_tflops
    gpu = (cfg.compute.gpu_type or "").upper()
    for name, tflops in PEAK_TFLOPS.items():
        if gpu.startswith(name):
            return tflops
    raise PlanError(
        f"plan.peak_tflops is unset and compute.gpu_type={cfg.compute.gpu_type!r} is not one "
        f"of {', '.join(PEAK_TFLOPS)}: declare the device's TFLOPS"
    )


def params_b(cfg: PipelineConfig, model: str, key: str) -> float:
    entry = cfg.models.catalog[model]
    if entry.params_b is None:
        raise PlanError(f"models.catalog.{model}.params_b is unset (needed for {key})")
    return entry.params_b


def devices(cfg: PipelineConfig) -> int:
    return max(1, cfg.compute.nodes * cfg.compute.gpus_per_node)


# The store stage whose shard tasks do a plan row's work (its engines, its GPUs).
ROW_STAGES = {"data": Stage.curation, "bootstrap": Stage.bootstrap, "filter": Stage.score}
ROW_STEPS = {"sample": Stage.online_samples, "revise": Stage.online_samples}
ROW_STEPS |= {"score": Stage.online_scores}


def working_devices(cfg: PipelineConfig, row: str) -> int:
    """Devices a plan row keeps busy at once: for a sharded stage, its engines side by
    side (``bolt.placement``: the numbers Ray's GPU requests make true); training uses
    every device."""
    stage = ROW_STAGES.get(row) or ROW_STEPS.get(row.rpartition(".")[2])
    if row == "eval":
        stage = Stage.eval_answers
    return parallel_devices(cfg, stage) if stage is not None else devices(cfg)


def count_source_queries(cfg: PipelineConfig, repo: Path) -> int:
    """Lines of the local JSONL sources (within each source's limit); others must be declared."""
    if cfg.plan.source_queries:
        return cfg.plan.source_queries
    total = 0
    for i, source in enumerate(cfg.data.sources):
        path = repo / source.uri if not Path(source.uri).is_absolute() else Path(source.uri)
        if source.format != "jsonl" or "://" in source.uri or not path.exists():
            raise PlanError(
                f"data.sources[{i}] ({source.uri}) cannot be counted offline: set plan.source_queries"
            )
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            rows = sum(1 for line in handle if line.strip())
        total += min(rows, source.limit) if source.limit else rows
    return total


def mean_output(cfg: PipelineConfig, max_new_tokens: int) -> int:
    return cfg.plan.mean_output_tokens or max(1, max_new_tokens // 2)


def few_shot_prompt_tokens(examples_chars: int, examples_total: int, per_prompt: int) -> int:
    """Tokens of the in-context examples one prompt carries (chars / 4 per token)."""
    if not examples_total:
        return 0
    return round(examples_chars / examples_total * per_prompt / CHARS_PER_TOKEN)


def _forward_hours(cfg: PipelineConfig, flops: float, mfu: float) -> float:
    return flops / (peak_tflops(cfg) * 1e12 * mfu) / 3600


def _generation(
    cfg: PipelineConfig, stage: str, params: float, prefill: int, decode: int
) -> StagePlan:
    """Generation: prefill and decode are forward passes; measured tokens/s wins if declared."""
    flops = 2 * params * 1e9 * (prefill + decode)
    rate = cfg.plan.generation_tokens_per_device_s
    if rate:
        hours = _forward_hours(cfg, 2 * params * 1e9 * prefill, cfg.plan.inference_mfu)
        hours += decode / rate / 3600
    else:
        hours = _forward_hours(cfg, flops, cfg.plan.inference_mfu)
    stored = (prefill + decode) * cfg.plan.stored_bytes_per_token / 1e9
    return StagePlan(stage, params, prefill, decode, flops, hours, storage_gb=stored)


def _scoring(
    cfg: PipelineConfig, stage: str, backends: list[RewardBackend], tokens: int, section: str
) -> StagePlan:
    flops = 0.0
    largest = 0.0
    for i, backend in enumerate(backends):
        if backend.kind in (RewardKind.format, RewardKind.math_verify) or not backend.model:
            continue
        params = params_b(cfg, backend.model, f"{section}.rewards[{i}]")
        passes = CHECKLIST_QUESTIONS if backend.kind == RewardKind.lm_checklist else 1
        flops += 2 * params * 1e9 * tokens * passes
        largest = max(largest, params)
    hours = _forward_hours(cfg, flops, cfg.plan.inference_mfu)
    return StagePlan(stage, largest, tokens, 0, flops, hours)


def trained_tokens(train: TrainCommon, tokens: int, sequences: int) -> float:
    """Tokens seen over all epochs, cut at max_steps x global batch sequences when set."""
    seen = tokens * train.epochs
    if train.max_steps and sequences:
        seen = min(seen, train.max_steps * train.global_batch_size * tokens / sequences)
    return seen


def _training(
    cfg: PipelineConfig, stage: str, params: float, seen_tokens: float, extra_forward: int
) -> StagePlan:
    """6 x params per trained token, plus forward-only passes (DPO's cached reference)."""
    flops = 6 * params * 1e9 * seen_tokens + 2 * params * 1e9 * extra_forward
    hours = _forward_hours(cfg, flops, cfg.plan.training_mfu)
    bytes_per_param = WEIGHT_BYTES_PER_PARAM + cfg.plan.checkpoints_kept * TRAINING_BYTES_PER_PARAM
    storage = params * bytes_per_param  # billions of params x bytes = GB
    return StagePlan(stage, params, round(seen_tokens), 0, flops, hours, storage_gb=storage)


def plan(cfg: PipelineConfig, source_queries: int, few_shot_tokens: int) -> list[StagePlan]:
    """Per-stage figures of one full run of ``cfg`` (see the module docstring)."""
    p, d = cfg.plan, cfg.data
    query_tokens = p.mean_query_tokens
    kept = round(source_queries * (p.difficulty_pass_rate if d.difficulty_filter else 1.0))
    queries = min(kept, d.max_queries) if d.max_queries else kept
    boot = cfg.bootstrap.sampling
    boot_out = mean_output(cfg, boot.max_new_tokens)
    stages = [
        _generation(
            cfg,
            "data",
            params_b(cfg, d.labeler_model, "data.labeler_model"),
            2 * source_queries * (LABEL_PROMPT_TOKENS + query_tokens),
            2 * source_queries * LABEL_OUTPUT_TOKENS,
        ),
        _generation(
            cfg,
            "bootstrap",
            params_b(cfg, cfg.bootstrap.teacher_model, "bootstrap.teacher_model"),
            queries * (few_shot_tokens + query_tokens),
            queries * boot.n * boot_out,
        ),
        _scoring(
            cfg,
            "filter",
            cfg.filter.rewards,
            queries * boot.n * (query_tokens + boot_out),
            "filter",
        ),
    ]
    policy = params_b(cfg, cfg.sft.base_model, "sft.base_model")
    sft_tokens = queries * (query_tokens + boot_out)  # one best sample per query
    seen = trained_tokens(cfg.sft, sft_tokens, queries)
    stages.append(_training(cfg, "sft", policy, seen, 0))
    stages += _online(cfg, policy)
    stages.append(_evaluation(cfg, policy))
    for stage in stages:
        stage.wall_hours = stage.device_hours / working_devices(cfg, stage.stage)
        stage.wall_hours += stage.api_hours
        stage.cost_usd += stage.device_hours * cfg.compute.gpu_hour_usd
    return stages


def _online(cfg: PipelineConfig, policy: float) -> list[StagePlan]:
    match cfg.online.algorithm:
        case OnlineAlgorithm.grpo:
            return _online_grpo(cfg, policy)
        case OnlineAlgorithm.drift:
            return _online_drift(cfg, policy)
    o = cfg.online
    out = mean_output(cfg, o.sampling.max_new_tokens)
    prompts = o.prompts_per_iteration
    pairs = round(prompts * (1 - cfg.plan.pair_skip_rate))
    pair_tokens = pairs * 2 * (cfg.plan.mean_query_tokens + out)  # chosen + rejected
    stages = []
    for iteration in range(1, o.iterations + 1):
        sample = _generation(
            cfg,
            f"online.{iteration}.sample",
            policy,
            prompts * cfg.plan.mean_query_tokens,
            prompts * o.sampling.n * out,
        )
        score = _scoring(
            cfg,
            f"online.{iteration}.score",
            o.rewards,
            prompts * o.sampling.n * (cfg.plan.mean_query_tokens + out),
            "online",
        )
        # The reference log-probs are computed once per iteration and cached.
        seen = trained_tokens(o, pair_tokens, pairs)
        train = _training(cfg, f"online.{iteration}.dpo", policy, seen, pair_tokens)
        stages += [sample, score, train]
    return stages


def _online_grpo(cfg: PipelineConfig, policy: float) -> list[StagePlan]:
    """RLMT's GRPO: a group of samples per prompt, scored, trained on once per epoch; the
    job's pre-pass scores every sample under the sampling policy and, with the KL term
    on and a reference other than the initial policy, under the reference too."""
    o, g = cfg.online, cfg.online.grpo_settings
    out = min(mean_output(cfg, o.sampling.max_new_tokens), o.sampling.max_new_tokens)
    query = cfg.plan.mean_query_tokens
    samples = o.prompts_per_iteration * g.group_size
    sample_tokens = samples * (query + out)
    stages = []
    for iteration in range(1, o.iterations + 1):
        separate_reference = g.kl_coef > 0 and (
            o.reference == ReferencePolicy.sft and iteration > 1
        )
        prepass = sample_tokens * (2 if separate_reference else 1)
        seen = trained_tokens(o, sample_tokens, samples)
        stages += [
            _generation(
                cfg,
                f"online.{iteration}.sample",
                policy,
                o.prompts_per_iteration * query,
                samples * out,
            ),
            _scoring(cfg, f"online.{iteration}.score", o.rewards, sample_tokens, "online"),
            _training(cfg, f"online.{iteration}.grpo", policy, seen, prepass),
        ]
    return stages


def _online_drift(cfg: PipelineConfig, policy: float) -> list[StagePlan]:
    """DRIFT: one revision per dissatisfaction row (its conversation as the prompt), no
    scoring, the reference pass and DPO on one pair per row."""
    o, p = cfg.online, cfg.plan
    rows = (o.drift.rows_per_iteration if o.drift else None) or p.feedback_rows
    if not rows:
        raise PlanError("plan.feedback_rows is unset (DRIFT rows per iteration)")
    out = min(mean_output(cfg, o.sampling.max_new_tokens), o.sampling.max_new_tokens)
    conversation = p.mean_conversation_tokens or 3 * p.mean_query_tokens
    pair_tokens = rows * 2 * (p.mean_query_tokens + out)  # the original prompt, both sides
    stages = []
    for iteration in range(1, o.iterations + 1):
        seen = trained_tokens(o, pair_tokens, rows)
        stages += [
            _generation(cfg, f"online.{iteration}.revise", policy, rows * conversation, rows * out),
            _training(cfg, f"online.{iteration}.dpo", policy, seen, pair_tokens),
        ]
    return stages


def _evaluation(cfg: PipelineConfig, policy: float) -> StagePlan:
    """SFT model, each DPO iterate and the baseline answer every configured benchmark;
    the judged ones are then graded by their own judge (``eval.judge_of``)."""
    e = cfg.eval
    models = 2 + cfg.online.iterations
    items = {
        b: min(BENCHMARK_ITEMS[b.value], e.max_items) if e.max_items else BENCHMARK_ITEMS[b.value]
        for b in e.benchmarks
    }
    out = mean_output(cfg, e.sampling.max_new_tokens)
    answered = models * sum(items.values())
    stage = _generation(cfg, "eval", policy, answered * cfg.plan.mean_query_tokens, answered * out)
    for b, n in items.items():
        if BENCHMARKS[b].judged:
            key = f"eval.judges.{b.value}" if b in e.judges else "eval.judge"
            _judging(cfg, stage, e.judge_of(b), key, models * n)
    return stage


def _judging(
    cfg: PipelineConfig, stage: StagePlan, judge: JudgeConfig, key: str, judged: int
) -> None:
    """``judged`` items graded by ``judge``: an API judge costs its prompt and reply
    tokens at its prices and takes wall time at its concurrency, a local one takes
    forward passes on the devices."""
    p = cfg.plan
    if p.judge_reply_tokens_per_item > p.judge_tokens_per_item:
        raise PlanError(
            "plan.judge_reply_tokens_per_item is more than plan.judge_tokens_per_item "
            f"({p.judge_reply_tokens_per_item} > {p.judge_tokens_per_item})"
        )
    tokens = judged * p.judge_tokens_per_item
    if judge.kind == JudgeKind.api:
        reply = judged * p.judge_reply_tokens_per_item
        stage.cost_usd += (tokens - reply) / 1000 * judge.usd_per_1k_input
        stage.cost_usd += reply / 1000 * judge.usd_per_1k_output
        stage.api_hours += judged * p.api_judge_seconds_per_item / judge.engine.concurrency / 3600
        stage.notes.append(f"{tokens:,} API judge tokens ({judge.model})")
    else:
        judge_params = params_b(cfg, judge.model, f"{key}.model")
        judge_flops = 2 * judge_params * 1e9 * tokens
        stage.flops += judge_flops
        stage.device_hours += _forward_hours(cfg, judge_flops, cfg.plan.inference_mfu)


def totals(stages: list[StagePlan]) -> StagePlan:
    total = StagePlan("total", max((s.model_params_b for s in stages), default=0.0))
    for s in stages:
        total.tokens_read += s.tokens_read
        total.tokens_generated += s.tokens_generated
        total.flops += s.flops
        total.device_hours += s.device_hours
        total.wall_hours += s.wall_hours
        total.storage_gb += s.storage_gb
        total.cost_usd += s.cost_usd
        total.api_hours += s.api_hours
    return total


def as_rows(stages: list[StagePlan]) -> list[dict]:
    return [asdict(s) for s in [*stages, totals(stages)]]
