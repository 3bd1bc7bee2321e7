"""Training shared by every task: recipes, the task registry, run directories and the
resumable `fit` loop.

Modules: `config` (TOML recipes -> frozen dataclasses, `TrainConfig`, overrides),
`task_registry` (how each task trains, loads, evaluates and exports itself), `runs`
(run directories and `load_run`), `loop` (`fit_resumable`, the exactly resumable training
loop), `checkpoints` (step checkpoints: atomic, checksummed, the newest kept), `atomic`
(write-to-temporary-then-rename), `history` (`history.csv`), `progress` (time, steps,
tokens and the time budget across resumes), `determinism` (seeds, op determinism),
`faults` (test-only kill switches), `guards` (non-finite losses), `optimizers` (Adam(W),
clipping, schedules), `averaging` (weight averaging), `losses` (`SmoothedCrossEntropy`),
`distribute` (tf.distribute strategies, sharded input, the distributed train step),
`numerics` (mixed precision, XLA), `threads` (TensorFlow's op thread pools), `launch` (a task's training under its strategy and
precision, chief-only writes).
"""
