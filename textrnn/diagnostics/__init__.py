"""Diagnostics: looking inside trained models of any task.

Modules: `attention_plot` (attention heatmaps and token-weight plots as PNG; matplotlib is
imported only when a plot is drawn); `gradient_flow` (‖∂L_T/∂h_t‖ through the recurrence of
a character model, as CSV and PNG; `textrnn diagnose gradients`); `activations` (a
character model's hidden and cell states and gates over a text, drawn as coloured text,
and the units most correlated with simple text features; `textrnn diagnose activations`).
"""
