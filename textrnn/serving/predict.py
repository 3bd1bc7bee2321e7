"""Running one predict request on a loaded version: input checks, the server's limits,
the model call in a worker thread (or, with batching, in a batch of concurrent requests:
`textrnn.serving.batching`), the deadline. Shared by the REST API, the gRPC API and the
warm-up replay.

Inputs are checked as TensorFlow Serving checks them (the names against the signature,
then dtypes and shapes) and against `ServerLimits`; the signature's own in-graph checks
then answer anything out of its domain with `InvalidArgument`. Model calls run in a
thread pool of `ServerLimits.workers` threads, so concurrent requests do not block each
other or the event loop.

Example:
    >>> predictor = Predictor(ServerLimits())
    >>> outputs = await predictor.run(entry, "greedy", {"prompts": ..., "max_length": ...})
"""

from __future__ import annotations

import asyncio
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from textrnn.serving.batching import Batcher, BatchingOptions
from textrnn.serving.errors import ServingError, from_tensorflow
from textrnn.serving.limits import ServerLimits


def _names(names) -> str:
    return ",".join(sorted(names))


def check_inputs(entry, signature_name: str, inputs: dict, limits: ServerLimits) -> dict:
    """The tensors to call signature `signature_name` of `entry` with.

    Args:
        entry: a `LoadedVersion`.
        signature_name: the signature ("" = `serving_default`).
        inputs: input name -> `np.ndarray`.
        limits: the server's caps.

    Returns:
        Input name -> `tf.Tensor`.

    Raises:
        ServingError: FAILED_PRECONDITION for an unknown signature; INVALID_ARGUMENT for
            missing, extra or mistyped inputs, a shape the signature does not take, or
            a value over `limits` (each message names the input).
    """
    specs = entry.input_specs(signature_name)
    sent, expected = set(inputs), set(specs)
    if len(sent) != len(expected):
        raise ServingError.invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{_names(sent)}}}) != len({{{_names(expected)}}}). "
            f"Sent extra: {{{_names(sent - expected)}}}. "
            f"Missing but required: {{{_names(expected - sent)}}}."
        )
    for name in sorted(sent - expected):
        raise ServingError.invalid_argument(
            f"input tensor alias not found in signature: {name}. "
            f"Inputs expected to be in the set {{{_names(expected)}}}."
        )
    tensors = {}
    for index, name in enumerate(sorted(specs)):
        spec, array = specs[name], inputs[name]
        is_string = array.dtype == object or array.dtype.kind in "SU"
        got = "string" if is_string else tf.as_dtype(array.dtype).name
        if got != spec.dtype.name:
            raise ServingError.invalid_argument(
                f"Expects arg[{index}] ({name}) to be {spec.dtype.name} but {got} is provided"
            )
        if not spec.shape.is_compatible_with(array.shape):
            raise ServingError.invalid_argument(
                f"Input `{name}` of signature `{signature_name or 'serving_default'}` takes "
                f"shape {spec.shape} (None: any size). Received shape {list(array.shape)}"
            )
        if array.size > limits.max_elements:
            raise ServingError.invalid_argument(
                f"Input `{name}` has {array.size} values; at most {limits.max_elements} are served."
            )
        if array.ndim >= 1 and is_string and array.shape[0] > limits.max_batch_size:
            raise ServingError.invalid_argument(
                f"Input `{name}` has a batch of {array.shape[0]}; at most "
                f"{limits.max_batch_size} are served."
            )
        if is_string:
            longest = max((len(v) for v in array.reshape(-1)), default=0)
            if longest > limits.max_string_bytes:
                raise ServingError.invalid_argument(
                    f"Input `{name}` has a string of {longest} bytes; at most "
                    f"{limits.max_string_bytes} are served."
                )
        try:
            tensors[name] = tf.constant(array, dtype=spec.dtype)
        except (TypeError, ValueError) as error:
            raise ServingError.invalid_argument(f"Input `{name}`: {error}") from None
    return tensors


