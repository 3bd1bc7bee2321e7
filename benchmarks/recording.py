"""Shared by the benchmark scripts: the machine, the commit, timing, and recording results.

Every benchmark writes its figures into `models/<recipe>/results.json` under a label, with
the machine, the exact command, the commit and the date, and regenerates the table between
the `results-table` markers in `models/<recipe>/results.md`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def machine() -> str:
    """`"<cores> cores, <CPU model>, CPU only"` (or the GPUs TensorFlow sees)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    accelerator = "CPU only"
    if "tensorflow" in sys.modules:
        gpus = sys.modules["tensorflow"].config.list_physical_devices("GPU")
        if gpus:
            accelerator = f"{len(gpus)} GPU(s)"
    return f"{os.cpu_count()} cores, {cpu}, {accelerator}"


def _git(*args) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, text=True, capture_output=True, check=True
    ).stdout.strip()


def _head_at_start() -> str:
    try:
        head = _git("rev-parse", "--short", "HEAD")
        # The recipes' results files are what benchmarks write, not code they run.
        outputs = (":(exclude)models/*/results.json", ":(exclude)models/*/results.md")
        if _git("status", "--porcelain", "--untracked-files=no", "--", ".", *outputs):
            head += " (with uncommitted changes)"
        return head
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# Taken when the benchmark starts, not when it records: a run takes hours, and the
# code it runs is the code that was checked out when it started.
_COMMIT_AT_START = _head_at_start()


def commit() -> str:
    """The short hash of HEAD when this process started (noting uncommitted changes to
    tracked files), or "unknown"."""
    return _COMMIT_AT_START


def command_line(script: str, argv) -> str:
    """The command that reproduces this run, as typed from the repository root."""
    args = " ".join(a if " " not in a else repr(a) for a in argv)
    return f"TEXTRNN_DATA_DIR=../shared/data python benchmarks/{script} {args}".strip()


def record(
    recipe_dir: Path,
    label: str,
    results: dict,
    command: str,
    table: Callable[[dict], str] | None = None,
    *,
    shared_cpu: bool = False,
) -> dict:
    """Adds `results` under `label` to the recipe's results.json and rewrites its table.

    `shared_cpu` marks the timings as taken beside other heavy work (`add_shared_cpu_argument`);
    the table then gets `SHARED_CPU_FOOTNOTE`.
    """
    results = {
        **results,
        **({"shared_cpu": True} if shared_cpu else {}),
        "machine": machine(),
        "command": command,
        "commit": commit(),
        "date": datetime.date.today().isoformat(),
    }
    path = recipe_dir / "results.json"
    with _locked(recipe_dir):  # two benchmarks of one recipe may finish together
        all_results = json.loads(path.read_text()) if path.exists() else {}
        all_results[label] = results
        _write_atomically(path, json.dumps(all_results, indent=2) + "\n")
        if table is not None:
            rewrite_table(recipe_dir, table)
    return results


@contextlib.contextmanager
def _locked(recipe_dir: Path):
    """Holds an exclusive lock on `recipe_dir/.results.lock` (where `fcntl` exists)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; run one benchmark per recipe at a time
        yield
        return
    with open(recipe_dir / ".results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_json(path, data) -> Path:
    """Writes `data` as indented JSON to `path` (parent folders made; written to a
    temporary name, then renamed, so a reader never sees half a file); returns the path.

    Example:
        >>> write_json("benchmarks/results/demo.json", {"tokens_per_second": 1.0})
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, json.dumps(data, indent=2) + "\n")
    return path


def _write_atomically(path: Path, text: str) -> None:
    """Writes `text` to a temporary file beside `path`, then renames it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def rewrite_table(recipe_dir: Path, table: Callable[[dict], str]) -> None:
    """Rewrites the table in the recipe's results.md from its results.json."""
    all_results = json.loads((recipe_dir / "results.json").read_text())
    text = table(all_results)
    if any(r.get("shared_cpu") for r in all_results.values()):
        text += "\n\n" + SHARED_CPU_FOOTNOTE
    write_table(recipe_dir / "results.md", text)


def add_shared_cpu_argument(parser) -> None:
    """`--shared-cpu`: marks the run's timings as taken while other heavy work ran."""
    parser.add_argument(
        "--shared-cpu",
        action="store_true",
        help="another training shared the CPU: the time figures are marked as upper bounds",
    )


def time_mark(result: dict) -> str:
    """`" †"` for a result timed on a shared CPU (see `add_shared_cpu_argument`), else `""`."""
    return " †" if result.get("shared_cpu") else ""


SHARED_CPU_FOOTNOTE = (
    "† timed while another training shared the 2 cores: wall-clock figures are upper bounds, "
    "throughput lower bounds."
)


def write_table(md: Path, table: str) -> None:
    """Replaces the text between the results-table markers of `md` (or appends it)."""
    text = md.read_text(encoding="utf-8") if md.exists() else ""
    start, end = "<!-- results-table:start -->", "<!-- results-table:end -->"
    if start in text and end in text:
        text = (
            text[: text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end) :]
        )
    else:
        text += f"\n{start}\n{table}\n{end}\n"
    _write_atomically(md, text)


def round_robin_seconds(runs: dict, repeats: int) -> dict:
    """Seconds of every repeat of each warmed-up callable in `runs`, timed in turns (so a
    slow spell of the machine hits every contender alike)."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            begin = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - begin)
    return times


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` timed calls of `fn`, after one untimed (warm-up) call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - begin)
    return best
