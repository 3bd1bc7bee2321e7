"""The exploding-gradient demonstration (`benchmarks/exploding_gradients.py`), run small:
without clipping the ReLU RNN of spectral radius 1.2 ends in the training loop's
`NonFiniteLossError`; with `clipnorm` the same run finishes; the per-step gradient norms
come from the loop's own `gradient_norms.csv`."""

import json
import math
import sys

from conftest import REPO, TINY_CORPUS

sys.path.insert(0, str(REPO / "benchmarks"))
import exploding_gradients


def test_divergence_without_clipping_and_training_with_it(tmp_path):
    out, png = tmp_path / "explode.json", tmp_path / "explode.png"
    argv = ["--quick", "--corpus", str(TINY_CORPUS), "--seq-len", "50", "--batch", "8",
            "--validation-windows", "4", "--out", str(out), "--plot", str(png)]  # fmt: skip
    assert exploding_gradients.main(argv) == 0
    runs = {r["label"]: r for r in json.loads(out.read_text())["runs"]}
    assert set(runs) == {"relu, radius 1.2, no clipping", "relu, radius 1.2, clipnorm 1",
                         "relu, radius 0.9, no clipping", "tanh, radius 1.2, no clipping"}  # fmt: skip
    for r in runs.values():
        assert math.isclose(r["measured_spectral_radius"], r["radius"], rel_tol=1e-4)

    diverged = runs["relu, radius 1.2, no clipping"]
    assert diverged["ended"] == "NonFiniteLossError"
    # The loop names the step, and the CSV holds every step up to it.
    assert f"at step {diverged['steps']} " in diverged["error"]
    assert not math.isfinite(diverged["gradient_norms"][-1]) or diverged["max_gradient_norm"] > 1e3

    clipped = runs["relu, radius 1.2, clipnorm 1"]
    assert clipped["ended"] == "finished" and clipped["error"] is None
    assert clipped["steps"] == 30 and len(clipped["val_loss"]) == 3
    assert clipped["steps_clipped"] >= 1
    assert all(math.isfinite(v) for v in clipped["val_loss"])
    assert png.stat().st_size > 10_000
