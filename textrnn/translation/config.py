"""The translator's recipe schema: `[model]`, `[data]`, `[train]`, `[translate]` (see
`textrnn.training.config` for loading and overrides)."""

from __future__ import annotations

import dataclasses

from textrnn.decoding.strategies import CAPPED_RULES
from textrnn.training.config import ConfigError, TrainConfig


@dataclasses.dataclass(frozen=True)
class TranslationModelConfig:
    """Fields equal `Seq2Seq.__init__` arguments (vocabulary sizes come from the tokenisers)."""

    cell: str = "lstm"
    embedding_dim: int = 256
    encoder_units: int = 256  # per direction
    encoder_layers: int = 1
    bidirectional: bool = True
    decoder_units: int = 512
    decoder_layers: int = 1
    attention: str = "luong"  # "bahdanau" or "luong"
    attention_score: str = "general"  # Luong's "dot", "general" or "concat"
    attention_units: int = 256
    input_feeding: bool = True  # Luong: feed the attentional vector to the next step
    bridge: str = "dense"  # decoder initial state: "dense" (from the encoder) or "zero"
    dropout: float = 0.3
    tie_embeddings: bool = True  # share target embedding and output projection
    # textrnn's fast recurrent layers (Keras's weights, textrnn's CPU loop), the default;
    # false: Keras's stock layers (README, "Fast recurrent layers").
    fast_layers: bool = True


@dataclasses.dataclass(frozen=True)
class TranslationDataConfig:
    dataset: str = "multi30k"  # "multi30k", "spa-eng" or a folder of parallel files
    source_language: str = "de"
    target_language: str = "en"
    source_vocab_size: int = 8000  # WordPiece targets, special tokens included
    target_vocab_size: int = 8000
    lowercase: bool = False
    max_source_length: int = 100  # training pairs longer than this (in tokens) are skipped
    max_target_length: int = 100
    batch_size: int = 64
    num_buckets: int = 8
    split_seed: int = 0  # spa-eng: seed of the split


@dataclasses.dataclass(frozen=True)
class TranslationTrainConfig(TrainConfig):
    epochs: int = 15
    steps_per_epoch: int = 0
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    min_learning_rate: float = 5e-5
    early_stopping_patience: int = 4
    label_smoothing: float = 0.1
    scheduled_sampling: float = 0.0  # final probability of feeding the model's own token
    validation_bleu: bool = True  # greedy BLEU on the validation split after each epoch


@dataclasses.dataclass(frozen=True)
class TranslateConfig:
    """Decoding defaults for `textrnn translate`, evaluation and `serving_default`."""

    strategy: str = "beam"  # "greedy", "beam" or "sample"
    beam_width: int = 5
    n_best: int = 1
    length_penalty: str = "gnmt"
    alpha: float = 0.6
    max_length: int = 200  # absolute cap on generated tokens
    max_length_ratio: float = 2.0  # and at most ratio * source tokens + offset
    max_length_offset: int = 10
    # Beam search: a hypothesis reaching its cap must end there ("force_end"), is ranked
    # after every ended one ("rank_last") or by its prefix ("prefix", measured best); see
    # `BeamSearch` and benchmarks/capped_hypotheses.py.
    capped: str = "prefix"
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self):
        if self.capped not in CAPPED_RULES:
            raise ConfigError(
                f"Expected translate.capped in {CAPPED_RULES}. Received: {self.capped!r}"
            )


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    model: TranslationModelConfig = dataclasses.field(default_factory=TranslationModelConfig)
    data: TranslationDataConfig = dataclasses.field(default_factory=TranslationDataConfig)
    train: TranslationTrainConfig = dataclasses.field(default_factory=TranslationTrainConfig)
    translate: TranslateConfig = dataclasses.field(default_factory=TranslateConfig)


DECODING_OPTIONS = (
    "strategy",
    "beam_width",
    "n_best",
    "alpha",
    "max_length",
    "temperature",
    "top_k",
    "top_p",
    "seed",
)


def decoding_options(defaults: TranslateConfig, **given) -> dict:
    """Decoding options for `Translator.translate_texts`: the `given` ones, falling back on
    the recipe's `[translate]` values where a given one is None or absent.

    Raises:
        ValueError: for a name that is not a decoding option.

    Example:
        >>> decoding_options(TranslateConfig(), beam_width=3, alpha=None)["alpha"]
        0.6
    """
    unknown = sorted(set(given) - set(DECODING_OPTIONS))
    if unknown:
        raise ValueError(f"Unknown decoding option(s) {unknown}; valid: {list(DECODING_OPTIONS)}")
    return {
        name: getattr(defaults, name) if given.get(name) is None else given[name]
        for name in DECODING_OPTIONS
    }
