"""The character language model's recipe schema: `[model]`, `[data]`, `[train]`,
`[generate]` (see `textrnn.training.config` for loading and overrides)."""

from __future__ import annotations

import dataclasses

from textrnn.training.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class CharLMModelConfig:
    """Fields equal `CharLM.__init__` arguments (vocab_size comes from the tokeniser)."""

    cell: str = "lstm"
    units: int = 512
    num_layers: int = 1
    embedding_dim: int = 64
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    layer_norm: bool = False
    # textrnn's fast recurrent layers (Keras's weights, textrnn's CPU loop), the default;
    # false: Keras's stock layers (README, "Fast recurrent layers").
    fast_layers: bool = True


@dataclasses.dataclass(frozen=True)
class CharLMDataConfig:
    dataset: str = "tinyshakespeare"  # a registered name or a path to a UTF-8 text file
    seq_len: int = 256
    batch_size: int = 64
    windows: str = "random"  # "random" windows from a zero state, or "stream" (TBPTT)


@dataclasses.dataclass(frozen=True)
class CharLMTrainConfig(TrainConfig):
    validation_windows: int = 256  # random validation windows scored after each epoch


@dataclasses.dataclass(frozen=True)
class GenerateConfig:
    strategy: str = "sample"
    max_length: int = 500
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class CharLMConfig:
    model: CharLMModelConfig = dataclasses.field(default_factory=CharLMModelConfig)
    data: CharLMDataConfig = dataclasses.field(default_factory=CharLMDataConfig)
    train: CharLMTrainConfig = dataclasses.field(default_factory=CharLMTrainConfig)
    generate: GenerateConfig = dataclasses.field(default_factory=GenerateConfig)
