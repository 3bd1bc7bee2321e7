"""Training shared by every task: recipes, the task registry, run directories and the
resumable `fit` loop.

Modules: `config` (TOML recipes -> frozen dataclasses, `TrainConfig`, overrides),
`task_registry` (how each task trains, loads, evaluates and exports itself), `runs`
(run directories and `load_run`), `loop` (`fit_resumable`), `progress` (time, tokens and
the time budget across resumes), `optimizers` (Adam(W), clipping, schedules), `averaging`
(weight averaging), `losses` (`SmoothedCrossEntropy`).
"""
