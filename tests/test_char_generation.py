import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from textrnn.charlm.export import export_charlm
from textrnn.charlm.generator import CharGenerator, generate
from textrnn.export.savedmodel import core_op_report
from textrnn.text.special_tokens import NUM_SPECIAL
from textrnn.training.runs import load_run


@pytest.fixture(scope="module")
def loaded(tiny_run):
    model, tokenizer, _ = load_run(tiny_run)
    return model, tokenizer


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_greedy_score_equals_teacher_forced_log_prob(loaded):
    model, tokenizer = loaded
    gen = CharGenerator(model, tokenizer)
    out = gen.greedy(tf.constant(["The keeper"]), 12)
    full = tokenizer.encode_text(out["text"].numpy()[0].decode())
    logits = model(full[None, :-1]).numpy()[0]
    logits[:, :NUM_SPECIAL] = -1e9  # generation never emits special ids
    logp = _log_softmax(logits)
    n_prompt = len("The keeper")
    expected = sum(logp[t - 1, full[t]] for t in range(n_prompt, len(full)))
    np.testing.assert_allclose(float(out["score"][0]), expected, rtol=1e-4)
    assert np.all(np.argmax(logp[n_prompt - 1 :], -1) == full[n_prompt:])  # greedy = argmax


def test_api_strategies_and_reproducible_sampling(loaded):
    model, tokenizer = loaded
    a = generate(model, tokenizer, ["light", "the"], strategy="sample", max_length=30, seed=5)
    b = generate(model, tokenizer, ["light", "the"], strategy="sample", max_length=30, seed=5)
    assert a == b and a[0].startswith("light") and len(a[0]) == len("light") + 30
    beam = generate(model, tokenizer, "light", strategy="beam", max_length=10, beam_width=3)
    assert len(beam) == 1 and len(beam[0]) == 15
    with pytest.raises(ValueError, match="strategy"):
        generate(model, tokenizer, "light", strategy="nucleus")
    with pytest.raises(ValueError, match="top_p"):
        generate(model, tokenizer, "light", top_p=1.5)
    # Near-greedy, the undertrained model loops over a few characters; a strong penalty on
    # characters already generated must break the loop (more distinct characters).
    kw = {"max_length": 30, "seed": 5, "temperature": 0.05}
    plain = generate(model, tokenizer, "light", **kw)[0][5:]
    penalised = generate(model, tokenizer, "light", repetition_penalty=1000.0, **kw)[0][5:]
    assert len(set(penalised)) > len(set(plain)), (plain, penalised)


def test_awkward_prompts(loaded):
    model, tokenizer = loaded
    (empty,) = generate(model, tokenizer, "", strategy="greedy", max_length=5)
    (newline,) = generate(model, tokenizer, "\n", strategy="greedy", max_length=5)
    assert empty == newline  # documented: an empty prompt starts from a newline
    with pytest.warns(UserWarning, match="not in the model's vocabulary"):
        (out,) = generate(model, tokenizer, "☃☃ snow", strategy="greedy", max_length=5)
    assert out.startswith("☃☃ snow")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        generate(model, tokenizer, b"\xffabc", max_length=5)
    long_prompt = "the lamp and the light " * 40  # far longer than the 32-char training windows
    (out,) = generate(model, tokenizer, long_prompt, strategy="greedy", max_length=8)
    assert out.startswith(long_prompt) and len(out) == len(long_prompt) + 8


BARE_LOAD = r"""
import json, sys
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
g = served.signatures["greedy"](prompts=tf.constant(["The keeper", ""]), max_length=tf.constant(15))
s = served.signatures["sample"](prompts=tf.constant(["The keeper"]), max_length=tf.constant(15),
    temperature=tf.constant(0.9), top_k=tf.constant(5), top_p=tf.constant(0.95), seed=tf.constant(11),
    repetition_penalty=tf.constant(1.3))
d = served.signatures["serving_default"](prompts=tf.constant(["a"]))
assert "textrnn" not in sys.modules and "tensorflow_text" not in sys.modules
print(json.dumps({"greedy": [t.decode() for t in g["text"].numpy()],
                  "sample": [t.decode() for t in s["text"].numpy()],
                  "default_len": len(d["continuation"].numpy()[0].decode())}))
"""


