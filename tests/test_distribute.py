"""Training under tf.distribute: real `textrnn train` processes on loopback.

- Two workers (`MultiWorkerMirroredStrategy`, TF_CONFIG on 127.0.0.1, free ports) train
  the tiny character model: both exit 0, only the chief writes the run directory, and
  every checkpointed variable and history figure matches a single-process run with the
  same global batch within `TOLERANCE`.
- One worker is SIGKILLed mid-run (the fault switch): the survivor stops within the
  collective timeout with a clear error and a non-zero status, and restarting the job
  with `--resume` continues from the last checkpoint and ends as the uninterrupted job.
- `MirroredStrategy` over two logical CPU devices matches the default strategy.

The processes run in three phases, two jobs at a time, from one module fixture; every
process is killed by the fixture if it outlives its deadline.
"""

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TINY_CORPUS

from textrnn.training import distribute, launch
from textrnn.training.checkpoints import CheckpointStore
from textrnn.training.config import ConfigError, load_config
from textrnn.training.gradient_norms import read_gradient_norms

# Measured here: 1.5e-8 (two workers and mirrored vs one process: float rounding of the
# gradient sum); 0 between the killed-and-resumed job and the uninterrupted one.
TOLERANCE = 1e-6
COLLECTIVE_TIMEOUT = 20  # a survivor's bound; under load a peer may lag seconds
KILL_AT_STEP = 5  # after the checkpoint of step 4
DEADLINE = 240  # seconds for any one job, after which the fixture kills it
RECIPE = REPO / "models" / "charlm-shakespeare" / "config.toml"
SETS = [
    f"data.dataset='{TINY_CORPUS}'",
    "data.seq_len=16",
    "data.batch_size=8",  # the global batch: 4 rows per worker
    "model.units=16",
    "model.embedding_dim=8",
    "model.dropout=0.0",  # replicas draw dropout masks from one seed state (documented)
    "train.epochs=2",
    "train.steps_per_epoch=4",
    "train.validation_windows=8",
    "train.warmup_steps=1",
    # Most steps are clipped (norms ~0.3): Adam hides a wrongly scaled gradient, clipping
    # by the global norm does not.
    "train.clipnorm=0.2",
    "train.max_minutes=0",
    "train.early_stopping_patience=0",
    "train.checkpoint_every_steps=2",
    "train.checkpoint_every_minutes=0",
    f"train.collective_timeout_seconds={COLLECTIVE_TIMEOUT}",
]
_LOGICAL_CPUS = (
    "import sys, tensorflow as tf; "
    "tf.config.set_logical_device_configuration(tf.config.list_physical_devices('CPU')[0], "
    "[tf.config.LogicalDeviceConfiguration()] * 2); "
    "from textrnn.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _train_args(run_dir, *, resume=False, strategy=None):
    args = ["train", "charlm", "--quiet", "--run-dir", str(run_dir)]
    if resume:
        return [*args, "--resume"]
    args += ["--recipe", str(RECIPE), *[a for s in SETS for a in ("--set", s)]]
    return args + (["--strategy", strategy] if strategy else [])


def _env(tmp_dir, **extra):
    tmp_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(tmp_dir), **extra)
    for name in ("TEXTRNN_FAULT_KILL_AT_STEP", "TEXTRNN_FAULT_KILL_DURING_CHECKPOINT"):
        if name not in extra:
            env.pop(name, None)
    return env


def _run(commands):
    """Starts `(argv, env, log_path)` commands together; waits for all (killing every one
    at the deadline). Returns `[(status, exit time), ...]` and the logs' texts."""
    procs, ends, files = [], {}, []
    for argv, env, log in commands:
        files.append(open(log, "w"))  # noqa: SIM115 (closed below, after the processes)
        procs.append(subprocess.Popen(argv, env=env, stdout=files[-1], stderr=subprocess.STDOUT))
    start = time.monotonic()
    while len(ends) < len(procs):
        for i, p in enumerate(procs):
            if i not in ends and p.poll() is not None:
                ends[i] = time.monotonic()
        if time.monotonic() - start > DEADLINE:
            for i, p in enumerate(procs):
                if p.poll() is None:  # the test ends the whole job
                    p.kill()
                    p.wait()
                    ends[i] = time.monotonic()
        time.sleep(0.1)
    for f in files:
        f.close()
    texts = [log.read_text() for _, _, log in commands]
    return [(p.returncode, ends[i]) for i, p in enumerate(procs)], texts


