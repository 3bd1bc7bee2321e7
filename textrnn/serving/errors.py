"""Errors of `textrnn serve`: a gRPC status code and a message, as TensorFlow Serving
answers them.

Every failure inside the server is a `ServingError`. The REST API writes it as
`{"error": message}` with the HTTP status TensorFlow Serving maps the code to
(`http_server.cc`, `ToHTTPStatusCode`: invalid argument 400, not found 404, resource
exhausted 429, unavailable 503, deadline exceeded 504, ...); the gRPC API aborts the
call with the code and the message.

Example:
    >>> error = ServingError.not_found("Servable not found for request: Latest(foo)")
    >>> error.http_status
    404
"""

from __future__ import annotations

import grpc

_HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status TensorFlow Serving's REST API gives a gRPC status code."""
    return _HTTP_STATUS.get(code, 500)


class ServingError(Exception):
    """A request the server answers with an error status.

    Args:
        code: a `grpc.StatusCode`.
        message: the error message (the REST body's `error`).
        http_status: overrides the HTTP status of `code` (e.g. 413 for a body over the
            size limit, which TensorFlow Serving has no limit for).
    """

    def __init__(self, code: grpc.StatusCode, message: str, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        """The HTTP status of the REST answer."""
        return self._http_status or http_status(self.code)

    @classmethod
    def invalid_argument(cls, message: str) -> ServingError:
        return cls(grpc.StatusCode.INVALID_ARGUMENT, message)

    @classmethod
    def not_found(cls, message: str) -> ServingError:
        return cls(grpc.StatusCode.NOT_FOUND, message)

    @classmethod
    def failed_precondition(cls, message: str) -> ServingError:
        return cls(grpc.StatusCode.FAILED_PRECONDITION, message)

    @classmethod
    def unavailable(cls, message: str) -> ServingError:
        return cls(grpc.StatusCode.UNAVAILABLE, message)

    @classmethod
    def deadline_exceeded(cls, message: str) -> ServingError:
        return cls(grpc.StatusCode.DEADLINE_EXCEEDED, message)


def from_tensorflow(error) -> ServingError:
    """The `ServingError` of a `tf.errors.OpError` raised by a signature: its code
    (TensorFlow's codes are gRPC's) and message (an export's input check answers
    `InvalidArgument` naming the input, the value and the allowed range)."""
    code = _BY_NUMBER.get(getattr(error, "error_code", None), grpc.StatusCode.INTERNAL)
    return ServingError(code, clean_message(getattr(error, "message", str(error))))


def clean_message(message: str) -> str:
    """A TensorFlow error message without eager execution's wrapping ("Graph execution
    error: Detected at node ...", the " [Op:...]" suffix): an in-graph check's message
    reads as TensorFlow Serving shows it, from "assertion failed:" on."""
    start = message.find("assertion failed:")
    if start >= 0:
        message = message[start:]
    end = message.rfind(" [Op:")
    if end >= 0:
        message = message[:end]
    return message.strip()


_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
