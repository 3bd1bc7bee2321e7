"""Tests for textrnn.text.word_tokenizer and wordpiece_tokenizer: tokenisers in TF graphs."""

import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from textrnn.text.loading import load_tokenizer
from textrnn.text.special_tokens import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID
from textrnn.text.vocabulary import VocabularyError, load_vocabulary, validate_vocabulary
from textrnn.text.word_tokenizer import WordTokenizer
from textrnn.text.wordpiece_tokenizer import WordPieceTokenizer

SAMPLE = pathlib.Path(__file__).resolve().parents[1] / "data" / "samples" / "tiny_corpus.txt"
LINES = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def wordpiece():
    return WordPieceTokenizer.learn(LINES, vocab_size=400, lowercase=True)


def _words(tok, text):
    ids = tok.tokenize(text).numpy().tolist()
    return [tok.id_to_token(i) for i in ids]


# -- word level -----------------------------------------------------------------


def test_word_vocabulary_is_ranked_by_frequency():
    texts = ["b a a", "c b a", "d"]
    assert WordTokenizer.learn(texts, 20).get_vocabulary() == [*SPECIAL_TOKENS, "a", "b", "c", "d"]
    assert WordTokenizer.learn(texts, 20, min_count=2).get_vocabulary()[4:] == ["a", "b"]
    assert WordTokenizer.learn(texts, 5).get_vocabulary()[4:] == ["a"]
    dataset = tf.data.Dataset.from_tensor_slices(texts)
    assert WordTokenizer.learn(dataset, 20).get_vocabulary()[4:] == ["a", "b", "c", "d"]


def test_word_tokenizer_handles_accents_case_and_unknowns():
    tok = WordTokenizer.learn(["Über die Straße.", "El niño, está aquí."], 50, lowercase=True)
    ids = tok.tokenize(["ÜBER DIE STRASSE", "el NIÑO, señor"])
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32
    first, second = ids.to_list()
    assert first[:2] == [tok.token_to_id("über"), tok.token_to_id("die")]
    assert first[2] == UNK_ID  # "strasse" is not "straße"
    assert second == [tok.token_to_id("el"), tok.token_to_id("niño"), tok.token_to_id(","), UNK_ID]
    assert tok.detokenize(ids).numpy()[1].decode() == "el niño , <unk>"


def test_splitting_punctuation_symbols_and_whitespace():
    text = "¿Qué tal?\u00a0¡Bien!\tPrice: 3€ «ok»\n\u200bend"
    tok = WordTokenizer.learn([text], 100)
    assert _words(tok, text) == [
        "¿",
        "Qué",
        "tal",
        "?",
        "¡",
        "Bien",
        "!",
        "Price",
        ":",
        "3",
        "€",
        "«",
        "ok",
        "»",
        "end",
    ]
    # Typed special tokens are split like any text and never become special ids.
    ids = tok.tokenize("<s> </s> <pad>").numpy().tolist()
    assert not {PAD_ID, BOS_ID, EOS_ID} & set(ids)


def test_shapes_bos_eos_and_empty_strings():
    tok = WordTokenizer.learn(["a b c"], 10)
    assert tok.tokenize("a b").shape == (2,)
    assert tok.tokenize(np.array(["a", "b c"])).shape.as_list() == [2, None]
    with_marks = tok.tokenize(["a b", ""], add_bos=True, add_eos=True).to_list()
    assert with_marks == [[BOS_ID, 4, 5, EOS_ID], [BOS_ID, EOS_ID]]
    assert tok(["", "  "]).to_list() == [[], []]
    with pytest.raises(ValueError, match="scalar or 1-D"):
        tok.tokenize([["a"]])


def test_detokenize_drops_specials_and_stops_at_eos():
    tok = WordTokenizer([*SPECIAL_TOKENS, "hola", "mundo"])
    dense = tf.constant([[BOS_ID, 4, 5, EOS_ID, 4, PAD_ID], [4, 9999, PAD_ID, PAD_ID, 0, 0]])
    assert tok.detokenize(dense).numpy().tolist() == [b"hola mundo", b"hola <unk>"]
    assert tok.detokenize(dense, stop_at_eos=False).numpy()[0] == b"hola mundo hola"
    ragged = tf.ragged.constant([[4, EOS_ID], [], [5]])
    assert tok.detokenize(ragged).numpy().tolist() == [b"hola", b"", b"mundo"]
    assert tok.detokenize([5, 4]).numpy() == b"mundo hola"


