"""Training speed: textrnn's fast recurrent layers against Keras's stock layers, same model.

Each case builds one model twice through the project's model classes, once with Keras's
layers (`fast_layers=False`) and once with textrnn's (`FastLSTM`, `FastGRU`: same weights),
and times `train_on_batch` (Adam, sparse cross-entropy on logits, random ids). Both run
under each of two thread settings of TensorFlow (its pools are fixed for a process at its
first op, so one worker process per setting): `default`, TensorFlow's own (each op split
over every core), and `1x2`, one thread per op and two ops at a time (what a recipe's
`[train] intra_op_threads = 1`, `inter_op_threads = 2` set); `--threads default onednn`
adds a worker with TensorFlow's oneDNN kernels switched on (`TF_ENABLE_ONEDNN_OPTS=1`,
which TensorFlow leaves off on CPUs without AVX-512 VNNI/BF16, AVX-VNNI or AMX; see
`ENVIRONMENTS`), and `onednn-1x2` both. Timing is in turns: one timed
repeat of each of the four contenders, across the workers, `--repeats` times (round
robin), after warm-up steps, so a slow spell of the machine hits all alike. Figures:
training tokens/s (token positions through the recurrent layers per second, padding
included), median and the slowest / fastest repeat; the ratio fast / stock under each
setting (the layers' own speed-up), and each `1x2` contender against stock Keras under
TensorFlow's default (what a recipe's thread setting adds), with the median of the
per-repeat ratios too.

Cases (sizes from the recipes in models/*/config.toml where one exists):

- `char-lstm-512`: `CharLM`, embedding 64 -> LSTM 512 -> dense 68, windows 256, batch 64;
- `char-gru-1024`: `CharLM` as the TensorFlow text-generation tutorial's model: embedding
  256 -> GRU 1024 -> dense 66, windows 100, batch 64;
- `sst2-bilstm`: `SentimentClassifier` of models/sentiment-sst2 (BiLSTM 150, embedding 300,
  attention pooling, vocabulary 20,000), batch 64 of 48 positions, right-padded rows of
  24-48 tokens (masked);
- `multi30k-translator`: `Seq2Seq` of models/translate-multi30k-de-en (BiLSTM 256 encoder,
  LSTM 512 decoder, Luong attention, vocabularies 8,000 / 6,000), batch 64, 32 source and
  32 target positions, right-padded rows of 16-32 tokens.

FLOPs (multiply-add = 2 FLOPs; a training step counts backward as twice the forward, so
3x the forward). Forward per token of a recurrent layer with `g` gates (LSTM 4, GRU 3),
input width `e` and `h` units: `2 g h (e + h)` (one direction); of a dense layer `n -> m`:
`2 n m`. Counted: every recurrent layer, the output projection, the classifier's attention
scorer and the translator's bridge, attention query projection, attentional layer and
(tied) logits; not counted (under 3% here): attention scores and contexts, softmax, losses,
embeddings, element-wise gate arithmetic, the optimizer. `achieved FLOP/s = FLOPs per step
x steps / s`, shown as a fraction of the matmul peak.

Peak = the best FLOP/s of square fp32 `tf.matmul`s of 1024, 2048 and 4096 measured in the
same run, as one matmul or two side by side (the better of the two, under either thread
setting: with one thread per op, one matmul uses one core). GEMM-only bound: the step's
FLOPs split into the in-loop GEMMs (the fast layers' structure: `h @ U` forward and
`dz @ U^T` backward, one per step, 2/3 of the recurrent kernel's training FLOPs) at the
FLOP/s of that GEMM shape run in a `tf.while_loop` (the better of one GEMM per step and
the fast layers' unit shards), and all the others at the FLOP/s of one large GEMM
(`[time * batch, h]^T @ [time * batch, g h]`, or two halves side by side), both measured
here under both settings, the best taken: the tokens/s no implementation of this
structure can beat on this machine.

Peak memory: the peak resident set of a separate process that builds the same model and
runs 3 training steps (one process per case and layer kind, TensorFlow's default
threads), and the training steps' share of it (the peak after them minus the peak before
the first: the TensorFlow runtime and the model alone take about 1 GiB).

Scaling: the char LSTM's tokens/s against sequence length, batch size and hidden size (one
varied at a time from 256 / 64 / 512), every contender, a table and a PNG.

These are CPU wall-clock figures: other processes on the machine change them (nothing else
heavy should run; `--shared-cpu` marks a run that shared the machine).

Usage:
    python benchmarks/fast_layers.py                 # the full run (~40 min on 2 cores)
    python benchmarks/fast_layers.py --quick --out /tmp/fast_layers/fast_layers.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recording

from textrnn.charlm.model import CharLM
from textrnn.layers.fast_recurrent import SHARD_UNITS, unit_shards
from textrnn.sentiment.model import SentimentClassifier
from textrnn.training import config as config_lib
from textrnn.translation.model import Seq2Seq

REPO = recording.REPO
RESULTS = REPO / "benchmarks" / "results" / "fast_layers.json"
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
CONTENDERS = ("stock", "fast")
# TensorFlow's (intra-op, inter-op) pool sizes per worker process, 0 = its default:
# "default" as TensorFlow comes; "1x2" one thread per op, two ops at a time (what
# `[train] intra_op_threads = 1`, `inter_op_threads = 2` set; textrnn.training.threads).
THREADS = {"default": (0, 0), "1x2": (1, 2), "onednn": (0, 0), "onednn-1x2": (1, 2)}
# Environment variables a setting's worker starts with. On Linux, TensorFlow turns its
# oneDNN kernels on by default only on CPUs with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX
# (`DefaultOneDnnPolicy` in tensorflow/core/util/port.cc); elsewhere (an AVX2 AMD EPYC, say)
# its matmuls run on Eigen unless `TF_ENABLE_ONEDNN_OPTS=1` is set before TensorFlow is
# imported. Where oneDNN is on by default, "onednn" measures the same as "default".
ENVIRONMENTS = {
    "onednn": {"TF_ENABLE_ONEDNN_OPTS": "1"},
    "onednn-1x2": {"TF_ENABLE_ONEDNN_OPTS": "1"},
}
# The settings a run measures unless `--threads` names others.
DEFAULT_THREADS = ["default", "1x2"]


# ----------------------------------------------------------------------------------------
# Cases: a model, a batch, its FLOPs
# ----------------------------------------------------------------------------------------


def recurrent_flops(cell, inputs, units):
    """Forward FLOPs per token of one recurrent layer, one direction: `2 g h (e + h)`."""
    return 2 * GATES[cell] * units * (inputs + units)


def char_case(name, cell, units, embedding, vocab, steps, batch):
    per_token = recurrent_flops(cell, embedding, units) + 2 * units * vocab
    return {
        "name": name,
        "kind": "charlm",
        "sizes": {
            "cell": cell,
            "units": units,
            "embedding_dim": embedding,
            "vocab": vocab,
            "time": steps,
            "batch": batch,
        },
        "tokens_per_step": batch * steps,
        "flops_per_step": 3 * per_token * batch * steps,
        # (in-loop GEMM shape [batch, h] @ [h, g h], its steps per training step)
        "loops": [(batch, units, GATES[cell] * units, steps)],
        "loop_flops": 2 * 2 * batch * units * GATES[cell] * units * steps,
    }


def recipe(path):
    return config_lib.load_config(REPO / path)


def sst2_case(quick):
    cfg = recipe("models/sentiment-sst2/config.toml")
    m = config_lib.to_dict(cfg.model)
    vocab = cfg.data.vocab_size
    batch, steps = 64, 48
    if quick:
        m.update(units=8, embedding_dim=8, attention_units=4)
        vocab, batch, steps = 50, 4, 6
    h, e, a = m["units"], m["embedding_dim"], m["attention_units"]
    directions = 2 if m["bidirectional"] else 1
    per_token = directions * recurrent_flops(m["cell"], e, h) + 2 * directions * h * a
    return {
        "name": "sst2-bilstm",
        "kind": "sentiment",
        "model": m,
        "sizes": {
            "vocab": vocab,
            "classes": len(cfg.data.label_names),
            "time": steps,
            "batch": batch,
        },
        "tokens_per_step": batch * steps,
        "flops_per_step": 3 * per_token * batch * steps,
        "loops": [(batch, h, GATES[m["cell"]] * h, steps)] * directions,
        "loop_flops": directions * 2 * 2 * batch * h * GATES[m["cell"]] * h * steps,
    }


def translation_case(quick):
    cfg = recipe("models/translate-multi30k-de-en/config.toml")
    m = config_lib.to_dict(cfg.model)
    src_vocab, tgt_vocab = cfg.data.source_vocab_size, cfg.data.target_vocab_size
    batch, steps = 64, 32
    if quick:
        m.update(embedding_dim=8, encoder_units=8, decoder_units=16, attention_units=8)
        src_vocab, tgt_vocab, batch, steps = 40, 50, 4, 6
    e, he, hd = m["embedding_dim"], m["encoder_units"], m["decoder_units"]
    g = GATES[m["cell"]]
    directions = 2 if m["bidirectional"] else 1
    memory = directions * he
    out = e if m["tie_embeddings"] else hd
    decoder_input = e + (out if m["input_feeding"] else 0)
    source = directions * recurrent_flops(m["cell"], e, he)
    target = (
        recurrent_flops(m["cell"], decoder_input, hd)
        + 2 * hd * memory  # Luong "general": the query projection
        + 2 * (hd + memory) * out  # the attentional layer
        + 2 * out * tgt_vocab  # the logits
    )
    # The bridge: one dense layer memory -> decoder units per decoder state, per sequence.
    bridge = (2 if m["cell"] == "lstm" else 1) * m["decoder_layers"] * 2 * memory * hd
    return {
        "name": "multi30k-translator",
        "kind": "translation",
        "model": m,
        "sizes": {
            "source_vocab": src_vocab,
            "target_vocab": tgt_vocab,
            "time": steps,
            "batch": batch,
        },
        "tokens_per_step": 2 * batch * steps,  # source and target positions
        "flops_per_step": 3 * ((source + target) * batch * steps + bridge * batch),
        "loops": [(batch, he, g * he, steps)] * directions + [(batch, hd, g * hd, steps)],
        "loop_flops": 2 * 2 * batch * steps * (directions * he * g * he + hd * g * hd),
    }


def cases(quick):
    if quick:
        char = [
            char_case("char-lstm-512", "lstm", 16, 8, 20, 8, 4),
            char_case("char-gru-1024", "gru", 16, 8, 20, 8, 4),
        ]
    else:
        char = [
            char_case("char-lstm-512", "lstm", 512, 64, 68, 256, 64),
            char_case("char-gru-1024", "gru", 1024, 256, 66, 100, 64),
        ]
    return {c["name"]: c for c in [*char, sst2_case(quick), translation_case(quick)]}


def sweep_cases(quick):
    base = {"time": 256, "batch": 64, "units": 512}
    values = {
        "time": [32, 64, 128, 256, 512],
        "batch": [16, 32, 64, 128],
        "units": [128, 256, 512, 1024],
    }
    if quick:
        base = {"time": 8, "batch": 4, "units": 16}
        values = {"time": [4, 8], "batch": [2, 4], "units": [8, 16]}
    for axis, options in values.items():
        for value in options:
            sizes = {**base, axis: value}
            case = char_case(
                f"sweep-{axis}-{value}", "lstm", sizes["units"], 64 if not quick else 8,
                68 if not quick else 20, sizes["time"], sizes["batch"],
            )  # fmt: skip
            yield axis, value, case


def build(case, contender, seed=0):
    """`(model, x, y)`: the case's model with stock or fast layers, and one random batch."""
    fast = contender != "stock"
    # No keras.utils.set_random_seed here: resetting the global seed makes the warmed-up
    # train functions of the other contenders trace again on their next call.
    rng = np.random.default_rng(seed)
    s = case["sizes"]
    if case["kind"] == "charlm":
        model = CharLM(
            vocab_size=s["vocab"], cell=s["cell"], units=s["units"],
            embedding_dim=s["embedding_dim"], fast_layers=fast,
        )  # fmt: skip
        x = rng.integers(1, s["vocab"], (s["batch"], s["time"]))
        y = rng.integers(1, s["vocab"], (s["batch"], s["time"]))
    elif case["kind"] == "sentiment":
        model = SentimentClassifier(
            vocab_size=s["vocab"],
            num_classes=s["classes"],
            **{**case["model"], "fast_layers": fast},
        )
        x = padded(rng, s["batch"], s["time"], s["vocab"])
        y = rng.integers(0, s["classes"], (s["batch"],))
    else:
        model = Seq2Seq(
            s["source_vocab"], s["target_vocab"], **{**case["model"], "fast_layers": fast}
        )
        x = (
            padded(rng, s["batch"], s["time"], s["source_vocab"]),
            padded(rng, s["batch"], s["time"], s["target_vocab"]),
        )
        y = np.where(x[1] > 0, rng.integers(1, s["target_vocab"], x[1].shape), 0)
    model.build()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model, x, y


