"""Run directories written by the flat layout (commit 54cfe4a) still load, evaluate,
generate / predict / translate and export, with the answers that code gave.

The fixture and how it was made: tests/fixtures/flat_layout_runs/README.md.
"""

import json
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import REPO

from textrnn.charlm.generator import generate
from textrnn.cli import main
from textrnn.sentiment.predictor import make_predictor
from textrnn.training.runs import load_run
from textrnn.translation.translator import make_translator

FIXTURE = REPO / "tests" / "fixtures" / "flat_layout_runs"
EXPECTED = FIXTURE / "expected"
MODELS = {"charlm": "CharLM", "sentiment": "SentimentClassifier", "translate": "Seq2Seq"}


@pytest.fixture(autouse=True)
def _from_the_repository_root(monkeypatch):
    monkeypatch.chdir(REPO)  # the fixture's recipes name their datasets relative to it


def _cli(capsys, *args):
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def _assert_same_figures(got, expected, skip=()):
    assert set(got) == set(expected)
    for key, value in expected.items():
        if key in skip:
            continue
        if isinstance(value, dict):
            _assert_same_figures(got[key], value, skip)
        elif isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-3, abs=1e-4), key
        else:
            assert got[key] == value, key


def test_a_bare_import_textrnn_lets_keras_load_every_task_model():
    paths = {task: str(FIXTURE / task / "model.keras") for task in MODELS}
    code = (
        "import json, sys, textrnn, keras\n"
        "paths = json.loads(sys.argv[1])\n"
        "print(json.dumps({t: type(keras.models.load_model(p)).__name__ "
        "for t, p in paths.items()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == MODELS


@pytest.mark.parametrize("task", list(MODELS))
def test_an_old_run_evaluates_to_the_figures_the_old_code_gave(task, tmp_path, capsys):
    output = tmp_path / "figures.json"
    _cli(capsys, "evaluate", "--run-dir", str(FIXTURE / task), "--output", str(output))
    expected = json.loads((EXPECTED / f"{task}.evaluate.json").read_text())
    timing = ("decode_seconds", "sentences_per_second")
    _assert_same_figures(json.loads(output.read_text()), expected, skip=timing)


def test_an_old_run_generates_predicts_and_translates_as_before(capsys):
    out = _cli(
        capsys,
        "generate",
        "--run-dir",
        str(FIXTURE / "charlm"),
        "--prompt",
        "The ",
        "--prompt",
        "A",
        "--length",
        "40",
        "--strategy",
        "sample",
        "--temperature",
        "1.0",
        "--seed",
        "3",
    )
    assert out == (EXPECTED / "charlm.generate.txt").read_text(encoding="utf-8")

    out = _cli(
        capsys,
        "predict",
        "--run-dir",
        str(FIXTURE / "sentiment"),
        "--json",
        "--text",
        "a gem of a film",
        "--text",
        "a dull mess",
    )
    expected = (EXPECTED / "sentiment.predict.jsonl").read_text(encoding="utf-8").splitlines()
    for got, want in zip(out.splitlines(), expected, strict=True):
        _assert_same_figures(json.loads(got), json.loads(want))

    source = ["--run-dir", str(FIXTURE / "translate"), "--text", "Ein Hund rennt."]
    out = _cli(capsys, "translate", *source, "--text", "Eine Frau singt.", "--beam-width", "3")
    assert out == (EXPECTED / "translate.translate.txt").read_text(encoding="utf-8")
    out = _cli(capsys, "translate", *source, "--strategy", "sample", "--temperature", "1.0",
               "--seed", "2")  # fmt: skip
    assert out == (EXPECTED / "translate.sample.txt").read_text(encoding="utf-8")


def _api_answer(task, run):
    """What the Python API answers on the export test's input, to compare with the export."""
    model, tokenizer, cfg = run
    if task == "charlm":
        return generate(model, tokenizer, "The ", strategy="greedy", max_length=20)[0]
    if task == "sentiment":
        return make_predictor(model, tokenizer, cfg).predict_texts(["a gem of a film"])[0]["label"]
    translator = make_translator(model, tokenizer, cfg)
    return translator.translate_texts(["Ein Hund rennt."], "greedy", max_length=20)[0][
        "translation"
    ]


@pytest.mark.parametrize(
    "task, signature, inputs, output",
    [
        ("charlm", "greedy", {"prompts": ["The "], "max_length": 20}, "text"),
        ("sentiment", "serving_default", {"texts": ["a gem of a film"]}, "labels"),
        ("translate", "greedy", {"sources": ["Ein Hund rennt."], "max_length": 20}, "translation"),
    ],
)
def test_an_old_run_exports_and_the_export_answers_as_the_api(
    task, signature, inputs, output, tmp_path, capsys
):
    out_dir = tmp_path / "export"
    _cli(capsys, "export", "--run-dir", str(FIXTURE / task), "--out", str(out_dir))
    served = tf.saved_model.load(str(out_dir / "1"))  # the first version of the base dir
    got = served.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    assert got[output].numpy()[0].decode("utf-8") == _api_answer(task, load_run(FIXTURE / task))
