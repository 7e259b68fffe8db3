"""Readable output anywhere: whole numbers off a terminal, TSV/JSON for scripts, and the
progress reporter's lines (rate, ETA, how often a log gets one)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bolt.config import StorageConfig
from bolt.config_loader import load_config
from bolt.plan import StagePlan, as_rows
from bolt.progress import Progress, format_duration
from bolt.records import Query
from bolt.stages import Stage
from bolt.store import ArtifactStore, Manifest
from bolt_cli.main import app
from bolt_cli.output import UNBOUNDED_WIDTH, CliConsole, long_step, tsv_value
from bolt_cli.plan import stage_plans
from bolt_cli.results import print_summary

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs/tiny-cpu.yaml")
runner = CliRunner()


@pytest.fixture(scope="module")
def paper_8b_rows() -> list[dict]:
    return as_rows(stage_plans(load_config(REPO / "configs/paper-8b.yaml", [])))


def _table_cells(row: dict) -> list[str]:
    return [
        row["stage"],
        f"{row['tokens_read']:,.0f}",
        f"{row['tokens_generated']:,.0f}",
        f"{row['flops'] / 1e15:,.1f}",
        f"{row['device_hours']:,.2f}",
        f"{row['wall_hours']:,.2f}",
        f"{row['storage_gb']:,.2f}",
        f"{row['cost_usd']:,.2f}",
    ]


def test_plan_table_keeps_every_number_whole_off_a_terminal(paper_8b_rows):
    result = runner.invoke(app, ["plan", str(REPO / "configs/paper-8b.yaml")])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) > 80  # not squeezed to rich's default 80 columns
    for row in paper_8b_rows:
        line = next(x for x in lines if x.startswith(f"│ {row['stage']} "))
        cells = [c.strip() for c in line.strip("│").split("│")]
        for cell in _table_cells(row):
            assert cell in cells, (cell, line)
    total = paper_8b_rows[-1]
    assert total["stage"] == "total" and total["cost_usd"] > 1000  # the "1,3…" case
    assert f"{total['cost_usd']:,.2f}" in result.output


def test_plan_tsv_parses_with_the_planner_fields(paper_8b_rows):
    result = runner.invoke(app, ["plan", str(REPO / "configs/paper-8b.yaml"), "--format", "tsv"])
    assert result.exit_code == 0, result.output
    parsed = list(csv.DictReader(io.StringIO(result.output), delimiter="\t"))
    header = result.output.splitlines()[0].split("\t")
    assert header == [f.name for f in dataclasses.fields(StagePlan)]
    assert [r["stage"] for r in parsed] == [r["stage"] for r in paper_8b_rows]
    for got, want in zip(parsed, paper_8b_rows, strict=True):
        assert len(got) == len(header) and None not in got
        assert int(got["tokens_read"]) == want["tokens_read"]
        for key in ("flops", "device_hours", "wall_hours", "storage_gb", "cost_usd"):
            assert float(got[key]) == pytest.approx(want[key], rel=1e-11), key
        assert "," not in got["cost_usd"]  # no thousands separators for awk


def test_plan_format_json_and_the_json_alias_agree():
    path = str(REPO / "configs/paper-8b.yaml")
    by_format = runner.invoke(app, ["plan", path, "--format", "json"])
    by_flag = runner.invoke(app, ["plan", path, "--json"])
    assert by_format.exit_code == by_flag.exit_code == 0
    assert json.loads(by_format.output) == json.loads(by_flag.output)
    assert json.loads(by_format.output)[-1]["stage"] == "total"


def test_format_comes_from_the_environment_and_rejects_unknown_values():
    path = str(REPO / "configs/paper-8b.yaml")
    result = runner.invoke(app, ["plan", path], env={"BOLT_FORMAT": "tsv"})
    assert result.exit_code == 0 and result.output.startswith("stage\tmodel_params_b\t")
    bad = runner.invoke(app, ["plan", path, "--format", "csv"])
    assert bad.exit_code == 2


def _store_with_output(tmp_path) -> str:
    root = f"file://{tmp_path}/a"
    store = ArtifactStore.from_config(StorageConfig(root=root))
    fp = "abcdef0123456789"
    rows = [Query(id=f"q{i}", text="t", source="s") for i in range(1234)]
    shards = [store.write_shard(Stage.curation, fp, i, rows) for i in range(3)]
    upstream = {"bootstrap": "0123456789abcdef" * 4}
    store.commit(
        Manifest(
            stage=Stage.curation,
            fingerprint=fp,
            code_version="1",
            config={},
            upstream=upstream,
            shards=shards,
        )
    )
    return root


def test_artifacts_ls_table_and_tsv(tmp_path):
    root = _store_with_output(tmp_path)
    args = ["artifacts", "ls", "--root", root, "--config", TINY]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "3,702" in table.output and "abcdef0123456789" in table.output
    assert "…" not in table.output
    result = runner.invoke(app, [*args, "-f", "tsv"])
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(io.StringIO(result.output), delimiter="\t")
    assert list(row) == [
        "stage",
        "fingerprint",
        "created",
        "shards",
        "records",
        "files",
        "upstream",
    ]
    assert row["stage"] == "data" and row["fingerprint"] == "abcdef0123456789"
    assert (row["shards"], row["records"], row["files"]) == ("3", "3702", "0")
    assert row["upstream"] == "bootstrap:" + "0123456789abcdef" * 4  # whole, unlike the table
    as_json = runner.invoke(app, [*args, "--format", "json"])
    assert json.loads(as_json.output)[0]["records"] == 3702


def test_models_ls_tsv():
    result = runner.invoke(app, ["models", "ls", "--config", TINY, "--format", "tsv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output), delimiter="\t"))
    assert rows and set(rows[0]) == {"name", "source", "prepared"}
    assert {r["prepared"] for r in rows} <= {"true", "false"}


def test_console_is_the_terminal_width_only_on_a_terminal():
    on_tty = CliConsole(file=io.StringIO(), force_terminal=True, _environ={"COLUMNS": "60"})
    assert on_tty.width == 60
    piped = CliConsole(file=io.StringIO(), _environ={"COLUMNS": "60"})
    assert piped.width == UNBOUNDED_WIDTH
    assert CliConsole(file=io.StringIO(), width=100).width == 100  # an explicit width wins


def test_tsv_values_are_one_cell_each():
    assert tsv_value("a\tb\nc") == "a b c"
    assert tsv_value(["x", "y"]) == "x; y"
    assert tsv_value({"a": "1", "b": "2"}) == "a:1,b:2"
    assert (tsv_value(None), tsv_value(True), tsv_value(0.1 + 0.2)) == ("", "true", "0.3")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_line_rate_and_eta():
    clock = FakeClock()
    lines: list[str] = []
    progress = Progress(128, "bootstrap", clock=clock, emit=lines.append, every_s=30)
    assert lines == ["bootstrap: 0/128 shards (0%)"]  # a log shows the step began
    clock.now += 19.47
    line = progress.advance(37)
    # 37 shards in 19.47 s: 1.90 shards/s, 91 left -> 47.9 s.
    assert line == "bootstrap: 37/128 shards (28%), 1.9 shards/s, ETA 48s"
    assert progress.eta_s == pytest.approx(91 / (37 / 19.47))


def test_progress_in_a_log_is_rate_limited_and_ends_with_a_final_line():
    clock = FakeClock()
    lines: list[str] = []
    progress = Progress(10, "score", clock=clock, emit=lines.append, every_s=30)
    for _ in range(9):
        clock.now += 10
        progress.advance(note="812 tok/s")
    # Started at t=0; lines due at t>=30 (3 done), then t>=60 (6 done) and t>=90 (9 done).
    assert lines == [
        "score: 0/10 shards (0%)",
        "score: 3/10 shards (30%), 0.1 shards/s, ETA 1m10s, 812 tok/s",
        "score: 6/10 shards (60%), 0.1 shards/s, ETA 40s, 812 tok/s",
        "score: 9/10 shards (90%), 0.1 shards/s, ETA 10s, 812 tok/s",
    ]
    clock.now += 10
    progress.advance()
    assert lines[-1] == "score: 10/10 shards (100%) in 1m40s, 0.1 shards/s, 812 tok/s"
    progress.close()  # the final line is shown once
    assert len(lines) == 5


def test_progress_of_a_resumed_step_counts_only_new_work_in_its_rate():
    clock = FakeClock()
    lines: list[str] = []
    progress = Progress(100, "eval", unit="items", done=50, clock=clock, emit=lines.append)
    clock.now += 10
    assert progress.advance(10) == "eval: 60/100 items (60%), 1 items/s, ETA 40s"
    assert progress.close() == "eval: 60/100 items (60%), 1 items/s, ETA 40s"
    assert lines[-1] == progress.close() and len(lines) == 2  # stopped early: shown once


def test_progress_on_a_terminal_redraws_one_line():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock, stream = FakeClock(), Tty()
    with Progress(4, "answers", unit="shards", clock=clock, stream=stream) as progress:
        assert progress.interactive
        for _ in range(4):
            clock.now += 1
            progress.advance()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, redrawn with \r
    assert text.split("\r")[-1].rstrip() == "answers: 4/4 shards (100%) in 4s, 1 shards/s"
    assert "answers: 2/4 shards (50%), 1 shards/s, ETA 2s" in text


def test_progress_in_a_file_writes_lines_not_redraws(monkeypatch):
    monkeypatch.setenv("BOLT_PROGRESS_INTERVAL", "0")
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(2, "sft", unit="steps", clock=clock, stream=stream)
    assert not progress.interactive and progress.every_s == 0
    clock.now += 1
    progress.advance()
    clock.now += 1
    progress.advance()
    assert "\r" not in stream.getvalue()
    assert stream.getvalue().splitlines() == [
        "sft: 0/2 steps (0%)",
        "sft: 1/2 steps (50%), 1 steps/s, ETA 1s",
        "sft: 2/2 steps (100%) in 2s, 1 steps/s",
    ]


def test_durations():
    assert [format_duration(s) for s in (0.4, 48, 725, 11220)] == ["0s", "48s", "12m05s", "3h07m"]


def test_a_long_step_off_a_terminal_logs_its_start_and_end(capsys):
    with long_step("preparing m", unit="models"):
        pass
    with pytest.raises(RuntimeError), long_step("preparing n", unit="models"):
        raise RuntimeError("boom")
    assert capsys.readouterr().err.splitlines() == [
        "preparing m: 0/1 models (0%)",
        "preparing m: 1/1 models (100%) in 0s",
        "preparing n: 0/1 models (0%)",
        "preparing n: 0/1 models (0%), failed",
    ]


def test_run_summary_keeps_record_counts_whole(capsys):
    print_summary({"sft": {"fingerprint": "f" * 16, "records": 1_234_567, "uri": "file:///x"}})
    out = capsys.readouterr().out
    assert "1,234,567" in out and "f" * 16 in out and "file:///x" in out