def test_works_in_tf_function_and_dataset_map(wordpiece):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def encode(texts):
        return wordpiece.tokenize(texts, add_eos=True).to_tensor()

    eager = wordpiece.tokenize(["Die Wärterin zählt."], add_eos=True).to_tensor()
    np.testing.assert_array_equal(encode(tf.constant(["Die Wärterin zählt."])), eager)
    ds = tf.data.Dataset.from_tensor_slices(["Die Wärterin zählt.", "el faro"])
    ds = ds.map(wordpiece.tokenize)
    rows = [x.numpy().tolist() for x in ds]
    assert rows[0] == wordpiece.tokenize("Die Wärterin zählt.").numpy().tolist()


# -- WordPiece ----------------------------------------------------------------------


def test_wordpiece_covers_unseen_words_from_seen_characters(wordpiece):
    vocab = wordpiece.get_vocabulary()
    assert vocab[:4] == list(SPECIAL_TOKENS)
    assert any(t.startswith("##") for t in vocab)
    text = "Die Leuchtturmwärterin zählt Straßenbahnen, señor."  # not in the corpus
    ids = wordpiece.tokenize(text).numpy().tolist()
    assert UNK_ID not in ids
    assert len(ids) > len(text.split()) + 2  # some words became several pieces
    assert wordpiece.detokenize(ids).numpy().decode() == (
        "die leuchtturmwärterin zählt straßenbahnen , señor ."
    )


def test_wordpiece_unknown_characters_become_unk(wordpiece):
    ids = wordpiece.tokenize(["Ωmega 漢字 faro"]).to_list()[0]
    assert ids[:3] == [UNK_ID, UNK_ID, UNK_ID]  # CJK ideographs are split one per word
    assert UNK_ID not in ids[3:]
    assert wordpiece.tf_text_ops == ("WordpieceTokenizeWithOffsets",)


def test_wordpiece_respects_normalization_form():
    composed, decomposed = "Straße für Niño", "Straße fu\u0308r Nin\u0303o"
    tok = WordPieceTokenizer.learn([composed] * 3, 50, normalization="NFC")
    assert tok.tokenize(decomposed).numpy().tolist() == tok.tokenize(composed).numpy().tolist()
    assert tok.tf_text_ops == ("NormalizeUTF8", "WordpieceTokenizeWithOffsets")
    with pytest.raises(ValueError, match="normalization"):
        WordTokenizer([*SPECIAL_TOKENS], normalization="nfc")


# -- vocabularies, save and load ------------------------------------------------------


@pytest.mark.parametrize(
    "tokens, match",
    [
        ([], "is empty"),
        (["<pad>", "<unk>", "<s>", "a"], r"missing \['</s>'\]"),
        (["<unk>", "<pad>", "<s>", "</s>"], "in this order"),
        ([*SPECIAL_TOKENS, "a", "b", "a"], "duplicate token 'a' on lines 5 and 7"),
        ([*SPECIAL_TOKENS, ""], "line 5 is an empty token"),
        ([*SPECIAL_TOKENS, "a b"], "has whitespace"),
    ],
)
def test_validate_vocabulary_errors(tokens, match):
    with pytest.raises(VocabularyError, match=match):
        validate_vocabulary(tokens)


def test_vocabulary_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_vocabulary(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(VocabularyError, match="empty"):
        WordTokenizer(empty)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("\n".join(SPECIAL_TOKENS).encode() + b"\nni\xf1o\n")
    with pytest.raises(VocabularyError, match="not valid UTF-8"):
        load_vocabulary(latin1)
    no_specials = tmp_path / "plain.txt"
    no_specials.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="plain.txt must start with"):
        load_vocabulary(no_specials)
    windows = tmp_path / "crlf.txt"
    windows.write_bytes("\r\n".join([*SPECIAL_TOKENS, "niño"]).encode())
    assert load_vocabulary(windows)[-1] == "niño"
    with pytest.raises(ValueError, match="vocab_size > 4"):
        WordTokenizer.learn(["a"], 4)


def test_save_and_load_round_trip(tmp_path):
    tok = WordPieceTokenizer.learn(LINES, 200, lowercase=True, normalization="NFC")
    path = tok.save(tmp_path / "vocab" / "de.txt")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == tok.get_vocabulary() and lines[:4] == list(SPECIAL_TOKENS)
    options = json.loads((tmp_path / "vocab" / "de.txt.json").read_text())
    assert options["class"] == "WordPieceTokenizer" and options["normalization"] == "NFC"
    for loaded in (WordPieceTokenizer.load(path), load_tokenizer(path)):
        assert isinstance(loaded, WordPieceTokenizer)
        config = loaded.get_config()
        assert {k: v for k, v in config.items() if k != "name"} == {
            k: v for k, v in tok.get_config().items() if k != "name"
        }
        text = ["Über dem Wasser liegt Nebel."]
        assert loaded.tokenize(text).to_list() == tok.tokenize(text).to_list()
    with pytest.raises(ValueError, match="saved by WordPieceTokenizer"):
        WordTokenizer.load(path)
    rebuilt = WordPieceTokenizer.from_config(tok.get_config())
    assert rebuilt.get_vocabulary() == tok.get_vocabulary() and rebuilt.lowercase
    (tmp_path / "vocab" / "de.txt.json").unlink()
    bare = WordPieceTokenizer.load(path, lowercase=True)
    assert bare.lowercase and bare.normalization is None
    with pytest.raises(FileNotFoundError, match="options file"):
        load_tokenizer(path)


