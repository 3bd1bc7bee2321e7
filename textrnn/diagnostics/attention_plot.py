"""Attention pictures: translation heatmaps, per-token weight charts and a terminal view.

The plots draw on a `matplotlib.figure.Figure` with the non-interactive Agg canvas, never
through `pyplot`, so they work without a display, are safe in threads and leave the
caller's matplotlib backend alone. matplotlib is imported inside the functions, so
importing this module is cheap.
"""

from __future__ import annotations

import numbers
import pathlib
import textwrap

import numpy as np

# Figure size per token, in inches: enough for 8-point labels at 60 tokens per axis.
_INCHES_PER_TOKEN = 0.28
_DPI = 100


def _as_tokens(tokens, name):
    if isinstance(tokens, (str, bytes)):
        raise TypeError(
            f"Expected a sequence of tokens for `{name}`, not a single string. "
            f"Received: {name}={tokens!r:.80}"
        )
    if hasattr(tokens, "numpy"):  # a tf.Tensor of strings
        tokens = tokens.numpy()
    if hasattr(tokens, "tolist"):
        tokens = tokens.tolist()
    tokens = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in tokens]
    if not tokens:
        raise ValueError(f"Expected at least one token in `{name}`. Received: 0 tokens")
    return tokens


def _as_weights(weights, ndim):
    array = np.asarray(weights, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"Expected a {ndim}-D array for `weights`. Received: shape={array.shape}")
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        index = tuple(int(i) for i in bad[0])
        index_text = index[0] if ndim == 1 else index
        raise ValueError(
            f"Expected finite `weights`. Received: weights[{index_text}]={array[index]}"
        )
    return array


def _label(token):
    # "$" would switch matplotlib to mathtext; show it literally.
    return token.replace("$", r"\$")


def _new_figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=_DPI, bbox_inches="tight")
    return path


def _font_size(count):
    return 10 if count <= 30 else 8


_TITLE_POINTS = 10
_TITLE_LINES = 3


def _fit_title(title, width_inches: float) -> str:
    """The title wrapped to the figure's width (at most three lines, then an ellipsis),
    so a long hypothesis does not run off the image."""
    # An average character of a 10-point sans-serif font is about 0.55 em wide.
    per_line = max(20, int(width_inches * 72 / (_TITLE_POINTS * 0.55)))
    lines = textwrap.wrap(str(title), per_line) or [""]
    if len(lines) > _TITLE_LINES:
        lines = lines[:_TITLE_LINES]
        lines[-1] = lines[-1][: per_line - 1].rstrip() + "…"
    return "\n".join(lines)


def plot_attention(weights, source_tokens, target_tokens, path, *, title=None) -> pathlib.Path:
    """Writes a PNG heatmap of a translator's attention weights.

    Row `i` holds the attention of target token `i` over the source tokens. Target tokens
    run down the y axis, source tokens along the x axis (labels rotated 90 degrees), with a
    colour bar. The figure grows with the token counts so that labels stay readable up to
    about 60 tokens per axis.

    Args:
        weights: array-like `[len(target_tokens), len(source_tokens)]` of finite weights
            (e.g. the `attention` output of decoding, for one sentence).
        source_tokens: the source tokens, as strings (bytes are decoded as UTF-8).
        target_tokens: the generated target tokens.
        path: where to write the PNG; missing parent folders are created.
        title: optional figure title.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ValueError: if `weights` is not 2-D, its shape does not match the token counts (the
            error names both), it holds a non-finite value, or a token list is empty.
        TypeError: if a token list is a single string.

    Example:
        >>> plot_attention(np.eye(3), ["a", "b", "c"], ["x", "y", "z"], "out/att.png")
        PosixPath('out/att.png')
    """
    source = _as_tokens(source_tokens, "source_tokens")
    target = _as_tokens(target_tokens, "target_tokens")
    array = _as_weights(weights, ndim=2)
    expected = (len(target), len(source))
    if array.shape != expected:
        raise ValueError(
            "Expected `weights` of shape [len(target_tokens), len(source_tokens)] = "
            f"{list(expected)}. Received: weights.shape={list(array.shape)}"
        )
    width = max(4.0, 2.5 + _INCHES_PER_TOKEN * len(source))
    height = max(3.0, 1.5 + _INCHES_PER_TOKEN * len(target))
    figure = _new_figure(width, height)
    axes = figure.add_subplot()
    image = axes.imshow(array, cmap="viridis", aspect="auto", interpolation="nearest")
    axes.set_xticks(
        range(len(source)),
        labels=[_label(t) for t in source],
        rotation=90,
        fontsize=_font_size(len(source)),
    )
    axes.set_yticks(
        range(len(target)),
        labels=[_label(t) for t in target],
        fontsize=_font_size(len(target)),
    )
    axes.set_xlabel("source")
    axes.set_ylabel("target")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.02)
    if title is not None:
        axes.set_title(_fit_title(title, width), fontsize=_TITLE_POINTS)
    return _save(figure, path)


