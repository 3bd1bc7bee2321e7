"""Load on `textrnn serve` over loopback REST: requests/s, p50/p99 latency, errors and the
server's peak memory, per task, with and without request batching.

For every task given, each cell starts a fresh `textrnn serve` subprocess on free
127.0.0.1 ports over the task's export, waits for it to be ready, sends untimed warm-up
traffic for `--warmup-seconds`, then runs `--clients` concurrent clients (coroutines of
this one asyncio process, `httpx.AsyncClient`: client and server share the machine's
cores) for `--seconds` or `--max-requests` requests, whichever comes first, and stops
the server (SIGTERM). The two modes of a task alternate within each of `--rounds`
rounds (off, on, then on, off, ...), so a slow spell of the machine hits both. Each
client sends one small request after another (one row, the same decoding parameters,
texts taken in turn from a fixed list), the case batching is for:

- character LM: `greedy`, one prompt, `--charlm-max-length` characters;
- translator: `greedy`, one source sentence, `--translation-max-length` tokens at most;
- sentiment: `serving_default`, one sentence.

Figures per cell: requests/s (answered requests / wall time), p50 and p99 latency (ms),
errors (any answer but 200 and any transport error; must be 0), the server's peak RSS
(VmHWM of /proc/PID/status at the end). Written to `--out` (default
`benchmarks/results/serving_load.json`) with the machine, versions, command and commit.

Exports: `--TASK-export DIR` serves an export (a base directory or one SavedModel);
`--TASK-run DIR` exports the run first (`textrnn export`, into `--work-dir`). Without a
sentiment run, `--train-sentiment DIR` trains a small one on SST-2 (the recipe
`models/sentiment-sst2/config.toml`, one short epoch: its speed is the recipe model's,
its accuracy does not matter here; needs TEXTRNN_DATA_DIR with `sst2/`).

Usage:
    python benchmarks/serving_load.py --charlm-run runs/gradflow-lstm \\
        --translation-run runs/de-en --train-sentiment runs/sst2-bench
    python benchmarks/serving_load.py --charlm-export exports/shakes --seconds 2 --clients 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recording

REPO = recording.REPO
RESULTS = REPO / "benchmarks" / "results" / "serving_load.json"
TASKS = ("charlm", "translate", "sentiment")
START_SECONDS = 300

PROMPTS = ["ROMEO:", "The ", "First Citizen:\n", "What light", "KING HENRY", "And so"]
SOURCES = [
    "Ein Hund rennt durch den Park.",
    "Zwei Männer spielen Fußball auf einer grünen Wiese.",
    "Eine Frau liest ein Buch.",
    "Ein kleines Mädchen in einem rosa Kleid klettert eine Treppe hinauf.",
]
SENTENCES = [
    "a gem of a film",
    "dull and far too long",
    "the performances are wonderful , but the script is a mess",
    "one of the best films of the year",
]


def request_body(task: str, index: int, args) -> dict:
    """The predict body of request `index` of one client."""
    if task == "charlm":
        prompt = PROMPTS[index % len(PROMPTS)]
        inputs = {"prompts": [prompt], "max_length": args.charlm_max_length}
        return {"signature_name": "greedy", "inputs": inputs}
    if task == "translate":
        source = SOURCES[index % len(SOURCES)]
        inputs = {"sources": [source], "max_length": args.translation_max_length}
        return {"signature_name": "greedy", "inputs": inputs}
    return {"instances": [SENTENCES[index % len(SENTENCES)]]}


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident set) of process `pid`, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"No VmHWM in /proc/{pid}/status")


class Server:
    """`textrnn serve` over one export as a subprocess; `url` once ready."""

    def __init__(self, task: str, export: Path, batching: list[str] | None, log: Path):
        args = ["--model-name", task, "--model-base-path", str(export),
                "--rest-port", "0", "--grpc-port", "0"]  # fmt: skip
        if batching is not None:
            args.append("--enable-batching")
            for item in batching:
                args += ["--batching", item]
        self._log = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "textrnn.cli", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=REPO,
        )
        lines = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()))
        reader.start()
        reader.join(START_SECONDS)
        if not lines or "ready:" not in lines[0]:
            self.stop()
            raise RuntimeError(f"textrnn serve did not start; see {log}")
        words = lines[0].split()
        self.url = words[words.index("REST") + 1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


async def load(url: str, task: str, args, seconds: float, max_requests: int) -> dict:
    """Runs `args.clients` clients against `url` until `seconds` pass or `max_requests`
    are sent; returns latencies (s) of the answered requests and the error count."""
    path = f"/v1/models/{task}:predict"
    latencies, errors, sent = [], [], [0]
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        stop_at = time.monotonic() + seconds

        async def one_client(number: int) -> None:
            index = number
            while time.monotonic() < stop_at and sent[0] < max_requests:
                sent[0] += 1
                body = request_body(task, index, args)
                index += args.clients
                start = time.monotonic()
                try:
                    answer = await client.post(path, json=body)
                except httpx.HTTPError as error:
                    errors.append(repr(error))
                    continue
                if answer.status_code == 200:
                    latencies.append(time.monotonic() - start)
                else:
                    errors.append(f"{answer.status_code}: {answer.text[:200]}")

        began = time.monotonic()
        await asyncio.gather(*(one_client(n) for n in range(args.clients)))
        wall = time.monotonic() - began
    return {"latencies": latencies, "errors": errors, "wall": wall}


def percentile(values: list[float], q: float) -> float:
    """The `q`-quantile (0..1) of `values`, linear between the nearest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_cell(task: str, export: Path, batching, args, round_index: int) -> dict:
    mode = "on" if batching is not None else "off"
    log = Path(args.work_dir) / f"serve-{task}-{mode}-{round_index}.log"
    server = Server(task, export, batching, log)
    try:
        asyncio.run(load(server.url, task, args, args.warmup_seconds, 10**9))
        result = asyncio.run(load(server.url, task, args, args.seconds, args.max_requests))
        peak = peak_rss_mib(server.process.pid)
    finally:
        server.stop()
    latencies, errors = result["latencies"], result["errors"]
    cell = {
        "task": task,
        "batching": mode,
        "round": round_index,
        "requests": len(latencies),
        "requests_per_second": len(latencies) / result["wall"],
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "errors": len(errors),
        "first_errors": errors[:5],
        "server_peak_rss_mib": peak,
        "wall_seconds": result["wall"],
    }
    print(
        f"{task:10} batching {mode:3} round {round_index}: {cell['requests_per_second']:8.1f} "
        f"req/s  p50 {cell['p50_ms']:7.1f} ms  p99 {cell['p99_ms']:7.1f} ms  "
        f"errors {cell['errors']}  peak RSS {peak:6.0f} MiB",
        flush=True,
    )
    return cell


