"""Every benchmark script still starts: its imports resolve and its `--help` prints usage.

The benchmarks import textrnn at the top of the script, so `--help` exercises the same
imports a real run needs (without writing any results file).
"""

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
