"""Exports that no request can kill: every signature checks its inputs in the graph.

The three tasks' exports are made from the committed flat-layout runs (tiny trained
models) with small caps, loaded with a bare `tf.saved_model.load` and called with bad
inputs: each must answer `InvalidArgumentError` naming the input, the value and the range;
an empty batch must give empty outputs; every output string must be valid UTF-8. The
Python API and the command line must refuse the same values with one clear line, and a
child process must survive the values that used to abort it.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the translator export's WordPiece op)
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textrnn.charlm.config import GenerateConfig
from textrnn.charlm.export import export_charlm
from textrnn.charlm.generator import CharGenerator, generate
from textrnn.export.input_checks import Interval, check_value
from textrnn.export.limits import ExportLimits
from textrnn.sentiment.export import export_sentiment
from textrnn.sentiment.predictor import make_predictor
from textrnn.training.runs import load_run
from textrnn.translation.config import TranslateConfig
from textrnn.translation.export import export_translator
from textrnn.translation.translator import Translator

RUNS = REPO / "tests" / "fixtures" / "flat_layout_runs"
LIMITS = ExportLimits(
    max_batch_size=4,
    max_new_tokens=40,
    max_beam_width=4,
    max_n_best=3,
    max_input_bytes=300,
    max_prompt_chars=16,
    max_source_tokens=6,
)
BIG = 2**31 - 1
NAN = float("nan")


# --------------------------------------------------------------------------------------
# One export per task, shared by the module
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs():
    return {task: load_run(RUNS / task) for task in ("charlm", "sentiment", "translate")}


@pytest.fixture(scope="module")
def translator(runs):
    model, (source, target), _ = runs["translate"]
    defaults = TranslateConfig(beam_width=3, n_best=2, max_length=20)
    return Translator(model, source, target, defaults, limits=LIMITS)


@pytest.fixture(scope="module")
def export_dirs(runs, translator, tmp_path_factory):
    base = tmp_path_factory.mktemp("limits")
    model, tokenizer, _ = runs["charlm"]
    export_charlm(
        model,
        tokenizer,
        base / "charlm",
        GenerateConfig(max_length=10),
        beam_width=3,
        limits=LIMITS,
    )
    export_sentiment(make_predictor(*runs["sentiment"], limits=LIMITS), base / "sentiment")
    export_translator(translator, base / "translate")
    return {task: base / task for task in ("charlm", "sentiment", "translate")}


@pytest.fixture(scope="module")
def served(export_dirs):
    return {task: tf.saved_model.load(str(path)).signatures for task, path in export_dirs.items()}


def _c(value):
    return tf.constant(value)


# The valid inputs of every signature; each bad case below changes one of them.
VALID = {
    ("charlm", "serving_default"): {"prompts": ["The", "a"]},
    ("charlm", "greedy"): {"prompts": ["The", "a"], "max_length": 5},
    ("charlm", "beam"): {"prompts": ["The", "a"], "max_length": 5},
    ("charlm", "sample"): {
        "prompts": ["The", "a"],
        "max_length": 5,
        "temperature": 0.8,
        "top_k": 0,
        "top_p": 1.0,
        "seed": 3,
        "repetition_penalty": 1.0,
    },
    ("sentiment", "serving_default"): {"texts": ["a fine film", "dull"]},
    ("sentiment", "explain"): {"texts": ["a fine film", "dull"]},
    ("translate", "serving_default"): {"sources": ["Ein Hund.", "Eine Frau"]},
    ("translate", "greedy"): {"sources": ["Ein Hund.", "Eine Frau"], "max_length": 5},
    ("translate", "beam"): {
        "sources": ["Ein Hund.", "Eine Frau"],
        "beam_width": 2,
        "n_best": 2,
        "alpha": 0.6,
        "max_length": 5,
    },
    ("translate", "sample"): {
        "sources": ["Ein Hund.", "Eine Frau"],
        "max_length": 5,
        "temperature": 0.8,
        "top_k": 0,
        "top_p": 1.0,
        "seed": 3,
    },
}
FLOATS = ("temperature", "top_p", "repetition_penalty", "alpha")


def _call(served, task, signature, **changes):
    inputs = {**VALID[(task, signature)], **changes}
    tensors = {
        name: tf.constant(value, tf.float32 if name in FLOATS else None)
        for name, value in inputs.items()
    }
    return served[task][signature](**tensors)


def _strings_input(task):
    return {"charlm": "prompts", "sentiment": "texts", "translate": "sources"}[task]


# (task, signatures, the input changed, its value, what the message must say)
BAD_SCALARS = [
    ("charlm", ("greedy", "beam", "sample"), "max_length", BIG, "[0, 40]. Received: max_length=2147483647"),
    ("charlm", ("greedy", "beam", "sample"), "max_length", -1, "[0, 40]. Received: max_length=-1"),
    ("charlm", ("greedy",), "max_length", 41, "[0, 40]. Received: max_length=41"),
    ("charlm", ("sample",), "temperature", NAN, "`temperature` to be >= 0. Received: temperature=nan"),
    ("charlm", ("sample",), "temperature", -1.0, "Received: temperature=-1"),
    ("charlm", ("sample",), "temperature", math.inf, "Received: temperature=inf"),
    ("charlm", ("sample",), "top_k", -1, "`top_k` to be >= 0. Received: top_k=-1"),
    ("charlm", ("sample",), "top_p", 0.0, "`top_p` in (0, 1]. Received: top_p=0"),
    ("charlm", ("sample",), "top_p", 1.5, "Received: top_p=1.5"),
    ("charlm", ("sample",), "top_p", NAN, "Received: top_p=nan"),
    ("charlm", ("sample",), "repetition_penalty", NAN, "Received: repetition_penalty=nan"),
    ("charlm", ("sample",), "repetition_penalty", 0.0, "in [0.001, 1000]. Received: repetition_penalty=0"),
    ("charlm", ("sample",), "repetition_penalty", -2.0, "Received: repetition_penalty=-2"),
    ("translate", ("greedy", "beam", "sample"), "max_length", -5, "`max_length` in [0, 2147483647]. Received: max_length=-5"),
    ("translate", ("beam",), "beam_width", 10**6, "`beam_width` in [1, 4]. Received: beam_width=1000000"),
    ("translate", ("beam",), "beam_width", 0, "Received: beam_width=0"),
    ("translate", ("beam",), "n_best", 0, "`n_best` in [1, 3]. Received: n_best=0"),
    ("translate", ("beam",), "n_best", 10**6, "Received: n_best=1000000"),
    ("translate", ("beam",), "n_best", 3, "`n_best` <= `beam_width`. Received: n_best=3, beam_width=2"),
    ("translate", ("beam",), "alpha", NAN, "`alpha` in [-10, 10]. Received: alpha=nan"),
    ("translate", ("beam",), "alpha", -math.inf, "Received: alpha=-inf"),
    ("translate", ("sample",), "temperature", -0.5, "Received: temperature=-0.5"),
    ("translate", ("sample",), "top_k", -1, "Received: top_k=-1"),
    ("translate", ("sample",), "top_p", -0.1, "Received: top_p=-0.1"),
]  # fmt: skip


@pytest.mark.parametrize(
    "task, signature, name, value, message",
    [(t, s, n, v, m) for t, sigs, n, v, m in BAD_SCALARS for s in sigs],
)
def test_a_bad_number_is_an_invalid_argument_naming_it(
    served, task, signature, name, value, message
):
    with pytest.raises(tf.errors.InvalidArgumentError, match="assertion failed") as info:
        _call(served, task, signature, **{name: value})
    assert message in info.value.message


SIGNATURES = sorted(VALID)


@pytest.mark.parametrize("task, signature", SIGNATURES)
def test_bad_strings_are_invalid_arguments_naming_them(served, task, signature):
    name = _strings_input(task)
    cases = [
        (["a"] * 5, f"Expected at most 4 strings in `{name}`. Received: 5"),
        (["a", "b" * 301], f"at most 300 bytes. Received: 301 bytes in {name}[1]"),
        ("a scalar", f"Shape of tensor {name} [] is not compatible with expected shape [?]"),
        ([["a", "b"]], f"Shape of tensor {name} [1,2] is not compatible"),
    ]
    for value, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            _call(served, task, signature, **{name: value})
        assert message in info.value.message


def test_a_number_of_the_wrong_rank_is_an_invalid_argument(served):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _call(served, "charlm", "greedy", max_length=[5])
    assert "Shape of tensor max_length [1] is not compatible with expected shape []" in (
        info.value.message
    )


def test_values_at_the_caps_are_served(served):
    prompts = ["x" * 300, "é" * 150, "", "ab"]  # 300 bytes each, or less
    out = _call(served, "charlm", "greedy", prompts=prompts, max_length=40)
    assert out["ids"].shape == (4, 40)
    out = _call(served, "translate", "beam", sources=prompts, beam_width=4, n_best=3)
    assert out["n_best"].shape[:2] == (4, 3)
    out = _call(served, "translate", "beam", alpha=10.0, max_length=40)
    assert np.all(np.isfinite(out["n_best_scores"].numpy()))
    assert _call(served, "sentiment", "explain", texts=prompts)["labels"].shape == (4,)


@pytest.mark.parametrize("task, signature", SIGNATURES)
def test_an_empty_batch_gives_empty_outputs(served, task, signature):
    one = _call(served, task, signature, **{_strings_input(task): ["ein"]})
    empty = _call(served, task, signature, **{_strings_input(task): tf.constant([], tf.string)})
    assert set(empty) == set(one)
    for key, value in empty.items():
        assert value.shape[0] == 0, key
        assert value.shape.rank == one[key].shape.rank, key
        assert value.dtype == one[key].dtype, key
    if "n_best" in one:  # the n-best dimension is kept
        assert empty["n_best"].shape[1] == one["n_best"].shape[1]


BAD_UTF8 = [b"a\xffb", b"\xe2\x82", b"\xc3", b"ok \xed\xa0\x80"]


def _assert_utf8(outputs):
    for value in outputs.values():
        if value.dtype == tf.string:
            for item in value.numpy().ravel():
                item.decode("utf-8")  # strict: raises on any bad byte


@pytest.mark.parametrize("task, signature", SIGNATURES)
def test_outputs_are_valid_utf8_whatever_the_input(served, task, signature):
    _assert_utf8(_call(served, task, signature, **{_strings_input(task): BAD_UTF8}))


def test_a_non_utf8_prompt_is_echoed_with_replacement_characters(served):
    out = _call(served, "charlm", "greedy", prompts=BAD_UTF8[:2], max_length=3)
    texts = [t.decode("utf-8") for t in out["text"].numpy()]
    continuations = [t.decode("utf-8") for t in out["continuation"].numpy()]
    assert texts == ["a\ufffdb" + continuations[0], "\ufffd" + continuations[1]]


@pytest.mark.parametrize("signature", ["greedy", "beam", "sample"])
def test_max_length_zero_generates_nothing(served, translator, runs, signature):
    out = _call(served, "charlm", signature, prompts=["The", ""], max_length=0)
    assert [t.decode() for t in out["text"].numpy()] == ["The", "\n"]
    assert out["continuation"].numpy().tolist() == [b"", b""]
    assert out["ids"].shape == (2, 0)
    assert out["score"].numpy().tolist() == [0.0, 0.0]
    out = _call(served, "translate", signature, max_length=0)
    assert out["translation"].numpy().tolist() == [b"", b""]
    assert out["score"].numpy().tolist() == [0.0, 0.0]
    assert out["target_tokens"].shape == (2, 0)
    assert out["attention"].shape[:2] == (2, 0)
    # The Python API says the same.
    model, tokenizer, _ = runs["charlm"]
    strategy = {"greedy": "greedy", "beam": "beam", "sample": "sample"}[signature]
    assert generate(model, tokenizer, ["The"], strategy=strategy, max_length=0) == ["The"]
    result = translator.translate_texts(["Ein Hund."], strategy, beam_width=3, max_length=0)[0]
    assert result["translation"] == "" and result["score"] == 0.0


@pytest.mark.parametrize("signature", ["greedy", "beam"])
def test_a_huge_max_length_acts_as_the_cap_for_the_translator(served, signature):
    huge = _call(served, "translate", signature, max_length=BIG)
    capped = _call(served, "translate", signature, max_length=LIMITS.max_new_tokens)
    assert huge["n_best"].numpy().tolist() == capped["n_best"].numpy().tolist()
    np.testing.assert_array_equal(huge["n_best_scores"], capped["n_best_scores"])
    assert huge["target_tokens"].shape[1] <= LIMITS.max_new_tokens


def test_a_long_prompt_is_read_by_its_tail(served):
    prompt = "The king is dead, long live the queen"
    whole = _call(served, "charlm", "beam", prompts=[prompt], max_length=8)
    tail = _call(served, "charlm", "beam", prompts=[prompt[-16:]], max_length=8)
    assert whole["ids"].numpy().tolist() == tail["ids"].numpy().tolist()
    assert whole["score"].numpy()[0] == pytest.approx(tail["score"].numpy()[0], abs=1e-5)
    assert whole["text"].numpy()[0].decode() == prompt + whole["continuation"].numpy()[0].decode()


def test_a_long_source_is_cut_to_its_first_tokens(served, translator):
    source = "Ein Hund Eine Frau Zwei Mann Ein Hund"  # 8 tokens; the cap is 6
    whole = _call(served, "translate", "beam", sources=[source])
    head = _call(served, "translate", "beam", sources=["Ein Hund Eine Frau Zwei Mann"])
    tokens = [t.decode() for t in whole["source_tokens"].numpy()[0]]
    assert tokens == ["Ein", "Hund", "Eine", "Frau", "Zwei", "Mann"]
    assert whole["n_best"].numpy().tolist() == head["n_best"].numpy().tolist()
    np.testing.assert_allclose(whole["n_best_scores"], head["n_best_scores"], atol=1e-5)
    with pytest.warns(UserWarning, match=r"Sources \[0\] have more than 6 tokens"):
        translator.translate_texts([source], "greedy", max_length=5)


def test_the_export_records_its_limits(export_dirs):
    for task, path in export_dirs.items():
        info = json.loads((path / "textrnn_export.json").read_text())
        assert info["limits"] == LIMITS.to_dict(), task


def test_recipe_defaults_beyond_the_caps_are_refused_at_export(runs, translator, tmp_path):
    model, tokenizer, _ = runs["charlm"]
    with pytest.raises(ValueError, match=r"`generate.max_length` in \[0, 40\]. Received: "):
        export_charlm(model, tokenizer, tmp_path / "a", GenerateConfig(), limits=LIMITS)
    with pytest.raises(ValueError, match=r"`beam_width` in \[1, 4\]. Received: beam_width=5"):
        CharGenerator(model, tokenizer, beam_width=5, limits=LIMITS)
    too_wide = Translator(
        translator.model,
        translator.source_tokenizer,
        translator.target_tokenizer,
        TranslateConfig(beam_width=8, max_length=20),
        limits=LIMITS,
    )
    with pytest.raises(ValueError, match=r"`translate.beam_width` in \[1, 4\]"):
        export_translator(too_wide, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_limits_are_validated_and_parsed():
    assert ExportLimits.from_overrides(["max_batch_size=8", " max_new_tokens =100"]) == (
        ExportLimits(max_batch_size=8, max_new_tokens=100)
    )
    with pytest.raises(ValueError, match="Received: max_beam_width=0"):
        ExportLimits(max_beam_width=0)
    with pytest.raises(ValueError, match="Received: max_batch_size=2147483648"):
        ExportLimits(max_batch_size=2**31)
    with pytest.raises(ValueError, match=r"NAME one of \['max_batch_size'"):
        ExportLimits.from_overrides(["max_batch=8"])
    with pytest.raises(ValueError, match="Expected an integer for `max_new_tokens`"):
        ExportLimits.from_overrides(["max_new_tokens=lots"])
    assert check_value("x", 0.5, Interval(0.0, 1.0, low_open=True)) == 0.5
    with pytest.raises(ValueError, match=r"Expected an integer for `n` in \[1, 3\]"):
        check_value("n", 2.0, Interval(1, 3), integer=True)


# --------------------------------------------------------------------------------------
# The Python API refuses the same values with ValueError
# --------------------------------------------------------------------------------------


def test_the_python_api_refuses_absurd_values(runs, translator):
    model, tokenizer, _ = runs["charlm"]
    cases = [
        ({"max_length": BIG}, "Expected `max_length` in [0, 4096]. Received: max_length=2147483647"),
        ({"max_length": -1}, "Received: max_length=-1"),
        ({"strategy": "beam", "beam_width": 10**6}, "Received: beam_width=1000000"),
        ({"temperature": NAN}, "Received: temperature=nan"),
        ({"top_k": -1}, "Received: top_k=-1"),
        ({"top_p": 0.0}, "Received: top_p=0.0"),
        ({"repetition_penalty": 0.0}, "Received: repetition_penalty=0.0"),
        ({"repetition_penalty": NAN}, "Received: repetition_penalty=nan"),
    ]  # fmt: skip
    for kwargs, message in cases:
        with pytest.raises(ValueError) as info:
            generate(model, tokenizer, "The", **kwargs)
        assert message in str(info.value), kwargs
    with pytest.raises(ValueError, match="at most 65536 bytes. Received: 70000 bytes in prompt 1"):
        generate(model, tokenizer, ["a", "b" * 70000], max_length=1)
    cases = [
        ({"max_length": -1}, "`max_length` in [0, 2147483647]. Received: max_length=-1"),
        ({"beam_width": 10**6}, "`beam_width` in [1, 4]. Received: beam_width=1000000"),
        ({"beam_width": 3, "n_best": 4}, "`n_best` in [1, 3]. Received: n_best=4"),
        ({"beam_width": 2, "n_best": 3}, "n_best <= width"),
        ({"alpha": NAN}, "Received: alpha=nan"),
        ({"strategy": "sample", "top_p": 2.0}, "Received: top_p=2.0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError) as info:
            options = {"strategy": "beam", "beam_width": 3, "max_length": 5, **kwargs}
            translator.translate_texts(["Ein Hund."], **options)
        assert message in str(info.value), kwargs
    with pytest.raises(ValueError, match="Received: 301 bytes in source 0"):
        translator.translate_texts(["b" * 301])
    predictor = make_predictor(*runs["sentiment"], limits=LIMITS)
    with pytest.raises(ValueError, match="Received: 301 bytes in text 1"):
        predictor.predict_texts(["fine", "b" * 301])


def test_the_python_api_splits_long_lists_into_batches(runs, translator):
    model, tokenizer, _ = runs["charlm"]
    prompts = [f"{c}he" for c in "TSABCDEFG"]  # 9 prompts, batches of at most 4
    options = {"strategy": "greedy", "max_length": 6, "limits": LIMITS, "warn_unknown": False}
    together = generate(model, tokenizer, prompts, **options)
    alone = [generate(model, tokenizer, p, **options)[0] for p in prompts]
    assert together == alone
    sources = ["Ein Hund."] * 9
    assert len(translator.translate_texts(sources, "greedy", max_length=5)) == 9
    predictor = make_predictor(*runs["sentiment"], limits=LIMITS)
    results = predictor.predict_texts(["a fine film"] * 9)
    assert len(results) == 9 and len({r["label"] for r in results}) == 1
    assert len(predictor.explain_texts(["a fine film"] * 5)) == 5


# --------------------------------------------------------------------------------------
# Values that used to abort the process, in child processes
# --------------------------------------------------------------------------------------

_BARE_SCRIPT = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401
char = tf.saved_model.load(sys.argv[1]).signatures
trans = tf.saved_model.load(sys.argv[2]).signatures
BIG = tf.constant(2**31 - 1)
p = tf.constant(["The"])
s = tf.constant(["Ein Hund."])
f = lambda x: tf.constant(x, tf.float32)
i = tf.constant
calls = {
    "char greedy": lambda: char["greedy"](prompts=p, max_length=BIG),
    "char beam": lambda: char["beam"](prompts=p, max_length=BIG),
    "char sample": lambda: char["sample"](prompts=p, max_length=BIG, temperature=f(1.0),
        top_k=i(0), top_p=f(1.0), seed=i(0), repetition_penalty=f(1.0)),
    "char prompt": lambda: char["greedy"](prompts=tf.constant(["x" * 100000]), max_length=i(5)),
    "translate greedy": lambda: trans["greedy"](sources=s, max_length=BIG),
    "translate beam": lambda: trans["beam"](sources=s, beam_width=i(3), n_best=i(1),
        alpha=f(0.6), max_length=BIG),
    "translate width": lambda: trans["beam"](sources=s, beam_width=i(10**6), n_best=i(1),
        alpha=f(0.6), max_length=i(5)),
    "translate sample": lambda: trans["sample"](sources=s, max_length=BIG, temperature=f(1.0),
        top_k=i(0), top_p=f(1.0), seed=i(0)),
    "translate source": lambda: trans["greedy"](sources=tf.constant(["ein " * 25000]),
        max_length=i(5)),
}
errors = {}
for name, call in calls.items():
    try:
        errors[name] = {"served": call()["score"].shape.as_list()}
    except tf.errors.InvalidArgumentError as e:
        errors[name] = [line for line in e.message.splitlines() if "assertion failed" in line]
print(json.dumps(errors))
"""


