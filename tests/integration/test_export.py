"""`bolt export` for real: a tiny store written through ArtifactStore (an SFT set in two
shards, a tiny random Llama as the SFT model and as two DPO policies, each iteration's
pairs, evals and a trajectory), exported, then read back with ``datasets`` and
``transformers``, the cards parsed with ``huggingface_hub``, and pushed to a stand-in
Hub on loopback that implements the requests ``create_repo`` and ``upload_folder`` make.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bolt.config_loader import load_config
from bolt.export.bundle import export
from bolt.export.cards import CITATION
from bolt.export.push import push_all
from bolt.records import Message, PreferencePair, Query, SftExample
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs/tiny-cpu.yaml"


def fp(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def png(path: Path) -> Path:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


def tiny_llama(folder: Path, seed: int) -> Path:
    """A random 2-layer Llama and a word-level tokenizer, saved as transformers does."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    sizes = {"hidden_size": 16, "intermediate_size": 32, "max_position_embeddings": 64}
    heads = {"num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2}
    LlamaForCausalLM(LlamaConfig(vocab_size=32, **sizes, **heads)).save_pretrained(folder)
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", "hello", "world"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    ).save_pretrained(folder)
    return folder


def commit(store: ArtifactStore, stage: str, name: str, **fields) -> Manifest:
    records = fields.pop("records", None)
    shards = [store.write_shard(stage, fp(name), i, part) for i, part in enumerate(records or [])]
    return store.commit(
        Manifest(stage=stage, fingerprint=fp(name), code_version="1", shards=shards, **fields)
    )


def put_model(store, tmp: Path, stage: str, name: str, seed: int) -> list:
    folder = tiny_llama(tmp / f"model-{name}", seed)
    files = store.put_dir(stage, fp(name), "model", folder)
    files.append(store.put_file(stage, fp(name), "loss.png", png(tmp / f"{name}.png")))
    return files


def sft_examples(n: int) -> list[SftExample]:
    return [
        SftExample(
            id=f"ex{i}",
            query_id=f"q{i}",
            reward=0.5 + i / 10,
            messages=[
                Message(role="user", content=f"question {i}"),
                Message(role="assistant", content=f"<thoughts>think {i}</thoughts> answer {i}"),
            ],
        )
        for i in range(n)
    ]


def pairs(iteration: int, n: int) -> list[PreferencePair]:
    return [
        PreferencePair(
            prompt_id=f"p{iteration}-{i}",
            prompt=[Message(role="user", content=f"prompt {i}")],
            chosen=f"good {i}",
            rejected=f"bad {i}",
            chosen_reward=1.0 + i,
            rejected_reward=0.25 * i,
            iteration=iteration,
        )
        for i in range(n)
    ]


def _data_stages(store: ArtifactStore, cfg) -> Manifest:
    query = Query(id="q0", text="question 0", source="tiny")
    counts = {"kept": 1, "rejects.near_duplicate": 3}
    commit(store, Stage.curation, "data", config={}, records=[[query]], counts=counts)
    upstream = {"data": fp("data")}
    commit(store, Stage.bootstrap, "boot", config={}, upstream=upstream, counts={"samples": 12})
    commit(store, Stage.score, "score", config={}, upstream={"bootstrap": fp("boot")})
    reasons = {"dropped.format.missing_thoughts": 4, "dropped.percentile": 3}
    return commit(
        store,
        Stage.filter,
        "filter",
        config={"filter": cfg.filter.model_dump(mode="json")},
        upstream={"score": fp("score"), "data": fp("data")},
        records=[sft_examples(3), sft_examples(5)[3:]],
        counts={"samples": 12, "kept": 5, **reasons},
        stats={"format_pass_rate": 0.6667, "mean_kept_reward": 0.7},
    )


def _eval(store, tmp: Path, name: str, label: str) -> Manifest:
    files = [store.put_file(Stage.eval, fp(name), "headline.png", png(tmp / f"{name}-h.png"))]
    table = [{"benchmark": "math500", "metric": "accuracy", label: 12.5, "n_items": 8}]
    return commit(
        store,
        Stage.eval,
        name,
        config={"model": label, "eval": {"judge": {"kind": "local"}}},
        upstream={"answers": fp(f"answers-{name}")},
        files=files,
        stats={"table": table, "judge_usage": {"judge_calls": 8}},
    )


def build_store(root: Path, cfg) -> ArtifactStore:
    """The pipeline's chain, every manifest shaped as its stage writes it."""
    store = ArtifactStore.from_config(cfg.storage.model_copy(update={"root": f"file://{root}"}))
    tmp = root.parent / "scratch"
    tmp.mkdir()
    _data_stages(store, cfg)
    commit(
        store,
        Stage.sft,
        "sft",
        config={"sft": cfg.sft.model_dump(mode="json")},
        upstream={"filter": fp("filter")},
        files=put_model(store, tmp, Stage.sft, "sft", 0),
        counts={"examples": 5, "steps": 2},
        stats={"final_loss": 1.25, "loss_curve": [[1, 2.0], [2, 1.25]]},
    )
    policy = f"sft/{fp('sft')}"
    for k in (1, 2):
        commit(store, Stage.online_samples, f"samples{k}", config={}, upstream={"policy": policy})
        upstream = {"samples": fp(f"samples{k}")}
        commit(store, Stage.online_scores, f"scores{k}", config={}, upstream=upstream)
        commit(
            store,
            Stage.online_pairs,
            f"pairs{k}",
            config={"iteration": k, "pair_strategy": "max_min", "min_reward_gap": 0.0},
            upstream={"scores": fp(f"scores{k}")},
            records=[pairs(k, 2 + k)],
            counts={"prompts": 4 + k, "pairs": 2 + k, "skipped": 2, "skipped.no_reward_gap": 2},
            stats={"mean_reward_gap": 1.5},
        )
        commit(
            store,
            Stage.online_policy,
            f"policy{k}",
            config={"online": {"beta": 0.1}, "iteration": k},
            upstream={"pairs": fp(f"pairs{k}"), "reference": fp(f"ref{k}")},
            files=put_model(store, tmp, Stage.online_policy, f"policy{k}", k),
            counts={"pairs": 2 + k, "steps": 1},
            stats={"first_loss": 0.6931, "final_loss": 0.69},
        )
        policy = f"online-policy/{fp(f'policy{k}')}"
    evals = [_eval(store, tmp, "eval-sft", "SFT"), _eval(store, tmp, "eval-dpo2", "DPO-2")]
    trajectory_png = store.put_file(
        Stage.eval_trajectory, fp("traj"), "trajectory.png", png(tmp / "t.png")
    )
    commit(
        store,
        Stage.eval_trajectory,
        "traj",
        config={"checkpoints": ["SFT", "DPO-2"]},
        upstream={"SFT": evals[0].fingerprint, "DPO-2": evals[1].fingerprint},
        files=[trajectory_png],
    )
    return store


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg = load_config(TINY)
    base = tmp_path_factory.mktemp("export")
    store = build_store(base / "store", cfg)
    selection, done = export(
        store, cfg, base / "out", license="apache-2.0", repo_prefix="org/bolt-tiny"
    )
    return store, selection, {e.name: e for e in done}


def test_export_chooses_the_chain(exported):
    _, selection, done = exported
    names = ["sft-data", "pairs-iter1", "pairs-iter2", "sft", "dpo-iter1", "dpo-iter2"]
    assert list(done) == names  # datasets, then models
    assert selection.sft_set.fingerprint == fp("filter")
    assert [it.policy.fingerprint for it in selection.iterations] == [fp("policy1"), fp("policy2")]
    assert selection.evals["sft"].fingerprint == fp("eval-sft")
    assert selection.evals["policy-2"].fingerprint == fp("eval-dpo2")
    assert "policy-1" not in selection.evals


def _front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_sft_set_loads_back_with_datasets(exported, tmp_path):
    import datasets

    store, selection, done = exported
    folder = done["sft-data"].folder
    shards = sorted((folder / "data").glob("*.parquet"))
    assert [p.name for p in shards] == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    records = [r.model_dump(mode="json") for r in store.read_records(selection.sft_set, SftExample)]
    by_files = datasets.load_dataset(
        "parquet", data_files=[str(p) for p in shards], split="train", cache_dir=str(tmp_path)
    )
    # The card's YAML (configs/data_files) is what load_dataset(folder) reads.
    by_card = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path))
    assert by_files.num_rows == by_card.num_rows == len(records) == done["sft-data"].rows == 5
    assert by_card.to_list() == records
    assert [SftExample.model_validate(r) for r in by_card] == list(
        store.read_records(selection.sft_set, SftExample)
    )


