"""Text: the reserved ids, strict UTF-8, and the tokenisers, all usable inside the graph.

Modules: `special_tokens` (the four reserved ids and strings), `utf8` (strict decoding
of files and byte strings), `char_tokenizer` (`CharTokenizer`), `vocabulary`
(vocabulary files and `VocabularyError`), `pretokenize` (the word splitting the word and
WordPiece tokenisers share), `word_tokenizer` (`WordTokenizer`), `wordpiece_tokenizer`
(`WordPieceTokenizer`), `loading` (`load_tokenizer`), `ragged_ops` (row-wise choice on
ragged tensors).
"""