def test_over_large_values_do_not_kill_a_bare_serving_process(export_dirs):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _BARE_SCRIPT,
            str(export_dirs["charlm"]),
            str(export_dirs["translate"]),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    errors = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {
        "char greedy": "Received: max_length=2147483647",
        "char beam": "Received: max_length=2147483647",
        "char sample": "Received: max_length=2147483647",
        "char prompt": "Received: 100000 bytes in prompts[0]",
        "translate width": "Received: beam_width=1000000",
        "translate source": "Received: 100000 bytes in sources[0]",
    }
    for name, message in expected.items():
        assert errors[name] and message in errors[name][0], (name, errors[name])
    # The translator's rows stop at their length caps: a huge max_length is served.
    for name in ("translate greedy", "translate beam", "translate sample"):
        assert errors[name] == {"served": [1]}, (name, errors[name])


_CLI_SCRIPT = r"""
import contextlib, io, json, sys
from textrnn.cli import main
runs, out = sys.argv[1], sys.argv[2]
calls = {
    "generate length": ["generate", "--run-dir", f"{runs}/charlm", "--prompt", "The",
        "--length", "2147483647"],
    "generate beam": ["generate", "--run-dir", f"{runs}/charlm", "--prompt", "The",
        "--strategy", "beam", "--beam-width", "1000000", "--length", "5"],
    "generate zero": ["generate", "--run-dir", f"{runs}/charlm", "--prompt", "The",
        "--length", "0", "--strategy", "greedy"],
    "translate length": ["translate", "--run-dir", f"{runs}/translate", "--text", "Ein Hund.",
        "--max-length", "2147483647"],
    "translate negative": ["translate", "--run-dir", f"{runs}/translate", "--text", "Ein Hund.",
        "--max-length", "-1"],
    "translate beam": ["translate", "--run-dir", f"{runs}/translate", "--text", "Ein Hund.",
        "--beam-width", "1000000"],
    "translate zero": ["translate", "--run-dir", f"{runs}/translate", "--text", "Ein Hund.",
        "--max-length", "0"],
    "export small": ["export", "--run-dir", f"{runs}/charlm", "--out", f"{out}/a",
        "--limit", "max_new_tokens=5"],
    "export unknown": ["export", "--run-dir", f"{runs}/charlm", "--out", f"{out}/b",
        "--limit", "max_tokens=5"],
    "export": ["export", "--run-dir", f"{runs}/sentiment", "--out", f"{out}/c",
        "--limit", "max_batch_size=7"],
}
results = {}
for name, argv in calls.items():
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(argv)
    results[name] = [rc, stdout.getvalue(), stderr.getvalue()]
print(json.dumps(results))
"""


