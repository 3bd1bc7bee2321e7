"""TensorFlow Serving's warm-up file: `assets.extra/tf_serving_warmup_requests`.

A TFRecord file of `tensorflow.serving.PredictionLog` protos, each holding one
`PredictRequest` (signature name and input tensors). TensorFlow Serving replays every
record once when it loads a version, before the version is marked AVAILABLE, so the first
real request does not pay for the first run of each signature
(`saved_model_warmup_util.cc`: at most `MAX_RECORDS` records, a record that does not
parse fails the load). `textrnn serve` replays the same file.

Example:
    >>> write_warmup_requests("exports/x/1", [("greedy", {"prompts": ["The "], "max_length": 4})])
    >>> [log.predict_log.request.model_spec.signature_name for log in read_warmup_requests("exports/x/1")]
    ['greedy']
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
# TensorFlow Serving's `WarmupConsts::kMaxNumRecords`.
MAX_RECORDS = 1000


def warmup_path(export_dir) -> Path:
    """Where a SavedModel's warm-up file lies (it may not exist)."""
    return Path(export_dir) / WARMUP_DIR / WARMUP_FILE


def write_warmup_requests(export_dir, requests) -> Path:
    """Writes `requests` as TensorFlow Serving's warm-up file of `export_dir`.

    Args:
        export_dir: a SavedModel directory.
        requests: `(signature_name, {input_name: value})` pairs; each value is anything
            `tf.make_tensor_proto` takes (a list of strings, an int, a float).

    Returns:
        The path of the warm-up file.

    Raises:
        ValueError: no requests, or more than `MAX_RECORDS`.
    """
    requests = list(requests)
    if not 1 <= len(requests) <= MAX_RECORDS:
        raise ValueError(f"Expected 1 to {MAX_RECORDS} warm-up requests. Received: {len(requests)}")
    path = warmup_path(export_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name, inputs in requests:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = signature_name
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(export_dir) -> list:
    """The `PredictionLog` records of a SavedModel's warm-up file (`[]` without one).

    Raises:
        ValueError: a record that is not a `PredictionLog`, or more than `MAX_RECORDS`
            records, naming the file.
    """
    path = warmup_path(export_dir)
    if not path.exists():
        return []
    logs = []
    try:
        for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            log = prediction_log_pb2.PredictionLog()
            log.ParseFromString(record)
            logs.append(log)
            if len(logs) > MAX_RECORDS:
                raise ValueError(
                    f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}"
                )
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        raise ValueError(f"Failed to read warmup record from {path}: {error.message}") from None
    except DecodeError as error:
        raise ValueError(f"Failed to parse warmup record from {path}: {error}") from None
    return logs
