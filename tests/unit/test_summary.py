"""The end-of-run results (bolt.summary) and their Prefect markdown (tasks.reporting),
from hand-built manifests in a local store: no Prefect server, no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from bolt.config import ComputeConfig
from bolt.config_loader import load_config
from bolt.records import Generation, ScoredGeneration
from bolt.stages import Stage
from bolt.store import ArtifactStore, FileInfo, Manifest
from bolt.summary import (
    collect,
    cost_rows,
    file_rows,
    iteration_rows,
    left_out,
    output_cost,
    score_rows,
)
from tasks.reporting import md_table, results_markdown, run_markdown, run_outputs, stage_markdown

REPO = Path(__file__).resolve().parents[2]


def F(name: str) -> str:
    return name.ljust(16, "0")


def file(path: str) -> FileInfo:
    return FileInfo(path=path, sha256="0" * 64, bytes=2_000_000)


def put(store: ArtifactStore, stage, name, day="2026-01-01", rows=None, **fields) -> Manifest:
    shards = [store.write_shard(stage, F(name), 0, rows)] if rows is not None else []
    return store.commit(
        Manifest(
            stage=stage,
            fingerprint=F(name),
            created_at=f"{day}T00:00:00",
            code_version="1",
            config=fields.pop("config", {}),
            shards=shards,
            **fields,
        )
    )


def scored(query: str, checklist: float, fmt: float) -> ScoredGeneration:
    generation = Generation(
        query_id=query,
        sample_index=0,
        prompt_tokens=3,
        raw_text="x",
        output_tokens=1,
        engine="vllm",
        model="m",
    )
    return ScoredGeneration(
        generation=generation,
        rewards={"checklist": checklist, "format": fmt},
        reward=checklist + fmt,
    )


def summaries(label: str, mt: float, math: float) -> dict:
    return {
        "summaries": [
            {
                "benchmark": "mt_bench",
                "model": label,
                "metrics": {"mt_bench": mt, "turn_1": mt + 1},
                "judge": "smollm2-135m-instruct",
                "n_items": 5,
            },
            {"benchmark": "math500", "model": label, "metrics": {"accuracy": math}, "n_items": 5},
        ],
        "judge_usage": {"judge_calls": 4, "judge_usd": 0.25},
    }


def evaluation(store, name, label, day, mt, math) -> Manifest:
    return put(
        store,
        Stage.eval,
        name,
        day,
        config={"model": label},
        upstream={"answers": F(f"ans-{name}")},
        files=[file("report.md"), file("headline.png"), file("summary.json")],
        stats=summaries(label, mt, math),
        timings={"seconds": 30.0},
    )


@pytest.fixture
def run(tmp_path):
    """A tiny run's store: SFT, two online iterations (a quick eval after the first),
    the final eval of SFT and DPO-2, and their trajectory."""
    store = ArtifactStore.from_config(
        load_config(REPO / "configs/tiny-cpu.yaml", [f"storage.root=file://{tmp_path}"]).storage
    )
    sft = put(store, Stage.sft, "s1", upstream={"filter": F("f1")})
    policy_id, rewards = f"sft/{sft.fingerprint}", [(0.2, 0.0), (0.6, 1.0)]
    policy = None
    for k in (1, 2):
        day = f"2026-01-0{k + 1}"
        samples = put(store, Stage.online_samples, f"a{k}", day, upstream={"policy": policy_id})
        low, high = rewards[k - 1]
        rows = [scored("q1", low, 0.0), scored("q1", high, 1.0)]
        scores = put(
            store, Stage.online_scores, f"c{k}", day, rows, upstream={"samples": F(f"a{k}")}
        )
        pairs = put(
            store,
            Stage.online_pairs,
            f"p{k}",
            day,
            upstream={"scores": scores.fingerprint},
            config={"iteration": k},
            counts={"prompts": 2, "pairs": 1, "skipped": 1, "skipped.no_gap": 1},
        )
        reference = put(store, Stage.online_reference, f"r{k}", day, timings={"seconds": 5.0})
        policy = put(
            store,
            Stage.online_policy,
            f"d{k}",
            day,
            config={"iteration": k},
            upstream={"pairs": pairs.fingerprint, "reference": reference.fingerprint},
            files=[
                file("model/model.safetensors"),
                file("model/config.json"),
                file("metrics.json"),
            ],
            stats={
                "first_loss": 0.6931,
                "final_loss": 0.62 - k / 100,
                "final_reward_margin": 0.3 * k,
            },
            timings={"train_seconds": 50.0, "wall_seconds": 60.0},
        )
        assert samples.upstream["policy"] == policy_id
        policy_id = f"online-policy/{policy.fingerprint}"
    evaluation(store, "e-quick1", "online-1", "2026-01-02", 3.0, 0.2)
    e_sft = evaluation(store, "e-sft", "SFT", "2026-01-04", 2.5, 0.1)
    e_dpo2 = evaluation(store, "e-dpo2", "DPO-2", "2026-01-04", 3.5, 0.4)
    trajectory = put(
        store,
        Stage.eval_trajectory,
        "t1",
        "2026-01-04",
        config={"checkpoints": ["SFT", "DPO-2"]},
        upstream={"SFT": e_sft.fingerprint, "DPO-2": e_dpo2.fingerprint},
        files=[file("trajectory.png")],
    )
    return store, sft, policy, trajectory


def test_collect_walks_the_online_chain_and_finds_every_models_eval(run):
    store, _, policy, trajectory = run
    results = collect(store, policy, trajectory)
    assert [it.index for it in results.iterations] == [1, 2]
    assert [it.policy.fingerprint for it in results.iterations] == [F("d1"), F("d2")]
    assert results.iterations[1].rewards == [0.6, 2.0]  # checklist + format
    # DPO-1 was not in the final eval: its quick eval after iteration 1 stands in.
    assert [(label, m.fingerprint) for label, m in results.evals] == [
        ("SFT", F("e-sft")),
        ("DPO-1", F("e-quick1")),
        ("DPO-2", F("e-dpo2")),
    ]


def test_score_rows_are_each_models_headline_with_its_judge(run):
    store, _, policy, trajectory = run
    rows = score_rows(collect(store, policy, trajectory).evals)
    assert [(r["model"], r["benchmark"], r["metric"], r["score"], r["judge"]) for r in rows] == [
        ("SFT", "mt_bench", "mt_bench", 2.5, "smollm2-135m-instruct"),
        ("SFT", "math500", "accuracy", 0.1, "rule"),
        ("DPO-1", "mt_bench", "mt_bench", 3.0, "smollm2-135m-instruct"),
        ("DPO-1", "math500", "accuracy", 0.2, "rule"),
        ("DPO-2", "mt_bench", "mt_bench", 3.5, "smollm2-135m-instruct"),
        ("DPO-2", "math500", "accuracy", 0.4, "rule"),
    ]
    assert rows[2]["evaluated_as"] == "online-1"


def test_an_iterations_quick_eval_is_found_by_the_loops_label_before_the_old_one(run):
    """The online loop labels a policy's quick evaluation ``DPO-k`` (``online-k`` in
    stores written before): the loop's label wins when both are there."""
    store, _, policy, trajectory = run
    evaluation(store, "e-quick1-new", "DPO-1", "2026-01-03", 4.0, 0.3)
    rows = score_rows(collect(store, policy, trajectory).evals)
    dpo1 = [r for r in rows if r["model"] == "DPO-1"]
    assert [(r["benchmark"], r["score"]) for r in dpo1] == [("mt_bench", 4.0), ("math500", 0.3)]
    assert {r["evaluated_as"] for r in dpo1} == {"DPO-1"}


