"""The quiet command line: TensorFlow's native log noise is filtered out of stderr, and
nothing else is."""

import re
import subprocess
import sys

import pytest
from conftest import REPO

from textrnn.native_logs import is_noise, launched_as_command

# Lines TensorFlow 2.21 printed at the start of every command on this machine.
NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    (
        b"I0000 00:00:1796122081.586304   19852 port.cc:153] oneDNN custom operations are on. "
        b"You may see slightly different numerical results."
    ),
    (
        b"I0000 00:00:1796122081.586782   19852 cudart_stub.cc:31] Could not find cuda drivers "
        b"on your machine, GPU will not be used."
    ),
    (
        b"E0000 00:00:1796122082.657455   19852 cuda_platform.cc:52] failed call to cuInit: "
        b"INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"
    ),
    (
        b"I0000 00:00:1796120322.613781    6360 cpu_feature_guard.cc:227] This TensorFlow binary "
        b"is optimized to use available CPU instructions in performance-critical operations."
    ),
    (
        b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
        b"TensorFlow with the appropriate compiler flags."
    ),
    (
        b"E0000 00:00:1796122147.564551   19852 util.cc:131] oneDNN supports DT_BOOL only on "
        b"platforms with AVX-512. Falling back to the default Eigen-based implementation."
    ),
    b"W0000 00:00:1796122147.564551   19852 some_file.cc:7] any warning",
]
KEPT = [
    b"textrnn train: error: Recipe not found: x.toml",
    b"Traceback (most recent call last):",
    b'  File "x.py", line 1, in <module>',
    b"textrnn: warning: Prompt characters not in the model's vocabulary are read as <unk>",
    b"E0000 00:00:1796122147.564551   19852 other.cc:1] an error nobody has looked at",
    b"F0000 00:00:1796122147.564551   19852 check.cc:9] Check failed: x == y",
    b"I0000 is not a log line without the rest",
]


@pytest.mark.parametrize("line", NOISE)
def test_native_noise_is_recognised(line):
    assert is_noise(line + b"\n")


@pytest.mark.parametrize("line", KEPT)
def test_everything_else_is_kept(line):
    assert not is_noise(line + b"\n")


def test_only_the_command_is_quiet():
    assert launched_as_command(["/venv/bin/textrnn", "train"], ["python", "/venv/bin/textrnn"])
    assert launched_as_command(["-m", "train"], ["python", "-m", "textrnn.cli", "train"])
    assert not launched_as_command(["/venv/bin/textrnn", "--verbose", "train"], [])
    assert not launched_as_command(["app.py"], ["python", "app.py"])  # a library user
    assert not launched_as_command(["-m"], ["python", "-m", "pytest", "textrnn"])


def _evaluate(*extra):
    run = REPO / "tests" / "fixtures" / "flat_layout_runs" / "charlm"
    command = [sys.executable, "-m", "textrnn.cli", "evaluate", "--run-dir", str(run), *extra]
    return subprocess.run(
        command, capture_output=True, timeout=240, cwd=REPO, check=False
    )  # bytes: the filter passes bytes through unchanged


def test_a_command_prints_no_native_noise_and_verbose_shows_it():
    quiet = _evaluate("--num-windows", "8")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert b"nats/char" in quiet.stdout
    native = re.compile(rb"^([IWEF]\d{4} |WARNING: All log messages before absl)")
    assert not [line for line in quiet.stderr.splitlines() if native.match(line)]
    verbose = _evaluate("--num-windows", "8", "--verbose")
    assert verbose.returncode == 0
    assert [line for line in verbose.stderr.splitlines(keepends=True) if is_noise(line)]
    assert verbose.stdout == quiet.stdout


def test_a_failing_command_still_says_why():
    done = subprocess.run(
        [sys.executable, "-m", "textrnn.cli", "evaluate", "--run-dir", str(REPO / "no-such-run")],
        capture_output=True,
        timeout=240,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines() == [
        (
            f"textrnn evaluate: error: {REPO / 'no-such-run' / 'vocab.txt'} not found: "
            f"is {REPO / 'no-such-run'} a finished training run?"
        )
    ]
