"""`[train] intra_op_threads` / `inter_op_threads`: TensorFlow's pools, set before it starts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import REPO, TINY_OVERRIDES

from textrnn.training.config import load_config
from textrnn.training.threads import apply_thread_settings, current_thread_settings


def test_default_keeps_tensorflows_pools():
    before = current_thread_settings()
    assert apply_thread_settings(load_config(None).train) is True
    assert current_thread_settings() == before


def test_too_late_in_a_running_process_warns_and_goes_on():
    tf.reduce_sum(tf.ones([2])).numpy()  # TensorFlow has started: its pools are fixed
    wanted = ["train.intra_op_threads=1", "train.inter_op_threads=3"]
    with pytest.warns(RuntimeWarning, match="not applied: TensorFlow had already started"):
        assert apply_thread_settings(load_config(None, wanted).train) is False
    assert current_thread_settings() != {"intra_op": 1, "inter_op": 3}


def test_the_cli_sets_the_pools_and_results_record_them(tmp_path):
    args = [sys.executable, "-m", "textrnn.cli", "train", "charlm", "--run-dir", str(tmp_path)]
    args += ["--recipe", str(REPO / "models/charlm-shakespeare/config.toml"), "--quiet"]
    for override in [*TINY_OVERRIDES, "train.intra_op_threads=1", "train.inter_op_threads=2"]:
        args += ["--set", override]
    done = subprocess.run(args, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "not applied" not in done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["op_threads"] == {"intra_op": 1, "inter_op": 2}