def test_iteration_rows_give_the_reward_of_each_iterations_samples(run):
    store, _, policy, trajectory = run
    rows = iteration_rows(collect(store, policy, trajectory).iterations, store.uri)
    assert [r["sampled_from"] for r in rows] == ["SFT", "DPO-1"]
    assert rows[0]["mean_reward"] == pytest.approx(0.6)  # (0.2 + 1.0) / 2
    assert rows[1]["mean_reward"] == pytest.approx(1.3)
    assert rows[1]["backend_rewards"] == {"checklist": pytest.approx(0.8), "format": 0.5}
    assert rows[1]["pairs"] == 1 and rows[1]["reward_margin"] == pytest.approx(0.6)
    assert (rows[1]["first_loss"], rows[1]["final_loss"]) == (0.6931, 0.6)
    assert rows[1]["policy"] == store.uri(Stage.online_policy, F("d2"))


def test_file_rows_point_at_the_reports_and_plots(run):
    store, _, policy, trajectory = run
    results = collect(store, policy, trajectory)
    rows = file_rows(results.evals, results.trajectory, store.uri)
    assert {(r["model"], r["what"]) for r in rows} >= {
        ("SFT", "report.md"),
        ("DPO-2", "headline.png"),
        ("SFT, DPO-2", "trajectory.png"),
    }
    assert all(r["what"] != "summary.json" for r in rows)
    traj = next(r for r in rows if r["what"] == "trajectory.png")
    assert traj["path"] == store.uri(Stage.eval_trajectory, F("t1"), "trajectory.png")


