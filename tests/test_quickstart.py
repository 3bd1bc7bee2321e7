import json

from textrnn.charlm.data import load_char_corpus
from textrnn.charlm.evaluate import evaluate_charlm
from textrnn.quickstart import pydoc_corpus, run_quickstart
from textrnn.training.runs import load_run


def test_pydoc_corpus_ships_with_python():
    text = pydoc_corpus()
    assert len(text) > 100_000 and "assert" in text


def test_quickstart_trains_and_prints_text(tmp_path):
    lines = []
    results, text = run_quickstart(minutes=0.05, run_dir=tmp_path, print_fn=lines.append)
    assert text.startswith("The ") and len(text) == len("The ") + 400
    assert results["train_tokens"] > 0 and results["val_loss_windows"] > 0
    # The figures are the saved model's, scored again here from the run directory.
    assert (
        json.loads((tmp_path / "run" / "results.json").read_text())["val_loss_windows"]
        == (results["val_loss_windows"])
    )
    model, tokenizer, cfg = load_run(tmp_path / "run")
    validation = load_char_corpus(cfg.data.dataset)["validation"]
    again = evaluate_charlm(model, tokenizer.encode_text(validation), seq_len=cfg.data.seq_len)
    assert again["val_loss_windows"] == results["val_loss_windows"]
    assert again["val_loss_sequential"] == results["val_loss_sequential"]
    assert any("validation loss" in line for line in lines)