# -- export ---------------------------------------------------------------------------

_LOAD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    def non_core_ops(path):
        model = saved_model_pb2.SavedModel()
        with open(path + "/saved_model.pb", "rb") as f:
            model.ParseFromString(f.read())
        ops = set()
        for graph in model.meta_graphs:
            ops.update(n.op for n in graph.graph_def.node)
            for function in graph.graph_def.library.function:
                ops.update(n.op for n in function.node_def)
        return sorted(op for op in ops if op_def_registry.get(op) is None)

    result = {}
    for kind in ("word", "wordpiece"):
        path = sys.argv[1] + "/" + kind
        result[kind + "_ops"] = non_core_ops(path)
        if result[kind + "_ops"]:
            import tensorflow_text  # registers the ops; loading fails without it
        model = tf.saved_model.load(path)
        ids = model.signatures["tokenize"](tf.constant([sys.argv[2]]))["ids"]
        text = model.signatures["detokenize"](ids)["text"]
        result[kind] = {"ids": ids.numpy().tolist(), "text": text.numpy()[0].decode()}
    result["textrnn_imported"] = any(m.startswith("textrnn") for m in sys.modules)
    print("RESULT " + json.dumps(result))
    """
)


class _Exporter(tf.Module):
    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, texts):
        return {"ids": self.tokenizer.tokenize(texts, add_bos=True, add_eos=True).to_tensor()}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def detokenize(self, ids):
        return {"text": self.tokenizer.detokenize(ids)}


def test_exported_savedmodel_works_without_textrnn(tmp_path, wordpiece):
    text = "Über die Straße, señor: ¿dónde está el faro?"
    word = WordTokenizer.learn(LINES, 300, lowercase=True)
    expected = {}
    for kind, tok in (("word", word), ("wordpiece", wordpiece)):
        module = _Exporter(tok)
        signatures = {"tokenize": module.tokenize, "detokenize": module.detokenize}
        tf.saved_model.save(module, str(tmp_path / kind), signatures=signatures)
        ids = module.tokenize(tf.constant([text]))["ids"]
        expected[kind] = {
            "ids": ids.numpy().tolist(),
            "text": module.detokenize(ids)["text"].numpy()[0].decode(),
        }
    del module, word  # the tables must live in the SavedModel, not in this process
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, str(tmp_path), text],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert not result["textrnn_imported"]
    assert result["word_ops"] == []  # pure core TensorFlow: loads without tensorflow_text
    assert result["wordpiece_ops"] == list(wordpiece.tf_text_ops)
    assert result["word"] == expected["word"]
    assert result["wordpiece"] == expected["wordpiece"]
    assert result["wordpiece"]["text"] == "über die straße , señor : ¿ dónde está el faro ?"


def test_wordpiece_without_punctuation_splitting_detokenises_exactly(tmp_path):
    tok = WordPieceTokenizer.learn(LINES, vocab_size=400, split_punctuation=False)
    texts = [line.strip() for line in LINES[:20]] + ["Die Leuchtturmwärterin, señor: «ja»."]
    ids = tok.tokenize(texts)
    pieces = tok.ids_to_tokens(ids[-1]).numpy().tolist()
    assert b"##," in pieces and b"##:" in pieces  # punctuation is a piece of the word
    assert UNK_ID not in ids.flat_values.numpy()
    back = [t.decode() for t in tok.detokenize(ids).numpy()]
    assert back == [" ".join(t.split()) for t in texts]
    tok.save(tmp_path / "vocab.txt")
    assert load_tokenizer(tmp_path / "vocab.txt").split_punctuation is False


@pytest.mark.parametrize("split_punctuation", [True, False])
def test_text_never_yields_special_ids(split_punctuation):
    tok = WordTokenizer(list(SPECIAL_TOKENS) + ["hello"], split_punctuation=split_punctuation)
    ids = tok.tokenize(["<pad> hello </s> <s> <unk>"]).flat_values.numpy().tolist()
    assert ids.count(4) == 1 and set(ids) - {4} == {UNK_ID}