def test_the_command_line_refuses_absurd_values_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", _CLI_SCRIPT, str(RUNS), str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    refused = {
        "generate length": "generate: error: Expected `max_length` in [0, 4096]. "
        "Received: max_length=2147483647",
        "generate beam": "Received: beam_width=1000000",
        "translate negative": "translate: error: Expected `max_length` in [0, 2147483647]. "
        "Received: max_length=-1",
        "translate beam": "Received: beam_width=1000000",
        "export small": "`generate.max_length` in [0, 5]. Received: generate.max_length=500",
        "export unknown": "Received: 'max_tokens=5'",
    }
    for name, message in refused.items():
        rc, _, stderr = results[name]
        lines = [line for line in stderr.splitlines() if "error:" in line]
        assert rc == 2 and len(lines) == 1 and message in lines[0], (name, stderr)
    assert results["generate zero"][:2] == [0, "The\n"]
    assert results["translate zero"][:2] == [0, "\n"]
    assert results["translate length"][0] == 0 and results["translate length"][1].strip()
    assert results["export"][0] == 0, results["export"]
    info = json.loads((tmp_path / "c" / "1" / "textrnn_export.json").read_text())  # version 1
    assert info["limits"] == ExportLimits(max_batch_size=7).to_dict()


# --------------------------------------------------------------------------------------
# Fuzzing the character export's parameters and prompts
# --------------------------------------------------------------------------------------