def _two_workers(base, name, run_dirs, *, resume=False, kill_worker_1=False, tmp=None):
    ports = _free_ports(2)
    commands = []
    for i in range(2):
        tf_config = {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": i},
        }
        extra = {"TF_CONFIG": json.dumps(tf_config)}
        if kill_worker_1 and i == 1:
            extra["TEXTRNN_FAULT_KILL_AT_STEP"] = str(KILL_AT_STEP)
        argv = [sys.executable, "-m", "textrnn.cli"]
        argv += _train_args(run_dirs[i], resume=resume, strategy=None if resume else "multi_worker")
        tmp_dir = base / f"{tmp or name}-tmp{i}"
        commands.append((argv, _env(tmp_dir, **extra), base / f"{name}-{i}.log"))
    return _run(commands)


def _single(base, name, run_dir, *, mirrored=False):
    argv = (
        [sys.executable, "-c", _LOGICAL_CPUS] if mirrored else [sys.executable, "-m", "textrnn.cli"]
    )
    argv += _train_args(run_dir, strategy="mirrored" if mirrored else None)
    return _run([(argv, _env(base / f"{name}-tmp"), base / f"{name}.log")])


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    base = tmp_path_factory.mktemp("distribute")
    out = {"base": base}
    with ThreadPoolExecutor(3) as pool:
        # Worker 1 is given a --run-dir that must never appear: a non-chief writes only
        # to its own temporary directory.
        two = pool.submit(_two_workers, base, "two", [base / "two", base / "never"])
        one = pool.submit(_single, base, "single", base / "single")
        mirrored = pool.submit(_single, base, "mirrored", base / "mirrored", mirrored=True)
        out["two"], out["single"], out["mirrored"] = two.result(), one.result(), mirrored.result()
    out["kill"] = _two_workers(base, "kill", [base / "kill"] * 2, kill_worker_1=True)
    out["step_after_kill"] = _newest(base / "kill").state["position"]["step"]
    out["scratch_after_kill"] = [p.name for p in (base / "kill-tmp1").iterdir()]
    # The resumed job's workers share the killed job's temporary folders.
    out["resume"] = _two_workers(base, "resume", [base / "kill"] * 2, resume=True, tmp="kill")
    return out


def _newest(run_dir):
    checkpoint = CheckpointStore(run_dir / "backup").latest()
    assert checkpoint is not None, f"no checkpoint in {run_dir}"
    return checkpoint


def _max_difference(a, b):
    assert len(a.arrays) == len(b.arrays)
    return max(
        float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))) if x.size else 0.0
        for x, y in zip(a.arrays, b.arrays)
    )


def _history(run_dir):
    rows = _newest(run_dir).state["history"]
    return [[row[k] for k in sorted(row)] for row in rows]


def _norms(run_dir):
    return [row["gradient_norm"] for row in read_gradient_norms(run_dir / "gradient_norms.csv")]


def _assert_ok(result, what):
    (statuses, texts) = result
    for (status, _), text in zip(statuses, texts):
        assert status == 0, f"{what} exited {status}:\n{text[-3000:]}"


def test_two_workers_match_one_process_and_only_the_chief_writes(jobs):
    base = jobs["base"]
    _assert_ok(jobs["two"], "a worker")
    _assert_ok(jobs["single"], "the single-process run")
    run = base / "two"
    for name in ("model.keras", "history.csv", "gradient_norms.csv", "results.json", "logs"):
        assert (run / name).exists(), name
    chief, reference = _newest(run), _newest(base / "single")
    assert chief.state["position"]["step"] == reference.state["position"]["step"] == 8
    assert _max_difference(chief, reference) <= TOLERANCE
    np.testing.assert_allclose(_history(run), _history(base / "single"), rtol=TOLERANCE, atol=0)
    assert chief.state["progress"]["tokens"] == reference.state["progress"]["tokens"]
    # The recorded gradient norms are those of the global batch, before clipping.
    np.testing.assert_allclose(_norms(run), _norms(base / "single"), rtol=1e-5)
    assert max(_norms(run)) > 0.2  # clipping happened
    # The non-chief wrote nothing where it was told to, and deleted its scratch copy.
    assert not (base / "never").exists()
    assert list((base / "two-tmp1").iterdir()) == []


