"""The model cache under concurrent preparation: one conversion, no folder pulled away."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import bolt.models
from bolt.config import ModelEntry, ModelsConfig
from bolt.models import PREPARED_MARKER, is_prepared, prepare_model


def test_concurrent_preparations_of_one_model_convert_it_once(tmp_path, monkeypatch):
    copies, inside, overlapped = [], threading.Lock(), []

    def slow_copy(entry, dest, s3):
        if not inside.acquire(blocking=False):
            overlapped.append(dest)
        copies.append(dest)
        time.sleep(0.2)  # long enough for every other caller to arrive meanwhile
        (dest / "config.json").write_text("{}")
        inside.release()
        return {"source": entry.s3_uri}

    monkeypatch.delenv("BOLT_MODEL_CACHE", raising=False)
    monkeypatch.setattr(bolt.models, "_copy_from_s3", slow_copy)
    models = ModelsConfig(
        cache_dir=str(tmp_path / "cache"),
        catalog={"m": ModelEntry(s3_uri="s3://weights/m")},
    )
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: prepare_model(models, "m"), range(4)))

    assert len(copies) == 1 and not overlapped
    assert set(folders) == {tmp_path / "cache" / "m"} and is_prepared(folders[0])
    assert (folders[0] / PREPARED_MARKER).is_file()
    # What the others found prepared is still the folder the first one made.
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")] == ["m"]


def test_a_forced_preparation_replaces_the_folder(tmp_path, monkeypatch):
    made = []

    def copy(entry, dest, s3):
        made.append(dest)
        (dest / "config.json").write_text(str(len(made)))
        return {"source": entry.s3_uri}

    monkeypatch.delenv("BOLT_MODEL_CACHE", raising=False)
    monkeypatch.setattr(bolt.models, "_copy_from_s3", copy)
    models = ModelsConfig(
        cache_dir=str(tmp_path / "cache"), catalog={"m": ModelEntry(s3_uri="s3://weights/m")}
    )
    folder = prepare_model(models, "m")
    assert prepare_model(models, "m") == folder and len(made) == 1
    prepare_model(models, "m", force=True)
    assert len(made) == 2 and (folder / "config.json").read_text() == "2"