_F32 = np.float32


def _allowed(prompts, max_length, params):
    """Whether the inputs lie inside LIMITS and the domains (the oracle for the fuzzer)."""
    ok = len(prompts) <= LIMITS.max_batch_size
    ok &= all(len(p) <= LIMITS.max_input_bytes for p in prompts)
    ok &= 0 <= max_length <= LIMITS.max_new_tokens
    if params:
        t, k, p, r = (params[n] for n in ("temperature", "top_k", "top_p", "repetition_penalty"))
        # TensorFlow flushes float32 subnormals to zero: a subnormal top_p is 0.
        ok &= bool(np.isfinite(t) and t >= 0 and k >= 0 and np.finfo(_F32).tiny <= p <= 1)
        ok &= bool(np.isfinite(r) and _F32(1e-3) <= r <= _F32(1e3))
    return ok


_int32 = st.integers(-(2**31), 2**31 - 1)
_float32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
_PENALTY = (float(_F32(1e-3)), float(_F32(1e3)))  # the bounds as float32 sees them
# Allowed values, the extremes included ...
_VALID = {
    "prompts": st.lists(st.binary(max_size=40) | st.binary(min_size=290, max_size=300), max_size=4),
    "max_length": st.integers(0, LIMITS.max_new_tokens),
    "temperature": st.floats(0.0, 3.0, width=32) | st.floats(0.0, float(_F32(3e38)), width=32),
    "top_k": st.integers(0, 100) | st.integers(0, 2**31 - 1),
    "top_p": st.floats(0.0, 1.0, exclude_min=True, width=32),
    "seed": _int32,
    "repetition_penalty": st.floats(0.5, 2.0, width=32) | st.floats(*_PENALTY, width=32),
}
# ... and anything at all, for the one input a call may get wrong.
_ANYTHING = {
    "prompts": st.lists(st.binary(max_size=40) | st.binary(min_size=299, max_size=302), max_size=6),
    "max_length": st.integers(-3, 45) | _int32,
    "temperature": _float32,
    "top_k": _int32,
    "top_p": _float32,
    "seed": _int32,
    "repetition_penalty": _float32,
}


