"""Gradient flow ‖∂L_T/∂h_t‖: golden values from a closed form (vanilla RNN) and from
finite differences of an independent numpy implementation (every cell, two layers)."""

import csv

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_CORPUS

from textrnn import cli
from textrnn.diagnostics import gradient_flow as gf


def _weights(model):
    """The model's weights as float64 numpy: embedding, per-layer cells, projection."""
    emb = model.embedding.embeddings.numpy().astype(np.float64)
    cells = []
    for rnn in model.recurrent_layers:
        c = rnn.cell
        cells.append(
            (
                c.kernel.numpy().astype(np.float64),
                c.recurrent_kernel.numpy().astype(np.float64),
                c.bias.numpy().astype(np.float64),
            )
        )
    proj = (
        model.projection.kernel.numpy().astype(np.float64),
        model.projection.bias.numpy().astype(np.float64),
    )
    return emb, cells, proj


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_cell(cell, weights, x, state):
    """One step of Keras's SimpleRNN / LSTM / GRU (reset_after=True) cell in numpy."""
    kernel, recurrent, bias = weights
    if cell == "rnn":
        h = np.tanh(x @ kernel + state[0] @ recurrent + bias)
        return [h]
    if cell == "lstm":
        h, c = state
        i, f, g, o = np.split(x @ kernel + h @ recurrent + bias, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return [_sigmoid(o) * np.tanh(c), c]
    h = state[0]
    x_z, x_r, x_h = np.split(x @ kernel + bias[0], 3, axis=-1)
    h_z, h_r, h_h = np.split(h @ recurrent + bias[1], 3, axis=-1)
    z, r = _sigmoid(x_z + h_z), _sigmoid(x_r + h_r)
    candidate = np.tanh(x_h + r * h_h)
    return [z * h + (1.0 - z) * candidate]


def _numpy_losses(cell, weights, windows, eps):
    """Per-example L_T with `eps[l, t - 1]` added to layer l's h_t, in float64."""
    emb, cells, (proj_w, proj_b) = weights
    batch, steps = windows.shape[0], windows.shape[1] - 1
    units = cells[0][1].shape[0]
    width = 2 if cell == "lstm" else 1
    state = [[np.zeros([batch, units]) for _ in range(width)] for _ in cells]
    for t in range(steps):
        x = emb[windows[:, t]]
        for i, w in enumerate(cells):
            state[i] = _numpy_cell(cell, w, x, state[i])
            state[i][0] = state[i][0] + eps[i, t]
            x = state[i][0]
    logits = x @ proj_w + proj_b
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return -log_p[np.arange(batch), windows[:, steps]]


def _tiny_model(cell, units=5, num_layers=1, vocab=11, seed=3, **kwargs):
    model = gf.fresh_model(cell, vocab, units=units, num_layers=num_layers, seed=seed, **kwargs)
    return model


def _windows(vocab=11, batch=3, steps=8, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, size=[batch, steps + 1])


def test_a_vanilla_rnn_matches_the_product_of_jacobians():
    model = _tiny_model("rnn", embedding_dim=4)
    # Scale the recurrent weights up so that tanh saturates somewhat and the Jacobians'
    # diag(1 - h^2) factor matters.
    rnn = model.recurrent_layers[0].cell
    rnn.recurrent_kernel.assign(rnn.recurrent_kernel * 1.5)
    windows = _windows()
    emb, [(kernel, recurrent, bias)], (proj_w, proj_b) = _weights(model)
    steps = windows.shape[1] - 1
    hs = [np.zeros([windows.shape[0], recurrent.shape[0]])]
    for t in range(steps):
        hs.append(np.tanh(emb[windows[:, t]] @ kernel + hs[-1] @ recurrent + bias))
    logits = hs[-1] @ proj_w + proj_b
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p[np.arange(len(p)), windows[:, steps]] -= 1.0
    # Row-vector convention: g_t = dL_T/dh_t, g_{t} = g_{t+1} diag(1 - h_{t+1}^2) U^T,
    # i.e. dh_{t+1}/dh_t = diag(1 - h_{t+1}^2) U (U acting as h @ U).
    expected = [p @ proj_w.T]  # g_T
    for t in range(steps - 1, 0, -1):
        expected.append((expected[-1] * (1.0 - hs[t + 1] ** 2)) @ recurrent.T)
    expected = np.stack(expected[::-1])  # [T, batch, units], t = 1 ... T

    gradients, _ = gf.hidden_state_gradients(model, windows)
    assert gradients.shape == (1, steps, 3, 5)
    np.testing.assert_allclose(gradients[0], expected, atol=1e-5, rtol=0)
    flow = gf.gradient_flow(model, windows)
    norms = np.linalg.norm(expected, axis=-1)  # [T, batch]
    np.testing.assert_allclose(flow.norms[0], norms, atol=1e-5, rtol=0)
    np.testing.assert_allclose(flow.mean_norm(), norms[::-1].mean(-1), atol=1e-5, rtol=0)
    np.testing.assert_allclose(flow.std_norm(), norms[::-1].std(-1), atol=1e-5, rtol=0)
    # The gradients are not trivially small: the comparison above is a real one.
    assert norms[0].min() > 1e-3


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_two_layer_gradients_match_finite_differences_of_a_numpy_model(cell):
    model = _tiny_model(cell, units=3, num_layers=2, embedding_dim=4)
    windows = _windows(batch=2, steps=5, seed=1)
    weights = _weights(model)
    gradients, losses = gf.hidden_state_gradients(model, windows)
    eps = np.zeros(gradients.shape)
    np.testing.assert_allclose(_numpy_losses(cell, weights, windows, eps), losses, atol=1e-5)
    numeric = np.zeros(gradients.shape)
    delta = 1e-6
    for index in np.ndindex(*gradients.shape):
        up, down = eps.copy(), eps.copy()
        up[index] += delta
        down[index] -= delta
        b = index[2]
        numeric[index] = (
            _numpy_losses(cell, weights, windows, up)[b]
            - _numpy_losses(cell, weights, windows, down)[b]
        ) / (2 * delta)
    np.testing.assert_allclose(gradients, numeric, atol=2e-6, rtol=1e-4)
    # The bottom layer's h_T reaches the loss only through the top layer at step T.
    assert np.abs(numeric[0, -1]).max() > 1e-4


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_step_loop_reproduces_the_models_teacher_forced_loss(cell):
    # Layer normalisation included: the loop must feed the layer above as `step()` does.
    model = _tiny_model(cell, units=6, num_layers=2, layer_norm=True)
    windows = _windows(steps=7)
    _, losses = gf.hidden_state_gradients(model, windows)
    logits = model(tf.constant(windows[:, :-1]))[:, -1]
    expected = tf.nn.sparse_softmax_cross_entropy_with_logits(windows[:, -1], logits)
    np.testing.assert_allclose(losses, expected.numpy(), atol=1e-5)


def test_a_contracting_vanilla_rnn_decays_at_least_geometrically():
    # |tanh'| <= 1, so each step back multiplies the norm by at most the spectral norm
    # of the recurrent matrix: here 0.5, making the decay provable, not just likely.
    model = _tiny_model("rnn", units=8)
    cell = model.recurrent_layers[0].cell
    u = cell.recurrent_kernel.numpy()
    cell.recurrent_kernel.assign(0.5 * u / np.linalg.norm(u, 2))
    flow = gf.gradient_flow(model, _windows(batch=4, steps=30))
    per_example = flow.norms[0][::-1]  # [distance, batch]
    assert np.all(per_example[1:] <= 0.5 * per_example[:-1] + 1e-12)
    assert flow.mean_norm()[20] < 1e-6 * flow.mean_norm()[0]


def test_bad_inputs_are_clear_errors():
    model = _tiny_model("gru")
    with pytest.raises(ValueError, match=r"shape=\[9\]"):
        gf.hidden_state_gradients(model, np.zeros([9], np.int32))
    with pytest.raises(ValueError, match=r"Received: shape=\[2, 1\]"):
        gf.hidden_state_gradients(model, np.zeros([2, 1], np.int32))
    with pytest.raises(ValueError, match="Received: id 11"):
        gf.hidden_state_gradients(model, np.full([2, 4], 11))
    with pytest.raises(ValueError, match="dtype=float"):
        gf.hidden_state_gradients(model, np.zeros([2, 4]))
    with pytest.raises(ValueError, match="Received: Dense"):
        gf.hidden_state_gradients(tf.keras.layers.Dense(3), np.zeros([2, 4], np.int32))
    with pytest.raises(ValueError, match="window \\+ 1 = 11"):
        gf.sample_windows(np.arange(10), window=10, batch=2, seed=0)
    with pytest.raises(ValueError, match="seed=-1"):
        gf.sample_windows(np.arange(10), window=3, batch=2, seed=-1)
    with pytest.raises(ValueError, match="cell="):
        gf.fresh_model("transformer", 10)
    flow = gf.gradient_flow(model, _windows(steps=3))
    with pytest.raises(ValueError, match="layer=1"):
        flow.mean_norm(1)
    with pytest.raises(ValueError, match="at least one"):
        gf.plot_gradient_flow([], "never.png")


def test_sampled_windows_are_corpus_slices_reproducible_by_seed():
    ids = np.arange(1000)
    a = gf.sample_windows(ids, window=20, batch=5, seed=7)
    assert a.shape == (5, 21) and a.dtype == np.int32
    np.testing.assert_array_equal(np.diff(a, axis=1), 1)  # consecutive ids
    np.testing.assert_array_equal(a, gf.sample_windows(ids, window=20, batch=5, seed=7))
    assert not np.array_equal(a, gf.sample_windows(ids, window=20, batch=5, seed=8))


def test_the_csv_and_the_png_are_written_with_the_documented_columns(tmp_path):
    model = _tiny_model("lstm", num_layers=2)
    flows = [
        gf.gradient_flow(model, _windows(steps=6), label="lstm a"),
        gf.gradient_flow(_tiny_model("rnn"), _windows(steps=6), label="rnn b"),
    ]
    path = gf.write_csv(flows, tmp_path / "sub" / "flow.csv")
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert (
        tuple(rows[0])
        == gf.CSV_COLUMNS
        == (
            "label",
            "cell",
            "layer",
            "distance",
            "t",
            "mean_norm",
            "std_norm",
        )
    )
    assert len(rows) == 2 * 6 + 1 * 6
    top = [r for r in rows if r["label"] == "lstm a" and r["layer"] == "1"]
    assert [int(r["distance"]) for r in top] == list(range(6))
    assert [int(r["t"]) for r in top] == [6, 5, 4, 3, 2, 1]
    np.testing.assert_allclose(
        [float(r["mean_norm"]) for r in top], flows[0].mean_norm(), rtol=1e-6
    )
    np.testing.assert_allclose([float(r["std_norm"]) for r in top], flows[0].std_norm(), rtol=1e-6)
    assert {r["cell"] for r in rows} == {"lstm", "rnn"}

    png = gf.plot_gradient_flow(flows, tmp_path / "plots" / "flow.png", title="t")
    from matplotlib.image import imread

    image = imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_the_cli_measures_fresh_models_end_to_end(tmp_path, capsys):
    out_csv, out_png = tmp_path / "g.csv", tmp_path / "g.png"
    status = cli.main(
        [
            "diagnose",
            "gradients",
            "--fresh",
            "rnn",
            "--fresh",
            "gru",
            "--corpus",
            str(TINY_CORPUS),
            "--units",
            "8",
            "--window",
            "12",
            "--batch",
            "3",
            "--out-csv",
            str(out_csv),
            "--out-png",
            str(out_png),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "rnn (init): T=12" in out and "gru (init): T=12" in out
    assert "distance 0: " in out and "10: " in out and "11: " in out
    with out_csv.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 12
    assert {r["label"] for r in rows} == {"rnn (init)", "gru (init)"}
    assert out_png.stat().st_size > 1000


def test_the_cli_measures_a_trained_run(tiny_run, tmp_path, capsys):
    out_csv = tmp_path / "run.csv"
    status = cli.main(
        [
            "diagnose",
            "gradients",
            "--run-dir",
            str(tiny_run),
            "--fresh",
            "lstm",
            "--units",
            "8",
            "--window",
            "20",
            "--batch",
            "2",
            "--out-csv",
            str(out_csv),
            "--out-png",
            str(tmp_path / "run.png"),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    with out_csv.open(encoding="utf-8") as f:
        labels = {r["label"] for r in csv.DictReader(f)}
    assert labels == {str(tiny_run), "lstm (init)"}


def test_the_cli_reports_bad_requests(tmp_path, capsys):
    assert cli.main(["diagnose", "gradients"]) == 2
    assert "Nothing to measure" in capsys.readouterr().err
    missing = tmp_path / "nowhere"
    assert cli.main(["diagnose", "gradients", "--run-dir", str(missing)]) == 2
    assert "No run directory at" in capsys.readouterr().err
    args = ["diagnose", "gradients", "--fresh", "rnn", "--corpus", str(TINY_CORPUS)]
    assert cli.main([*args, "--window", "5000"]) == 2
    assert "window + 1 = 5001" in capsys.readouterr().err
