"""Diagnostics: looking inside trained models of any task.

Module: `attention_plot` (attention heatmaps and token-weight plots as PNG; matplotlib is
imported only when a plot is drawn).
"""