def test_a_run_stopped_before_online_has_no_rows(run):
    store = run[0]
    results = collect(store)
    assert (results.evals, results.iterations, results.trajectory) == ([], [], None)


def test_cost_is_device_time_at_the_gpu_price_plus_judge_spend():
    m = Manifest(
        stage="sft",
        fingerprint=F("x"),
        code_version="1",
        config={},
        timings={"train_seconds": 3000.0, "wall_seconds": 3600.0},
    )
    gpu = ComputeConfig(device="cuda", nodes=2, gpus_per_node=8, gpu_hour_usd=2.0)
    assert output_cost(gpu, m) == {"seconds": 3600.0, "device_hours": 16.0, "usd": 32.0}
    assert output_cost(ComputeConfig(device="cpu", gpus_per_node=0), m)["usd"] == 0.0
    judged = m.model_copy(
        update={"timings": {"seconds": 10.0}, "stats": {"judge_usage": {"judge_usd": 0.5}}}
    )
    rows = cost_rows(gpu, [m, judged])
    assert [r["usd"] for r in rows] == [32.0, round(0.5 + 10 / 3600 * 16 * 2, 4)]
    assert rows[-1]["usd_so_far"] == pytest.approx(rows[0]["usd"] + rows[1]["usd"])


def test_left_out_counts_are_by_reason_only():
    m = Manifest(
        stage="data",
        fingerprint=F("x"),
        code_version="1",
        config={},
        counts={"kept": 5, "rejected": 3, "rejected.too_long": 2, "rejected.duplicate": 1},
    )
    assert left_out(m) == {"rejected.duplicate": 1, "rejected.too_long": 2}


def test_stage_markdown_has_counts_reasons_tokens_and_links(run):
    store = run[0]
    data = put(
        store,
        Stage.curation,
        "q1",
        counts={"kept": 5, "rejected": 3, "rejected.too_long": 3},
        tokens={"output": 1200},
        files=[file("topics.png"), file("rejects.jsonl.gz")],
        timings={"seconds": 12.5},
    )
    text = stage_markdown(store, data)
    assert "| kept | 5 |" in text and "| rejected.too_long | 3 |" in text
    assert "## Left out, by reason" in text and "| output | 1,200 |" in text
    assert f"[topics.png]({store.uri(Stage.curation, F('q1'), 'topics.png')})" in text
    policy = stage_markdown(store, run[2])
    # A model's weights are one line, not a link per file.
    assert policy.count("model/") == 1 and "[model/](" in policy and "2 files, 4.0 MB" in policy
    assert "| final_reward_margin | 0.6 |" in policy


