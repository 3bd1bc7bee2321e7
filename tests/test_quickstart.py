from textrnn.quickstart import pydoc_corpus, run_quickstart


def test_pydoc_corpus_ships_with_python():
    text = pydoc_corpus()
    assert len(text) > 100_000 and "assert" in text


def test_quickstart_trains_and_prints_text(tmp_path):
    lines = []
    results, text = run_quickstart(minutes=0.05, run_dir=tmp_path, print_fn=lines.append)
    assert text.startswith("The ") and len(text) == len("The ") + 400
    assert results["train_tokens"] > 0 and results["val_loss_windows"] > 0
    assert any("validation loss" in line for line in lines)