def run_signature(entry, signature_name: str, tensors: dict) -> dict:
    """Calls the signature; returns every output, name -> `np.ndarray`.

    Raises:
        ServingError: the signature's own error (its code and message).
    """
    function = entry.signature(signature_name)
    try:
        outputs = function(**tensors)
    except tf.errors.OpError as error:
        raise from_tensorflow(error) from None
    except (TypeError, ValueError) as error:
        raise ServingError.invalid_argument(str(error)) from None
    return {name: value.numpy() for name, value in outputs.items()}


def select_outputs(outputs: dict, output_filter=()) -> dict:
    """The outputs a request asked for (all, or those in `output_filter`, in its order).

    Raises:
        ServingError: an unknown or repeated output in `output_filter`.
    """
    names = list(output_filter) or sorted(outputs)
    seen = set()
    for alias in names:
        if alias not in outputs:
            raise ServingError.invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to "
                f"be in the set {{{_names(outputs)}}}."
            )
        if alias in seen:
            raise ServingError.invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.add(alias)
    return {name: outputs[name] for name in names}


def call_signature(entry, signature_name: str, tensors: dict, output_filter=()) -> dict:
    """Calls the signature; returns output name -> `np.ndarray` (all outputs, or those in
    `output_filter`).

    Raises:
        ServingError: the signature's own error (its code and message), or an unknown
            output in `output_filter`.
    """
    return select_outputs(run_signature(entry, signature_name, tensors), output_filter)


