"""Cell activations of a character model over a text, drawn as coloured text, and a
search for units that track simple features of the text.

After Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent Networks"
(2015). The model reads the text one character at a time from a zero state, running the
recurrent *cells* of `CharLM.step` (as `gradient_flow` does), and every layer's state is
recorded after each character: the hidden state `h`, and for an LSTM the cell state `c`
and the gates, for a GRU the update and reset gates. The gates are recomputed from the
cell's own weights on the same inputs (Keras's gate order: LSTM `i, f, g, o`; GRU
`z, r, h`):

- LSTM: `input = σ(z_i)`, `forget = σ(z_f)`, `candidate = tanh(z_g)`, `output = σ(z_o)`
  with `z = x W + h_{t-1} U + b`; then `c_t = forget * c_{t-1} + input * candidate` and
  `h_t = output * tanh(c_t)`.
- GRU (`reset_after=True`, as `CharLM` builds it): `update = σ(x W_z + h U_z + b_z)`,
  `reset = σ(x W_r + h U_r + b_r)`, `candidate = tanh(x W_h + reset * (h U_h + b'_h))`,
  `h_t = update * h_{t-1} + (1 - update) * candidate`.

Row `t` of every array is the value after reading character `t` of the text.

Example:
    >>> acts = unit_activations(model, tokenizer, "ROMEO:\\nO, she doth teach...")
    >>> acts.get("c").shape             # top layer, [T, units]
    (26, 256)
    >>> top_units(acts.get("h"), text_features(acts.text), k=3)["position_in_line"]
    [(17, 0.71), (203, -0.64), (88, 0.52)]
"""

from __future__ import annotations

import dataclasses
import html
import pathlib

import numpy as np
import tensorflow as tf

from textrnn.charlm.data import load_char_corpus
from textrnn.diagnostics.char_runs import load_char_run
from textrnn.layers.checks import positive_int
from textrnn.text.utf8 import read_text_file

GATES = {
    "rnn": (),
    "lstm": ("input", "forget", "candidate", "output"),
    "gru": ("update", "reset", "candidate"),
}
"""The gate values recorded per cell (besides `h`, and `c` for an LSTM)."""

FEATURES = (
    "inside_quotes",
    "inside_brackets",
    "position_in_line",
    "chars_to_line_end",
    "uppercase_line",
    "position_in_word",
)
"""The text features of `text_features`, in order."""

_SIGMOID_STATES = ("input", "forget", "output", "update", "reset")


@dataclasses.dataclass(frozen=True)
class Activations:
    """What a character model's recurrent layers held after each character of a text.

    Attributes:
        text: the text read (one row per character).
        cell: `"rnn"`, `"lstm"` or `"gru"`.
        layers: one dict per recurrent layer (0 = the bottom one), mapping `"h"`, `"c"`
            (LSTM) and the gate names of `GATES[cell]` to float64 arrays `[T, units]`.
    """

    text: str
    cell: str
    layers: tuple

    @property
    def states(self) -> tuple:
        """The names each layer holds: `("h",)`, `("h", "c", "input", ...)`, ..."""
        return tuple(self.layers[0])

    def get(self, state: str = "h", layer: int = -1) -> np.ndarray:
        """The `[T, units]` values of one state or gate of one layer.

        Raises:
            ValueError: a state this cell does not have, or a layer index out of range.
        """
        n = len(self.layers)
        if (
            isinstance(layer, bool)
            or not isinstance(layer, (int, np.integer))
            or not -n <= layer < n
        ):
            raise ValueError(f"Expected a layer index in [-{n}, {n}). Received: layer={layer!r}")
        if state not in self.layers[layer]:
            raise ValueError(
                f"Expected one of {', '.join(self.states)} for a {self.cell} cell. "
                f"Received: state={state!r}"
            )
        return self.layers[layer][state]

    def unit(self, unit: int, state: str = "h", layer: int = -1) -> np.ndarray:
        """The `[T]` values of one unit.

        Raises:
            ValueError: as `get`, or a unit index outside `[0, units)`.
        """
        values = self.get(state, layer)
        units = values.shape[1]
        if (
            isinstance(unit, bool)
            or not isinstance(unit, (int, np.integer))
            or not 0 <= unit < units
        ):
            raise ValueError(f"Expected a unit in [0, {units}). Received: unit={unit!r}")
        return values[:, unit]


def _weights(cell):
    bias = cell.bias if cell.use_bias else None
    return cell.kernel, cell.recurrent_kernel, bias