def test_pairs_load_back_with_datasets(exported, tmp_path):
    import datasets

    store, selection, done = exported
    for it in selection.iterations:
        ds = datasets.load_dataset(
            str(done[f"pairs-iter{it.index}"].folder), split="train", cache_dir=str(tmp_path)
        )
        records = list(store.read_records(it.data, PreferencePair))
        assert ds.num_rows == len(records) == 2 + it.index
        assert [PreferencePair.model_validate(r) for r in ds] == records


def test_dataset_cards_say_how_the_data_was_made(exported):
    from huggingface_hub import DatasetCard

    _, _, done = exported
    card = DatasetCard.load(done["sft-data"].folder / "README.md")
    meta = _front_matter(done["sft-data"].folder / "README.md")
    assert meta["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*.parquet"}
    assert meta["license"] == card.data.license == "apache-2.0"
    assert {"bolt", "long-cot", "sft"} <= set(meta["tags"])
    assert meta["task_categories"] == ["text-generation"] and meta["size_categories"] == ["n<1K"]
    text = card.text
    needles = [fp("filter"), fp("score"), fp("data"), fp("boot"), "dropped.format.missing"]
    assert all(needle in text for needle in needles)
    assert "| dropped.percentile | 3 |" in text and "| kept | 5 |" in text
    assert "rejects.near_duplicate 3" in text  # the curation stage's rejects, in the lineage
    assert "format_pass_rate" in text and "reward of kept examples" in text
    assert CITATION in text and "2502.03860" in text
    pairs_text = (done["pairs-iter2"].folder / "README.md").read_text()
    assert "skipped.no_reward_gap" in pairs_text and "reward gap" in pairs_text
    assert fp("scores2") in pairs_text and fp("samples2") in pairs_text
    assert fp("policy1") in pairs_text and fp("sft") in pairs_text  # iteration 2 starts there