class Predictor:
    """Runs predict requests in a thread pool, under `ServerLimits`, batching them where
    `batching` is given (see `textrnn.serving.batching`).

    Args:
        limits: the server's caps (`workers` threads; at most `max_in_flight` requests
            admitted, running or queued, batched ones included; `deadline_seconds` per
            request).
        batching: `BatchingOptions` to merge concurrent requests into one model call;
            None (the default): every request is its own call.
    """

    def __init__(self, limits: ServerLimits | None = None, batching: BatchingOptions | None = None):
        self.limits = limits or ServerLimits()
        self._executor = ThreadPoolExecutor(self.limits.workers, "textrnn-model")
        self._lock = threading.Lock()
        self._in_flight = 0
        self.batcher = Batcher(batching, run_signature) if batching is not None else None

    def run_sync(self, entry, signature_name, inputs, output_filter=()) -> dict:
        """Checks and runs one request in the calling thread (the warm-up replay)."""
        tensors = check_inputs(entry, signature_name, inputs, self.limits)
        return call_signature(entry, signature_name, tensors, output_filter)

    def replay_warmup(self, entry, prediction_log) -> None:
        """Replays one warm-up record (`PredictionLog` with a `predict_log`) on `entry`.

        Raises:
            ServingError: a record that is not a predict request, or that fails.
        """
        if prediction_log.WhichOneof("log_type") != "predict_log":
            raise ServingError.invalid_argument(
                f"Unsupported warm-up record: {prediction_log.WhichOneof('log_type')}"
            )
        request = prediction_log.predict_log.request
        inputs = tensor_protos_to_arrays(request.inputs, self.limits.max_elements)
        self.run_sync(entry, request.model_spec.signature_name, inputs, request.output_filter)

    def _release(self, _future=None) -> None:
        with self._lock:
            self._in_flight -= 1

    def _admit(self) -> None:
        with self._lock:
            if self._in_flight >= self.limits.max_in_flight:
                raise ServingError.unavailable(
                    f"Too many requests in flight ({self._in_flight}); retry later."
                )
            self._in_flight += 1

    async def run(self, entry, signature_name, inputs, output_filter=(), timeout=None) -> dict:
        """Runs one request in a worker thread (or in a batch) and waits for it.

        Args:
            timeout: seconds to wait (the smaller of this and `deadline_seconds`).

        Raises:
            ServingError: the request's own error; UNAVAILABLE when `max_in_flight`
                requests are admitted already or the batch queue is full;
                DEADLINE_EXCEEDED past the deadline.
        """
        deadline = (
            self.limits.deadline_seconds
            if timeout is None
            else min(timeout, self.limits.deadline_seconds)
        )
        self._admit()
        try:
            future = self._start(entry, signature_name, inputs, output_filter)
        except BaseException:
            self._release()
            raise
        try:
            outputs = await asyncio.wait_for(future, max(deadline, 0.0))
        except TimeoutError:
            raise ServingError.deadline_exceeded(
                f"Deadline exceeded: no answer within {deadline:g} s."
            ) from None
        return select_outputs(outputs, output_filter) if self.batcher else outputs

    def _start(self, entry, signature_name, inputs, output_filter) -> asyncio.Future:
        """The future of one admitted request; `_release` is called once its model call
        is over (or, batched, once it left its batch)."""
        if self.batcher is None:
            future = self._executor.submit(
                self.run_sync, entry, signature_name, inputs, output_filter
            )
            future.add_done_callback(self._release)
            return asyncio.wrap_future(future)
        tensors = check_inputs(entry, signature_name, inputs, self.limits)
        key = self.batcher.plan(entry, signature_name, tensors)
        if key is None:
            future = self._executor.submit(run_signature, entry, signature_name, tensors)
            future.add_done_callback(self._release)
            return asyncio.wrap_future(future)
        return self.batcher.submit(key, entry, signature_name, tensors, self._release)

    def shutdown(self) -> None:
        """Waits for the running model calls and stops the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self.batcher is not None:
            self.batcher.shutdown()


_SERVED_DTYPES = frozenset(
    dtype.as_datatype_enum
    for dtype in (tf.string, tf.bool, tf.float16, tf.float32, tf.float64)
    + (tf.int8, tf.int16, tf.int32, tf.int64, tf.uint8, tf.uint16, tf.uint32, tf.uint64)
)


def tensor_protos_to_arrays(protos, max_elements: int | None = None) -> dict:
    """`{name: TensorProto}` (a gRPC request's inputs) as `{name: np.ndarray}`.

    Args:
        protos: the proto map.
        max_elements: the most values one tensor may declare (checked on its shape
            before anything is allocated: a proto without values may declare any shape,
            which `tf.make_ndarray` would fill); None: no limit.

    Raises:
        ServingError: INVALID_ARGUMENT for a proto that is not a valid tensor of a
            number, bool or string dtype, or that declares more than `max_elements`
            values, naming it.
    """
    arrays = {}
    for name, proto in protos.items():
        if proto.dtype not in _SERVED_DTYPES:
            known = proto.dtype in types_pb2.DataType.values()
            dtype = types_pb2.DataType.Name(proto.dtype) if known else proto.dtype
            raise ServingError.invalid_argument(
                f"Input `{name}` has dtype {dtype}, which is not served (numbers, bool and "
                "strings are)."
            )
        dims = [d.size for d in proto.tensor_shape.dim]
        if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
            raise ServingError.invalid_argument(
                f"Input `{name}` is not a valid TensorProto: shape {dims} is not fully defined."
            )
        count = math.prod(dims)
        if max_elements is not None and count > max_elements:
            raise ServingError.invalid_argument(
                f"Input `{name}` has {count} values; at most {max_elements} are served."
            )
        try:
            arrays[name] = tf.make_ndarray(proto)
        except (TypeError, ValueError, KeyError, MemoryError, tf.errors.OpError) as error:
            raise ServingError.invalid_argument(
                f"Input `{name}` is not a valid TensorProto: {error}"
            ) from None
    return arrays


def arrays_to_tensor_protos(arrays: dict, target) -> None:
    """Writes `{name: np.ndarray}` into a proto map of `TensorProto`s (`target`)."""
    for name, array in arrays.items():
        target[name].CopyFrom(tf.make_tensor_proto(np.asarray(array)))