def _gates(kind, cell, x, h_prev):
    """The gate values of one step (a dict of `[batch, units]` tensors)."""
    kernel, recurrent, bias = _weights(cell)
    act, gate = cell.activation, cell.recurrent_activation
    if kind == "lstm":
        z = tf.matmul(x, kernel) + tf.matmul(h_prev, recurrent)
        if bias is not None:
            z = z + bias
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=-1)
        return {"input": gate(z_i), "forget": gate(z_f), "candidate": act(z_g), "output": gate(z_o)}
    x_proj = tf.matmul(x, kernel)
    if cell.reset_after:
        inner = tf.matmul(h_prev, recurrent)
        if bias is not None:
            x_proj, inner = x_proj + bias[0], inner + bias[1]
        x_z, x_r, x_h = tf.split(x_proj, 3, axis=-1)
        h_z, h_r, h_h = tf.split(inner, 3, axis=-1)
        update, reset = gate(x_z + h_z), gate(x_r + h_r)
        candidate = act(x_h + reset * h_h)
    else:
        if bias is not None:
            x_proj = x_proj + bias
        x_z, x_r, x_h = tf.split(x_proj, 3, axis=-1)
        u_zr, u_h = recurrent[:, : 2 * cell.units], recurrent[:, 2 * cell.units :]
        h_z, h_r = tf.split(tf.matmul(h_prev, u_zr), 2, axis=-1)
        update, reset = gate(x_z + h_z), gate(x_r + h_r)
        candidate = act(x_h + tf.matmul(reset * h_prev, u_h))
    return {"update": update, "reset": reset, "candidate": candidate}


def _record_fn(model):
    """A compiled scan over time: one step of every layer's cell per character."""
    kind = model.cell
    names = ("h", "c") + GATES[kind] if kind == "lstm" else ("h",) + GATES[kind]

    def step(carry, x):
        x = x[None, :]
        out = []
        for i, rnn in enumerate(model.recurrent_layers):
            prev = carry[i]
            state = [prev["h"], prev["c"]] if kind == "lstm" else [prev["h"]]
            gates = _gates(kind, rnn.cell, x, prev["h"]) if GATES[kind] else {}
            _, new_state = rnn.cell(x, state, training=False)
            new_state = list(new_state) if isinstance(new_state, (list, tuple)) else [new_state]
            record = {"h": new_state[0], **gates}
            if kind == "lstm":
                record["c"] = new_state[1]
            out.append({name: record[name] for name in names})
            x = model.norms[i](new_state[0]) if model.norms else new_state[0]
        return tuple(out)

    @tf.function(reduce_retracing=True)
    def run(embedded, zero):
        init = tuple({name: zero for name in names} for _ in model.recurrent_layers)
        return tf.scan(step, embedded, initializer=init)

    return run, names


def unit_activations(model, tokenizer, text) -> Activations:
    """Runs `text` through a character model one character at a time and records its state.

    Args:
        model: a built `CharLM` (any cell, any number of layers); run without dropout.
        tokenizer: the run's `CharTokenizer` (characters it does not know read as its
            unknown id).
        text: a non-empty string.

    Returns:
        An `Activations` with `[len(text), units]` float64 arrays per layer and state.

    Raises:
        ValueError: `model` is not a character model, or `text` is empty or not a string.

    Example:
        >>> acts = unit_activations(model, tokenizer, "First Citizen:\\n")
        >>> acts.states
        ('h', 'c', 'input', 'forget', 'candidate', 'output')
    """
    needed = ("embedding", "recurrent_layers", "projection", "norms", "cell", "units")
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise ValueError(
            "Expected a character model (a `CharLM`). Received: "
            f"{type(model).__name__} without {', '.join(missing)}"
        )
    if not isinstance(text, str) or not text:
        raise ValueError(f"Expected a non-empty text. Received: {text!r:.40}")
    ids = np.asarray(tokenizer.encode_text(text), np.int32)
    if ids.shape != (len(text),):
        raise ValueError(
            f"Expected one id per character; the tokenizer gave {ids.shape[0]} ids for "
            f"{len(text)} characters."
        )
    dtype = model.initial_state(1)[0][0].dtype
    embedded = tf.cast(model.embedding(tf.constant(ids)), dtype)
    zero = tf.zeros([1, model.units], dtype)
    run, names = _record_fn(model)
    recorded = run(embedded, zero)
    layers = tuple(
        {name: layer[name].numpy()[:, 0, :].astype(np.float64) for name in names}
        for layer in recorded
    )
    return Activations(text=text, cell=model.cell, layers=layers)


