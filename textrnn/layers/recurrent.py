"""The recurrent layer behind each cell name of the recipes (`model.cell`).

Every model of every task picks its recurrent layers here, so a new kind of layer is added
in one place. `CELLS` holds Keras's layers; `FAST_CELLS` holds textrnn's fast layers, the
default (`FastSimpleRNN`, `FastLSTM`, `FastGRU`: Keras's layers with the same weights and
textrnn's CPU sequence computation, see `textrnn.layers.fast_recurrent`);
`recurrent_layer` chooses between them (the recipes' `model.fast_layers` switch, on by
default: on this project's 2-core CPU they train 1.1-1.25x faster than Keras's, README,
"Fast recurrent layers").

Example:
    >>> CELLS["gru"](units=16, return_sequences=True)
    <GRU name=gru, built=False>
    >>> FAST_CELLS["gru"](units=16, return_sequences=True)
    <FastGRU name=gru, built=False>
"""

import keras

from textrnn.layers.checks import one_of
from textrnn.layers.fast_gru import FastGRU
from textrnn.layers.fast_lstm import FastLSTM
from textrnn.layers.fast_simple_rnn import FastSimpleRNN

CELLS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
FAST_CELLS = {"rnn": FastSimpleRNN, "lstm": FastLSTM, "gru": FastGRU}


def recurrent_layer(cell, fast=True):
    """The layer class for a cell name.

    Args:
        cell: `"rnn"` (tanh), `"lstm"` or `"gru"`.
        fast: textrnn's fast layer (default), or Keras's stock one; both have the same
            weights, so a model's files load into either.

    Returns:
        A `keras.layers.RNN` subclass.

    Raises:
        ValueError: `cell` is not one of the names.
        TypeError: `fast` is not a bool.

    Example:
        >>> recurrent_layer("gru")
        <class 'textrnn.layers.fast_gru.FastGRU'>
        >>> recurrent_layer("gru", fast=False)
        <class 'keras.src.layers.rnn.gru.GRU'>
    """
    one_of("cell", cell, CELLS)
    if not isinstance(fast, bool):
        raise TypeError(f"Expected a bool for `fast_layers`. Received: fast_layers={fast!r}")
    return (FAST_CELLS if fast else CELLS)[cell]
