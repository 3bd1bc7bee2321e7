"""textrnn: recurrent neural networks for text on Keras 3 (TensorFlow backend).

`import textrnn` selects the TensorFlow backend, registers every task (character LM,
sentiment, translation) and every serialisable class, so `keras.models.load_model` opens
any textrnn `.keras` file, and gives the public API a user types:

    >>> import textrnn
    >>> cfg = textrnn.load_config("models/charlm-shakespeare/config.toml", ["train.epochs=1"])
    >>> textrnn.train_charlm(cfg, "runs/demo")
    >>> model, tokenizer, cfg = textrnn.load_run("runs/demo")
    >>> textrnn.generate(model, tokenizer, "ROMEO:", strategy="beam", max_length=100)

The package's folders follow its layers: shared machinery in `text`, `data`, `layers`,
`decoding`, `metrics`, `training` and `export`; one package per task on top of them
(`charlm`, `sentiment`, `translation`, each with `config`, `data`, `model`, `train`,
`evaluate`, its generator / predictor / translator and `export`); and the command line,
the quickstart and `diagnostics` on top of the tasks.

Imported by the `textrnn` command (and only then), it also filters TensorFlow's native
log noise out of stderr (`textrnn.native_logs`; `--verbose` keeps it).
"""

import os as _os

# Keras 3 picks its backend at import time; textrnn is built on TensorFlow.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# The command line filters TensorFlow's native log noise out of stderr; it has to start
# before TensorFlow loads, so it starts here (see `textrnn.native_logs`).
from textrnn import native_logs as _native_logs

if _native_logs.launched_as_command():
    _native_logs.filter_native_logs()

# Importing a task package registers it with the task registry and registers its Keras
# classes; the order is the order of `textrnn train --help`.
from textrnn import charlm, sentiment, translation
from textrnn.charlm.evaluate import evaluate_charlm
from textrnn.charlm.export import export_charlm
from textrnn.charlm.generator import CharGenerator, generate
from textrnn.charlm.model import CharLM
from textrnn.charlm.train import train_charlm
from textrnn.decoding import BeamSearch, DecodeResult, Greedy, Sampling, decode
from textrnn.layers.attention import BahdanauAttention, LuongAttention
from textrnn.layers.pooling import SequencePooling
from textrnn.metrics.language_model import BitsPerCharacter, Perplexity
from textrnn.sentiment.evaluate import evaluate_split
from textrnn.sentiment.export import export_sentiment
from textrnn.sentiment.model import SentimentClassifier
from textrnn.sentiment.predictor import SentimentPredictor, make_predictor
from textrnn.sentiment.train import train_sentiment
from textrnn.text.char_tokenizer import CharTokenizer
from textrnn.text.loading import load_tokenizer
from textrnn.text.vocabulary import VocabularyError
from textrnn.text.word_tokenizer import WordTokenizer
from textrnn.text.wordpiece_tokenizer import WordPieceTokenizer
from textrnn.training.config import ConfigError, load_config
from textrnn.training.losses import SmoothedCrossEntropy
from textrnn.training.runs import RunDirError, load_run
from textrnn.translation.evaluate import evaluate_translation
from textrnn.translation.export import export_translator
from textrnn.translation.model import Seq2Seq
from textrnn.translation.train import train_translation
from textrnn.translation.translator import Translator, make_translator

__all__ = [
    "BahdanauAttention",
    "BeamSearch",
    "BitsPerCharacter",
    "CharGenerator",
    "CharLM",
    "CharTokenizer",
    "ConfigError",
    "DecodeResult",
    "Greedy",
    "LuongAttention",
    "Perplexity",
    "RunDirError",
    "Sampling",
    "SentimentClassifier",
    "SentimentPredictor",
    "Seq2Seq",
    "SequencePooling",
    "SmoothedCrossEntropy",
    "Translator",
    "VocabularyError",
    "WordPieceTokenizer",
    "WordTokenizer",
    "charlm",
    "decode",
    "evaluate_charlm",
    "evaluate_split",
    "evaluate_translation",
    "export_charlm",
    "export_sentiment",
    "export_translator",
    "generate",
    "load_config",
    "load_run",
    "load_tokenizer",
    "make_predictor",
    "make_translator",
    "sentiment",
    "train_charlm",
    "train_sentiment",
    "train_translation",
    "translation",
]