def text_features(text: str) -> dict[str, np.ndarray]:
    """Simple features of each character position, for the unit search.

    All are float64 `[len(text)]`, the value at the position of character `t`:

    - `inside_quotes`: 1 from an opening `"` up to (not including) the closing one. Only
      double quotes count: in Shakespeare `'` is an apostrophe (`'tis`, `o'er`).
    - `inside_brackets`: the depth of `(` ... `)` nesting (after reading the character,
      so an opening bracket counts as inside, the closing one as outside; never below 0).
    - `position_in_line`: characters since the last newline (0 at the newline itself).
    - `chars_to_line_end`: characters until the next newline (0 at it; a text without a
      final newline counts as if one followed its last character).
    - `uppercase_line`: 1 on every character of a line (its newline included) that has a
      letter and no lower-case letter, such as the speaker names of tinyshakespeare
      (`ROMEO:`).
    - `position_in_word`: letters since the last non-letter (1 on a word's first letter,
      0 on spaces and punctuation).

    Features that are constant over a text (tinyshakespeare has no `"` and no brackets)
    have no correlation; `top_units` leaves them out.

    Raises:
        TypeError: `text` is not a string.

    Example:
        >>> text_features("AB:\\nab")["uppercase_line"]
        array([1., 1., 1., 1., 0., 0.])
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected a text (str). Received: {type(text).__name__}")
    n = len(text)
    quotes, brackets, in_line, in_word = (np.zeros(n) for _ in range(4))
    inside, depth, column, word = False, 0, 0, 0
    for t, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        depth = depth + 1 if ch == "(" else max(depth - 1, 0) if ch == ")" else depth
        column = 0 if ch == "\n" else column + 1
        word = word + 1 if ch.isalpha() else 0
        quotes[t], brackets[t], in_line[t], in_word[t] = inside, depth, column, word
    to_end, upper = np.zeros(n), np.zeros(n)
    start = 0
    for line in text.split("\n"):
        length = len(line) + (1 if start + len(line) < n else 0)  # with its newline
        to_end[start : start + length] = np.arange(len(line), len(line) - length, -1)
        shouty = any(ch.isalpha() for ch in line) and not any(ch.islower() for ch in line)
        upper[start : start + length] = float(shouty)
        start += length
    return {
        "inside_quotes": quotes,
        "inside_brackets": brackets,
        "position_in_line": in_line,
        "chars_to_line_end": to_end,
        "uppercase_line": upper,
        "position_in_word": in_word,
    }


def correlations(values, feature) -> np.ndarray:
    """Pearson correlation of every column of `values` with `feature`.

    Args:
        values: `[T, units]` activations.
        feature: `[T]` feature values.

    Returns:
        float64 `[units]`; NaN for a constant column (or everywhere, for a constant
        feature), where the correlation is undefined.

    Raises:
        ValueError: shapes that do not match, or fewer than 2 positions.

    Example:
        >>> correlations(np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]), np.arange(3))
        array([ 1., -1.])
    """
    values = np.asarray(values, np.float64)
    feature = np.asarray(feature, np.float64)
    if values.ndim != 2 or feature.shape != (values.shape[0],) or values.shape[0] < 2:
        raise ValueError(
            "Expected values [T >= 2, units] and a feature [T]. Received: "
            f"values {list(values.shape)}, feature {list(feature.shape)}"
        )
    a = values - values.mean(axis=0)
    b = feature - feature.mean()
    denom = np.sqrt((a * a).sum(axis=0) * (b * b).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b[:, None]).sum(axis=0) / denom
    r[denom == 0] = np.nan
    return np.clip(r, -1.0, 1.0)


def top_units(values, features, k: int = 5) -> dict[str, list[tuple[int, float]]]:
    """The `k` units most correlated (by |Pearson r|) with each feature.

    Args:
        values: `[T, units]` activations (e.g. `Activations.get("c")`).
        features: `{name: [T] array}` (e.g. `text_features(text)`).
        k: how many units per feature (fewer if there are fewer units with a defined
            correlation).

    Returns:
        `{name: [(unit, r), ...]}`, strongest first; a feature constant over the text
        maps to `[]`. Constant units are never listed.

    Raises:
        ValueError: a non-positive `k`, or shapes as `correlations`.

    Example:
        >>> top_units(acts.get("h"), text_features(acts.text), k=2)["position_in_line"]
        [(17, 0.71), (203, -0.64)]
    """
    positive_int("k", k)
    found = {}
    for name, feature in features.items():
        r = correlations(values, feature)
        strength = np.where(np.isnan(r), -1.0, np.abs(r))
        order = np.argsort(-strength, kind="stable")[:k]
        found[name] = [(int(u), float(r[u])) for u in order if not np.isnan(r[u])]
    return found


def format_search(found, label="") -> str:
    """The result of `top_units` as lines: `feature: unit 17 (r=+0.71), ...`."""
    lines = [label] if label else []
    for name, units in found.items():
        shown = (
            ", ".join(f"unit {u} (r={r:+.3f})" for u, r in units)
            if units
            else "constant over this text (no correlation)"
        )
        lines.append(f"{name}: {shown}")
    return "\n".join(lines)


def value_range(state: str, values) -> tuple[float, float]:
    """The colour range of a state: `[0, 1]` for sigmoid gates, `[-1, 1]` for `h` and the
    candidate (tanh), and `[-m, m]` with `m = max |value|` (at least 1) for an LSTM's `c`."""
    if state in _SIGMOID_STATES:
        return 0.0, 1.0
    if state == "c":
        m = max(1.0, float(np.max(np.abs(values)))) if np.size(values) else 1.0
        return -m, m
    return -1.0, 1.0


