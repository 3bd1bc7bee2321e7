"""Cell activations: h against the stock Keras layers, the gates against a numpy
recomputation of the cell equations, the unit search on planted correlations, and the
HTML / PNG drawings and the CLI."""

import html as html_lib
import re

import numpy as np
import pytest

from textrnn import cli
from textrnn.diagnostics import activations as act
from textrnn.diagnostics.gradient_flow import fresh_model
from textrnn.text.char_tokenizer import CharTokenizer

TEXT = 'ROMEO:\nO, she (doth) teach\nthe "torches" to burn & <bright>!\n'


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _model(cell, num_layers=1, units=6, **kwargs):
    tokenizer = CharTokenizer.from_text(TEXT)
    model = fresh_model(
        cell,
        tokenizer.vocab_size,
        units=units,
        num_layers=num_layers,
        embedding_dim=5,
        seed=1,
        **kwargs,
    )
    return model, tokenizer


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_h_equals_the_keras_layers_return_sequences_output(cell):
    model, tokenizer = _model(cell, num_layers=2)
    acts = act.unit_activations(model, tokenizer, TEXT)
    x = model.embedding(tokenizer.encode_text(TEXT)[None, :])
    for layer, rnn in enumerate(model.recurrent_layers):
        x = rnn(x)[0]  # zero initial state, return_sequences=True
        np.testing.assert_allclose(acts.get("h", layer), x.numpy()[0], atol=1e-5)
    assert acts.get("h").shape == (len(TEXT), 6)
    expected = {
        "rnn": ("h",),
        "lstm": ("h", "c") + act.GATES["lstm"],
        "gru": ("h",) + act.GATES["gru"],
    }
    assert acts.states == expected[cell]


def _numpy_inputs(model, tokenizer, text):
    emb = model.embedding.embeddings.numpy().astype(np.float64)
    c = model.recurrent_layers[0].cell
    weights = [w.numpy().astype(np.float64) for w in (c.kernel, c.recurrent_kernel, c.bias)]
    return emb[tokenizer.encode_text(text)], weights


def test_lstm_gates_and_cell_state_follow_the_cell_equations():
    model, tokenizer = _model("lstm")
    acts = act.unit_activations(model, tokenizer, TEXT)
    x, (kernel, recurrent, bias) = _numpy_inputs(model, tokenizer, TEXT)
    h_prev, c_prev = np.zeros(6), np.zeros(6)
    for t in range(len(TEXT)):
        z_i, z_f, z_g, z_o = np.split(x[t] @ kernel + h_prev @ recurrent + bias, 4)
        i, f, g, o = _sigmoid(z_i), _sigmoid(z_f), np.tanh(z_g), _sigmoid(z_o)
        for name, want in (("input", i), ("forget", f), ("candidate", g), ("output", o)):
            np.testing.assert_allclose(acts.get(name)[t], want, atol=1e-5, err_msg=name)
        # the recorded gates reproduce the recorded cell and hidden states
        c_t = acts.get("forget")[t] * c_prev + acts.get("input")[t] * acts.get("candidate")[t]
        np.testing.assert_allclose(acts.get("c")[t], c_t, atol=1e-5)
        np.testing.assert_allclose(
            acts.get("h")[t], acts.get("output")[t] * np.tanh(c_t), atol=1e-5
        )
        h_prev, c_prev = acts.get("h")[t], acts.get("c")[t]


def test_gru_gates_follow_the_cell_equations():
    model, tokenizer = _model("gru")
    acts = act.unit_activations(model, tokenizer, TEXT)
    x, (kernel, recurrent, bias) = _numpy_inputs(model, tokenizer, TEXT)
    h_prev = np.zeros(6)
    for t in range(len(TEXT)):
        x_z, x_r, x_h = np.split(x[t] @ kernel + bias[0], 3)
        h_z, h_r, h_h = np.split(h_prev @ recurrent + bias[1], 3)
        z, r = _sigmoid(x_z + h_z), _sigmoid(x_r + h_r)
        candidate = np.tanh(x_h + r * h_h)
        np.testing.assert_allclose(acts.get("update")[t], z, atol=1e-5)
        np.testing.assert_allclose(acts.get("reset")[t], r, atol=1e-5)
        np.testing.assert_allclose(acts.get("candidate")[t], candidate, atol=1e-5)
        np.testing.assert_allclose(acts.get("h")[t], z * h_prev + (1 - z) * candidate, atol=1e-5)
        h_prev = acts.get("h")[t]


def test_text_features_have_their_documented_values():
    f = act.text_features('AB:\nsay "hi (x)" ok\nEND')
    # indices: "AB:\n" 0-3, 'say "hi (x)" ok\n' 4-19 (quotes at 8 and 15), "END" 20-22
    np.testing.assert_array_equal(f["uppercase_line"], [1] * 4 + [0] * 16 + [1] * 3)
    np.testing.assert_array_equal(f["position_in_line"][:6], [1, 2, 3, 0, 1, 2])
    np.testing.assert_array_equal(f["chars_to_line_end"][:5], [3, 2, 1, 0, 15])
    np.testing.assert_array_equal(f["chars_to_line_end"][-3:], [3, 2, 1])  # end of text = newline
    np.testing.assert_array_equal(f["inside_quotes"][7:16], [0, 1, 1, 1, 1, 1, 1, 1, 0])
    assert f["inside_quotes"].sum() == 7
    np.testing.assert_array_equal(f["inside_brackets"][11:16], [0, 1, 1, 0, 0])
    np.testing.assert_array_equal(f["position_in_word"][4:8], [1, 2, 3, 0])
    assert set(f) == set(act.FEATURES)
    with pytest.raises(TypeError, match="int"):
        act.text_features(3)


