import numpy as np
import pytest
import tensorflow as tf

from textrnn.text.char_tokenizer import CharTokenizer
from textrnn.text.special_tokens import BOS_ID, EOS_ID, NUM_SPECIAL, PAD_ID, UNK_ID
from textrnn.text.utf8 import ensure_text
from textrnn.text.vocabulary import VocabularyError

TEXT = "Grüße, señor! Ωμέγα\tend\n"


def test_round_trip_non_ascii_in_python_and_graph():
    tok = CharTokenizer.from_text(TEXT)
    ids = tok.encode_text(TEXT)
    assert ids.dtype == np.int32 and ids.shape == (len(TEXT),)  # code points, not bytes
    assert ids.min() >= NUM_SPECIAL
    assert tok.decode_ids(ids) == TEXT
    ragged = tok.encode(tf.constant([TEXT, "", "ü"]))
    assert ragged.dtype == tf.int32
    np.testing.assert_array_equal(ragged[0].numpy(), ids)
    assert ragged[1].shape[0] == 0
    decoded = tok.decode(ragged).numpy()
    assert [d.decode("utf-8") for d in decoded] == [TEXT, "", "ü"]


def test_unknown_characters_map_to_unk_and_decode_to_replacement():
    tok = CharTokenizer.from_text("abc")
    ids = tok.encode_text("a€c")
    assert ids[1] == UNK_ID
    np.testing.assert_array_equal(tok.encode(tf.constant(["a€c"]))[0].numpy(), ids)
    assert tok.decode_ids(ids) == "a\ufffdc"
    assert tok.unknown_characters("a€c€x") == ["€", "x"]


def test_invalid_utf8_bytes():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match="offset 1"):
        tok.encode_text(b"a\xffc")
    # In the graph, bad bytes become U+FFFD and so <unk>.
    np.testing.assert_array_equal(
        tok.encode(tf.constant([b"a\xffc"]))[0].numpy(),
        [tok.encode_text("a")[0], UNK_ID, tok.encode_text("c")[0]],
    )
    with pytest.raises(TypeError):
        ensure_text(3)


def test_decode_drops_special_ids_and_tolerates_out_of_range():
    tok = CharTokenizer.from_text("ab")
    a, b = tok.encode_text("ab")
    ids = tf.constant([[BOS_ID, a, PAD_ID, b, EOS_ID, 999]])
    assert tok.decode(ids).numpy()[0].decode() == "ab\ufffd"
    assert tok.decode_ids([BOS_ID, a, b, EOS_ID]) == "ab"


def test_save_load_round_trip(tmp_path):
    tok = CharTokenizer.from_text(TEXT)
    path = tmp_path / "vocab.txt"
    tok.save(path)
    assert path.read_text(encoding="utf-8").isascii()  # U+XXXX lines: no escaping issues
    again = CharTokenizer.load(path)
    assert again.characters == tok.characters
    assert again.vocab_size == tok.vocab_size == NUM_SPECIAL + len(set(TEXT))


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "not a textrnn character vocabulary"),
        ("hello\n", "not a textrnn character vocabulary"),
        ("# textrnn character vocabulary v1\n<pad>\n<unk>\n", "special tokens"),
        ("# textrnn character vocabulary v1\n<pad>\n<unk>\n<s>\n</s>\nU+0041\nA\n", ":7: expected"),
        (
            "# textrnn character vocabulary v1\n<pad>\n<unk>\n<s>\n</s>\nU+0041\nU+0041\n",
            "Duplicate",
        ),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(VocabularyError, match=message):
        CharTokenizer.load(path)


def test_load_missing_and_non_utf8(tmp_path):
    with pytest.raises(FileNotFoundError):
        CharTokenizer.load(tmp_path / "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(VocabularyError, match="not UTF-8"):
        CharTokenizer.load(bad)


def test_empty_text_cannot_build_vocabulary():
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_text("")
