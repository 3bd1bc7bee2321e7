"""Decoding for recurrent models: greedy search, beam search and sampling in the graph.

A model is a *cell*: `step_fn(token_ids, state, context)` computes one step. `decode`
owns time: it runs the step function inside one `tf.while_loop`, so the same code runs
eagerly, inside `tf.function`, inside a SavedModel served by stock TensorFlow Serving
and under XLA. A strategy (`Greedy`, `BeamSearch`, `Sampling`) says how hypotheses are
organised.

Modules: `strategies` (the strategy dataclasses), `search` (`decode`, the entry point),
`sampling` (the greedy/sampling loop, `filter_logits`, `apply_repetition_penalty`),
`beam_search` (the beam loop), `loop_helpers` (what both loops share).

Example:
    >>> from textrnn.decoding import BeamSearch, decode
    >>> result = decode(model.step, state, start_ids, BeamSearch(width=4, n_best=2), 50)
    >>> result.ids.shape  # [batch, n_best, max_length]
    TensorShape([8, 2, 50])
"""

from textrnn.decoding.loop_helpers import DecodeResult
from textrnn.decoding.sampling import apply_repetition_penalty, filter_logits
from textrnn.decoding.search import decode
from textrnn.decoding.strategies import (
    GREEDY_TEMPERATURE,
    LENGTH_PENALTIES,
    BeamSearch,
    Greedy,
    Sampling,
    make_strategy,
)

__all__ = [
    "GREEDY_TEMPERATURE",
    "LENGTH_PENALTIES",
    "BeamSearch",
    "DecodeResult",
    "Greedy",
    "Sampling",
    "apply_repetition_penalty",
    "decode",
    "filter_logits",
    "make_strategy",
]
