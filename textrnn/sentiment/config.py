"""The sentiment classifier's recipe schema: `[model]`, `[data]`, `[train]` (see
`textrnn.training.config` for loading and overrides)."""

from __future__ import annotations

import dataclasses

from textrnn.training.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class SentimentModelConfig:
    """Fields equal `SentimentClassifier.__init__` arguments (the vocabulary size comes from
    the tokeniser, the number of classes from `data.label_names`)."""

    cell: str = "lstm"
    units: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    embedding_dim: int = 128
    pooling: str = "attention"  # "last", "mean", "max" or "attention"
    attention_units: int = 64
    dropout: float = 0.3  # before the output layer
    embedding_dropout: float = 0.0  # drops whole words (all channels of a position)
    spatial_dropout: float = 0.0  # drops embedding channels (the same ones at every position)
    recurrent_dropout: float = 0.0
    # textrnn's fast recurrent layers (Keras's weights, textrnn's CPU loop), the default;
    # false: Keras's stock layers (README, "Fast recurrent layers").
    fast_layers: bool = True


@dataclasses.dataclass(frozen=True)
class SentimentDataConfig:
    dataset: str = "sst2"  # "sst2", "imdb" or a folder with train.tsv / dev.tsv / test.tsv
    tokenizer: str = "word"  # "word" or "wordpiece", learned from the training split
    vocab_size: int = 20000  # special tokens included
    min_count: int = 1  # word tokeniser: rarer words become <unk>
    lowercase: bool = True
    max_length: int = 256  # tokens kept per text (see `truncation`)
    truncation: str = "head"  # keep the "head", the "tail", or "head_tail" (1/4 + 3/4)
    batch_size: int = 64
    num_buckets: int = 8  # length buckets for batching; 0 pads every batch to its longest
    validation_fraction: float = 0.1  # IMDB: share of train held out for validation
    split_seed: int = 0  # IMDB: seed of the validation split
    validation_split: str = "random"  # IMDB: "random" or "movie_blocks" (sentiment.data)
    label_names: tuple[str, ...] = ("negative", "positive")


@dataclasses.dataclass(frozen=True)
class SentimentTrainConfig(TrainConfig):
    epochs: int = 8
    steps_per_epoch: int = 0
    learning_rate: float = 2e-3
    warmup_steps: int = 0
    min_learning_rate: float = 1e-5
    early_stopping_patience: int = 3


@dataclasses.dataclass(frozen=True)
class SentimentConfig:
    model: SentimentModelConfig = dataclasses.field(default_factory=SentimentModelConfig)
    data: SentimentDataConfig = dataclasses.field(default_factory=SentimentDataConfig)
    train: SentimentTrainConfig = dataclasses.field(default_factory=SentimentTrainConfig)