def summary(cells: list[dict]) -> list[dict]:
    """Per task and mode: the median over rounds of each figure, errors summed."""
    rows = []
    for task in TASKS:
        for mode in ("off", "on"):
            mine = [c for c in cells if c["task"] == task and c["batching"] == mode]
            if not mine:
                continue
            rows.append(
                {
                    "task": task,
                    "batching": mode,
                    "rounds": len(mine),
                    **{
                        key: statistics.median(c[key] for c in mine)
                        for key in ("requests_per_second", "p50_ms", "p99_ms")
                    },
                    "errors": sum(c["errors"] for c in mine),
                    "server_peak_rss_mib": max(c["server_peak_rss_mib"] for c in mine),
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| task | batching | requests/s | p50 ms | p99 ms | errors | server peak RSS MiB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['batching']} | {r['requests_per_second']:.1f} | "
            f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | "
            f"{r['server_peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines)


def textrnn_cli(*args) -> None:
    subprocess.run([sys.executable, "-m", "textrnn.cli", *args], cwd=REPO, check=True)


def prepare_exports(args) -> dict:
    """task -> export directory (exporting runs and training the sentiment run if asked)."""
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    if args.train_sentiment and not args.sentiment_run and not args.sentiment_export:
        run_dir = Path(args.train_sentiment)
        if not (run_dir / "results.json").exists():
            textrnn_cli(
                "train", "sentiment", "--recipe", "models/sentiment-sst2/config.toml",
                "--run-dir", str(run_dir), "--quiet", "--set", "train.epochs=1",
                "--set", f"train.steps_per_epoch={args.sentiment_steps}",
            )  # fmt: skip
        args.sentiment_run = str(run_dir)
    exports = {}
    for task, run, export in (
        ("charlm", args.charlm_run, args.charlm_export),
        ("translate", args.translation_run, args.translation_export),
        ("sentiment", args.sentiment_run, args.sentiment_export),
    ):
        if export:
            exports[task] = Path(export)
        elif run:
            base = work / f"export-{task}"
            if not base.exists():
                textrnn_cli("export", "--run-dir", run, "--out", str(base))
            exports[task] = base
    if not exports:
        raise SystemExit("Give at least one --TASK-run or --TASK-export (see --help).")
    return exports


def versions() -> dict:
    from importlib import metadata

    found = {"python": platform.python_version()}
    for package in ("tensorflow", "textrnn", "starlette", "uvicorn", "grpcio", "httpx"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for task, flag in (
        ("charlm", "charlm"),
        ("translate", "translation"),
        ("sentiment", "sentiment"),
    ):
        parser.add_argument(f"--{flag}-run", default=None, help=f"{task} run directory to export")
        parser.add_argument(f"--{flag}-export", default=None, help=f"{task} export to serve")
    parser.add_argument(
        "--train-sentiment",
        default=None,
        metavar="RUN_DIR",
        help="train a small SST-2 sentiment run here first (when no sentiment run/export)",
    )
    parser.add_argument("--sentiment-steps", type=int, default=300, help="its training steps")
    parser.add_argument("--seconds", type=float, default=30.0, help="timed load per cell")
    parser.add_argument("--warmup-seconds", type=float, default=3.0, help="untimed load first")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per cell")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds per task")
    parser.add_argument("--charlm-max-length", type=int, default=50)
    parser.add_argument("--translation-max-length", type=int, default=50)
    parser.add_argument(
        "--batching",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="batching parameters of the 'on' cells (textrnn serve --batching)",
    )
    parser.add_argument("--work-dir", default="runs/serving_load", help="exports and server logs")
    parser.add_argument("--out", default=str(RESULTS), help="results JSON")
    recording.add_shared_cpu_argument(parser)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.rounds < 1 or args.max_requests < 1:
        parser.error("--clients, --seconds, --rounds and --max-requests must be positive")

    exports = prepare_exports(args)
    cells = []
    for round_index in range(args.rounds):
        for task in TASKS:
            if task not in exports:
                continue
            modes = [None, args.batching] if round_index % 2 == 0 else [args.batching, None]
            for batching in modes:
                cells.append(run_cell(task, exports[task], batching, args, round_index))
    rows = summary(cells)
    print(table(rows))
    report = {
        "what": "textrnn serve under load: one asyncio client process (httpx), "
        f"{args.clients} concurrent clients, REST predict on 127.0.0.1, one small request "
        "after another per client",
        "machine": {
            "cpu": recording.machine(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
        },
        "versions": versions(),
        "exports": {task: str(path) for task, path in exports.items()},
        "requests": {task: request_body(task, 0, args) for task in TASKS if task in exports},
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup_seconds,
        "rounds": args.rounds,
        "batching_parameters": args.batching or "defaults (textrnn.serving.batching)",
        "statistic": "per cell: answered requests / wall time, latency quantiles of the "
        "answered requests, errors = non-200 answers and transport errors, peak RSS = "
        "the server's VmHWM; summary: median over rounds (errors summed, RSS max)",
        "shared_cpu": bool(args.shared_cpu),
        "command": "python " + " ".join([os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "commit": recording.commit(),
        "date": time.strftime("%Y-%m-%d"),
        "summary": rows,
        "cells": cells,
    }
    out = recording.write_json(args.out, report)
    print(f"wrote {out}")
    if any(row["errors"] for row in rows):
        raise SystemExit("errors under load: see first_errors in " + str(out))
    return report


if __name__ == "__main__":
    main()
