"""Character tokeniser: Unicode code points <-> ids, in the TensorFlow graph.

Text is handled as Unicode code points (not bytes), so "é" or "ß" is one token.
Encoding and decoding use only core TensorFlow ops (`tf.strings.unicode_decode`,
`tf.strings.unicode_encode`, a `tf.lookup.StaticHashTable` and `tf.gather`), so an
exported SavedModel that contains the tokeniser runs on stock TF Serving.

Documented behaviour for awkward input:
- characters that are not in the vocabulary map to `UNK_ID` (and decode to U+FFFD);
- inside the graph, bytes that are not valid UTF-8 are replaced by U+FFFD and so become
  `UNK_ID`; the Python helpers (`encode_text`) raise `UnicodeDecodeError`-based
  `ValueError`s instead, naming the offset of the first bad byte;
- decoding drops `<pad>`, `<s>` and `</s>`.

The vocabulary file is plain UTF-8 text: a header line, the four special tokens, then
one code point per line written as `U+XXXX` (so newline and tab need no escaping).
"""

from __future__ import annotations

import collections
import os
import re

import numpy as np
import tensorflow as tf

from textrnn.text.special_tokens import BOS_ID, EOS_ID, NUM_SPECIAL, PAD_ID, SPECIAL_TOKENS, UNK_ID
from textrnn.text.utf8 import ensure_text
from textrnn.text.vocabulary import VocabularyError

VOCAB_HEADER = "# textrnn character vocabulary v1"
_CODE_POINT_LINE = re.compile(r"^U\+([0-9A-F]{4,6})$")
_REPLACEMENT_CHAR = 0xFFFD


