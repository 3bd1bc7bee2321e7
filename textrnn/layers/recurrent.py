"""The recurrent layer behind each cell name of the recipes (`model.cell`).

Every model of every task picks its recurrent layers here, so a new kind of layer (for
example a faster LSTM) is added in one place.

Example:
    >>> CELLS["gru"](units=16, return_sequences=True)
    <GRU name=gru, built=False>
"""

import keras

CELLS = {"rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
