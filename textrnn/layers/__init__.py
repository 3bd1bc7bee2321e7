"""Keras layers shared by the models of every task.

Modules: `recurrent` (`CELLS`: the recurrent layer behind each `model.cell` name),
`attention` (`BahdanauAttention`, `LuongAttention`, `masked_softmax`), `pooling`
(`SequencePooling`), `checks` (argument checks with errors that name the value).
"""