def test_lost_worker_stops_the_survivor_and_the_job_resumes(jobs):
    base = jobs["base"]
    (statuses, texts) = jobs["kill"]
    (chief_status, chief_end), (killed_status, killed_end) = statuses
    assert killed_status == -9, texts[1][-2000:]
    assert chief_status == 2, texts[0][-2000:]
    assert "a collective operation failed" in texts[0] and "--resume" in texts[0]
    # The survivor ends within the collective timeout (plus start-up slack), not never.
    assert chief_end - killed_end <= COLLECTIVE_TIMEOUT + 15
    run = base / "kill"
    assert jobs["step_after_kill"] == KILL_AT_STEP - 1

    _assert_ok(jobs["resume"], "a resumed worker")
    assert f"ckpt-{KILL_AT_STEP - 1:09d}.json" in jobs["resume"][1][0]  # "Resuming from ..."
    resumed, uninterrupted = _newest(run), _newest(base / "two")
    assert resumed.state["position"]["step"] == 8

    # The killed worker could not delete its scratch copy; the resumed one did.
    def scratch(names):
        return [n for n in names if n.startswith(launch.SCRATCH_PREFIX)]

    assert len(scratch(jobs["scratch_after_kill"])) == 1, jobs["scratch_after_kill"]
    assert scratch(p.name for p in (base / "kill-tmp1").iterdir()) == []
    assert _max_difference(resumed, uninterrupted) <= TOLERANCE
    np.testing.assert_allclose(_history(run), _history(base / "two"), rtol=TOLERANCE, atol=0)


def test_mirrored_over_two_logical_cpus_matches_the_default_strategy(jobs):
    base = jobs["base"]
    _assert_ok(jobs["mirrored"], "the mirrored run")
    mirrored, reference = _newest(base / "mirrored"), _newest(base / "single")
    assert _max_difference(mirrored, reference) <= TOLERANCE
    np.testing.assert_allclose(
        _history(base / "mirrored"), _history(base / "single"), rtol=TOLERANCE, atol=0
    )


# In-process checks of the pieces (no strategy needed).


@pytest.mark.parametrize("rows", [8, 7, 3])
def test_shard_batches_gives_each_replica_its_rows_of_every_global_batch(rows):
    batches = np.arange(3 * rows * 2).reshape(3, rows, 2)
    dataset = tf.data.Dataset.from_tensor_slices((batches, batches + 100))
    replicas, pipelines = 4, 2
    for pipeline in range(pipelines):
        context = tf.distribute.InputContext(pipelines, pipeline, replicas)
        pieces = [(x.numpy(), y.numpy()) for x, y in distribute.shard_batches(dataset, context)]
        expected = []
        for batch in batches:
            for i in range(pipeline * 2, pipeline * 2 + 2):  # brute force: row ranges
                rows_i = [
                    r for r in range(rows) if i * rows // replicas <= r < (i + 1) * rows // replicas
                ]
                expected.append(batch[rows_i])
        assert len(pieces) == len(expected)
        for (x, y), want in zip(pieces, expected):
            np.testing.assert_array_equal(x, want)
            np.testing.assert_array_equal(y, want + 100)


@pytest.mark.parametrize(
    "text, fragment",
    [
        (None, "needs the TF_CONFIG environment variable"),
        ("{not json", "not valid JSON"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "worker"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "index 1"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "'ps'"),
    ],
)
def test_bad_tf_config_is_named(text, fragment):
    with pytest.raises(distribute.DistributeError, match="TF_CONFIG|worker") as info:
        distribute.parse_tf_config(text)
    assert fragment in str(info.value)


def test_good_tf_config():
    parsed = distribute.parse_tf_config(
        '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    )
    assert parsed["workers"] == ["a:1", "b:2"] and parsed["task_index"] == 1


def test_strategy_settings_are_checked_when_the_recipe_is_read():
    with pytest.raises(ConfigError, match="train.strategy.*'tpu'"):
        load_config(None, ["train.strategy=tpu"])
    with pytest.raises(ConfigError, match="collective_timeout_seconds"):
        load_config(None, ["train.collective_timeout_seconds=-1"])
    cfg = load_config(None, ["train.strategy=mirrored", "data.windows=stream"])
    with pytest.raises(ConfigError, match="stream"):
        launch.train_task(None, cfg, "unused")


def test_stale_worker_scratch_is_removed_and_live_or_foreign_names_are_kept(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    stale = tmp_path / f"{launch.SCRATCH_PREFIX}{ended.pid}-abc123"
    live = tmp_path / f"{launch.SCRATCH_PREFIX}{os.getpid()}-def456"
    no_pid = tmp_path / f"{launch.SCRATCH_PREFIX}k2j4_x9q"  # an older version's name
    for folder in (stale, live, no_pid):
        (folder / "run" / "backup").mkdir(parents=True)
        (folder / "run" / "backup" / "weights.h5").write_bytes(b"x" * 100)
    a_file = tmp_path / f"{launch.SCRATCH_PREFIX}{ended.pid}-file"
    a_file.write_text("not a directory")
    assert launch.remove_stale_scratch(tmp_path) == [stale]
    assert not stale.exists()
    assert live.is_dir() and no_pid.is_dir() and a_file.is_file()