def padded(rng, batch, steps, vocab):
    """Random ids `[batch, steps]`, each row right-padded with 0 after `steps/2..steps` ids."""
    lengths = rng.integers(max(steps // 2, 1), steps + 1, batch)
    ids = rng.integers(4, vocab, (batch, steps))
    return np.where(np.arange(steps)[None] < lengths[:, None], ids, 0)


# ----------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------


def trainer(case, contender, steps_per_repeat, warmup):
    model, x, y = build(case, contender)
    for _ in range(warmup):
        model.train_on_batch(x, y)

    def repeat():
        for _ in range(steps_per_repeat):
            model.train_on_batch(x, y)

    return repeat


def contender_ids(threads):
    """`["stock@default", "fast@default", "stock@1x2", ...]`: each layer kind under each
    thread setting named in `threads`."""
    return [f"{layer}@{name}" for name in threads for layer in CONTENDERS]


def compare(case, workers, repeats, steps_per_repeat, warmup):
    """Every contender of one case (each layer kind under each worker's thread setting),
    timed in turns across the workers: tokens/s (median, slowest, fastest) and ratios."""
    for worker in workers.values():
        worker.call("build", case=case["name"], steps=steps_per_repeat, warmup=warmup)
    times = {c: [] for c in contender_ids(workers)}
    for _ in range(repeats):
        for name, worker in workers.items():
            for layer in CONTENDERS:
                reply = worker.call("run", contender=layer)
                times[f"{layer}@{name}"].append(reply["seconds"])
    tokens = case["tokens_per_step"] * steps_per_repeat
    result = {"contenders": {}, "ratios": {}}
    for c, seconds in times.items():
        rates = [tokens / s for s in seconds]
        result["contenders"][c] = {
            "tokens_per_second": statistics.median(rates),
            "slowest_and_fastest": [min(rates), max(rates)],
            "seconds": seconds,
            "flops_per_second": statistics.median(rates)
            / case["tokens_per_step"]
            * case["flops_per_step"],
        }

    def ratio(a, b):
        return {
            "ratio": result["contenders"][a]["tokens_per_second"]
            / result["contenders"][b]["tokens_per_second"],
            "ratio_of_pairs": statistics.median(
                s / f for s, f in zip(times[b], times[a], strict=True)
            ),
        }

    for name in workers:
        result["ratios"][f"fast@{name} / stock@{name}"] = ratio(f"fast@{name}", f"stock@{name}")
        if name != "default" and "default" in workers:
            for layer in CONTENDERS:
                key = f"{layer}@{name} / stock@default"
                result["ratios"][key] = ratio(f"{layer}@{name}", "stock@default")
    return result


def gemm_rate(m, k, n, repeats=3, transpose_a=False, parts=1):
    """Best FLOP/s of one `[m, k] @ [k, n]` fp32 matmul (`transpose_a`: `[k, m]^T`), computed
    as `parts` independent matmuls over blocks of the `n` columns side by side (with one
    thread per op, two at once are what keeps both cores busy)."""
    a = tf.random.normal([k, m] if transpose_a else [m, k])
    bs = [tf.random.normal([k, n // parts]) for _ in range(parts)]
    f = tf.function(
        lambda: tf.add_n([tf.reduce_sum(tf.matmul(a, b, transpose_a=transpose_a)) for b in bs])
    )
    return 2 * m * k * (n // parts) * parts / recording.best_seconds(lambda: f().numpy(), repeats)


def best_gemm_rate(m, k, n, transpose_a=False):
    """`gemm_rate` of the faster of one matmul and two side by side."""
    return max(gemm_rate(m, k, n, transpose_a=transpose_a, parts=p) for p in (1, 2))


def loop_gemm_rate(batch, units, width, steps, repeats=3, shards=1):
    """Best FLOP/s of `[batch, units] @ [units, width]` once per step in a `tf.while_loop`
    (the shape of the recurrent GEMM), `steps` steps, as `shards` GEMMs over blocks of the
    columns (the fast layers' unit shards)."""
    sizes = unit_shards(units, shard_units=-(-units // shards))
    u = [tf.random.normal([units, width * n // units]) * 0.01 for n in sizes]
    h0 = tf.random.normal([batch, units])

    @tf.function
    def run():
        def body(t, h):
            parts = [tf.tanh(tf.matmul(h, u_s)[:, :n]) for u_s, n in zip(u, sizes, strict=True)]
            return t + 1, tf.concat(parts, 1) if len(parts) > 1 else parts[0]

        return tf.while_loop(lambda t, _: t < steps, body, (tf.constant(0), h0))[1]

    flops = 2 * batch * units * sum(u_s.shape[1] for u_s in u) * steps
    return flops / recording.best_seconds(lambda: run().numpy(), repeats)


def matmul_peak(sizes):
    rates = {n: best_gemm_rate(n, n, n) for n in sizes}
    return max(rates.values()), rates


def gemm_bound(case):
    """Tokens/s if every GEMM of a training step ran at its measured rate, nothing else:
    the in-loop GEMM at the better of one GEMM per step and the fast layers' shards, the
    others at the better of one large GEMM and two side by side."""
    seconds = 0.0
    loop_flops = case["loop_flops"]
    per_loop = loop_flops / len(case["loops"])
    big_rates = []
    for batch, units, width, steps in case["loops"]:
        cell = {4 * units: "lstm", 3 * units: "gru"}.get(width)
        shards = len(unit_shards(units, SHARD_UNITS[cell])) if cell else 1
        shard_counts = sorted({1, shards})
        rate = max(loop_gemm_rate(batch, units, width, steps, shards=n) for n in shard_counts)
        seconds += per_loop / rate
        big_rates.append(best_gemm_rate(units, batch * steps, width, transpose_a=True))
    seconds += (case["flops_per_step"] - loop_flops) / statistics.median(big_rates)
    return case["tokens_per_step"] / seconds


# ----------------------------------------------------------------------------------------
# Workers: one process per thread setting (TensorFlow fixes its pools at its first op)
# ----------------------------------------------------------------------------------------

REPLY = "@@reply "


class Worker:
    """A child process that applies one thread setting before TensorFlow starts, then
    builds, warms up and times contenders on request (one JSON line each way)."""

    def __init__(self, name, quick, timeout=1800):
        command = [sys.executable, os.path.abspath(__file__), "--worker", name]
        if quick:
            command.append("--quick")
        self.name, self.timeout = name, timeout
        # The worker's stderr (TensorFlow's logs), read back when it fails; closed by close().
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, **ENVIRONMENTS.get(name, {})},
        )
        self.replies = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            if line.startswith(REPLY):
                self.replies.put(json.loads(line[len(REPLY) :]))
        self.replies.put(None)  # the worker's output ended: it exited

    def call(self, op, **fields):
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()
        try:
            reply = self.replies.get(timeout=self.timeout)
        except queue.Empty:
            self.process.kill()
            raise RuntimeError(f"worker {self.name}: no answer to {op!r} in {self.timeout} s")
        if reply is None or "error" in reply:
            self.log.seek(0)
            raise RuntimeError(
                f"worker {self.name} failed on {op!r}: "
                f"{(reply or {}).get('error', '')}\n{self.log.read()[-3000:]}"
            )
        return reply

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def onednn_on():
    """Whether this process's TensorFlow runs its oneDNN kernels (see `ENVIRONMENTS`)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def worker_main(name, quick):
    """The worker's side: thread pools first, then one request at a time from stdin."""
    intra, inter = THREADS[name]
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    known = {**cases(quick), **{c["name"]: c for _, _, c in sweep_cases(quick)}}
    trainers = {}
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "peak":
                peak, rates = matmul_peak(request["sizes"])
                pools = [
                    tf.config.threading.get_intra_op_parallelism_threads(),
                    tf.config.threading.get_inter_op_parallelism_threads(),
                ]
                reply = {"peak": peak, "rates": rates, "pools": pools, "onednn": onednn_on()}
            elif op == "bound":
                reply = {"tokens_per_second": gemm_bound(known[request["case"]])}
            elif op == "build":
                trainers.clear()
                case = known[request["case"]]
                for c in CONTENDERS:
                    trainers[c] = trainer(case, c, request["steps"], request["warmup"])
                reply = {}
            elif op == "run":
                begin = time.perf_counter()
                trainers[request["contender"]]()
                reply = {"seconds": time.perf_counter() - begin}
            else:
                reply = {"error": f"unknown request {op!r}"}
        except Exception as error:  # noqa: BLE001 - reported to the parent, which stops
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(REPLY + json.dumps(reply), flush=True)


# ----------------------------------------------------------------------------------------
# Memory (a child process per case and contender)
# ----------------------------------------------------------------------------------------


def peak_memory_mib(case_name, contender, quick):
    """`{"peak": MiB, "training": MiB}`: the peak RSS of a child process that builds the
    model and trains 3 steps, and how much of it the training steps added (peak after
    them minus the peak before the first)."""
    command = [sys.executable, __file__, "--memory-probe", case_name, contender]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1800)
    if done.returncode != 0:
        print(f"memory probe {case_name}/{contender} failed: {done.stderr[-500:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_probe(case_name, contender, quick):
    all_cases = cases(quick)
    all_cases.update({c["name"]: c for _, _, c in sweep_cases(quick)})
    model, x, y = build(all_cases[case_name], contender)
    before = peak_rss_mib()
    for _ in range(3):
        model.train_on_batch(x, y)
    peak = peak_rss_mib()
    print(json.dumps({"peak": peak, "training": peak - before}))


def peak_rss_mib():
    """This process's peak resident set (MiB): `VmHWM` of /proc/self/status, which starts
    afresh at `exec`. (`ru_maxrss` does not: a child started by a large parent reports
    the parent's size at the fork, which made every probe read the same.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (a Linux kernel is needed)")


# ----------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------


def table(report):
    peak = report["matmul_peak_flops_per_second"]
    names = report["threads"]
    other = [n for n in names if n != "default"]
    lines = [
        (
            f"Machine: {report['machine']['cpu']}; matmul peak {peak / 1e9:.0f} GFLOP/s "
            f"(best of square fp32 matmuls {report['matmul_peak_sizes']}, one or two side "
            "by side, under either thread setting); TensorFlow's oneDNN kernels: "
            + ", ".join(f"{'on' if on else 'off'} ({n})" for n, on in report["onednn"].items())
            + "."
        ),
        "",
        "Training tokens/s, median (slowest-fastest repeat); thread settings: "
        + "; ".join(f"`{n}` {THREAD_NAMES[n]}" for n in names),
        "",
    ]
    head = ["case"]
    for n in names:
        head += [f"stock ({n})", f"fast ({n})", f"fast / stock ({n})"]
    head += [f"fast ({n}) / stock (default)" for n in other]
    lines += ["| " + " | ".join(head) + " |", "| --- " + "| ---: " * (len(head) - 1) + "|"]
    for name, row in report["cases"].items():
        cells = [name]
        for n in names:
            cells += [
                _spread(row["contenders"][f"stock@{n}"]),
                _spread(row["contenders"][f"fast@{n}"]),
                f"**{row['ratios'][f'fast@{n} / stock@{n}']['ratio']:.2f}x**",
            ]
        cells += [f"{row['ratios'][f'fast@{n} / stock@default']['ratio']:.2f}x" for n in other]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Achieved FLOP/s as a share of the matmul peak, against the GEMM-only bound:",
        "",
        "| case | "
        + " | ".join(f"{c} ({n}) % peak" for n in names for c in CONTENDERS)
        + " | GEMM-only bound tok/s (% peak) | best fast / bound "
        "| peak RSS stock / fast MiB (training steps' share) |",
        "| --- " + "| ---: " * (2 * len(names) + 3) + "|",
    ]
    for name, row in report["cases"].items():
        bound = row["gemm_only_bound_tokens_per_second"]
        bound_peak = bound / row["tokens_per_step"] * row["flops_per_step"] / peak
        best_fast = max(row["contenders"][f"fast@{n}"]["tokens_per_second"] for n in names)
        mem = row.get("peak_rss_mib", {})
        shares = [
            f"{row['contenders'][f'{c}@{n}']['flops_per_second'] / peak:.0%}"
            for n in names
            for c in CONTENDERS
        ]
        lines.append(
            f"| {name} | {' | '.join(shares)} | {bound:,.0f} ({bound_peak:.0%}) | "
            f"{best_fast / bound:.0%} | {_mib(mem.get('stock'))} / {_mib(mem.get('fast'))} |"
        )
    if report["sweep"]:
        lines += [
            "",
            "Scaling (char LSTM; one size varied from time 256, batch 64, units 512):",
            "",
            "| varied | value | "
            + " | ".join(f"stock ({n}) | fast ({n}) | fast / stock ({n})" for n in names)
            + " |",
            "| --- | ---: " + "| ---: " * (3 * len(names)) + "|",
        ]
        for row in report["sweep"]:
            cells = [row["axis"], str(row["value"])]
            for n in names:
                cells += [
                    f"{row['contenders'][f'stock@{n}']['tokens_per_second']:,.0f}",
                    f"{row['contenders'][f'fast@{n}']['tokens_per_second']:,.0f}",
                    f"{row['ratios'][f'fast@{n} / stock@{n}']['ratio']:.2f}x",
                ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            "Medians of round-robin repeats (every contender of a case in turn, across the "
            "worker processes); (slowest-fastest) repeat in brackets."
        ),
    ]
    if report.get("shared_cpu"):
        lines += ["", recording.SHARED_CPU_FOOTNOTE]
    return "\n".join(lines)


THREAD_NAMES = {
    "default": "TensorFlow's default pools",
    "1x2": "one thread per op, two ops at a time (`intra_op_threads = 1`, `inter_op_threads = 2`)",
    "onednn": "TensorFlow's default pools with `TF_ENABLE_ONEDNN_OPTS=1`",
    "onednn-1x2": "`1x2` with `TF_ENABLE_ONEDNN_OPTS=1`",
}


def _spread(result):
    low, high = result["slowest_and_fastest"]
    return f"{result['tokens_per_second']:,.0f} ({low:,.0f}-{high:,.0f})"


def _mib(value):
    if value is None:
        return "-"
    return f"{value['peak']:,.0f} ({value['training']:,.0f})"


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = ["time", "batch", "units"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, axis in zip(axes, axes_names, strict=True):
        rows = [r for r in report["sweep"] if r["axis"] == axis]
        values = [r["value"] for r in rows]
        for contender in contender_ids(report["threads"]):
            ax.plot(
                values,
                [r["contenders"][contender]["tokens_per_second"] for r in rows],
                "o-" if contender.startswith("fast") else "s--",
                label=contender,
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel({"time": "sequence length", "batch": "batch size", "units": "units"}[axis])
        ax.set_ylabel("training tokens/s")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"char LSTM training throughput, stock Keras vs textrnn fast layers\n"
                 f"{report['machine']['cpu']}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        default=str(RESULTS),
        help=f"write the figures as JSON here, the table (.md) and plot (.png) beside it "
        f"(default: {RESULTS.relative_to(REPO)}; --quick writes nothing unless --out is given)",
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per contender")
    parser.add_argument("--steps", type=int, default=3, help="training steps per repeat")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--sweep-repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, help="case names to run")
    parser.add_argument(
        "--threads",
        nargs="+",
        choices=list(THREADS),
        default=DEFAULT_THREADS,
        help="thread settings to run the contenders under, one worker process each (default: "
        f"{' '.join(DEFAULT_THREADS)}; 'onednn' and 'onednn-1x2' are the same pools with "
        "TF_ENABLE_ONEDNN_OPTS=1)",
    )
    parser.add_argument("--no-sweep", action="store_true", help="skip the scaling sweep")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--memory-probe", nargs=2, metavar=("CASE", "CONTENDER"), help=argparse.SUPPRESS
    )
    parser.add_argument("--worker", choices=list(THREADS), help=argparse.SUPPRESS)
    recording.add_shared_cpu_argument(parser)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.quick)
        return None
    if args.memory_probe:
        memory_probe(*args.memory_probe, args.quick)
        return None
    if args.quick:
        args.repeats, args.steps, args.warmup, args.sweep_repeats = 2, 1, 2, 1
        if args.out == str(RESULTS):
            args.out = None  # a smoke run never replaces the measured figures
    peak_sizes = [64, 128] if args.quick else [1024, 2048, 4096]
    workers = {name: Worker(name, args.quick) for name in args.threads}
    try:
        return run(args, workers, peak_sizes)
    finally:
        for worker in workers.values():
            worker.close()


def run(args, workers, peak_sizes):
    peaks = {name: w.call("peak", sizes=peak_sizes) for name, w in workers.items()}
    peak = max(p["peak"] for p in peaks.values())
    for name, p in peaks.items():
        rates = {n: round(r / 1e9, 1) for n, r in p["rates"].items()}
        print(f"matmul peak ({name} threads): {p['peak'] / 1e9:.1f} GFLOP/s {rates}")
    report = {
        "machine": {
            "cpu": recording.machine(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        },
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "threads": list(workers),
        "thread_pools": {name: list(THREADS[name]) for name in workers},
        # What TensorFlow reports in each worker ([intra-op, inter-op], 0 = its default).
        "thread_pools_applied": {name: p["pools"] for name, p in peaks.items()},
        # Whether TensorFlow ran its oneDNN kernels in each worker.
        "onednn": {name: p["onednn"] for name, p in peaks.items()},
        "matmul_peak_flops_per_second": peak,
        "matmul_peak_sizes": peak_sizes,
        "matmul_rates": {name: p["rates"] for name, p in peaks.items()},
        "repeats": args.repeats,
        "steps_per_repeat": args.steps,
        "statistic": "median of round-robin repeats (every contender of a case in turn, "
        "across the worker processes) after warm-up steps; slowest_and_fastest: the "
        "tokens/s of the slowest and the fastest repeat",
        "flop_count": "3 x forward; forward per token: 2 g h (e + h) per recurrent layer "
        "and direction, 2 n m per dense layer (see the script's docstring)",
        "command": "python " + " ".join([os.path.relpath(__file__, REPO), *sys.argv[1:]]),
        "commit": recording.commit(),
        "date": time.strftime("%Y-%m-%d"),
        **({"shared_cpu": True} if args.shared_cpu else {}),
        "cases": {},
        "sweep": [],
    }
    for name, case in cases(args.quick).items():
        if args.only and name not in args.only:
            continue
        row = compare(case, workers, args.repeats, args.steps, args.warmup)
        bounds = {n: w.call("bound", case=name)["tokens_per_second"] for n, w in workers.items()}
        row.update(
            sizes=case["sizes"],
            tokens_per_step=case["tokens_per_step"],
            flops_per_step=case["flops_per_step"],
            gemm_only_bound_tokens_per_second=max(bounds.values()),
            gemm_only_bounds=bounds,
        )
        if not args.no_memory:
            row["peak_rss_mib"] = {c: peak_memory_mib(name, c, args.quick) for c in CONTENDERS}
        report["cases"][name] = row
        rates = ", ".join(
            f"{c} {r['tokens_per_second']:,.0f}" for c, r in row["contenders"].items()
        )
        ratios = ", ".join(f"{k} {v['ratio']:.2f}x" for k, v in row["ratios"].items())
        print(f"{name}: tok/s {rates}; {ratios}", flush=True)
    if not args.no_sweep:
        for axis, value, case in sweep_cases(args.quick):
            row = compare(case, workers, args.sweep_repeats, args.steps, args.warmup)
            report["sweep"].append({"axis": axis, "value": value, **row})
            ratios = ", ".join(f"{k} {v['ratio']:.2f}x" for k, v in row["ratios"].items())
            print(f"sweep {axis}={value}: {ratios}", flush=True)
    text = table(report)
    print(text)
    if args.out:
        out = str(recording.write_json(os.path.abspath(args.out), report))
        with open(os.path.splitext(out)[0] + ".md", "w") as f:
            f.write(text + "\n")
        extras = ".md"
        if report["sweep"]:
            plot(report, os.path.splitext(out)[0] + ".png")
            extras += ", .png"
        print(f"wrote {out} (+ {extras})")
    return report


if __name__ == "__main__":
    main()
