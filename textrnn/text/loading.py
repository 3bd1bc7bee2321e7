"""Loading a saved word or WordPiece tokeniser without knowing its class."""

from __future__ import annotations

import json
import os
import pathlib

from textrnn.text.word_tokenizer import CONFIG_SUFFIX, WordTokenizer
from textrnn.text.wordpiece_tokenizer import WordPieceTokenizer

_CLASSES = {c.__name__: c for c in (WordTokenizer, WordPieceTokenizer)}


def load_tokenizer(path: str | os.PathLike) -> WordTokenizer:
    """Loads whichever tokeniser class `save` wrote at `path`.

    Args:
        path: a vocabulary file with its `<path>.json` options file.

    Returns:
        A `WordTokenizer` or `WordPieceTokenizer`.

    Raises:
        FileNotFoundError: if the options file is missing (then load with a
            class's `load`, which falls back to defaults).
        ValueError: for an unknown class name in the options file.
    """
    path = pathlib.Path(path)
    config_path = path.with_name(path.name + CONFIG_SUFFIX)
    if not config_path.is_file():
        raise FileNotFoundError(
            f"No tokenizer options file {config_path}; use WordTokenizer.load(path) or "
            f"WordPieceTokenizer.load(path) for a bare vocabulary file."
        )
    class_name = json.loads(config_path.read_text(encoding="utf-8")).get("class")
    if class_name not in _CLASSES:
        raise ValueError(
            f"{config_path} names unknown tokenizer class {class_name!r}; known: {sorted(_CLASSES)}."
        )
    return _CLASSES[class_name].load(path)