def colours(values, vmin=-1.0, vmax=1.0) -> np.ndarray:
    """Blue (at `vmin`) - white (midway) - red (at `vmax`) as RGB in [0, 1], `[T, 3]`.

    Values outside the range are clipped; NaN is drawn grey.

    Raises:
        ValueError: `vmin >= vmax`.

    Example:
        >>> colours([-1.0, 0.0, 1.0])
        array([[0., 0., 1.], [1., 1., 1.], [1., 0., 0.]])
    """
    if not vmin < vmax:
        raise ValueError(f"Expected vmin < vmax. Received: vmin={vmin}, vmax={vmax}")
    v = np.asarray(values, np.float64)
    s = np.clip((v - vmin) / (vmax - vmin) * 2.0 - 1.0, -1.0, 1.0)  # -1 ... 1
    rgb = np.ones(v.shape + (3,))
    neg, pos = s < 0, s > 0
    rgb[neg, 0] = rgb[neg, 1] = 1.0 + s[neg]
    rgb[pos, 1] = rgb[pos, 2] = 1.0 - s[pos]
    rgb[np.isnan(v)] = 0.6
    return rgb


def _legend(vmin, vmax) -> str:
    return f"blue = {vmin:.3g}, white = {(vmin + vmax) / 2:.3g}, red = {vmax:.3g}"


def _check_pair(text, values):
    values = np.asarray(values, np.float64)
    if not isinstance(text, str) or values.shape != (len(text),):
        raise ValueError(
            "Expected one value per character. Received: "
            f"{len(text) if isinstance(text, str) else type(text).__name__} characters, "
            f"values of shape {list(values.shape)}"
        )
    return values


def render_html(text, values, *, vmin=-1.0, vmax=1.0, title=None) -> str:
    """A standalone HTML page: each character a `<span>` coloured by its value.

    Characters are HTML-escaped; newlines and spaces are kept (`white-space: pre-wrap`),
    each newline inside its own span. Hovering a character shows its value.

    Args:
        text: the characters.
        values: `[len(text)]` numbers.
        vmin, vmax: the colour range (see `colours`).
        title: heading of the page (escaped too).

    Returns:
        The page as a string.

    Raises:
        ValueError: `values` not one per character, or `vmin >= vmax`.

    Example:
        >>> page = render_html("a<b", [0.1, -0.5, 0.9])
        >>> page.count('<span class="c"')
        3
    """
    values = _check_pair(text, values)
    rgb = np.round(colours(values, vmin, vmax) * 255).astype(int)
    spans = [
        f'<span class="c" style="background-color:rgb({r},{g},{b})" title="{v:.3f}">'
        f"{html.escape(ch, quote=True)}</span>"
        for ch, v, (r, g, b) in zip(text, values, rgb)
    ]
    heading = f"<h3>{html.escape(title)}</h3>\n" if title else ""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title or 'activations')}</title>\n"
        "<style>.t{font-family:monospace;white-space:pre-wrap;line-height:1.4}</style>"
        f"</head><body>\n{heading}"
        f"<p>{_legend(vmin, vmax)}</p>\n"
        f'<div class="t">{"".join(spans)}</div>\n</body></html>\n'
    )


