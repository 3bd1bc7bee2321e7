"""A quiet command line: TensorFlow's native (C++) log noise filtered out of stderr.

Every `textrnn` command used to start with about seven lines that TensorFlow's C++ code
writes straight to file descriptor 2 (absl's "before InitializeLog" notice, oneDNN and
CUDA-stub notices, `E0000 ... failed call to cuInit` on a machine without a GPU, a
oneDNN `DT_BOOL` notice). The lines written before absl is initialised ignore
`TF_CPP_MIN_LOG_LEVEL`, so no setting silences them. When the process is the `textrnn`
command (not a library import), `textrnn/__init__.py` calls `filter_native_logs()` before
TensorFlow loads: stderr goes through a small forked filter process that drops native
info and warning lines and the known harmless error-level notices, and passes everything
else (Python messages, tracebacks, unknown native errors and fatal lines) unchanged.
`textrnn --verbose ...` keeps everything. A library user who imports textrnn keeps
TensorFlow's own logging.

The filter is a process, not a thread, so that what a crashing command writes last still
reaches the terminal: the filter reads until the command's end of stderr, however the
command ended.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import sys
import time

# absl's native log lines: a level letter, MMDD, time, thread id, file:line] message.
# (Before absl is initialised the seconds field holds seconds since the epoch.)
_NATIVE_LINE = re.compile(rb"^(?P<level>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
_HARMLESS_ERRORS = (
    rb"failed call to cuInit",  # no GPU driver: TensorFlow runs on the CPU, as intended
    rb"oneDNN supports DT_BOOL only on platforms with AVX-512",  # falls back to Eigen
)
_PREAMBLE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
)
_DRAIN_SECONDS = 2.0
# The continuation line of the CPU-feature notice, which absl prints unprefixed.
_CONTINUATIONS = (b"To enable the following instructions:",)


def is_noise(line: bytes) -> bool:
    """Whether a stderr line is native log noise the quiet command line drops.

    Example:
        >>> is_noise(b"I0000 00:00:1.5  19852 port.cc:153] oneDNN custom operations are on.")
        True
        >>> is_noise(b"textrnn train: error: Recipe not found: x.toml")
        False
    """
    if line.startswith(_PREAMBLE) or line.startswith(_CONTINUATIONS):
        return True
    match = _NATIVE_LINE.match(line)
    if not match:
        return False
    if match["level"] in (b"I", b"W"):
        return True
    return match["level"] == b"E" and any(text in line for text in _HARMLESS_ERRORS)


def launched_as_command(argv=None, orig_argv=None) -> bool:
    """Whether this process is the `textrnn` command: the console script, or
    `python -m textrnn.cli` / `python -m textrnn`, without `--verbose`."""
    argv = sys.argv if argv is None else argv
    orig_argv = getattr(sys, "orig_argv", []) if orig_argv is None else orig_argv
    script = os.path.basename(argv[0]) if argv else ""
    as_module = any(
        orig_argv[i] == "-m" and orig_argv[i + 1] in ("textrnn", "textrnn.cli")
        for i in range(len(orig_argv) - 1)
    )
    return (script == "textrnn" or as_module) and "--verbose" not in argv + list(orig_argv)


def filter_native_logs() -> None:
    """Routes this process's stderr (file descriptor 2) through a forked filter that drops
    native log noise (`is_noise`). Call it before TensorFlow is imported."""
    if not hasattr(os, "fork"):
        return
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the filter: copy what is not noise until the command's stderr closes
        os.close(write_end)
        os.close(0)  # hold no other stream of the command open
        os.close(1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the command, not this
        with os.fdopen(read_end, "rb", buffering=0) as lines:
            for line in lines:
                if not is_noise(line):
                    os.write(2, line)
        os._exit(0)
    os.close(read_end)
    saved = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    def drain():
        # Close the command's end of the pipe, then wait (briefly: a child process of the
        # command may still hold the pipe) for the filter to copy the last lines, so that
        # they come out before the shell's next prompt.
        sys.stderr.flush()
        os.dup2(saved, 2)
        deadline = time.monotonic() + _DRAIN_SECONDS
        while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.01)

    atexit.register(drain)
