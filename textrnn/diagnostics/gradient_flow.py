"""Gradient flow through the recurrence: ‖∂L_T/∂h_t‖ for every earlier step t.

`L_T` is the cross-entropy of a character model's prediction at the last step `T` of a
window (the next id after the window), and `h_t` is a recurrent layer's hidden state
after step `t`. The derivative is the *total* one, through every later step of the
recurrence and every layer above; the gradient with respect to a layer's output sequence
would give only the direct path, which is zero for `t < T` under teacher forcing.

How it is measured: the model is run one step at a time (the cells of `CharLM.step`,
opened up so that each layer's state can be reached), a zero tensor `ε_t` is added to
each layer's `h_t` as soon as the cell produces it — the perturbed `h_t` is both the
state carried to step `t + 1` and the input of the layer above — and one
`tf.GradientTape` differentiates `L_T` with respect to every `ε_t`. Since `∂h_t/∂ε_t`
is the identity, `∂L_T/∂ε_t = ∂L_T/∂h_t`. The loss is summed over the batch, so
example `b`'s gradient is row `b` (rows do not interact).

For an LSTM only `h_t` is perturbed, not the cell state `c_t`: `c_t` is computed from
`h_{t-1}`, not from `h_t`, so `∂L_T/∂h_t` already includes every path from `h_t` onwards
(through `c_{t+1}`, `h_{t+1}`, ...); the path along the cells that bypasses `h_t`
is the LSTM's own and is what keeps `∂L_T/∂h_t` large far back.

Every recurrent layer is measured; the CSV holds one row per layer and step, and the
plot draws the top layer (the one under the output projection) unless told otherwise.

Example:
    >>> flow = gradient_flow(model, sample_windows(ids, window=100, batch=16, seed=0))
    >>> flow.mean_norm().shape   # top layer, indexed by distance T - t = 0 ... 99
    (100,)
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf

from textrnn.charlm.data import load_char_corpus
from textrnn.charlm.model import CharLM
from textrnn.diagnostics.char_runs import load_char_run
from textrnn.layers.checks import one_of, positive_int
from textrnn.layers.recurrent import CELLS
from textrnn.text.char_tokenizer import CharTokenizer

CSV_COLUMNS = ("label", "cell", "layer", "distance", "t", "mean_norm", "std_norm")
_DPI = 100


@dataclasses.dataclass(frozen=True)
class GradientFlow:
    """Per-example gradient norms of one model on one batch of windows.

    Attributes:
        label: a name for the model (a run directory, `"lstm (init)"`, ...).
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        norms: float64 `[num_layers, T, batch]`; `norms[l, t - 1, b]` is
            ‖∂L_T/∂h_t‖ of layer `l` (0 = the bottom layer) for example `b`, t = 1 ... T.
        losses: float64 `[batch]`, each example's last-step cross-entropy `L_T` (nats).
    """

    label: str
    cell: str
    norms: np.ndarray
    losses: np.ndarray

    @property
    def num_layers(self) -> int:
        return self.norms.shape[0]

    @property
    def window(self) -> int:
        """T, the number of steps of each window."""
        return self.norms.shape[1]

    def _layer(self, layer: int) -> np.ndarray:
        if not -self.num_layers <= layer < self.num_layers:
            raise ValueError(
                f"Expected a layer index in [-{self.num_layers}, {self.num_layers}). "
                f"Received: layer={layer}"
            )
        return self.norms[layer][::-1]  # distance T - t = 0 first

    def mean_norm(self, layer: int = -1) -> np.ndarray:
        """`[T]` mean over the batch of ‖∂L_T/∂h_t‖, indexed by distance `T - t`."""
        return self._layer(layer).mean(axis=-1)

    def std_norm(self, layer: int = -1) -> np.ndarray:
        """`[T]` standard deviation over the batch (population, ddof=0), by distance."""
        return self._layer(layer).std(axis=-1)


def _check_model(model):
    needed = ("embedding", "recurrent_layers", "projection", "norms", "cell", "vocab_size")
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise ValueError(
            "Expected a character model (a `CharLM`: embedding, recurrent layers, "
            f"projection). Received: {type(model).__name__} without {', '.join(missing)}"
        )


def _check_windows(windows, vocab_size: int) -> np.ndarray:
    ids = np.asarray(windows)
    if ids.ndim != 2 or ids.shape[1] < 2 or ids.shape[0] < 1:
        raise ValueError(
            "Expected windows of shape [batch >= 1, T + 1 >= 2] (T inputs, then the id "
            f"the last step predicts). Received: shape={list(ids.shape)}"
        )
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"Expected integer token ids. Received: dtype={ids.dtype}")
    if ids.min() < 0 or ids.max() >= vocab_size:
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise ValueError(f"Expected ids in [0, {vocab_size}). Received: id {bad}")
    return ids.astype(np.int32)


def hidden_state_gradients(model, windows):
    """∂L_T/∂h_t for every layer, step and example, through the whole recurrence.

    Args:
        model: a built `CharLM` (any cell, any number of layers); run with
            `training=False` (no dropout).
        windows: int array `[batch, T + 1]`: the model reads ids `0 ... T - 1` of each
            row from a zero state, and `L_T` is the cross-entropy of its last
            prediction against id `T`.

    Returns:
        `(gradients, losses)`: float64 numpy arrays `[num_layers, T, batch, units]`
        (`gradients[l, t - 1, b]` = ∂L_T/∂h_t of layer `l` for example `b`) and
        `[batch]` (each example's `L_T`).

    Raises:
        ValueError: `model` is not a character model, or `windows` is not a 2-D
            integer array with at least two columns and ids below `model.vocab_size`.

    Example:
        >>> grads, losses = hidden_state_gradients(model, np.zeros([4, 11], np.int32))
        >>> grads.shape, losses.shape  # a one-layer model with 32 units
        ((1, 10, 4, 32), (4,))
    """
    _check_model(model)
    ids = _check_windows(windows, model.vocab_size)
    batch, steps = ids.shape[0], ids.shape[1] - 1
    num_layers = len(model.recurrent_layers)
    state = [list(layer_state) for layer_state in model.initial_state(batch)]
    dtype = state[0][0].dtype
    eps = [[tf.zeros_like(state[0][0]) for _ in range(steps)] for _ in range(num_layers)]
    with tf.GradientTape() as tape:
        tape.watch(eps)
        embedded = model.embedding(tf.constant(ids[:, :steps]))
        for t in range(steps):
            x = tf.cast(embedded[:, t], dtype)
            for i, rnn in enumerate(model.recurrent_layers):
                _, new_state = rnn.cell(x, state[i], training=False)
                new_state = list(new_state) if isinstance(new_state, (list, tuple)) else [new_state]
                # The cell's output is its h; the perturbed h feeds both the next step
                # and the layer above, as in `CharLM.step`.
                new_state[0] = new_state[0] + eps[i][t]
                state[i] = new_state
                x = model.norms[i](new_state[0]) if model.norms else new_state[0]
        logits = tf.cast(model.projection(x), tf.float32)
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.constant(ids[:, steps]), logits=logits
        )
        total = tf.reduce_sum(losses)
    grads = tape.gradient(total, eps, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    gradients = np.stack(
        [np.stack([g.numpy().astype(np.float64) for g in layer]) for layer in grads]
    )
    return gradients, losses.numpy().astype(np.float64)


def gradient_flow(model, windows, *, label=None) -> GradientFlow:
    """The per-example norms ‖∂L_T/∂h_t‖ of `hidden_state_gradients`, ready to save.

    Args:
        model: a built `CharLM`.
        windows: int array `[batch, T + 1]` (see `hidden_state_gradients`).
        label: the name written in the CSV and the plot legend (default: the cell).

    Returns:
        A `GradientFlow`.

    Raises:
        ValueError: as `hidden_state_gradients`.

    Example:
        >>> flow = gradient_flow(model, windows, label="gru (init)")
        >>> flow.mean_norm()[[0, 10]]  # distance 0 and 10, top layer
        array([0.41, 0.0032])
    """
    gradients, losses = hidden_state_gradients(model, windows)
    norms = np.linalg.norm(gradients, axis=-1)
    return GradientFlow(
        label=str(label if label is not None else model.cell),
        cell=model.cell,
        norms=norms,
        losses=losses,
    )


def sample_windows(ids, window: int, batch: int, seed: int) -> np.ndarray:
    """`batch` windows of `window + 1` consecutive ids at seeded random offsets.

    Offsets are drawn uniformly with replacement from `[0, len(ids) - window - 1]` with
    `numpy.random.default_rng(seed)`.

    Args:
        ids: 1-D integer ids (an encoded text).
        window: T, the steps the model reads; each row holds `T + 1` ids.
        batch: number of windows.
        seed: a non-negative integer.

    Returns:
        int32 `[batch, window + 1]`.

    Raises:
        ValueError: non-positive `window` / `batch`, a negative `seed`, or fewer than
            `window + 1` ids.

    Example:
        >>> sample_windows(np.arange(100), window=4, batch=2, seed=0).shape
        (2, 5)
    """
    positive_int("window", window)
    positive_int("batch", batch)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Expected a non-negative integer for `seed`. Received: seed={seed!r}")
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"Expected 1-D integer ids. Received: shape={list(ids.shape)}")
    if ids.shape[0] < window + 1:
        raise ValueError(
            f"Need at least window + 1 = {window + 1} ids for one window. "
            f"Received: {ids.shape[0]} ids"
        )
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, ids.shape[0] - window, size=batch)
    return ids[starts[:, None] + np.arange(window + 1)[None, :]].astype(np.int32)


def fresh_model(cell, vocab_size, *, units=128, num_layers=1, embedding_dim=64, seed=0, **kwargs):
    """A `CharLM` at initialisation (Keras's default initialisers), built.

    Calls `keras.utils.set_random_seed(seed)` first (which seeds Python, numpy and
    TensorFlow globally), so the same arguments give the same weights. Other keyword
    arguments (`layer_norm`, ...) go to `CharLM`.

    Raises:
        ValueError: an unknown `cell` or non-positive sizes.

    Example:
        >>> fresh_model("rnn", vocab_size=70, units=64).cell
        'rnn'
    """
    one_of("cell", cell, CELLS)
    keras.utils.set_random_seed(seed)
    model = CharLM(
        vocab_size=vocab_size,
        cell=cell,
        units=units,
        num_layers=num_layers,
        embedding_dim=embedding_dim,
        **kwargs,
    )
    model.build()
    return model


def _validation_ids(tokenizer, corpus) -> np.ndarray:
    text = load_char_corpus(corpus)["validation"]
    return tokenizer.encode_text(text)


def measure_run(run_dir, *, window, batch, seed=0, corpus=None, label=None) -> GradientFlow:
    """Measures a trained character-model run on windows of its validation text.

    Args:
        run_dir: a finished `charlm` run directory (`textrnn.training.runs.load_run`).
        window: T, steps per window.
        batch: number of windows (drawn with `sample_windows(..., seed)`).
        seed: seed of the window offsets.
        corpus: a registered corpus name or a text file; its validation part (the last
            10%) is cut into windows. Default: the run's own `data.dataset`.
        label: default: the run directory as given.

    Returns:
        A `GradientFlow`.

    Raises:
        ValueError: the run is not a character-model run, or the text is too short.
        FileNotFoundError: no run or no corpus there.

    Example:
        >>> measure_run("runs/shakes", window=200, batch=32).mean_norm()[100]
        0.0041
    """
    model, tokenizer, cfg = load_char_run(run_dir, "gradient flow is measured on")
    if corpus is None:
        if cfg is None:
            raise ValueError(f"{run_dir} has no config.toml naming its corpus: give `corpus`.")
        corpus = cfg.data.dataset
    ids = _validation_ids(tokenizer, corpus)
    windows = sample_windows(ids, window, batch, seed)
    return gradient_flow(model, windows, label=label or os.fspath(run_dir))


def measure_fresh(
    cell, corpus, *, window, batch, seed=0, units=128, num_layers=1, tokenizer=None
) -> GradientFlow:
    """Measures a freshly initialised `CharLM` on windows of a corpus's validation text.

    Args:
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        corpus: a registered corpus name or a text file.
        window, batch, seed: as `measure_run` (`seed` also seeds the weights).
        units, num_layers: the model's size.
        tokenizer: default: a `CharTokenizer` of the corpus's training part.

    Returns:
        A `GradientFlow` labelled `"<cell> (init)"`.

    Raises:
        ValueError: an unknown cell, non-positive sizes, or a text too short.
        FileNotFoundError: no such corpus.

    Example:
        >>> measure_fresh("rnn", "tinyshakespeare", window=100, batch=16).window
        100
    """
    one_of("cell", cell, CELLS)
    splits = load_char_corpus(corpus)
    tokenizer = tokenizer or CharTokenizer.from_text(splits["train"])
    windows = sample_windows(tokenizer.encode_text(splits["validation"]), window, batch, seed)
    model = fresh_model(cell, tokenizer.vocab_size, units=units, num_layers=num_layers, seed=seed)
    return gradient_flow(model, windows, label=f"{cell} (init)")


def write_csv(flows, path) -> pathlib.Path:
    """Writes the flows as CSV, one row per flow, layer and step.

    Columns (`CSV_COLUMNS`): `label`, `cell`, `layer` (0 = bottom), `distance` (T - t),
    `t` (1 ... T, the step after which h_t is taken), `mean_norm` and `std_norm` (mean and
    population standard deviation over the batch of ‖∂L_T/∂h_t‖). Rows run by flow, layer,
    then distance 0, 1, ...

    Returns:
        `path` as a `pathlib.Path`; missing parent folders are created.

    Example:
        >>> write_csv([flow], "out/gradients.csv")
        PosixPath('out/gradients.csv')
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for flow in flows:
            for layer in range(flow.num_layers):
                means, stds = flow.mean_norm(layer), flow.std_norm(layer)
                for distance in range(flow.window):
                    writer.writerow(
                        [
                            flow.label,
                            flow.cell,
                            layer,
                            distance,
                            flow.window - distance,
                            f"{means[distance]:.6e}",
                            f"{stds[distance]:.6e}",
                        ]
                    )
    return path


def plot_gradient_flow(flows, path, *, layer=-1, title=None) -> pathlib.Path:
    """Draws mean ‖∂L_T/∂h_t‖ against the distance T - t, log-scale y, one line per flow.

    Zero norms (underflow far back in a vanilla RNN) are left out of the log scale.

    Args:
        flows: `GradientFlow`s (e.g. one per cell, or one per checkpoint).
        path: the PNG to write; missing parent folders are created.
        layer: which recurrent layer of each flow to draw (default: the top one).
        title: optional figure title.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ValueError: no flows, or a layer index that a flow does not have.

    Example:
        >>> plot_gradient_flow([rnn_flow, lstm_flow], "out/gradients.png")
        PosixPath('out/gradients.png')
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    flows = list(flows)
    if not flows:
        raise ValueError("Expected at least one gradient flow to draw. Received: none")
    figure = Figure(figsize=(7.0, 4.5), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for flow in flows:
        means = flow.mean_norm(layer)
        axes.plot(np.arange(flow.window), np.where(means > 0, means, np.nan), label=flow.label)
    axes.set_yscale("log")
    axes.set_xlabel("distance T − t (steps back from the predicted character)")
    axes.set_ylabel("mean ‖∂L_T / ∂h_t‖")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    if title is not None:
        axes.set_title(title)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=_DPI, bbox_inches="tight")
    return path


def summarize(flow: GradientFlow, distances=(0, 1, 10, 100)) -> str:
    """One line: the top layer's mean norm at a few distances (those within the window).

    Example:
        >>> summarize(flow)
        'rnn (init): T=200, L_T=4.17; mean |dL_T/dh_t| at distance 0: 0.41, 1: 0.2, ...'
    """
    means = flow.mean_norm()
    shown = [d for d in distances if d < flow.window]
    if flow.window - 1 not in shown:
        shown.append(flow.window - 1)
    parts = ", ".join(f"{d}: {means[d]:.3g}" for d in shown)
    return (
        f"{flow.label}: T={flow.window}, L_T={flow.losses.mean():.3f}; "
        f"mean |dL_T/dh_t| at distance {parts}"
    )