def test_results_and_run_markdown(run):
    store, sft, policy, trajectory = run
    cfg = load_config(REPO / "configs/tiny-cpu.yaml")
    text = results_markdown(cfg, store, collect(store, policy, trajectory))
    assert "| DPO-2 | mt_bench | mt_bench | 3.5 | smollm2-135m-instruct | 5 |" in text
    assert "| 2 | DPO-1 | 2 | 1.3 |" in text
    assert "[trajectory.png](" in text
    outputs = run_outputs(store, [sft, policy, trajectory])
    stages = [str(m.stage) for m in outputs]
    assert stages[:1] == ["sft"] and stages.count("online-policy") == 2
    assert stages.count("online-scores") == 2 and stages[-1] == "eval_trajectory"
    summary = run_markdown(cfg, cost_rows(cfg.compute, outputs))
    assert "CPU-only config" in summary and "usd_so_far" in summary
    assert "$0.5000" in summary.splitlines()[0]  # the two final evals' judge spend


def test_md_table_escapes_cells():
    assert (
        md_table([{"a": "x|y", "b": None}], ["a", "b"]) == "| a | b |\n|---|---|\n| x\\|y | — |\n"
    )
    assert md_table([], ["a"]) == ""


def test_bolt_run_ends_with_scores_rewards_and_paths(run, tmp_path, capsys):
    from bolt_cli.results import print_results

    store, _, policy, trajectory = run
    cfg = load_config(REPO / "configs/tiny-cpu.yaml", [f"storage.root=file://{tmp_path}"])
    summary = {
        "sft": {"fingerprint": F("s1")},
        "online-policy": {"fingerprint": policy.fingerprint},
        "eval_trajectory": {"fingerprint": trajectory.fingerprint},
    }
    print_results(cfg, summary)
    out = capsys.readouterr().out
    assert "headline number per benchmark" in out and "smollm2-135m-instruct" in out
    assert "DPO-1" in out and "online DPO" in out and "0.6931 → 0.6" in out
    assert store.uri(Stage.eval_trajectory, F("t1"), "trajectory.png") in out
    assert store.uri(Stage.eval, F("e-sft"), "report.md") in out


def _policy(store, name, day, algorithm, upstream, stats, iteration):
    """A policy as its job commits it: the online config names the algorithm."""
    return put(
        store,
        Stage.online_policy,
        name,
        day,
        config={"online": {"algorithm": algorithm}, "iteration": iteration},
        upstream=upstream,
        stats={"first_loss": 0.7, "final_loss": 0.5, **stats},
    )


@pytest.fixture
def grpo_run(tmp_path):
    """Two GRPO iterations (RLMT): samples -> strict scores -> groups -> policy, each
    policy's quick eval labelled GRPO-k as the online loop labels it."""
    store = ArtifactStore.from_config(
        load_config(REPO / "configs/tiny-cpu.yaml", [f"storage.root=file://{tmp_path}"]).storage
    )
    sft = put(store, Stage.sft, "s1", upstream={"filter": F("f1")})
    policy_id, policy = f"sft/{sft.fingerprint}", None
    for k in (1, 2):
        day = f"2026-01-0{k + 1}"
        put(store, Stage.online_samples, f"a{k}", day, upstream={"policy": policy_id})
        rows = [scored("q1", 0.1 * k, 0.0), scored("q1", 0.3 * k, 0.0)]
        put(store, Stage.online_scores, f"c{k}", day, rows, upstream={"samples": F(f"a{k}")})
        put(
            store,
            Stage.online_groups,
            f"g{k}",
            day,
            config={"iteration": k},
            upstream={"scores": F(f"c{k}")},
            counts={"samples": 2, "groups": 1, "flat_groups": 0},
        )
        policy = _policy(
            store, f"d{k}", day, "grpo", {"groups": F(f"g{k}")}, {"final_kl": 0.01 * k}, k
        )
        evaluation(store, f"e{k}", f"GRPO-{k}", day, 3.0 + k, 0.1 * k)
        policy_id = f"online-policy/{policy.fingerprint}"
    return store, policy