def test_models_load_back_with_transformers(exported):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    store, selection, done = exported
    for name, manifest in (("sft", selection.sft), ("dpo-iter2", selection.iterations[1].policy)):
        folder = done[name].folder
        assert AutoConfig.from_pretrained(folder).model_type == "llama"
        model = AutoModelForCausalLM.from_pretrained(folder)
        stored = AutoModelForCausalLM.from_pretrained(
            store.get_dir(manifest, "model", folder.parent / f"stored-{name}")
        )
        for (k, a), (_, b) in zip(
            model.state_dict().items(), stored.state_dict().items(), strict=True
        ):
            assert torch.equal(a, b), k
        assert AutoTokenizer.from_pretrained(folder)("hello world")["input_ids"] == [3, 4]


def test_model_cards_carry_config_data_and_evals(exported):
    from huggingface_hub import ModelCard

    _, _, done = exported
    sft = done["sft"].folder
    meta = _front_matter(sft / "README.md")
    assert meta["library_name"] == "transformers" and meta["datasets"] == ["org/bolt-tiny-sft-data"]
    assert {"bolt", "long-cot", "sft"} <= set(meta["tags"])
    card = ModelCard.load(sft / "README.md")
    assert card.data.library_name == "transformers"
    assert fp("filter") in card.text and '"lr"' in card.text and "final_loss" in card.text
    assert "| math500 | accuracy | 12.5 | 8 |" in card.text and fp("eval-sft") in card.text
    assert (sft / "plots/sft-loss.png").is_file() and "](plots/sft-loss.png)" in card.text
    assert (sft / "plots/eval-headline.png").is_file() and CITATION in card.text
    last = (done["dpo-iter2"].folder / "README.md").read_text()
    assert fp("pairs2") in last and fp("ref2") in last and "DPO-2" in last
    assert (done["dpo-iter2"].folder / "plots/eval_trajectory-trajectory.png").is_file()
    first = (done["dpo-iter1"].folder / "README.md").read_text()
    assert "no evaluation in the store" in first
    assert _front_matter(done["dpo-iter1"].folder / "README.md")["datasets"] == [
        "org/bolt-tiny-pairs-iter1"
    ]


