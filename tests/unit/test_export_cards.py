"""The export's choices and card text, from manifests alone (no store, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bolt.config_loader import load_config
from bolt.export import cards
from bolt.export.datasets import card_data, render
from bolt.export.lineage import ExportError, Index, select
from bolt.stages import Stage
from bolt.store import Manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cfg():
    return load_config(REPO / "configs/tiny-cpu.yaml")


def m(stage, fp, created="2026-01-01T00:00:00", **fields) -> Manifest:
    return Manifest(
        stage=stage,
        fingerprint=fp.ljust(16, "0"),
        created_at=created,
        code_version="1",
        config=fields.pop("config", {}),
        **fields,
    )


def F(name: str) -> str:  # a padded fingerprint, as short names make them
    return name.ljust(16, "0")


def chain(cfg, policies: int = 2, policy_missing_at: int | None = None) -> list[Manifest]:
    """filter -> sft -> per iteration samples -> scores -> pairs -> policy."""
    out = [
        m(Stage.filter, "f1", config={"filter": cfg.filter.model_dump(mode="json")}),
        m(Stage.sft, "s1", "2026-01-02", upstream={"filter": F("f1")}),
    ]
    policy = f"sft/{F('s1')}"
    for k in range(1, policies + 1):
        day = f"2026-01-{2 + k:02d}"
        out += [
            m(Stage.online_samples, f"a{k}", day, upstream={"policy": policy}),
            m(Stage.online_scores, f"c{k}", day, upstream={"samples": F(f"a{k}")}),
            m(
                Stage.online_pairs,
                f"p{k}",
                day,
                upstream={"scores": F(f"c{k}")},
                config={"iteration": k},
            ),
        ]
        if k == policy_missing_at:
            break
        out.append(m(Stage.online_policy, f"d{k}", day, upstream={"pairs": F(f"p{k}")}))
        policy = f"online-policy/{F(f'd{k}')}"
    return out


def test_select_walks_the_chain_from_the_newest_sft(cfg):
    older = m(Stage.sft, "s0", "2025-12-01", upstream={"filter": F("f1")})
    sel = select(Index([older, *chain(cfg)]), cfg)
    assert sel.sft.fingerprint == F("s1") and sel.sft_set.fingerprint == F("f1")
    assert [(it.index, it.data.fingerprint, it.policy.fingerprint) for it in sel.iterations] == [
        (1, F("p1"), F("d1")),
        (2, F("p2"), F("d2")),
    ]
    assert select(Index([older, *chain(cfg)]), cfg, sft_fp="s0").sft is older


def test_select_stops_at_an_iteration_without_a_policy(cfg):
    sel = select(Index(chain(cfg, policies=3, policy_missing_at=2)), cfg)
    assert [(it.index, it.policy is not None) for it in sel.iterations] == [(1, True), (2, False)]


def test_select_prefers_the_configs_own_output_and_refuses_ambiguity(cfg):
    mine = m(
        Stage.filter, "f1", "2026-01-01", config={"filter": cfg.filter.model_dump(mode="json")}
    )
    newer_other = m(Stage.filter, "f2", "2026-02-01", config={"filter": {"percentile": 1}})
    assert select(Index([mine, newer_other]), cfg).sft_set is mine
    assert select(Index([newer_other]), cfg).sft_set is newer_other  # else the newest
    both = Index([mine, newer_other])
    assert select(both, cfg, filter_fp="f2").sft_set is newer_other
    with pytest.raises(ExportError, match="matches 2"):
        select(both, cfg, filter_fp="f")
    with pytest.raises(ExportError, match="neither"):
        select(Index([]), cfg)


def test_eval_is_matched_by_label_and_must_be_newer_than_its_model(cfg):
    evals = [
        m(Stage.eval, "e0", "2026-01-01", config={"model": "SFT"}),  # an older model's
        m(Stage.eval, "e1", "2026-01-09", config={"model": "SFT"}),
        m(Stage.eval, "e2", "2026-01-09", config={"model": "online-2"}),
        m(Stage.eval, "e3", "2026-01-10", config={"model": "DPO-2"}),
        m(Stage.eval_trajectory, "t1", "2026-01-10", upstream={"SFT": F("e1"), "DPO-2": F("e3")}),
    ]
    sel = select(Index([*chain(cfg), *evals]), cfg)
    assert sel.evals["sft"].fingerprint == F("e1")
    assert sel.evals["policy-2"].fingerprint == F("e3")  # the final eval over the quick one
    assert "policy-1" not in sel.evals and sel.trajectory.fingerprint == F("t1")


def test_lineage_resolves_policy_ids_once_each(cfg):
    index = Index(chain(cfg))
    found = [
        f"{x.stage}/{x.fingerprint[:2]}"
        for x in index.lineage(index.get(Stage.online_policy, F("d2")))
    ]
    assert found == [
        "online-pairs/p2", "online-scores/c2", "online-samples/a2", "online-policy/d1",
        "online-pairs/p1", "online-scores/c1", "online-samples/a1", "sft/s1", "filter/f1",
    ]  # fmt: skip
    assert index.resolve("nope/" + F("d2")) is None and index.resolve(F("zz")) is None


def test_cells_tables_and_numbers():
    assert cards.fmt(None) == "–" and cards.fmt(1234) == "1,234" and cards.fmt(0.123456) == "0.1235"
    assert cards.fmt("a|b\nc") == "a\\|b c" and cards.fmt(True) == "true"
    assert cards.table([]) == "(none)"
    assert cards.table([{"a": 1}, {"b": 2}]).splitlines()[0] == "| a | b |"
    assert cards.numbers([None])["n"] == 0
    assert cards.numbers([1, 2, 3, None]) | {"std": 0} == {
        "n": 3, "mean": 2.0, "std": 0, "min": 1.0, "median": 2, "max": 3.0,
    }  # fmt: skip
    assert [cards.size_category(n) for n in (0, 999, 1000, 10**5, 10**6)] == [
        "n<1K", "n<1K", "1K<n<10K", "100K<n<1M", "1M<n<10M",
    ]  # fmt: skip


def test_counts_reasons_provenance_and_citation():
    made = m(
        Stage.filter,
        "f9",
        config={"filter": {"percentile": 30.0}},
        upstream={"score": F("s9")},
        counts={"kept": 5, "dropped.format": 2, "skipped.no_gap": 1},
        stats={"mean_kept_reward": 0.5, "loss_curve": [[1, 2.0]]},
    )
    assert cards.reject_reasons(made) == {"dropped.format": 2, "skipped.no_gap": 1}
    counts = cards.counts_section(made)
    assert "| kept | 5 |" in counts and "| dropped.format | 2 |" in counts
    assert "Nothing was left out" in cards.counts_section(m(Stage.filter, "f8", counts={"kept": 1}))
    text = cards.provenance_section(made, [m(Stage.score, "s9", counts={"scored": 7})], "file:///x")
    assert (
        '"percentile": 30.0' in text and f"| score | `{F('s9')}` |" in text and "scored 7" in text
    )
    stats = cards.stats_section("Stats", made, {"reward": cards.numbers([1.0])})
    assert "mean_kept_reward" in stats and "loss_curve" not in stats and "| reward | 1 |" in stats
    cite = cards.citation_section()
    assert "@article{pang2025bolt" in cite and "arXiv:2502.03860" in cite


def test_dataset_card_front_matter_parses_and_names_the_shards():
    card = render(card_data(1500, "other", ["sft"], "x: y"), "# body\n")
    meta = yaml.safe_load(str(card).split("---\n")[1])
    assert meta["license"] == "other" and meta["license_name"] == "see-card"
    assert meta["size_categories"] == ["1K<n<10K"] and meta["pretty_name"] == "x: y"
    assert meta["tags"] == ["bolt", "long-cot", "sft"]
    assert meta["configs"] == [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": "data/train-*.parquet"}],
        }
    ]
    assert card.data.to_dict()["configs"] == meta["configs"] and card.text.strip() == "# body"
    assert "license_name" not in yaml.safe_load(
        str(render(card_data(1, "mit", [], "x"), "")).split("---\n")[1]
    )
