"""Metrics: language-model, classification and translation figures.

Modules: `language_model` (`Perplexity`, `BitsPerCharacter`: token-weighted Keras
metrics), `lm_evaluation` (the window and sequential protocols over a whole corpus),
`classification` (accuracy, precision, recall, F1, confusion matrix), `translation`
(sacreBLEU BLEU and chrF, with an nltk cross-check).
"""