class StandInHub(ThreadingHTTPServer):
    """The four Hub endpoints ``create_repo`` + ``upload_folder`` call, on 127.0.0.1:
    repo creation (409 when it exists), README YAML validation, preupload (every file
    "regular", i.e. inline in the commit: no LFS/Xet transfer) and the ndjson commit."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _HubHandler)
        self.repos: dict[str, dict] = {}  # "<type>s/<org>/<name>" -> private, files, commits
        self.seen: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _HubHandler(BaseHTTPRequestHandler):
    server: StandInHub

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.split("?", 1)[0]
        self.server.seen.append(f"POST {path}")
        if path == "/api/repos/create":
            return self._create(json.loads(body))
        if path == "/api/validate-yaml":
            return self._validate(json.loads(body))
        parts = path.removeprefix("/api/").split("/")
        key = "/".join(parts[:3])
        if len(parts) < 5 or key not in self.server.repos:
            return self._reply(404, {"error": f"Repository {key} not found"})
        if parts[3] == "preupload":
            files = json.loads(body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            return self._reply(200, {"files": modes})
        if parts[3] == "commit":
            return self._commit(key, body)
        return self._reply(404, {"error": f"no endpoint {path}"})

    def _create(self, payload: dict) -> None:
        kind = payload.get("type") or "model"
        key = f"{kind}s/{payload['organization']}/{payload['name']}"
        if key in self.server.repos:
            # As the Hub: the error names the existing repo's url (create_repo reads it).
            url = f"{self.server.endpoint}/{key}"
            return self._reply(409, {"error": "You already created this repo", "url": url})
        private = payload.get("visibility") == "private"
        self.server.repos[key] = {"private": private, "files": {}, "commits": []}
        self._reply(200, {"url": f"{self.server.endpoint}/{key}"})

    def _validate(self, payload: dict) -> None:
        try:
            meta = yaml.safe_load(payload["content"].split("---\n", 2)[1])
            assert isinstance(meta, dict) and meta.get("license")
        except Exception as e:  # noqa: BLE001 - any malformed card is a 400, as on the Hub
            return self._reply(400, {"errors": [{"message": f"invalid metadata: {e}"}]})
        self._reply(200, {"errors": [], "warnings": []})

    def _commit(self, key: str, body: bytes) -> None:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        repo = self.server.repos[key]
        for item in lines[1:]:
            assert item["key"] == "file", item
            value = item["value"]
            repo["files"][value["path"]] = base64.b64decode(value["content"])
        oid = hashlib.sha1(body).hexdigest()
        repo["commits"].append({"summary": lines[0]["value"]["summary"], "oid": oid})
        self._reply(
            200, {"commitUrl": f"{self.server.endpoint}/{key}/commit/{oid}", "commitOid": oid}
        )


@pytest.fixture
def hub(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the suite sets it for safety
    server = StandInHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_push_uploads_every_folder_to_the_hub(exported, hub):
    _, _, done = exported
    pushed = push_all(
        list(done.values()), "org/bolt-tiny", private=True, endpoint=hub.endpoint, token="hf_fake"
    )
    assert [p.exported.kind for p in pushed][:3] == ["dataset"] * 3  # datasets first
    assert set(hub.repos) == {
        "datasets/org/bolt-tiny-sft-data",
        "datasets/org/bolt-tiny-pairs-iter1",
        "datasets/org/bolt-tiny-pairs-iter2",
        "models/org/bolt-tiny-sft",
        "models/org/bolt-tiny-dpo-iter1",
        "models/org/bolt-tiny-dpo-iter2",
    }
    for p in pushed:
        repo = hub.repos[f"{p.exported.kind}s/{p.repo_id}"]
        local = {
            f.relative_to(p.exported.folder).as_posix(): f.read_bytes()
            for f in p.exported.folder.rglob("*")
            if f.is_file()
        }
        assert repo["files"] == local and repo["private"] is True
        assert repo["commits"][-1]["oid"] == p.commit
    assert "POST /api/validate-yaml" in hub.seen
    # Pushing again finds the repositories (409 -> exist_ok) and commits again.
    push_all([done["sft-data"]], "org/bolt-tiny", endpoint=hub.endpoint, token="hf_fake")
    assert len(hub.repos["datasets/org/bolt-tiny-sft-data"]["commits"]) == 2


def test_push_refuses_offline_mode_and_bad_prefix(exported):
    from bolt.export.push import PushError

    _, _, done = exported
    with pytest.raises(PushError, match="HF_HUB_OFFLINE"):
        push_all(list(done.values()), "org/bolt-tiny")
    with pytest.raises(PushError, match="ORG/NAME-PREFIX"):
        push_all(list(done.values()), "no-org")


def test_cli_exports_and_pushes(tmp_path, hub, monkeypatch):
    from bolt_cli.main import app

    cfg = load_config(TINY)
    store = build_store(tmp_path / "store", cfg)
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", hub.endpoint)
    args = ["export", str(TINY), "--out", str(tmp_path / "out"), "--root", store.backend.uri("")]
    result = CliRunner().invoke(app, [*args, "--push-to", "org/cli", "-f", "tsv"])
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert lines[0] == ["kind", "name", "source", "rows", "folder", "repo"]
    rows = {line[1]: dict(zip(lines[0], line, strict=True)) for line in lines[1:]}
    assert (
        rows["sft-data"]["rows"] == "5" and rows["sft-data"]["source"] == f"filter/{fp('filter')}"
    )
    assert rows["dpo-iter2"]["repo"].endswith("models/org/cli-dpo-iter2")
    assert len(hub.repos) == 6
    missing = CliRunner().invoke(app, [*args, "--sft", "ffff"])
    assert missing.exit_code == 2 and "matches 0 committed outputs" in missing.output
