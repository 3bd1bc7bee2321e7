"""Exact resume: real `textrnn train` processes, SIGKILLed at chosen and at random steps
(twice in one run, and half-way through a checkpoint write), resumed with `--resume`,
end bit-identical to an uninterrupted run: the same checkpointed variables (weights,
optimizer, dropout seeds, metrics), the same `history.csv` and the same token counts.

The kill points come from the test-only fault switch (`textrnn.training.faults`) or from
this test (SIGKILL once `progress.json` reports a step). Scenarios run as independent
process chains, a few at a time, from one module fixture.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import REPO, TINY_CORPUS, TINY_SENTIMENT

from textrnn.training.checkpoints import CheckpointError, CheckpointStore

STEPS, EPOCHS, EVERY = 8, 3, 3  # checkpoints at steps 3, 6, 8 | 9, 12, 15, 16 | 18, 21, 24
CHARLM = [
    f"data.dataset='{TINY_CORPUS}'",
    "data.seq_len=16",
    "data.batch_size=4",
    "model.units=16",
    "model.embedding_dim=8",
    "model.dropout=0.1",  # dropout masks come from SeedGenerators: their state must resume
    f"train.epochs={EPOCHS}",
    f"train.steps_per_epoch={STEPS}",
    "train.validation_windows=4",
    "train.warmup_steps=2",  # a schedule whose position matters
    "train.max_minutes=0",
    "train.early_stopping_patience=0",
    f"train.checkpoint_every_steps={EVERY}",
    "train.checkpoint_every_minutes=0",  # checkpoints at fixed steps only
    "train.deterministic=true",
]
# TBPTT with carried state and its reset at each epoch start; without op determinism, to
# show the resume itself is exact on CPU.
STREAM = [o for o in CHARLM if o != "train.deterministic=true"] + ["data.windows=stream"]
SENTIMENT = [
    f"data.dataset='{TINY_SENTIMENT}'",
    "data.batch_size=8",
    "data.num_buckets=3",
    "model.units=8",
    "model.embedding_dim=8",
    "model.attention_units=4",
    "model.dropout=0.2",
    "train.epochs=3",
    "train.learning_rate=0.02",
    "train.early_stopping_patience=0",
    "train.checkpoint_every_steps=2",
    "train.checkpoint_every_minutes=0",
    "train.deterministic=true",
]
RECIPES = {
    "charlm": "models/charlm-shakespeare/config.toml",
    "sentiment": "models/sentiment-sst2/config.toml",
}


def _args(task, run_dir, overrides):
    args = [sys.executable, "-m", "textrnn.cli", "train", task, "--quiet"]
    args += ["--recipe", str(REPO / RECIPES[task]), "--run-dir", str(run_dir)]
    for o in overrides:
        args += ["--set", o]
    return args


def _env(**faults):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTRNN_FAULT_")}
    env.update({f"TEXTRNN_FAULT_{k}": str(v) for k, v in faults.items()})
    return env


def _bare_resume_args(task, run_dir, overrides):
    """`textrnn train TASK --run-dir RUN --resume` without the recipe (the run's own is
    used) and with only the `overrides` a resume may change."""
    args = [sys.executable, "-m", "textrnn.cli", "train", task, "--quiet"]
    args += ["--run-dir", str(run_dir), "--resume"]
    for o in overrides:
        args += ["--set", o]
    return args


def _train(task, run_dir, overrides, resume=False, killed=False, flags=(), bare=False, **faults):
    """One `textrnn train` process; `killed`: it must die by SIGKILL (the fault switch);
    `bare`: resumed by `_bare_resume_args` with `overrides`."""
    if bare:
        args = _bare_resume_args(task, run_dir, overrides) + list(flags)
    else:
        args = _args(task, run_dir, overrides) + (["--resume"] if resume else []) + list(flags)
    done = subprocess.run(
        args,
        check=False,
        cwd=REPO,
        env=_env(**faults),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if killed:
        assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr[-2000:])
        assert not (run_dir / "results.json").exists()
    else:
        assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def _kill_when_progress_reaches(task, run_dir, overrides, step, resume=False):
    """Starts a run and SIGKILLs it from outside once `progress.json` reports `step`."""
    args = _args(task, run_dir, overrides) + (["--resume"] if resume else [])
    proc = subprocess.Popen(args, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    progress, deadline = run_dir / "progress.json", time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if progress.exists() and json.loads(progress.read_text()).get("steps", 0) >= step:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "results.json").exists()
    return json.loads(progress.read_text())["steps"]


def _newest(run_dir):
    return CheckpointStore(run_dir / "backup").checkpoints()[0]


def _chain_random_windows(root, pool):
    """Random windows with dropout, killed three times in one run: at step 5 (between
    checkpoints 3 and 6) by the fault switch, from outside once `progress.json` reports
    step 9 or later, and at step 22; then resumed to the end. A copy made after the
    second kill feeds the corrupt-checkpoint test (started at once, in parallel)."""
    run, logs = root / "random", []
    _train("charlm", run, CHARLM, killed=True, KILL_AT_STEP=5)
    external = _kill_when_progress_reaches("charlm", run, CHARLM, 9, resume=True)
    shutil.copytree(run, root / "corrupt_newest")
    corrupt = pool.submit(_resume_with_a_truncated_newest_checkpoint, root / "corrupt_newest")
    logs.append(_train("charlm", run, CHARLM, resume=True, killed=True, KILL_AT_STEP=22))
    # The last resume names neither the recipe nor its --set options, and changes the time
    # budget (which decides nothing before it runs out).
    logs.append(_train("charlm", run, ["train.max_minutes=30"], bare=True))
    return run, logs, external, corrupt.result()


def _resume_with_a_truncated_newest_checkpoint(run):
    (_, newest_json), (_, previous_json) = CheckpointStore(run / "backup").checkpoints()[:2]
    arrays = newest_json.with_suffix(".npz")
    arrays.write_bytes(arrays.read_bytes()[:100])
    return arrays, previous_json, _train("charlm", run, CHARLM, resume=True)


def _chain_stream_windows(root):
    """Stream windows (TBPTT: carried state, reset at each epoch start), killed half-way
    through writing its very first checkpoint (which used to leave a 96-byte
    `latest.weights.h5` no resume could read), restarted, killed while writing the
    epoch-end checkpoint of step 8 (after that epoch's history row was written, so the
    resume goes back to step 6 and must not repeat the row), resumed to the end."""
    run, logs = root / "stream", []
    _train("charlm", run, STREAM, killed=True, KILL_DURING_CHECKPOINT=1)
    left_after_first = sorted(p.name for p in (run / "backup").iterdir())
    logs.append(_train("charlm", run, STREAM, resume=True, killed=True, KILL_DURING_CHECKPOINT=3))
    at_second = _newest(run)[0], (run / "history.csv").read_text().splitlines()
    logs.append(_train("charlm", run, STREAM, resume=True))
    return run, logs, left_after_first, at_second


def _chain_sentiment(root):
    run = root / "sentiment"
    _train("sentiment", run, SENTIMENT, killed=True, KILL_AT_STEP=11)
    return run, [_train("sentiment", run, SENTIMENT, resume=True)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_exact")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            "random": pool.submit(_chain_random_windows, root, pool),
            "stream": pool.submit(_chain_stream_windows, root),
            "reference": pool.submit(_train, "charlm", root / "reference", CHARLM),
            # The same recipe, the seed and op determinism given as flags instead.
            "again": pool.submit(
                _train,
                "charlm",
                root / "again",
                [o for o in CHARLM if o != "train.deterministic=true"],
                flags=["--seed", "0", "--deterministic"],
            ),
            "stream_reference": pool.submit(_train, "charlm", root / "stream_ref", STREAM),
            "sentiment_reference": pool.submit(
                _train, "sentiment", root / "sentiment_ref", SENTIMENT
            ),
            "sentiment": pool.submit(_chain_sentiment, root),
        }
        results = {name: f.result() for name, f in futures.items()}
    results["root"] = root
    return results


def _final_arrays(run_dir):
    """Every checkpointed variable at the end of the run, from its newest checkpoint."""
    store = CheckpointStore(run_dir / "backup")
    return store.read(store.checkpoints()[0][1]).arrays


def assert_identical_runs(resumed, reference):
    a, b = _final_arrays(resumed), _final_arrays(reference)
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.dtype == y.dtype and x.shape == y.shape, i
        assert np.array_equal(x, y), f"variable #{i}: max |diff| {np.max(np.abs(x - y))}"
    assert (resumed / "history.csv").read_text() == (reference / "history.csv").read_text()
    # Per-step gradient norms: every step once, with the uninterrupted run's values.
    assert (resumed / "gradient_norms.csv").read_text() == (
        reference / "gradient_norms.csv"
    ).read_text()
    for name in ("model.keras", "results.json", "progress.json"):
        assert (resumed / name).is_file(), name
    got, want = (json.loads((d / "progress.json").read_text()) for d in (resumed, reference))
    assert (got["steps"], got["tokens"], got["epochs"]) == (
        want["steps"],
        want["tokens"],
        want["epochs"],
    )
    assert got["best_value"] == want["best_value"]
    got, want = (json.loads((d / "results.json").read_text()) for d in (resumed, reference))
    assert got["train_tokens"] == want["train_tokens"]
    for key in set(got) & {"val_loss_windows", "val_loss_sequential"}:
        assert got[key] == want[key], key
    assert not list((resumed / "backup").glob(".tmp-*")), "a temporary file was left"


def test_the_reference_run_checkpoints_every_n_steps_and_keeps_two(runs):
    reference = runs["root"] / "reference"
    steps = [s for s, _ in CheckpointStore(reference / "backup").checkpoints()]
    assert steps == [EPOCHS * STEPS, EPOCHS * STEPS - 3]  # 24 and 21: the newest two
    rows = (reference / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]


def test_same_seed_with_op_determinism_gives_bit_identical_runs(runs):
    again = runs["root"] / "again"
    assert "deterministic = true" in (again / "config.toml").read_text()
    assert_identical_runs(runs["root"] / "again", runs["root"] / "reference")


def test_killed_three_times_in_one_run_resumes_exactly(runs):
    run, logs, external, _ = runs["random"]
    assert 9 <= external < EPOCHS * STEPS  # progress.json's step at the kill
    resumed_at = int(re.search(r"Resuming from checkpoint .*, step (\d+)\)", logs[0])[1])
    assert resumed_at >= external  # progress.json never claims more than the checkpoints
    assert "ckpt-000000021.json" in logs[1] and "(epoch 3, batch 5 of 8, step 21)" in logs[1]
    assert "--resume: train.max_minutes changed from 0.0 to 30.0" in logs[1]
    assert "max_minutes = 30.0" in (run / "config.toml").read_text()
    assert_identical_runs(run, runs["root"] / "reference")


def test_killed_while_writing_checkpoints_resumes_exactly(runs):
    run, logs, left_after_first, (newest, rows) = runs["stream"]
    # The kill in the first write left only the half-written temporary file: no
    # checkpoint and nothing truncated, so the restart begins afresh, without a traceback.
    assert len(left_after_first) == 1, left_after_first
    assert left_after_first[0].startswith(".tmp-") and left_after_first[0].endswith(".npz")
    assert "Resuming from" not in logs[0] and "Traceback" not in logs[0]
    # The kill in the epoch-end write came after epoch 0's history row ...
    assert newest == 6 and len(rows) == 2
    assert "ckpt-000000006.json" in logs[1] and "(epoch 1, batch 6 of 8, step 6)" in logs[1]
    # ... which the finished run holds once, as the uninterrupted one does.
    assert_identical_runs(run, runs["root"] / "stream_ref")


def test_sentiment_resumes_exactly(runs):
    run, logs = runs["sentiment"]
    assert "Resuming from checkpoint" in logs[0]
    assert_identical_runs(run, runs["root"] / "sentiment_ref")


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(runs):
    arrays, previous, log = runs["random"][3]
    assert f"{arrays} is truncated or corrupt" in log
    assert f"Resuming from checkpoint {previous}" in log
    assert (arrays.parent / (arrays.name + ".corrupt")).is_file()  # moved aside, kept
    assert_identical_runs(runs["root"] / "corrupt_newest", runs["root"] / "reference")


def test_every_checkpoint_corrupt_is_an_error_naming_each_file(runs, tmp_path):
    shutil.copytree(runs["root"] / "reference" / "backup", tmp_path / "backup")
    store = CheckpointStore(tmp_path / "backup")
    (_, newest), (_, previous) = store.checkpoints()[:2]
    newest.with_suffix(".npz").write_bytes(b"\0" * 96)  # what an interrupted h5 write left
    previous.write_text(previous.read_text()[:40])  # a torn record
    skipped = []
    with pytest.raises(CheckpointError) as error:
        store.latest(log=skipped.append)
    message = str(error.value)
    assert f"{newest.with_suffix('.npz')} is truncated or corrupt: 96 bytes" in message
    assert f"{previous} is truncated or corrupt" in message
    assert len(skipped) == 2 and "Start a new run directory" in message


def test_a_flipped_byte_is_caught_by_the_checksum(runs, tmp_path):
    shutil.copytree(runs["root"] / "reference" / "backup", tmp_path / "backup")
    store = CheckpointStore(tmp_path / "backup")
    (_, newest), (previous_step, _) = store.checkpoints()[:2]
    arrays = newest.with_suffix(".npz")
    data = bytearray(arrays.read_bytes())
    data[len(data) // 2] ^= 0xFF
    arrays.write_bytes(bytes(data))
    skipped = []
    checkpoint = store.latest(log=skipped.append)
    assert checkpoint.state["position"]["step"] == previous_step
    assert len(skipped) == 1 and "sha256" in skipped[0] and str(arrays) in skipped[0]


def _regression(epochs, run_dir, legacy=False):
    """A linear regression on full batches (no randomness): trained by Keras's own `fit`
    with its per-epoch `BackupAndRestore` (the layout of runs made before step
    checkpoints), or by `fit_resumable`."""
    import keras
    import tensorflow as tf

    from textrnn.training.config import TrainConfig
    from textrnn.training.loop import fit_resumable
    from textrnn.training.optimizers import make_optimizer
    from textrnn.training.progress import TrainingProgress

    rng = np.random.default_rng(0)
    x = rng.normal(size=[32, 3]).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input([3]), keras.layers.Dense(1)])
    train = TrainConfig(epochs=epochs, steps_per_epoch=4, lr_schedule="constant", clipnorm=0.0)
    model.compile(optimizer=make_optimizer(train), loss="mse")
    run_dir.mkdir(exist_ok=True)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    if legacy:
        backup = keras.callbacks.BackupAndRestore(
            str(run_dir / "backup"), double_checkpoint=True, delete_checkpoint=False
        )
        csv_log = keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True)
        model.fit(data, epochs=epochs, steps_per_epoch=4, validation_data=(x, y),
                  callbacks=[csv_log, backup], verbose=0, shuffle=False)  # fmt: skip
        return model, []
    progress = TrainingProgress(run_dir / "progress.json", 1, 0.0)
    messages = []
    fit_resumable(model, data, (x, y), train, run_dir, progress, steps_per_epoch=4,
                  verbose=0, log=messages.append)  # fmt: skip
    return model, messages


def test_a_run_with_an_old_per_epoch_backup_still_resumes(tmp_path):
    _regression(2, tmp_path / "old", legacy=True)
    resumed, messages = _regression(4, tmp_path / "old")
    assert "latest.weights.h5, the per-epoch backup of an earlier textrnn" in messages[0]
    assert "(after epoch 2)" in messages[0] and "not bit-identical" in messages[0]
    uninterrupted, _ = _regression(4, tmp_path / "new")
    # Nothing here is random, so even the old backup continues exactly.
    for a, b in zip(resumed.weights, uninterrupted.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    rows = (tmp_path / "old" / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3"]
    assert rows == (tmp_path / "new" / "history.csv").read_text().splitlines()


def test_an_unreadable_old_backup_is_an_error_naming_the_files(tmp_path):
    _regression(1, tmp_path / "old", legacy=True)
    backup = tmp_path / "old" / "backup"
    (backup / "latest.weights.h5").write_bytes(b"\0" * 96)
    (backup / "latest.weights.h5.bkp").unlink(missing_ok=True)
    with pytest.raises(CheckpointError) as error:
        _regression(2, tmp_path / "old")
    assert f"{backup / 'latest.weights.h5'}:" in str(error.value)
    assert "earlier textrnn version that cannot be read" in str(error.value)


def test_checkpoints_by_time_and_how_many_are_kept(tmp_path):
    from conftest import TINY_OVERRIDES

    from textrnn.charlm.train import train_charlm
    from textrnn.training.config import load_config

    # A budget of ~0 minutes between checkpoints: one after every step; the newest 3 kept.
    overrides = [*TINY_OVERRIDES, "train.checkpoint_every_minutes=1e-9", "train.keep_checkpoints=3"]
    train_charlm(load_config(None, overrides), tmp_path / "run", verbose=0)
    store = CheckpointStore(tmp_path / "run" / "backup")
    assert [s for s, _ in store.checkpoints()] == [6, 5, 4]  # 2 epochs x 3 steps
    assert sorted(p.suffix for p in store.folder.iterdir()) == [".json"] * 3 + [".npz"] * 3
    positions = [store.read(p).state["position"] for _, p in store.checkpoints()]
    assert positions == [
        {"epoch": 2, "batch": 0, "step": 6, "stopped": None},
        {"epoch": 1, "batch": 2, "step": 5, "stopped": None},
        {"epoch": 1, "batch": 1, "step": 4, "stopped": None},
    ]
