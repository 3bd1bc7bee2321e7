"""Every benchmark script still starts: its imports resolve and its `--help` prints usage.

The benchmarks import textrnn at the top of the script, so `--help` exercises the same
imports a real run needs (without writing any results file). The fast-layer benchmark's
worker processes (one per thread setting) also run once, at tiny sizes.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

SCRIPTS = sorted(p.name for p in (REPO / "benchmarks").glob("*.py") if p.name != "recording.py")


def test_every_benchmark_script_is_listed():
    assert SCRIPTS == [
        "capped_hypotheses.py",
        "charlm_ablation.py",
        "charlm_shakespeare.py",
        "decoding_benchmark.py",
        "exploding_gradients.py",
        "fast_layers.py",
        "long_range_memory.py",
        "numerics_options.py",
        "sentiment_recipe.py",
        "serving_load.py",
        "translation_recipe.py",
    ]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_prints_its_usage(script):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: ")


def quick_fast_layers(out, *extra, env=None):
    """Runs the fast-layer benchmark at tiny sizes on the char LSTM alone, writing `out`;
    returns the report it wrote."""
    script = str(REPO / "benchmarks" / "fast_layers.py")
    args = ["--quick", "--only", "char-lstm-512", "--no-sweep", "--no-memory", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, script, *args, *extra],
        capture_output=True, text=True, timeout=600, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_fast_layers_times_every_contender_under_both_thread_settings(tmp_path):
    out = tmp_path / "fast_layers.json"
    report = quick_fast_layers(out)
    # Each worker process runs with the pools it was meant to have.
    assert report["thread_pools_applied"] == {"default": [0, 0], "1x2": [1, 2]}
    row = report["cases"]["char-lstm-512"]
    assert set(row["contenders"]) == {"stock@default", "fast@default", "stock@1x2", "fast@1x2"}
    for contender in row["contenders"].values():
        assert len(contender["seconds"]) == report["repeats"] and contender["tokens_per_second"] > 0
    assert set(row["ratios"]) == {
        "fast@default / stock@default",
        "fast@1x2 / stock@1x2",
        "stock@1x2 / stock@default",
        "fast@1x2 / stock@default",
    }
    assert "| char-lstm-512 |" in out.with_suffix(".md").read_text()


def test_fast_layers_onednn_setting_turns_onednn_on_in_its_worker(tmp_path):
    """`--threads onednn` starts its worker with TF_ENABLE_ONEDNN_OPTS=1 (TensorFlow leaves
    oneDNN off by default on CPUs without AVX-512 VNNI/BF16, AVX-VNNI or AMX), whatever
    this machine's default is, and records it."""
    out = tmp_path / "fast_layers.json"
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    report = quick_fast_layers(out, "--threads", "default", "onednn", env=env)
    assert report["onednn"]["onednn"] is True
    assert set(report["onednn"]) == {"default", "onednn"}
    assert report["thread_pools_applied"] == {"default": [0, 0], "onednn": [0, 0]}
    assert "fast@onednn / stock@default" in report["cases"]["char-lstm-512"]["ratios"]
    assert "on (onednn)" in out.with_suffix(".md").read_text()