def test_a_grpo_run_is_followed_through_its_groups_with_its_labels_and_kl(grpo_run):
    store, policy = grpo_run
    results = collect(store, policy)
    assert [(it.index, it.algorithm) for it in results.iterations] == [(1, "grpo"), (2, "grpo")]
    assert results.iterations[1].groups.fingerprint == F("g2")
    assert [(label, m.fingerprint) for label, m in results.evals] == [
        ("GRPO-1", F("e1")),
        ("GRPO-2", F("e2")),
    ]
    rows = iteration_rows(results.iterations, store.uri)
    assert [(r["model"], r["sampled_from"]) for r in rows] == [
        ("GRPO-1", "SFT"),
        ("GRPO-2", "GRPO-1"),
    ]
    assert rows[1]["mean_reward"] == pytest.approx(0.4)  # (0.2 + 0.6) / 2
    assert (rows[1]["kl"], rows[1]["groups"], rows[1]["pairs"]) == (0.02, 1, None)
    stages = [str(m.stage) for m in run_outputs(store, [policy])]
    assert stages == ["online-samples", "online-scores", "online-groups", "online-policy"] * 2
    text = results_markdown(load_config(REPO / "configs/tiny-cpu.yaml"), store, results)
    assert "## Online GRPO" in text and f"- GRPO-2: `{rows[1]['policy']}`" in text


def test_a_drift_run_is_followed_through_its_pairs_to_the_revisions_and_rows(tmp_path):
    """DRIFT's pairs come straight from the policy's revisions of the feedback rows:
    there are no scores, so no reward; the margin is DPO's."""
    store = ArtifactStore.from_config(
        load_config(REPO / "configs/tiny-cpu.yaml", [f"storage.root=file://{tmp_path}"]).storage
    )
    sft = put(store, Stage.sft, "s1", upstream={"filter": F("f1")})
    policy_id, policy = f"sft/{sft.fingerprint}", None
    for k in (1, 2):
        day = f"2026-01-0{k + 1}"
        put(store, Stage.online_feedback, f"b{k}", day, counts={"rows": 2})
        links = {"feedback": F(f"b{k}"), "policy": policy_id}
        put(store, Stage.online_samples, f"a{k}", day, upstream=links)
        put(
            store,
            Stage.online_pairs,
            f"p{k}",
            day,
            config={"iteration": k, "algorithm": "drift"},
            upstream={"samples": F(f"a{k}"), "feedback": F(f"b{k}")},
            counts={"pairs": 2},
        )
        put(store, Stage.online_reference, f"r{k}", day)
        upstream = {"pairs": F(f"p{k}"), "reference": F(f"r{k}")}
        policy = _policy(store, f"d{k}", day, "drift", upstream, {"final_reward_margin": k}, k)
        evaluation(store, f"e{k}", f"DRIFT-{k}", day, 3.0, 0.1)
        policy_id = f"online-policy/{policy.fingerprint}"
    results = collect(store, policy)
    assert [it.samples.fingerprint for it in results.iterations] == [F("a1"), F("a2")]
    assert [it.feedback.fingerprint for it in results.iterations] == [F("b1"), F("b2")]
    assert [label for label, _ in results.evals] == ["DRIFT-1", "DRIFT-2"]
    rows = iteration_rows(results.iterations, store.uri)
    assert [(r["model"], r["sampled_from"], r["pairs"]) for r in rows] == [
        ("DRIFT-1", "SFT", 2),
        ("DRIFT-2", "DRIFT-1", 2),
    ]
    assert rows[1]["mean_reward"] is None and rows[1]["reward_margin"] == 2
    stages = [str(m.stage) for m in run_outputs(store, [policy])]
    assert stages[:5] == [
        "online-feedback", "online-samples", "online-pairs", "online-reference", "online-policy",
    ]  # fmt: skip
