"""Keras layers shared by the models of every task.

Modules: `recurrent` (`CELLS`: the recurrent layer behind each `model.cell` name;
`recurrent_layer(cell, fast)`), `fast_lstm`, `fast_gru`, `fast_simple_rnn` (`FastLSTM`,
`FastGRU`, `FastSimpleRNN`: Keras's layers with their own CPU loop and hand-written
gradient, same weights), `fast_recurrent` (what those three share),
`attention` (`BahdanauAttention`, `LuongAttention`, `masked_softmax`), `projection`
(`last_axis_matmul`: a weight on the last axis of a sequence batch as one GEMM), `pooling`
(`SequencePooling`), `checks` (argument checks with errors that name the value).
"""