class CharTokenizer(tf.Module):
    """Maps text to character ids and back, inside or outside `tf.function`.

    Args:
        characters: the characters of the vocabulary, in id order (ids start at
            `NUM_SPECIAL`, after `<pad>`, `<unk>`, `<s>`, `</s>`). Each must be a single
            Unicode code point; duplicates are an error.

    Example:
        >>> tok = CharTokenizer.from_text("hello wörld")
        >>> tok.vocab_size
        12
        >>> ids = tok.encode_text("hello")
        >>> tok.decode_ids(ids)
        'hello'
    """

    def __init__(self, characters, name=None):
        super().__init__(name=name or "char_tokenizer")
        characters = list(characters)
        if not characters:
            raise VocabularyError(
                "A character vocabulary needs at least one character. Received none."
            )
        for ch in characters:
            if not isinstance(ch, str) or len(ch) != 1:
                raise VocabularyError(
                    f"Each vocabulary entry must be one Unicode code point. Received: {ch!r}"
                )
        duplicates = [c for c, n in collections.Counter(characters).items() if n > 1]
        if duplicates:
            raise VocabularyError(f"Duplicate characters in vocabulary: {duplicates!r}")
        self.characters = tuple(characters)
        code_points = np.array([ord(c) for c in characters], dtype=np.int64)
        ids = np.arange(NUM_SPECIAL, NUM_SPECIAL + len(characters), dtype=np.int64)
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(code_points), tf.constant(ids)),
            default_value=UNK_ID,
        )
        # id -> code point; special ids map to -1 and are dropped when decoding,
        # except UNK, which decodes to U+FFFD so the reader sees that something was there.
        id_to_cp = np.concatenate([[-1, _REPLACEMENT_CHAR, -1, -1], code_points]).astype(np.int32)
        self._id_to_code_point = tf.constant(id_to_cp)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_text(cls, text: str, min_count: int = 1) -> CharTokenizer:
        """Builds a vocabulary from every character of `text` (sorted by code point).

        Args:
            text: the training text.
            min_count: characters seen fewer times than this become unknown.

        Returns:
            A `CharTokenizer`.

        Raises:
            ValueError: if `text` is empty.
        """
        if not text:
            raise VocabularyError("Cannot build a character vocabulary from empty text.")
        counts = collections.Counter(text)
        chars = sorted((c for c, n in counts.items() if n >= min_count), key=ord)
        return cls(chars)

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return NUM_SPECIAL + len(self.characters)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Writes the vocabulary as a plain text file (see module docstring)."""
        lines = [VOCAB_HEADER, *SPECIAL_TOKENS] + [f"U+{ord(c):04X}" for c in self.characters]
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(lines) + "\n")

    @classmethod
    def load(cls, path) -> CharTokenizer:
        """Reads and validates a vocabulary file written by `save`.

        Raises:
            FileNotFoundError: if the file does not exist.
            VocabularyError: if the file is empty, not UTF-8, lacks the header or the
                special tokens, has a malformed line or a duplicate.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Character vocabulary file not found: {path}")
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except UnicodeDecodeError as e:
            raise VocabularyError(f"Vocabulary file {path} is not UTF-8 text: {e}") from None
        if not lines or lines[0] != VOCAB_HEADER:
            raise VocabularyError(
                f"{path} is not a textrnn character vocabulary: first line must be "
                f"{VOCAB_HEADER!r}, found {lines[0] if lines else 'an empty file'!r}"
            )
        if tuple(lines[1 : 1 + NUM_SPECIAL]) != SPECIAL_TOKENS:
            raise VocabularyError(
                f"{path}: lines 2-{1 + NUM_SPECIAL} must be the special tokens "
                f"{list(SPECIAL_TOKENS)}, found {lines[1 : 1 + NUM_SPECIAL]}"
            )
        chars = []
        for number, line in enumerate(lines[1 + NUM_SPECIAL :], start=2 + NUM_SPECIAL):
            match = _CODE_POINT_LINE.match(line)
            if not match:
                raise VocabularyError(f"{path}:{number}: expected 'U+XXXX', found {line!r}")
            chars.append(chr(int(match.group(1), 16)))
        return cls(chars)

    # ------------------------------------------------------------------ graph ops
    def encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Strings -> ragged ids.

        Args:
            texts: a string tensor of any rank (usually `[batch]`).

        Returns:
            An int32 `RaggedTensor` with one more (ragged) dimension than `texts`.
        """
        code_points = tf.strings.unicode_decode(
            texts, "UTF-8", errors="replace", replacement_char=_REPLACEMENT_CHAR
        )
        ids = tf.ragged.map_flat_values(
            lambda cp: self._table.lookup(tf.cast(cp, tf.int64)), code_points
        )
        return tf.cast(ids, tf.int32)

    def decode(self, ids) -> tf.Tensor:
        """Ids (`[..., time]` dense or ragged) -> strings, dropping pad/start/end ids."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        ids = tf.cast(ids, tf.int32)
        keep = (ids != PAD_ID) & (ids != BOS_ID) & (ids != EOS_ID)
        ids = tf.ragged.boolean_mask(ids, keep)
        safe = tf.ragged.map_flat_values(
            lambda x: tf.where((x >= 0) & (x < self.vocab_size), x, UNK_ID), ids
        )
        code_points = tf.ragged.map_flat_values(
            lambda x: tf.gather(self._id_to_code_point, x), safe
        )
        return tf.strings.unicode_encode(code_points, "UTF-8")

    # ------------------------------------------------------------------ python helpers
    def encode_text(self, text) -> np.ndarray:
        """One Python string (or UTF-8 bytes) -> 1-D int32 numpy ids.

        Raises:
            ValueError: if `text` is bytes that are not valid UTF-8 (names the offset).
        """
        text = ensure_text(text)
        if not text:
            return np.zeros([0], np.int32)
        lookup = {c: i for i, c in enumerate(self.characters, start=NUM_SPECIAL)}
        return np.fromiter((lookup.get(c, UNK_ID) for c in text), dtype=np.int32, count=len(text))

    def decode_ids(self, ids) -> str:
        """1-D ids -> a Python string (special ids dropped, unknown -> U+FFFD)."""
        out = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if i in (PAD_ID, BOS_ID, EOS_ID):
                continue
            if NUM_SPECIAL <= i < self.vocab_size:
                out.append(self.characters[i - NUM_SPECIAL])
            else:
                out.append(chr(_REPLACEMENT_CHAR))
        return "".join(out)

    def unknown_characters(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not in the vocabulary, in order."""
        known = set(self.characters)
        return list(dict.fromkeys(c for c in text if c not in known))