def plot_token_weights(tokens, weights, path, *, title=None) -> pathlib.Path:
    """Writes a PNG bar chart of per-token weights (a classifier's attention pooling).

    One bar per token, in sentence order, coloured by weight; the token labels are rotated
    90 degrees under the bars. The figure widens with the number of tokens.

    Args:
        tokens: the input tokens, as strings (bytes are decoded as UTF-8).
        weights: array-like `[len(tokens)]` of finite weights.
        path: where to write the PNG; missing parent folders are created.
        title: optional figure title.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ValueError: if `weights` is not 1-D, its length differs from the number of tokens
            (the error names both), it holds a non-finite value, or `tokens` is empty.
        TypeError: if `tokens` is a single string.

    Example:
        >>> plot_token_weights(["a", "fine", "film"], [0.1, 0.7, 0.2], "out/pool.png")
        PosixPath('out/pool.png')
    """
    from matplotlib import colormaps

    labels = _as_tokens(tokens, "tokens")
    array = _as_weights(weights, ndim=1)
    if array.shape[0] != len(labels):
        raise ValueError(
            "Expected one weight per token. "
            f"Received: {array.shape[0]} weights and {len(labels)} tokens"
        )
    figure = _new_figure(max(4.0, 1.5 + _INCHES_PER_TOKEN * len(labels)), 3.0)
    axes = figure.add_subplot()
    peak = float(np.max(np.abs(array)))
    colours = colormaps["viridis"](array / peak if peak > 0 else np.zeros_like(array))
    axes.bar(range(len(labels)), array, color=colours)
    axes.set_xticks(
        range(len(labels)),
        labels=[_label(t) for t in labels],
        rotation=90,
        fontsize=_font_size(len(labels)),
    )
    axes.set_xlim(-0.5, len(labels) - 0.5)
    axes.set_ylabel("weight")
    if title is not None:
        axes.set_title(_fit_title(title, figure.get_figwidth()), fontsize=_TITLE_POINTS)
    return _save(figure, path)


def format_token_weights(tokens, weights, *, width=30) -> str:
    """Renders per-token weights for the terminal, one line per token.

    Each line holds the token (left-aligned, padded to the longest token), the weight with
    three decimals, and a bar of `█` characters whose length is
    `round(width * weight / max(weights))`, so the largest weight gets `width` characters.
    Negative weights, and all weights when the largest is not positive, get no bar.
    Trailing spaces are stripped; there is no trailing newline.

    Args:
        tokens: the tokens, as strings (bytes are decoded as UTF-8).
        weights: array-like `[len(tokens)]` of finite weights.
        width: the bar length, in characters, of the largest weight.

    Returns:
        The rendered lines joined by newlines.

    Raises:
        ValueError: if `width` is not a positive integer, `weights` is not 1-D, its length
            differs from the number of tokens (the error names both), it holds a
            non-finite value, or `tokens` is empty.
        TypeError: if `tokens` is a single string.

    Example:
        >>> print(format_token_weights(["a", "great", "film"], [0.1, 0.6, 0.3], width=6))
        a      0.100  █
        great  0.600  ██████
        film   0.300  ███
    """
    if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width < 1:
        raise ValueError(f"Expected a positive integer for `width`. Received: width={width!r}")
    labels = _as_tokens(tokens, "tokens")
    array = _as_weights(weights, ndim=1)
    if array.shape[0] != len(labels):
        raise ValueError(
            "Expected one weight per token. "
            f"Received: {array.shape[0]} weights and {len(labels)} tokens"
        )
    peak = float(array.max())
    pad = max(len(token) for token in labels)
    lines = []
    for token, weight in zip(labels, array.tolist()):
        bar = "█" * max(0, round(width * weight / peak)) if peak > 0 else ""
        lines.append(f"{token:<{pad}}  {weight:.3f}  {bar}".rstrip())
    return "\n".join(lines)