def write_html(path, text, values, **kwargs) -> pathlib.Path:
    """Writes `render_html(text, values, **kwargs)` to `path` (UTF-8; parents created)."""
    page = render_html(text, values, **kwargs)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def grid_positions(text, columns: int = 80) -> list[tuple[int, int]]:
    """`(row, column)` of each character: a newline ends its row, long lines wrap.

    Example:
        >>> grid_positions("ab\\ncd", columns=80)
        [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    """
    positive_int("columns", columns)
    row, col, out = 0, 0, []
    for ch in text:
        if col >= columns:
            row, col = row + 1, 0
        out.append((row, col))
        if ch == "\n":
            row, col = row + 1, 0
        else:
            col += 1
    return out


def plot_text_activations(
    text, values, path, *, vmin=-1.0, vmax=1.0, title=None, columns=80, dpi=100
) -> pathlib.Path:
    """Draws the text on a grid of coloured boxes, one per character, as a PNG.

    A newline is drawn as `↵` at the end of its line (the value after reading it).

    Args:
        text, values, vmin, vmax, title: as `render_html`.
        path: the PNG to write; missing parent folders are created.
        columns: characters per row before a long line wraps.
        dpi: resolution.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ValueError: as `render_html`, or a non-positive `columns`.

    Example:
        >>> plot_text_activations("ROMEO:\\n", acts.unit(17)[:7], "unit17.png")
        PosixPath('unit17.png')
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    values = _check_pair(text, values)
    rgb = colours(values, vmin, vmax)
    where = grid_positions(text, columns)
    rows = (where[-1][0] + 1) if where else 1
    width = max((c for _, c in where), default=0) + 1
    cell_w, cell_h = 0.11, 0.2  # inches
    height = rows * cell_h + 0.5  # inches: the grid, then two lines of title above it
    figure = Figure(figsize=(max(4.0, width * cell_w + 0.2), height), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_axes([0.0, 0.0, 1.0, rows * cell_h / height])
    axes.set_xlim(0, width)
    axes.set_ylim(rows, 0)
    axes.axis("off")
    for ch, (row, col), colour in zip(text, where, rgb):
        axes.add_patch(Rectangle((col, row), 1, 1, facecolor=colour, edgecolor="none"))
        glyph = "↵" if ch == "\n" else ch
        if glyph.strip():
            axes.text(
                col + 0.5,
                row + 0.55,
                glyph,
                ha="center",
                va="center",
                family="monospace",
                fontsize=8,
            )
    heading = f"{title}\n{_legend(vmin, vmax)}" if title else _legend(vmin, vmax)
    figure.text(0.01, 1.0 - 0.05 / height, heading, ha="left", va="top", fontsize=8)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi)
    return path


def run_and_text(run_dir, *, text_file=None, corpus=None, start=0, length=None):
    """A trained character-model run and the text to read with it.

    Args:
        run_dir: a finished `charlm` run directory.
        text_file: a UTF-8 text file, read whole; or
        corpus: a registered corpus name or text file whose validation part (the last
            10%) is read. Default (neither given): the run's own `data.dataset`.
        start: the first character taken.
        length: how many characters (default: all from `start`).

    Returns:
        `(model, tokenizer, text)`.

    Raises:
        ValueError: not a character-model run, both `text_file` and `corpus`, a negative
            `start`, a non-positive `length`, or no characters at `start`.
        FileNotFoundError: no run, text file or corpus there.

    Example:
        >>> model, tokenizer, text = run_and_text("runs/shakes", length=2000)
        >>> len(text)
        2000
    """
    if text_file is not None and corpus is not None:
        raise ValueError("Give a text file or a corpus, not both.")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"Expected a non-negative integer for `start`. Received: {start!r}")
    if length is not None:
        positive_int("length", length)
    model, tokenizer, cfg = load_char_run(run_dir, "activations are read from")
    if text_file is not None:
        text = read_text_file(text_file)
    else:
        if corpus is None:
            if cfg is None:
                raise ValueError(f"{run_dir} has no config.toml naming its corpus: give one.")
            corpus = cfg.data.dataset
        text = load_char_corpus(corpus)["validation"]
    if start >= len(text):
        raise ValueError(f"The text has {len(text)} characters; none at start={start}.")
    text = text[start:] if length is None else text[start : start + length]
    return model, tokenizer, text
