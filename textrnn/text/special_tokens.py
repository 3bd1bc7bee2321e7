"""Reserved token ids and strings shared by every tokeniser, model and decoder.

Every vocabulary in textrnn starts with these four entries in this order, so the
ids are the same constants everywhere (padding is always 0, which is what Keras
masking expects).
"""

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3

PAD = "<pad>"
UNK = "<unk>"
BOS = "<s>"
EOS = "</s>"

SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)
NUM_SPECIAL = len(SPECIAL_TOKENS)
