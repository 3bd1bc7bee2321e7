import json

import pytest
from conftest import REPO

from textrnn.cli import main


def _generate(run_dir, *args):
    return main(["generate", "--run-dir", str(run_dir), *args])


def test_generate_evaluate_export(tiny_run, tmp_path, capsys):
    assert _generate(tiny_run, "--prompt", "The", "--length", "20", "--strategy", "greedy") == 0
    out = capsys.readouterr().out
    assert out.startswith("The") and len(out.rstrip("\n")) >= 23
    greedy = ["--prompt", "The", "--length", "20", "--strategy", "greedy", "--xla"]
    assert _generate(tiny_run, *greedy) == 0
    assert capsys.readouterr().out == out  # XLA changes the speed, not greedy's result
    args = ["--prompt", "a", "--prompt", "b", "--length", "5", "--seed", "3"]
    assert _generate(tiny_run, *args, "--top-k", "3", "--top-p", "0.9") == 0
    assert capsys.readouterr().out.count("-----") == 2
    report = tmp_path / "eval.json"
    assert (
        main(
            ["evaluate", "--run-dir", str(tiny_run), "--num-windows", "4", "--output", str(report)]
        )
        == 0
    )
    figures = json.loads(report.read_text())
    assert figures["val_loss_windows"] > 0 and figures["val_bpc_sequential"] > 0
    # What training wrote (2,000 windows, seed 0) is what evaluate says with its defaults;
    # the sequential figures do not depend on the window count.
    trained = json.loads((tiny_run / "results.json").read_text())
    capsys.readouterr()
    sequential = ("val_loss_sequential", "val_bpc_sequential", "val_perplexity_sequential")
    assert {k: figures[k] for k in sequential} == {k: trained[k] for k in sequential}
    assert main(["evaluate", "--run-dir", str(tiny_run), "--output", str(report)]) == 0
    figures = json.loads(report.read_text())
    assert {k: figures[k] for k in trained if k.startswith("val_") or k == "window_protocol"} == {
        k: v for k, v in trained.items() if k.startswith("val_") or k == "window_protocol"
    }
    summary = capsys.readouterr().out  # two lines for a person; --json for every figure
    assert summary.startswith(f"{figures['dataset']} validation: ") and summary.count("\n") == 2
    assert main(["evaluate", "--run-dir", str(tiny_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == figures
    assert main(["export", "--run-dir", str(tiny_run), "--out", str(tmp_path / "exp")]) == 0
    # TensorFlow Serving's layout: each export is the next version of the base directory.
    assert (tmp_path / "exp" / "1" / "saved_model.pb").exists()
    assert (
        main(["export", "--run-dir", str(tiny_run), "--out", str(tmp_path / "exp"), "--xla"]) == 0
    )
    assert json.loads((tmp_path / "exp" / "2" / "textrnn_export.json").read_text())["xla"] is True
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["1", "2"]


def test_generate_reads_prompts_from_stdin(tiny_run, capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"one\ntwo\n")))
    assert _generate(tiny_run, "--length", "3", "--strategy", "greedy") == 0
    out = capsys.readouterr().out
    assert "one" in out and "two" in out
    # Blank lines at the end of the input are not prompts.
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"one\ntwo\n\n \n")))
    assert _generate(tiny_run, "--length", "3", "--strategy", "greedy") == 0
    assert capsys.readouterr().out == out


def test_a_prompt_argument_that_is_not_utf8_names_the_byte(tiny_run, capsys):
    import os

    prompt = os.fsdecode(b"ab\xff")  # what Python makes of such an argv entry
    assert _generate(tiny_run, "--prompt", "ok", "--prompt", prompt, "--length", "3") == 2
    err = capsys.readouterr().err
    assert "argument 2 is not valid UTF-8: byte b'\\xff' at offset 2" in err
    assert "\\udcff" not in err


def test_warnings_print_as_one_line_without_source(tiny_run, capsys):
    # A character outside the vocabulary warns (the documented behaviour).
    assert _generate(tiny_run, "--prompt", "☃", "--length", "3", "--strategy", "greedy") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("textrnn: warning: ")
    assert "warnings.warn" not in err[0]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"ok text \xff\xfe more", "UTF-8"),
        (None, "neither a registered dataset|not found"),
    ],
)
def test_train_reports_bad_corpus_files(tmp_path, capsys, content, message):
    corpus = tmp_path / "corpus.txt"
    if content is not None:
        corpus.write_bytes(content)
    code = main(
        [
            "train",
            "charlm",
            "--recipe",
            str(REPO / "models/charlm-shakespeare/config.toml"),
            "--run-dir",
            str(tmp_path / "run"),
            "--set",
            f"data.dataset='{corpus}'",
            "--quiet",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "error" in err
    import re

    assert re.search(message, err, re.IGNORECASE), err
    assert not (tmp_path / "run").exists()  # a bad corpus leaves no half-made run behind


def test_missing_run_dir_and_bad_override(tmp_path, capsys):
    assert _generate(tmp_path / "nope", "--prompt", "x") == 2
    assert "finished training run" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "charlm",
                "--recipe",
                str(REPO / "models/charlm-shakespeare/config.toml"),
                "--run-dir",
                str(tmp_path / "r"),
                "--set",
                "model.celll=gru",
            ]
        )
        == 2
    )
    assert "Unknown key" in capsys.readouterr().err


def test_redirected_training_log_has_one_plain_line_per_epoch(tmp_path):
    import subprocess
    import sys

    from conftest import TINY_OVERRIDES

    args = [sys.executable, "-m", "textrnn.cli", "train", "charlm", "--run-dir", str(tmp_path)]
    args += ["--recipe", str(REPO / "models/charlm-shakespeare/config.toml")]
    for override in TINY_OVERRIDES:
        args += ["--set", override]
    done = subprocess.run(args, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\r" not in done.stdout and "\x1b" not in done.stdout
    epochs = [line for line in done.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs == ["Epoch 1/2", "Epoch 2/2"]
    progress = [line for line in done.stdout.splitlines() if line.startswith("3/3 - ")]
    assert len(progress) == 2 and all("val_loss:" in line for line in progress)
    # Then a short summary, not the whole results JSON, which stays in the run directory.
    results = json.loads((tmp_path / "results.json").read_text())
    summary = done.stdout.splitlines()[-4:]
    assert summary[0].startswith(f"validation: {results['val_loss_windows']:.4f} nats/char")
    assert summary[1].startswith("validation, sequential: ")
    assert summary[2].startswith("trained 2 epochs: 1,536 chars in ")
    assert summary[3] == f"every figure: {tmp_path / 'results.json'}"