def _load_in_bare_process(script, export_dir):
    """Runs `script` on an export in a fresh interpreter; returns the JSON it printed."""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(export_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_export_loads_in_bare_tensorflow_and_matches_api(loaded, tmp_path):
    model, tokenizer = loaded
    export_dir = export_charlm(model, tokenizer, tmp_path / "export")
    assert core_op_report(export_dir) == set()
    info = json.loads((export_dir / "textrnn_export.json").read_text())
    assert info["non_core_ops"] == []
    served = _load_in_bare_process(BARE_LOAD, export_dir)
    assert served["greedy"] == generate(
        model, tokenizer, ["The keeper", ""], strategy="greedy", max_length=15
    )
    assert served["sample"] == generate(
        model,
        tokenizer,
        ["The keeper"],
        strategy="sample",
        max_length=15,
        temperature=0.9,
        top_k=5,
        top_p=0.95,
        seed=11,
        repetition_penalty=1.3,
    )
    assert served["default_len"] > 0
    with pytest.raises(FileExistsError):
        export_charlm(model, tokenizer, export_dir)


XLA_BARE_LOAD = r"""
import json, sys
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
g = served.signatures["greedy"](prompts=tf.constant(["The keeper", ""]), max_length=tf.constant(15))
b = served.signatures["beam"](prompts=tf.constant(["The keeper"]), max_length=tf.constant(12))
s = served.signatures["sample"](prompts=tf.constant(["The keeper"]), max_length=tf.constant(15),
    temperature=tf.constant(0.9), top_k=tf.constant(5), top_p=tf.constant(0.95), seed=tf.constant(11),
    repetition_penalty=tf.constant(1.3))
print(json.dumps({"greedy": [t.decode() for t in g["text"].numpy()],
                  "beam": [t.decode() for t in b["text"].numpy()],
                  "sample": [t.decode() for t in s["text"].numpy()]}))
"""


def test_xla_generation_matches_and_exports(loaded, tmp_path):
    model, tokenizer = loaded
    prompts = ["The keeper", ""]
    for strategy in ("greedy", "beam"):
        plain = generate(model, tokenizer, prompts, strategy=strategy, max_length=15)
        fast = generate(
            model, tokenizer, prompts, strategy=strategy, max_length=15, jit_compile=True
        )
        assert fast == plain
    sample = {"strategy": "sample", "max_length": 15, "temperature": 0.9, "top_k": 5}
    sample.update(top_p=0.95, seed=11, repetition_penalty=1.3, jit_compile=True)
    first, again = (generate(model, tokenizer, ["The keeper"], **sample) for _ in range(2))
    assert first == again and len(first[0]) == len("The keeper") + 15
    # Longer than the default capacity: the API picks a larger one.
    (long,) = generate(model, tokenizer, "a", strategy="greedy", max_length=2100, jit_compile=True)
    assert len(long) == 2101
    gen = CharGenerator(model, tokenizer, jit_compile=True, capacity=20)
    out = gen.greedy(tf.constant(["a"]), 50)  # documented: max_length above capacity
    assert out["ids"].shape == (1, 20)
    with pytest.raises(ValueError, match="capacity"):
        CharGenerator(model, tokenizer, jit_compile=True, capacity=0)
    export_dir = export_charlm(model, tokenizer, tmp_path / "export", jit_compile=True)
    info = json.loads((export_dir / "textrnn_export.json").read_text())
    assert info["xla"] is True and info["non_core_ops"] == []
    served = _load_in_bare_process(XLA_BARE_LOAD, export_dir)
    assert served["greedy"] == generate(model, tokenizer, prompts, strategy="greedy", max_length=15)
    beam = generate(model, tokenizer, ["The keeper"], strategy="beam", max_length=12)
    assert served["beam"] == beam
    del sample["jit_compile"]
    assert served["sample"] == generate(
        model, tokenizer, ["The keeper"], jit_compile=True, **sample
    )
