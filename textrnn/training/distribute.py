"""Training under `tf.distribute`: the strategy, the sharded input and the train step.

`[train] strategy` (or `textrnn train --strategy`) picks one of:

- `"default"`: one device, Keras's own compiled train function (as before).
- `"mirrored"`: `tf.distribute.MirroredStrategy` over every GPU of this machine, or,
  without GPUs, over its logical CPU devices (one unless they were split with
  `tf.config.set_logical_device_configuration`, as the tests do).
- `"multi_worker"`: `tf.distribute.MultiWorkerMirroredStrategy` over the machines that
  the standard `TF_CONFIG` variable names, with `[train] collective_timeout_seconds` as
  the collectives' timeout (`tf.distribute.experimental.CommunicationOptions`): when a
  worker dies, the survivors' next all-reduce raises after that long instead of waiting
  forever, and the loop stops with `WorkerLostError`.

What stays the same under every strategy:

- `data.batch_size` is the *global* batch. Every worker builds the same seeded,
  batched training dataset; `distribute_dataset` gives replica `i` of `n` rows
  `[i*b//n, (i+1)*b//n)` of each global batch of `b` rows (sharded, not duplicated), so a
  step sees the same rows as a single-process step, and the learning rate is not
  rescaled. Keras divides each replica's mean loss by `n` and the gradients are summed,
  so the update is that of the global batch's mean loss.
- Gradients are all-reduced *before* the optimizer clips them (`aggregate_first`):
  Keras 3 clips each replica's partial gradient and all-reduces afterwards, which would
  clip by the wrong norm; the recorded gradient norm is then the global one too.

The train step is Keras's own `model.train_step`, run with `strategy.run` inside a
`tf.function` of this module (`make_train_function`); the epoch's figures are read from
the metrics in cross-replica context. Keras's `model.fit` / `model.evaluate` are not
used under `multi_worker`: Keras 3 reduces their scalar logs along axis 0, which fails
(keras-team/keras#20585, tensorflow/tensorflow#72388).

Not supported under `mirrored` / `multi_worker`: models whose train step carries state
between batches (`data.windows = "stream"`: the carried state has the global batch's
shape), rejected by `textrnn.training.launch`. Dropout masks are drawn per replica from
the same seed state, so with dropout a distributed run is not numerically that of a
single process (without dropout it is, to float rounding: tests/test_distribute.py).
A loss that is a mean over each batch's unmasked tokens (translation) is averaged per
replica, over that replica's tokens, and the replicas count equally: close to, not the
same as, the global batch's token mean.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from textrnn.training import config as config_lib

TF_CONFIG = "TF_CONFIG"
_EXAMPLE_TF_CONFIG = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)
_CREATED: dict = {}


class DistributeError(ValueError):
    """The distribution settings (TF_CONFIG, the strategy) cannot be used."""


class WorkerLostError(RuntimeError):
    """A collective operation failed or timed out: another worker stopped or is gone."""


def parse_tf_config(text: str | None) -> dict:
    """Checks a `TF_CONFIG` value for `MultiWorkerMirroredStrategy`.

    Args:
        text: the variable's value (None when unset).

    Returns:
        `{"workers": [...], "chief": [...], "task_type": str, "task_index": int}`.

    Raises:
        DistributeError: unset, not JSON, or without a worker list / a task within it.

    Example:
        >>> parse_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, '
        ...                 '"task": {"type": "worker", "index": 1}}')["task_index"]
        1
    """
    if not text:
        raise DistributeError(
            f"train.strategy = 'multi_worker' needs the {TF_CONFIG} environment variable "
            f"on every worker, e.g. {TF_CONFIG}='{_EXAMPLE_TF_CONFIG}' (index 0 on the "
            "first machine, 1 on the second)."
        )
    try:
        data = json.loads(text)
    except ValueError as e:
        raise DistributeError(f"{TF_CONFIG} is not valid JSON ({e}): {text!r}") from None
    cluster = data.get("cluster") if isinstance(data, dict) else None
    task = data.get("task") if isinstance(data, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise DistributeError(
            f'{TF_CONFIG} needs a "cluster" and a "task" object, e.g. {_EXAMPLE_TF_CONFIG}. '
            f"Received: {text!r}"
        )
    workers, chief = cluster.get("worker", []), cluster.get("chief", [])
    if not isinstance(workers, list) or not isinstance(chief, list) or not workers + chief:
        raise DistributeError(
            f'{TF_CONFIG}\'s "cluster" needs a "worker" list of "host:port" addresses. '
            f"Received: {cluster!r}"
        )
    task_type, index = task.get("type"), task.get("index")
    members = {"worker": workers, "chief": chief}.get(task_type)
    if not members or isinstance(index, bool) or not isinstance(index, int):
        raise DistributeError(
            f'{TF_CONFIG}\'s "task" must be {{"type": "worker" or "chief", "index": n}} '
            f"naming a member of the cluster. Received: {task!r}"
        )
    if not 0 <= index < len(members):
        raise DistributeError(
            f"{TF_CONFIG}: task index {index} is outside the {len(members)} "
            f"{task_type} address(es) {members}."
        )
    return {"workers": workers, "chief": chief, "task_type": task_type, "task_index": index}


def get_strategy(train):
    """The `tf.distribute` strategy of `train.strategy`, created once per process.

    Create it before TensorFlow runs anything else in the process (the multi-worker
    strategy configures the runtime's collective ops, which must happen at start-up).

    Args:
        train: the recipe's `[train]` section.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        DistributeError: a bad `TF_CONFIG`, or a second multi-worker strategy with
            other settings in the same process.

    Example:
        >>> strategy = get_strategy(load_config(None, ["train.strategy=mirrored"]).train)
    """
    kind = train.strategy
    if kind not in config_lib.STRATEGIES:
        raise DistributeError(
            f"Unknown strategy {kind!r}; expected one of {list(config_lib.STRATEGIES)}."
        )
    if kind == "default":
        return tf.distribute.get_strategy()
    key = (kind, train.collective_timeout_seconds if kind == "multi_worker" else None)
    if key in _CREATED:
        return _CREATED[key]
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        strategy = tf.distribute.MirroredStrategy(devices)
    else:
        if any(k[0] == "multi_worker" for k in _CREATED):
            raise DistributeError(
                "A multi-worker strategy with another collective timeout already exists "
                "in this process; TensorFlow allows one per process."
            )
        parse_tf_config(os.environ.get(TF_CONFIG))
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=train.collective_timeout_seconds
        )
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    _CREATED[key] = strategy
    return strategy


def kind_of(strategy) -> str:
    """`"multi_worker"`, `"mirrored"` or `"default"`: which recipe value `strategy` is."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi_worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return "default"


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: always, except on the non-chief
    workers of a multi-worker job (TF_CONFIG's `chief`, else worker 0, writes)."""
    if kind_of(strategy) != "multi_worker":
        return True
    return bool(strategy.extended.should_checkpoint)


def describe(strategy) -> str:
    """One line on the strategy, e.g. `multi_worker: 2 replicas, this worker is the chief`."""
    kind = kind_of(strategy)
    text = f"{kind}: {strategy.num_replicas_in_sync} replica(s)"
    if kind == "multi_worker":
        resolver = strategy.cluster_resolver
        role = "the chief" if is_chief(strategy) else "not the chief"
        text += f", this is {resolver.task_type} {resolver.task_id} ({role})"
    return text


def check_model_strategy(model, train) -> None:
    """Raises `ConfigError` unless `model` was built under `train.strategy`'s strategy."""
    kind = kind_of(model.distribute_strategy)
    if kind != train.strategy:
        raise config_lib.ConfigError(
            f"`train.strategy = {train.strategy!r}`, but the model was built under the "
            f"{kind!r} strategy. Build and compile it under "
            "`textrnn.training.launch.training_scope(cfg.train)` (as `textrnn train` does)."
        )


def _restore_structure(batch):
    return batch[0] if len(batch) == 1 else batch


def shard_batches(dataset, context: tf.distribute.InputContext):
    """Each global batch of `dataset`, as the per-replica pieces of this input pipeline.

    With `n` replicas over `P` pipelines (workers), pipeline `p` yields, for each global
    batch of `b` rows, `n / P` consecutive pieces: rows `[i*b//n, (i+1)*b//n)` for
    `i = p*n/P, ...`, which the distributed iterator hands to its local replicas in
    order. A batch of fewer than `n` rows leaves some pieces empty (their loss is 0 with
    weight 0).

    Args:
        dataset: batched `tf.data.Dataset` (global batches).
        context: the `tf.distribute.InputContext` of this pipeline.

    Returns:
        The dataset of this pipeline's per-replica pieces.
    """
    pipelines, pipeline = context.num_input_pipelines, context.input_pipeline_id
    local = context.num_replicas_in_sync // pipelines
    replicas = pipelines * local

    def pieces(*batch):
        rows = tf.shape(tf.nest.flatten(batch)[0])[0]

        def piece(j):
            i = pipeline * local + tf.cast(j, tf.int32)
            lo, hi = i * rows // replicas, (i + 1) * rows // replicas
            return tf.nest.map_structure(lambda t: t[lo:hi], _restore_structure(batch))

        return tf.data.Dataset.range(local).map(piece)

    return dataset.flat_map(pieces)


def distribute_dataset(strategy, dataset):
    """`dataset` (global batches) for `strategy`: itself under the default strategy,
    otherwise a distributed dataset whose replicas take their shares of each batch
    (`shard_batches`).

    Example:
        >>> iterator = iter(distribute_dataset(strategy, train_ds))
    """
    if kind_of(strategy) == "default":
        return dataset
    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return strategy.distribute_datasets_from_function(
        lambda context: shard_batches(dataset, context), options
    )


def aggregate_first(optimizer):
    """Makes `optimizer` all-reduce (sum) the gradients of the replicas before it clips
    and applies them, instead of after clipping each replica's part (Keras 3's order).

    `optimizer.apply` is wrapped (outermost, so `gradient_norm` sees the global
    gradients) and its own all-reduce (and a `LossScaleOptimizer`'s inner one's) becomes
    the identity. Idempotent.

    Args:
        optimizer: the model's Keras 3 optimizer, created under the strategy's scope.

    Returns:
        The same optimizer.
    """
    if getattr(optimizer, "_textrnn_aggregates_first", False):
        return optimizer
    apply = optimizer.apply

    def apply_aggregated(grads, trainable_variables=None):
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            grads = list(grads)
            present = [i for i, g in enumerate(grads) if g is not None]
            summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
            for i, g in zip(present, summed):
                grads[i] = g
        return apply(grads, trainable_variables)

    optimizer.apply = apply_aggregated
    for part in (optimizer, getattr(optimizer, "inner_optimizer", None)):
        if part is not None:
            part._all_reduce_sum_gradients = lambda grads_and_vars: list(grads_and_vars)
    object.__setattr__(optimizer, "_textrnn_aggregates_first", True)
    return optimizer


def make_train_function(model, strategy):
    """`train_function(iterator) -> logs`: one step of `model.train_step` on every
    replica (`strategy.run`), then the metrics' results over all replicas.

    Not XLA-compiled: XLA cannot compile a step whose variables live on several devices
    (the recipe refuses `jit_compile` with a non-default strategy).

    Args:
        model: a model compiled under `strategy.scope()`, its optimizer passed through
            `aggregate_first`.
        strategy: the model's strategy.

    Returns:
        The function; its logs are scalar tensors, the same on every worker.
    """

    @tf.function(reduce_retracing=True)
    def train_function(iterator):
        strategy.run(model.train_step, args=(next(iterator),))
        return model.get_metrics_result()

    return train_function


def evaluate(model, strategy, dataset, steps=None) -> dict:
    """Validation under a distribution strategy: `model.test_step` on every replica's
    share of each batch, then the metrics' results over all replicas.

    Every worker must call it with the same dataset (each takes its share).

    Args:
        model: the compiled model.
        strategy: its strategy.
        dataset: batched `tf.data.Dataset` (global batches), finite.
        steps: batches to score; None = all of them.

    Returns:
        The metrics' results, as Python floats.
    """
    if steps is not None:
        dataset = dataset.take(steps)
    step = getattr(model, "_textrnn_distributed_test_step", None)
    if step is None:
        step = tf.function(
            lambda data: strategy.run(model.test_step, args=(data,)), reduce_retracing=True
        )
        object.__setattr__(model, "_textrnn_distributed_test_step", step)
    model.reset_metrics()
    for data in distribute_dataset(strategy, dataset):
        step(data)
    return {k: float(v) for k, v in model.get_metrics_result().items()}


def sum_over_workers(strategy, values: list[float]) -> list[float]:
    """The sum of `values` over every worker of a multi-worker job (one collective;
    every worker must call it at the same point); `values` itself on one machine.

    Example:
        >>> sum_over_workers(strategy, [1.0])   # 2 workers
        [2.0]
    """
    if kind_of(strategy) != "multi_worker":
        return [float(v) for v in values]
    function = _SUMS.get(id(strategy))
    if function is None:

        @tf.function
        def function(tensor):
            def reduce(v):
                # One replica per worker contributes, so a sum counts each worker once.
                context = tf.distribute.get_replica_context()
                first = tf.cast(
                    context.replica_id_in_sync_group % _local_replicas(strategy) == 0, v.dtype
                )
                return context.all_reduce("SUM", v * first)

            per_replica = strategy.run(reduce, args=(tensor,))
            return strategy.experimental_local_results(per_replica)[0]

        _SUMS[id(strategy)] = function
    return [float(v) for v in function(tf.constant(values, tf.float64)).numpy()]


def _local_replicas(strategy) -> int:
    return max(1, len(strategy.extended.worker_devices))


def agree(strategy, flags: list[bool]) -> list[bool]:
    """Whether any worker raised each flag (a collective on multi-worker jobs, so that
    every worker takes the same decision, e.g. to checkpoint or to stop at a time
    budget measured on its own clock); the flags themselves elsewhere.

    Example:
        >>> due, stop = agree(strategy, [checkpoint_due, model.stop_training])
    """
    return [v > 0 for v in sum_over_workers(strategy, [1.0 if f else 0.0 for f in flags])]


_SUMS: dict = {}
