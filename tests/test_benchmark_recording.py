"""Tests for benchmarks/recording.py: results of concurrent benchmarks are all kept."""

import importlib.util
import json
import multiprocessing
import pathlib

RECORDING = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "recording.py"


def _recording():
    spec = importlib.util.spec_from_file_location("recording", RECORDING)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(all_results):
    return "\n".join(f"| {label} | {r['value']} |" for label, r in sorted(all_results.items()))


def _record_many(recipe_dir, first):
    recording = _recording()
    for i in range(first, first + 10):
        recording.record(pathlib.Path(recipe_dir), f"run{i:02d}", {"value": i}, "cmd", _table)


def test_concurrent_records_keep_every_row(tmp_path):
    (tmp_path / "results.md").write_text(
        "intro\n<!-- results-table:start -->\nold\n<!-- results-table:end -->\nnotes\n"
    )
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_record_many, args=(tmp_path, 10 * k)) for k in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted(results) == [f"run{i:02d}" for i in range(40)]
    assert all(results[f"run{i:02d}"]["value"] == i for i in range(40))
    md = (tmp_path / "results.md").read_text()
    assert md.startswith("intro\n") and md.endswith("notes\n") and "old" not in md
    assert md.count("| run") == 40
    assert not list(tmp_path.glob("*.tmp"))