def test_the_search_finds_a_planted_unit_with_numpys_correlation():
    rng = np.random.default_rng(0)
    feature = act.text_features("ROMEO:\nA word or two.\n" * 40)["position_in_line"]
    values = rng.normal(size=(feature.shape[0], 30))
    values[:, 17] = -0.5 * feature + rng.normal(size=feature.shape[0])
    values[:, 4] = 0.2 * feature + rng.normal(size=feature.shape[0])
    values[:, 9] = 1.0  # a dead unit: never listed
    found = act.top_units(values, {"pos": feature, "flat": np.ones_like(feature)}, k=3)
    assert [u for u, _ in found["pos"]][:2] == [17, 4]
    assert found["pos"][0][1] == pytest.approx(np.corrcoef(values[:, 17], feature)[0, 1])
    assert found["pos"][0][1] < -0.8
    assert found["flat"] == []
    assert 9 not in [u for u, _ in act.top_units(values, {"pos": feature}, k=30)["pos"]]
    assert "constant over this text" in act.format_search(found)
    with pytest.raises(ValueError, match="k"):
        act.top_units(values, {"pos": feature}, k=0)
    with pytest.raises(ValueError, match="feature"):
        act.correlations(values, feature[:-1])


def test_the_html_escapes_and_has_one_span_per_character(tmp_path):
    text = "a<b>&\"c'\n d"
    values = np.linspace(-1, 1, len(text))
    page = act.write_html(tmp_path / "x.html", text, values, title="<unit>").read_text("utf-8")
    spans = re.findall(
        r'<span class="c" style="background-color:rgb\((\d+),(\d+),(\d+)\)" '
        r'title="[^"]*">(.*?)</span>',
        page,
        flags=re.DOTALL,
    )
    assert len(spans) == len(text)
    assert "".join(html_lib.unescape(s[-1]) for s in spans) == text
    assert [s[-1] for s in spans][:8] == [
        "a",
        "&lt;",
        "b",
        "&gt;",
        "&amp;",
        "&quot;",
        "c",
        "&#x27;",
    ]
    assert "<unit>" not in page and "<h3>&lt;unit&gt;</h3>" in page
    assert spans[0][:3] == ("0", "0", "255") and spans[-1][:3] == ("255", "0", "0")
    assert ">\n</span>" in page  # newline kept, in its own span
    with pytest.raises(ValueError, match="one value per character"):
        act.render_html(text, values[:-1])


def test_colours_and_value_ranges():
    np.testing.assert_allclose(
        act.colours([-1.0, 0.0, 1.0, 5.0, -0.5]),
        [[0, 0, 1], [1, 1, 1], [1, 0, 0], [1, 0, 0], [0.5, 0.5, 1]],
    )
    np.testing.assert_allclose(act.colours([0.5, 1.0], vmin=0.0, vmax=1.0), [[1, 1, 1], [1, 0, 0]])
    assert act.value_range("forget", None) == (0.0, 1.0)
    assert act.value_range("c", np.array([0.5, -3.0])) == (-3.0, 3.0)
    with pytest.raises(ValueError, match="vmin"):
        act.colours([0.0], vmin=1.0, vmax=1.0)


def test_the_png_is_written(tmp_path):
    text = "ROMEO:\n" + "x" * 100 + "\nend"
    assert act.grid_positions("ab\ncd") == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert act.grid_positions("abc", columns=2) == [(0, 0), (0, 1), (1, 0)]
    path = act.plot_text_activations(text, np.sin(np.arange(len(text))), tmp_path / "p.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 1000 < len(data) < 200_000


def test_bad_arguments_are_clear_errors():
    model, tokenizer = _model("lstm")
    acts = act.unit_activations(model, tokenizer, "RO")
    with pytest.raises(ValueError, match="update"):
        acts.get("update")
    with pytest.raises(ValueError, match="layer=1"):
        acts.get("h", 1)
    with pytest.raises(ValueError, match="unit=6"):
        acts.unit(6)
    with pytest.raises(ValueError, match="non-empty"):
        act.unit_activations(model, tokenizer, "")
    with pytest.raises(ValueError, match="character model"):
        act.unit_activations(object(), tokenizer, "R")


def test_the_cli_searches_and_draws_a_trained_run(tiny_run, tmp_path, capsys):
    out_html, out_png = tmp_path / "u.html", tmp_path / "u.png"
    status = cli.main(
        [
            "diagnose",
            "activations",
            "--run-dir",
            str(tiny_run),
            "--length",
            "300",
            "--state",
            "c",
            "--search",
            "--top-k",
            "2",
            "--unit",
            "3",
            "--draw-length",
            "120",
            "--out-html",
            str(out_html),
            "--out-png",
            str(out_png),
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "top units by |Pearson r| (layer -1, c, 300 characters from 0)" in out
    assert re.search(r"position_in_line: unit \d+ \(r=[+-]\d\.\d{3}\), unit \d+", out)
    assert out_html.read_text("utf-8").count('<span class="c"') == 120
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    status = cli.main(
        ["diagnose", "activations", "--run-dir", str(tiny_run), "--state", "update", "--search"]
    )
    err = capsys.readouterr().err
    assert status == 2 and "state='update'" in err
    status = cli.main(["diagnose", "activations", "--run-dir", str(tiny_run), "--unit", "1"])
    assert status == 2 and "--out-html" in capsys.readouterr().err
