"""Test-only fault injection: a training process SIGKILLs itself at a chosen moment.

Two environment variables, read when training starts; unset (the normal case) they do
nothing:

- `TEXTRNN_FAULT_KILL_AT_STEP=<n>`: killed right after training step `n` (counted over
  the whole run, 1-based) and its callbacks, before anything is saved for that step.
- `TEXTRNN_FAULT_KILL_DURING_CHECKPOINT=<n>`: killed half-way through writing the `n`-th
  checkpoint this process writes (1-based), with half the file's bytes on disk.

`tests/test_resume_exact.py` uses them to reach moments a sleep-and-kill cannot hit
reliably, e.g. a kill while a checkpoint is being written.
"""

from __future__ import annotations

import os
import signal

KILL_AT_STEP = "TEXTRNN_FAULT_KILL_AT_STEP"
KILL_DURING_CHECKPOINT = "TEXTRNN_FAULT_KILL_DURING_CHECKPOINT"


def _setting(name: str) -> int | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a positive integer. Received: {raw!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be a positive integer. Received: {raw!r}")
    return value


def kill_now() -> None:
    """SIGKILLs this process (no cleanup, no atexit: as a power cut or the OOM killer)."""
    os.kill(os.getpid(), signal.SIGKILL)


class FaultSwitch:
    """The fault settings of this process and the counters they are checked against.

    Example:
        >>> faults = FaultSwitch()          # reads the environment
        >>> faults.after_step(global_step)  # kills here if TEXTRNN_FAULT_KILL_AT_STEP says so
    """

    def __init__(self):
        self.kill_at_step = _setting(KILL_AT_STEP)
        self.kill_during_checkpoint = _setting(KILL_DURING_CHECKPOINT)
        self.checkpoints_started = 0

    def after_step(self, step: int) -> None:
        if self.kill_at_step is not None and step == self.kill_at_step:
            kill_now()

    def checkpoint_hook(self):
        """Called once per checkpoint write; returns a half-way callback or None."""
        self.checkpoints_started += 1
        if self.kill_during_checkpoint == self.checkpoints_started:
            return lambda path, data: kill_now()
        return None
