import re
import subprocess
import sys

import numpy as np
import pytest

from textrnn.diagnostics.attention_plot import (
    format_token_weights,
    plot_attention,
    plot_token_weights,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _read_png(path):
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 5_000  # a real picture, not an empty canvas
    return matplotlib.image.imread(path)


def _softmax_rows(rng, rows, columns):
    logits = rng.normal(size=(rows, columns)) * 2
    weights = np.exp(logits)
    return weights / weights.sum(-1, keepdims=True)


def test_plot_attention_writes_png_into_new_folders(tmp_path):
    rng = np.random.default_rng(0)
    source = ["ein", "Hund", "läuft", "$", "<eos>"]
    target = ["a", "dog", "runs", "<eos>"]
    path = tmp_path / "nested" / "folder" / "attention.png"
    result = plot_attention(_softmax_rows(rng, 4, 5), source, target, path, title="example")
    assert result == path
    image = _read_png(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert 150 < image.shape[0] < 1000 and 200 < image.shape[1] < 1200
    assert image[..., :3].std() > 0.05  # not a blank image


def test_plot_attention_grows_with_token_counts(tmp_path):
    rng = np.random.default_rng(1)
    small = _read_png(plot_attention(np.eye(4), list("abcd"), list("wxyz"), tmp_path / "s.png"))
    source = [f"source{i}" for i in range(60)]
    target = [f"target{i}" for i in range(40)]
    big = _read_png(
        plot_attention(_softmax_rows(rng, 40, 60), source, target, str(tmp_path / "b.png"))
    )
    assert big.shape[1] > 3 * small.shape[1]  # wider for 60 source tokens
    assert big.shape[0] > 2.5 * small.shape[0]  # taller for 40 target tokens
    assert big.shape[1] > big.shape[0]


def test_plot_token_weights_writes_png(tmp_path):
    tokens = ["this", "movie", "was", "not", "good", "at", "all"]
    weights = np.array([0.05, 0.1, 0.05, 0.3, 0.4, 0.05, 0.05])
    path = plot_token_weights(tokens, weights, tmp_path / "pool" / "weights.png", title="pool")
    image = _read_png(path)
    assert image.ndim == 3 and image.shape[1] > image.shape[0] * 0.8


@pytest.mark.parametrize(
    "shape, message",
    [
        ((3, 5), r"\[4, 5\]. Received: weights.shape=\[3, 5\]"),
        ((4, 6), r"\[4, 5\]. Received: weights.shape=\[4, 6\]"),
        ((20,), r"2-D array .* shape=\(20,\)"),
    ],
)
def test_plot_attention_shape_mismatch(tmp_path, shape, message):
    with pytest.raises(ValueError, match=message):
        plot_attention(np.ones(shape), list("abcde"), list("wxyz"), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_token_weight_errors(tmp_path):
    with pytest.raises(ValueError, match="3 weights and 2 tokens"):
        plot_token_weights(["a", "b"], [0.2, 0.3, 0.5], tmp_path / "x.png")
    with pytest.raises(ValueError, match="3 weights and 2 tokens"):
        format_token_weights(["a", "b"], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match=re.escape("weights[1]=nan")):
        format_token_weights(["a", "b"], [0.2, float("nan")])
    with pytest.raises(ValueError, match="width=0"):
        format_token_weights(["a"], [1.0], width=0)
    with pytest.raises(ValueError, match="at least one token"):
        plot_token_weights([], [], tmp_path / "x.png")
    with pytest.raises(TypeError, match="single string"):
        format_token_weights("abc", [0.1, 0.2, 0.7])


def test_format_token_weights_golden():
    text = format_token_weights(
        ["the", "movie", "was", "wonderful", "!"], [0.1, 0.2, 0.1, 0.5, 0.1], width=10
    )
    assert text == (
        "the        0.100  ██\n"
        "movie      0.200  ████\n"
        "was        0.100  ██\n"
        "wonderful  0.500  ██████████\n"
        "!          0.100  ██"
    )


def test_format_token_weights_edge_cases():
    assert format_token_weights([b"a", "bb"], np.array([0.0, 0.0])) == "a   0.000\nbb  0.000"
    lines = format_token_weights(["x", "y"], [0.25, 0.75]).splitlines()
    assert lines[1].count("█") == 30 and lines[0].count("█") == 10


def test_importing_the_module_does_not_import_matplotlib():
    # `import textrnn` imports Keras, and Keras 3.15 imports matplotlib.pyplot itself
    # whenever matplotlib is installed, so "matplotlib not in sys.modules" cannot hold
    # any more. What the module controls is checked instead: it imports with matplotlib
    # blocked (Keras tolerates that), which it can only if it imports matplotlib lazily.
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        "import textrnn.diagnostics.attention_plot; print('imported')"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "imported"


def test_a_long_title_is_wrapped_to_the_figure_width(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from textrnn.diagnostics.attention_plot import _TITLE_POINTS, _fit_title

    hypothesis = "A man in a blue shirt is standing on a ladder cleaning windows " * 8
    for width in (4.0, 6.5):
        title = _fit_title(hypothesis, width)
        assert 1 < len(title.splitlines()) <= 3 and title.endswith("…")
        figure = Figure(figsize=(width, 3.0))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        text = axes.set_title(title, fontsize=_TITLE_POINTS)
        figure.canvas.draw()
        extent = text.get_window_extent()
        assert extent.x0 >= 0 and extent.x1 <= figure.bbox.width  # inside the image
    assert _fit_title("A dog runs.", 4.0) == "A dog runs."
    path = plot_attention(np.eye(3), ["a", "b", "c"], ["x", "y", "z"], tmp_path / "t.png",
                          title=hypothesis)  # fmt: skip
    assert path.read_bytes()[:4] == b"\x89PNG"