@st.composite
def _char_calls(draw):
    """`(signature, inputs)`: every input allowed, except at most one that is anything."""
    signature = draw(st.sampled_from(["greedy", "sample"]))
    names = list(_VALID) if signature == "sample" else ["prompts", "max_length"]
    wild = draw(st.sampled_from([None, *names]))
    return signature, {n: draw(_ANYTHING[n] if n == wild else _VALID[n]) for n in names}


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=_char_calls())
def test_fuzzing_the_character_export(served, call):
    signature, values = call
    prompts, max_length = values.pop("prompts"), values.pop("max_length")
    params = {name: _F32(value) if name in FLOATS else value for name, value in values.items()}
    inputs = {
        "prompts": tf.constant(prompts, tf.string, shape=[len(prompts)]),
        "max_length": tf.constant(max_length, tf.int32),
        **{k: tf.constant(v) for k, v in params.items()},
    }
    signature = served["charlm"][signature]
    try:
        out = signature(**inputs)
    except tf.errors.InvalidArgumentError as e:
        assert "assertion failed: [Expected" in e.message
        assert not _allowed(prompts, max_length, params), e.message
        return
    assert _allowed(prompts, max_length, params)
    _assert_utf8(out)
    # An empty batch has no time steps either.
    assert out["ids"].shape == (len(prompts), max_length if prompts else 0)
    ids = out["ids"].numpy()
    assert ids.size == 0 or ids.min() >= 4  # never a special id
    assert np.all(np.isfinite(out["score"].numpy()))
