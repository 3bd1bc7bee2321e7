"""Request batching (TensorFlow Serving's `--enable_batching`): concurrent small predict
requests merged into one model call along the batch axis, then split back.

Which requests merge: those to the same loaded version and signature whose non-batched
inputs (every input but the string vectors: `max_length`, `beam_width`, `alpha`, ...)
are equal, value for value. A batch runs when it holds `max_batch_size` rows (capped by
the export's own `max_batch_size`) or when its first request has waited
`batch_timeout_micros`; at most `num_batch_threads` batches run at once and at most
`max_enqueued_batches` wait (open or queued; one more: UNAVAILABLE, HTTP 503, TensorFlow
Serving's "The batch scheduling queue to which this task was submitted is full").

Which signatures: only those of a textrnn export (its `textrnn_export.json` names the
task) whose rows do not depend on each other (`BATCH_POLICIES`):

- character LM: `greedy`, `beam`. Not `sample` nor `serving_default` (it samples): a
  row's random draws depend on its place in the batch (`stateless_categorical` draws
  row by row from one seed), so the same seed would give another text.
- sentiment: `serving_default`, `explain` (`tokens` and `weights` are padded to the
  batch's longest text; each request gets them cut back to its own longest).
- translator: `greedy`, `beam`, and `serving_default` unless the export's default
  strategy samples; not `sample`. `source_tokens`, `target_tokens` and `attention` are
  padded to the batch's longest source and translation and cut back per request.

Any other SavedModel, signature or request (no rows, more rows than a batch holds) runs
alone, as without batching. A batch whose call fails runs its requests one by one, so
each gets its own answer or error. Texts, ids and labels are those of the unbatched
call; float outputs (scores, probabilities, attention) equal them up to float32 rounding
(about 1e-7 relative: the matrix products sum padded rows and longer sources in another
order), which could in principle flip a near-tie in greedy or beam search.

Example:
    >>> options = BatchingOptions.from_overrides(["max_batch_size=16"])
    >>> predictor = Predictor(ServerLimits(), batching=options)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from textrnn.export.limits import parse_overrides
from textrnn.export.savedmodel import INFO_FILE
from textrnn.serving.errors import ServingError

log = logging.getLogger("textrnn.serving")

QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """TensorFlow Serving's batching parameters (`BatchingParameters`), for `textrnn serve
    --enable-batching --batching NAME=VALUE`.

    Args:
        max_batch_size: most rows of one batch (at most the export's own
            `max_batch_size`, which caps it further).
        batch_timeout_micros: the longest the first request of a batch waits for others
            (0: only requests that arrive together merge).
        max_enqueued_batches: most batches open or waiting for a thread (more:
            UNAVAILABLE, HTTP 503).
        num_batch_threads: batches that run at once.

    Raises:
        TypeError: a value that is not an integer, naming it.
        ValueError: a value out of range, naming it.
    """

    max_batch_size: int = 32
    batch_timeout_micros: int = 2000
    max_enqueued_batches: int = 64
    num_batch_threads: int = 2

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Expected an integer for `{field.name}`. Received: {value!r}")
            lowest = 0 if field.name == "batch_timeout_micros" else 1
            if value < lowest:
                raise ValueError(
                    f"Expected `{field.name}` >= {lowest}. Received: {field.name}={value!r}"
                )

    @classmethod
    def from_overrides(cls, overrides) -> BatchingOptions:
        """Options from `NAME=VALUE` strings (`textrnn serve --batching`), the defaults
        elsewhere.

        Raises:
            ValueError: an unknown name, a value that is not an integer or out of range.
        """
        return parse_overrides(cls, overrides, int, "an integer")


@dataclasses.dataclass(frozen=True)
class SignaturePolicy:
    """Whether a signature's requests may merge, and how to cut padded outputs back.

    Attributes:
        batchable: requests may merge.
        reason: why not (for the docs and the log).
        padded: output name -> one string output per axis after the first: the output
            is padded along that axis to the batch's longest row, and a request's length
            along it is that string output's, without its trailing empty strings (no
            real token is empty).
    """

    batchable: bool
    reason: str = ""
    padded: dict = dataclasses.field(default_factory=dict)


_ROWS_INDEPENDENT = SignaturePolicy(True)
_SAMPLES = SignaturePolicy(
    False, "its random draws depend on a row's place in the batch (same seed, other text)"
)
_EXPLAIN = SignaturePolicy(True, padded={"tokens": ("tokens",), "weights": ("tokens",)})
_TRANSLATE = SignaturePolicy(
    True,
    padded={
        "source_tokens": ("source_tokens",),
        "target_tokens": ("target_tokens",),
        "attention": ("target_tokens", "source_tokens"),
    },
)

# task -> signature -> policy; "serving_default" of the translator follows its strategy.
BATCH_POLICIES = {
    "charlm": {
        "greedy": _ROWS_INDEPENDENT,
        "beam": _ROWS_INDEPENDENT,
        "sample": _SAMPLES,
        "serving_default": _SAMPLES,
    },
    "sentiment": {"serving_default": _ROWS_INDEPENDENT, "explain": _EXPLAIN},
    "translate": {"greedy": _TRANSLATE, "beam": _TRANSLATE, "sample": _SAMPLES},
}
_NOT_TEXTRNN = SignaturePolicy(False, "not a textrnn export (no textrnn_export.json)")
_UNKNOWN = SignaturePolicy(False, "a signature textrnn does not know")


def export_policy(path) -> tuple[dict, int]:
    """(signature -> `SignaturePolicy`, the export's largest batch) of a SavedModel
    directory, from its `textrnn_export.json` (none: nothing is batched)."""
    try:
        info = json.loads((path / INFO_FILE).read_text(encoding="utf-8"))
        task = info["task"]
        largest = int(info.get("limits", {}).get("max_batch_size", 32))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, 0
    policies = dict(BATCH_POLICIES.get(task, {}))
    if task == "translate":
        default = info.get("serving_default") or {}
        policies["serving_default"] = (
            _SAMPLES if default.get("strategy") == "sample" else _TRANSLATE
        )
    return policies, largest


def _key_value(tensor) -> tuple:
    array = tensor.numpy()
    values = tuple(array.ravel().tolist()) if array.dtype == object else array.tobytes()
    return (tensor.dtype.name, array.shape, values)


def _extent(strings: np.ndarray) -> int:
    """The length along axis 1 of a padded string output once its trailing empty strings
    are dropped: the longest row's."""
    if strings.size == 0:
        return 0
    filled = strings != b""
    last = np.where(filled.any(axis=1), filled.shape[1] - np.argmax(filled[:, ::-1], axis=1), 0)
    return int(last.max())


def split_outputs(outputs: dict, sizes: list[int], padded: dict) -> list[dict]:
    """The outputs of a batch cut into those of its requests (rows `sizes[0]`, then
    `sizes[1]`, ...), padded outputs cut back to each request's own lengths.

    Raises:
        ValueError: an output whose first axis is not the batch's.
    """
    total = sum(sizes)
    for name, array in outputs.items():
        if np.ndim(array) == 0 or array.shape[0] != total:
            raise ValueError(f"Output `{name}` has no batch axis of {total} rows.")
    parts, start = [], 0
    for size in sizes:
        rows = {name: array[start : start + size] for name, array in outputs.items()}
        lengths = {}
        for name, axes in padded.items():
            if name not in rows:
                continue
            cut = [slice(None)]
            for reference in axes:
                if reference not in lengths:
                    lengths[reference] = _extent(rows[reference])
                cut.append(slice(0, lengths[reference]))
            rows[name] = rows[name][tuple(cut)]
        parts.append(rows)
        start += size
    return parts


@dataclasses.dataclass(eq=False)
class _Request:
    tensors: dict
    rows: int
    future: asyncio.Future
    on_finish: object  # called once, when the request no longer holds a model thread


@dataclasses.dataclass(eq=False)
class _Batch:
    key: tuple
    entry: object
    signature_name: str
    batched: tuple  # names of the inputs merged along the batch axis
    policy: SignaturePolicy
    capacity: int
    requests: list = dataclasses.field(default_factory=list)
    rows: int = 0
    closed: bool = False
    timer: object = None


class Batcher:
    """Merges concurrent requests into batches and runs them (on the event loop; the
    model calls in `num_batch_threads` threads).

    Args:
        options: the `BatchingOptions`.
        call: `call(entry, signature_name, tensors) -> {output: np.ndarray}` (all
            outputs), raising `ServingError`.
    """

    def __init__(self, options: BatchingOptions, call):
        self.options = options
        self._call = call
        self._executor = ThreadPoolExecutor(options.num_batch_threads, "textrnn-batch")
        self._slots = None  # an asyncio.Semaphore, made on the loop
        self._open = {}  # key -> the open _Batch
        self._waiting = 0  # batches open or waiting for a slot
        self._policies = {}  # SavedModel path -> (policies, largest batch)
        self._tasks = set()
        self.batches_run = 0  # model calls made for batches (several requests or one)
        self.requests_batched = 0

    def policy(self, entry, signature_name: str) -> tuple[SignaturePolicy, int]:
        """The policy of `entry`'s signature and the most rows a batch of it holds."""
        path = entry.path
        if path not in self._policies:
            self._policies[path] = export_policy(path)
        policies, largest = self._policies[path]
        if not policies:
            return _NOT_TEXTRNN, 0
        policy = policies.get(signature_name or "serving_default", _UNKNOWN)
        return policy, min(self.options.max_batch_size, largest)

    def plan(self, entry, signature_name: str, tensors: dict):
        """The batch key of a checked request, or None when it runs alone."""
        policy, capacity = self.policy(entry, signature_name)
        if not policy.batchable:
            return None
        specs = entry.input_specs(signature_name)
        batched = tuple(
            name
            for name in sorted(specs)
            if specs[name].dtype == tf.string and specs[name].shape.rank == 1
        )
        if not batched:
            return None
        rows = {int(tensors[name].shape[0]) for name in batched}
        if len(rows) != 1 or not 0 < min(rows) <= capacity:
            return None
        shared = tuple(
            (name, _key_value(tensors[name])) for name in sorted(tensors) if name not in batched
        )
        return (entry.name, entry.version, id(entry), signature_name, batched, shared)

    def submit(self, key, entry, signature_name, tensors, on_finish) -> asyncio.Future:
        """Adds a request to the open batch of `key` (or a new one); returns the future
        of its outputs (all of them).

        Raises:
            ServingError: UNAVAILABLE when `max_enqueued_batches` batches are waiting.
        """
        loop = asyncio.get_running_loop()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.options.num_batch_threads)
        batched = key[4]
        rows = int(tensors[batched[0]].shape[0])
        batch = self._open.get(key)
        if batch is not None and batch.rows + rows > batch.capacity:
            self._close(batch)
            batch = None
        if batch is None:
            if self._waiting >= self.options.max_enqueued_batches:
                raise ServingError.unavailable(QUEUE_FULL)
            policy, capacity = self.policy(entry, signature_name)
            batch = _Batch(key, entry, signature_name, batched, policy, capacity)
            self._open[key] = batch
            self._waiting += 1
            batch.timer = loop.call_later(
                self.options.batch_timeout_micros / 1e6, self._close, batch
            )
        request = _Request(tensors, rows, loop.create_future(), on_finish)
        batch.requests.append(request)
        batch.rows += rows
        if batch.rows >= batch.capacity:
            self._close(batch)
        return request.future

    def _close(self, batch: _Batch) -> None:
        if batch.closed:
            return
        batch.closed = True
        batch.timer.cancel()
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        task = asyncio.ensure_future(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: _Batch) -> None:
        async with self._slots:
            self._waiting -= 1
            live = []
            for request in batch.requests:
                if request.future.done():  # its deadline passed while it waited
                    request.on_finish()
                else:
                    live.append(request)
            if not live:
                return
            loop = asyncio.get_running_loop()
            try:
                results = await loop.run_in_executor(self._executor, self._execute, batch, live)
            except Exception as error:  # noqa: BLE001 (the executor is shut down)
                results = [ServingError.unavailable(f"Not served: {error}")] * len(live)
            for request, result in zip(live, results, strict=True):
                request.on_finish()
                if request.future.done():
                    continue
                if isinstance(result, ServingError):
                    request.future.set_exception(result)
                else:
                    request.future.set_result(result)

    def _alone(self, batch: _Batch, request: _Request):
        try:
            return self._call(batch.entry, batch.signature_name, request.tensors)
        except ServingError as error:
            return error

    def _execute(self, batch: _Batch, live: list) -> list:
        """Runs one batch in a batch thread: a list of outputs or `ServingError`s, one per
        request of `live`."""
        self.batches_run += 1
        self.requests_batched += len(live)
        if len(live) == 1:
            return [self._alone(batch, live[0])]
        merged = dict(live[0].tensors)
        for name in batch.batched:
            merged[name] = tf.concat([r.tensors[name] for r in live], 0)
        try:
            outputs = self._call(batch.entry, batch.signature_name, merged)
            return split_outputs(outputs, [r.rows for r in live], batch.policy.padded)
        except (ServingError, ValueError) as error:
            # One request's bad value fails the whole call: each gets its own answer.
            log.info("batch of %d requests failed (%s); running them one by one", len(live), error)
            return [self._alone(batch, request) for request in live]

    def shutdown(self) -> None:
        """Waits for the running batches and stops the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)
