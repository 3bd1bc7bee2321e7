"""Vocabulary files of the word and WordPiece tokenisers: plain UTF-8 text, one token per
line, starting with the four special tokens of `textrnn.text.special_tokens` in order.

`VocabularyError` is also what the character tokeniser and the run loaders raise when a
vocabulary is unusable or does not match its model.

Example:
    >>> save_vocabulary(["<pad>", "<unk>", "<s>", "</s>", "dog"], "/tmp/vocab.txt")
    >>> load_vocabulary("/tmp/vocab.txt")[-1]
    'dog'
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

from textrnn.text.special_tokens import NUM_SPECIAL, SPECIAL_TOKENS
from textrnn.text.utf8 import CorpusFileError, read_text_file


class VocabularyError(ValueError):
    """A vocabulary is unusable (empty, without the special tokens, with duplicate or blank
    tokens) or does not belong to the model it is loaded with."""


def validate_vocabulary(tokens: Sequence[str], source: str = "vocabulary") -> list[str]:
    """Checks that a vocabulary is usable and returns it as a list.

    Args:
        tokens: the tokens, in id order.
        source: what to call the vocabulary in error messages (e.g. its path).

    Returns:
        The tokens as a list of `str`.

    Raises:
        VocabularyError: if it is empty, does not start with the special tokens
            `<pad>, <unk>, <s>, </s>` in this order, or holds a duplicate, an
            empty token or a token with whitespace (the messages give line numbers,
            counting from 1).
    """
    tokens = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in tokens]
    if not tokens:
        raise VocabularyError(f"{source} is empty.")
    head = tokens[:NUM_SPECIAL]
    if tuple(head) != SPECIAL_TOKENS:
        missing = [t for t in SPECIAL_TOKENS if t not in tokens]
        detail = f"missing {missing}" if missing else f"found {head} first"
        raise VocabularyError(
            f"{source} must start with the special tokens {list(SPECIAL_TOKENS)} in this "
            f"order; {detail}."
        )
    seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if not token:
            raise VocabularyError(f"{source}: line {i + 1} is an empty token.")
        if token.split() != [token]:
            raise VocabularyError(f"{source}: token {token!r} on line {i + 1} has whitespace.")
        if token in seen:
            raise VocabularyError(
                f"{source}: duplicate token {token!r} on lines {seen[token] + 1} and {i + 1}."
            )
        seen[token] = i
    return tokens


def load_vocabulary(path: str | os.PathLike) -> list[str]:
    """Reads and validates a vocabulary file (UTF-8, one token per line).

    Args:
        path: the vocabulary file.

    Returns:
        The tokens in id order.

    Raises:
        FileNotFoundError: if the file does not exist.
        VocabularyError: if it is unreadable as UTF-8 text, empty, or invalid
            (see `validate_vocabulary`).
    """
    try:
        text = read_text_file(path)
    except CorpusFileError as e:
        raise VocabularyError(f"Cannot read vocabulary: {e}") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return validate_vocabulary([line.removesuffix("\r") for line in lines], str(path))


def save_vocabulary(tokens: Sequence[str], path: str | os.PathLike) -> pathlib.Path:
    """Writes a vocabulary file, one token per line, after validating it.

    Returns:
        The path written.
    """
    tokens = validate_vocabulary(tokens, str(path))
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path
