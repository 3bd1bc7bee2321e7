"""Training speed: textrnn's fast recurrent layers against Keras's stock layers, same model.

Each case builds one model twice through the project's model classes, once with Keras's
layers (`fast_layers=False`) and once with textrnn's (`FastLSTM`, `FastGRU`: same weights),
and times `train_on_batch` (Adam, sparse cross-entropy on logits, random ids) in turns:
one timed repeat of each contender, `--repeats` times (round robin), after warm-up steps,
so a slow spell of the machine hits both alike. Figures: training tokens/s (token
positions through the recurrent layers per second, padding included), median and the
slowest / fastest repeat, the ratio fast / stock (median of the per-repeat ratios too).

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
same run. GEMM-only bound: the step's FLOPs split into the in-loop GEMMs (the fast layers'
structure: `h @ U` forward and `dz @ U^T` backward, one per step, 2/3 of the recurrent
kernel's training FLOPs) at the FLOP/s of that GEMM shape run in a `tf.while_loop`, and all
the others at the FLOP/s of one large GEMM (`[time * batch, h]^T @ [time * batch, g h]`),
both measured here: the tokens/s no implementation of this structure can beat.

Peak memory: the peak resident set of a separate process that builds the same model and
runs 3 training steps (one process per case and contender), and the training steps' share
of it (the peak after them minus the peak before the first: the TensorFlow runtime and the
model alone take about 1 GiB).

Scaling: the char LSTM's tokens/s against sequence length, batch size and hidden size (one
varied at a time from 256 / 64 / 512), a table and a PNG.

These are CPU wall-clock figures: other processes on the machine change them (nothing else
heavy should run; `--shared-cpu` marks a run that shared the machine).

Usage:
    python benchmarks/fast_layers.py                 # the full run (~1 hour on 2 cores)
    python benchmarks/fast_layers.py --quick --out /tmp/fast_layers/fast_layers.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
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
from textrnn.sentiment.model import SentimentClassifier
from textrnn.training import config as config_lib
from textrnn.translation.model import Seq2Seq

REPO = recording.REPO
RESULTS = REPO / "benchmarks" / "results" / "fast_layers.json"
GATES = {"lstm": 4, "gru": 3, "rnn": 1}
CONTENDERS = ("stock", "fast")


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


def compare(case, repeats, steps_per_repeat, warmup):
    """Stock against fast for one case: tokens/s (median, slowest, fastest) and ratios."""
    runs = {c: trainer(case, c, steps_per_repeat, warmup) for c in CONTENDERS}
    times = recording.round_robin_seconds(runs, repeats)
    tokens = case["tokens_per_step"] * steps_per_repeat
    result = {}
    for c, seconds in times.items():
        rates = [tokens / s for s in seconds]
        result[c] = {
            "tokens_per_second": statistics.median(rates),
            "slowest_and_fastest": [min(rates), max(rates)],
            "flops_per_second": statistics.median(rates)
            / case["tokens_per_step"]
            * case["flops_per_step"],
        }
    for c in CONTENDERS[1:]:
        result[c]["ratio"] = result[c]["tokens_per_second"] / result["stock"]["tokens_per_second"]
        result[c]["ratio_of_pairs"] = statistics.median(
            s / f for s, f in zip(times["stock"], times[c], strict=True)
        )
    result["ratio"] = result["fast"]["ratio"]
    return result


def gemm_rate(m, k, n, repeats=3, transpose_a=False):
    """Best FLOP/s of one `[m, k] @ [k, n]` fp32 matmul (`transpose_a`: `[k, m]^T`)."""
    a = tf.random.normal([k, m] if transpose_a else [m, k])
    b = tf.random.normal([k, n])
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b, transpose_a=transpose_a)))
    return 2 * m * k * n / recording.best_seconds(lambda: f().numpy(), repeats)


def loop_gemm_rate(batch, units, width, steps, repeats=3):
    """Best FLOP/s of `[batch, units] @ [units, width]` once per step in a `tf.while_loop`
    (the shape of the recurrent GEMM), `steps` steps."""
    u = tf.random.normal([units, width]) * 0.01
    h0 = tf.random.normal([batch, units])

    @tf.function
    def run():
        def body(t, h):
            return t + 1, tf.tanh(tf.matmul(h, u)[:, :units])

        return tf.while_loop(lambda t, _: t < steps, body, (tf.constant(0), h0))[1]

    return (
        2 * batch * units * width * steps / recording.best_seconds(lambda: run().numpy(), repeats)
    )


def matmul_peak(sizes):
    rates = {n: gemm_rate(n, n, n) for n in sizes}
    return max(rates.values()), rates


def gemm_bound(case):
    """Tokens/s if every GEMM of a training step ran at its measured rate, nothing else."""
    seconds = 0.0
    loop_flops = case["loop_flops"]
    per_loop = loop_flops / len(case["loops"])
    big_rates = []
    for batch, units, width, steps in case["loops"]:
        seconds += per_loop / loop_gemm_rate(batch, units, width, steps)
        big_rates.append(gemm_rate(units, batch * steps, width, transpose_a=True))
    seconds += (case["flops_per_step"] - loop_flops) / statistics.median(big_rates)
    return case["tokens_per_step"] / seconds


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
    lines = [
        (
            f"Machine: {report['machine']['cpu']}; matmul peak {peak / 1e9:.0f} GFLOP/s "
            f"(best of square fp32 matmuls {report['matmul_peak_sizes']})."
        ),
        "",
        (
            "| case | stock tok/s | fast tok/s | ratio "
            "| stock % peak | fast % peak | GEMM-only bound tok/s (% peak) "
            "| peak RSS stock / fast MiB (training steps' share) |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in report["cases"].items():
        s, f = row["stock"], row["fast"]
        bound = row["gemm_only_bound_tokens_per_second"]
        bound_peak = bound / row["tokens_per_step"] * row["flops_per_step"] / peak
        mem = row.get("peak_rss_mib", {})
        lines.append(
            f"| {name} | {_spread(s)} | {_spread(f)} | "
            f"{f['ratio']:.2f}x | "
            f"{s['flops_per_second'] / peak:.0%} | "
            f"{f['flops_per_second'] / peak:.0%} | {bound:,.0f} ({bound_peak:.0%}) | "
            f"{_mib(mem.get('stock'))} / {_mib(mem.get('fast'))} |"
        )
    lines += [
        "",
        "Scaling (char LSTM; one size varied from time 256, batch 64, units 512):",
        "",
        "| varied | value | stock tok/s | fast tok/s | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in report["sweep"]:
        lines.append(
            f"| {row['axis']} | {row['value']} | {row['stock']['tokens_per_second']:,.0f} | "
            f"{row['fast']['tokens_per_second']:,.0f} | {row['fast']['ratio']:.2f}x |"
        )
    lines += ["", "Medians of round-robin repeats; (slowest-fastest) repeat in brackets."]
    if report.get("shared_cpu"):
        lines += ["", recording.SHARED_CPU_FOOTNOTE]
    return "\n".join(lines)


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
        for contender in CONTENDERS:
            ax.plot(
                values, [r[contender]["tokens_per_second"] for r in rows], "o-", label=contender
            )
        ax.set_xscale("log", base=2)
        ax.set_xlabel({"time": "sequence length", "batch": "batch size", "units": "units"}[axis])
        ax.set_ylabel("training tokens/s")
        ax.grid(alpha=0.3)
        ax.legend()
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
    parser.add_argument("--steps", type=int, default=5, help="training steps per repeat")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--sweep-repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=None, help="case names to run")
    parser.add_argument("--no-sweep", action="store_true", help="skip the scaling sweep")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--memory-probe", nargs=2, metavar=("CASE", "CONTENDER"), help=argparse.SUPPRESS
    )
    recording.add_shared_cpu_argument(parser)
    args = parser.parse_args(argv)
    if args.memory_probe:
        memory_probe(*args.memory_probe, args.quick)
        return None
    if args.quick:
        args.repeats, args.steps, args.warmup, args.sweep_repeats = 2, 1, 2, 1
        if args.out == str(RESULTS):
            args.out = None  # a smoke run never replaces the measured figures
    peak_sizes = [64, 128] if args.quick else [1024, 2048, 4096]

    peak, peak_rates = matmul_peak(peak_sizes)
    print(
        f"matmul peak: {peak / 1e9:.1f} GFLOP/s ({ {n: round(r / 1e9, 1) for n, r in peak_rates.items()} })"
    )
    report = {
        "machine": {
            "cpu": recording.machine(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        },
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "matmul_peak_flops_per_second": peak,
        "matmul_peak_sizes": peak_sizes,
        "matmul_rates": {str(n): r for n, r in peak_rates.items()},
        "repeats": args.repeats,
        "steps_per_repeat": args.steps,
        "statistic": "median of round-robin repeats (stock, fast, stock, ...) after warm-up "
        "steps; slowest_and_fastest: the tokens/s of the slowest and the fastest repeat",
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
        row = compare(case, args.repeats, args.steps, args.warmup)
        row.update(
            sizes=case["sizes"],
            tokens_per_step=case["tokens_per_step"],
            flops_per_step=case["flops_per_step"],
            gemm_only_bound_tokens_per_second=gemm_bound(case),
        )
        if not args.no_memory:
            row["peak_rss_mib"] = {c: peak_memory_mib(name, c, args.quick) for c in CONTENDERS}
        report["cases"][name] = row
        print(
            f"{name}: stock {row['stock']['tokens_per_second']:,.0f} tok/s "
            f"({row['stock']['flops_per_second'] / peak:.0%} of peak), fast "
            f"{row['fast']['tokens_per_second']:,.0f} tok/s "
            f"({row['fast']['flops_per_second'] / peak:.0%}), ratio {row['ratio']:.2f}x "
            f"GEMM-only bound {row['gemm_only_bound_tokens_per_second']:,.0f} tok/s",
            flush=True,
        )
    if not args.no_sweep:
        for axis, value, case in sweep_cases(args.quick):
            row = compare(case, args.sweep_repeats, args.steps, args.warmup)
            report["sweep"].append({"axis": axis, "value": value, **row})
            print(f"sweep {axis}={value}: ratio {row['ratio']:.2f}x", flush=True)
    text = table(report)
    print(text)
    if args.out:
        out = str(recording.write_json(os.path.abspath(args.out), report))
        with open(os.path.splitext(out)[0] + ".md", "w") as f:
            f.write(text + "\n")
        if report["sweep"]:
            plot(report, os.path.splitext(out)[0] + ".png")
        print(f"wrote {out} (+ .md, .png)")
    return report


if __name__ == "__main__":
    main()
