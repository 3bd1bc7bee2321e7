"""`textrnn serve`: TensorFlow Serving's REST and gRPC APIs over textrnn exports.

Modules: `models` (the versions of base directories: loading, warm-up replay, polling,
status), `predict` (input checks, limits, the thread pool, the deadline), `json_tensors`
(REST bodies to tensors and back), `rest` (the REST API on Starlette), `grpc_service`
(the gRPC services of `tensorflow-serving-api`), `status` (status and metadata answers),
`model_config` (TensorFlow Serving's `models.config`), `limits` (`ServerLimits`),
`errors` (`ServingError`, TensorFlow Serving's status mapping) and `server` (the
process: both servers, signals).

Example:
    >>> from textrnn.serving.models import ModelSpecConfig
    >>> from textrnn.serving.server import serve
    >>> serve([ModelSpecConfig("shakes", "exports/shakes")])  # until SIGTERM
"""
