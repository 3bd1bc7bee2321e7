"""The limits `textrnn serve` puts on every request, before a model sees it.

The exports check their own inputs (`textrnn.export.limits.ExportLimits`); these caps
protect the server itself: the size of a body, the strings and batch of one request,
how long one request may take and how many may wait.

Example:
    >>> ServerLimits(deadline_seconds=5.0).max_body_bytes
    4194304
"""

from __future__ import annotations

import dataclasses
import math

from textrnn.export.limits import parse_overrides


@dataclasses.dataclass(frozen=True)
class ServerLimits:
    """Caps on one request to `textrnn serve`.

    Args:
        max_body_bytes: largest REST body or gRPC message (larger: REST 413, gRPC
            RESOURCE_EXHAUSTED).
        max_batch_size: most rows (first dimension of a string input) in one request
            (more: INVALID_ARGUMENT, HTTP 400).
        max_string_bytes: longest string value of an input (longer: INVALID_ARGUMENT).
        max_elements: most values of one input tensor (more: INVALID_ARGUMENT).
        deadline_seconds: the longest a request waits for its answer (longer: DEADLINE
            EXCEEDED, HTTP 504; a gRPC client's own shorter deadline wins). The model call
            itself runs on, bounded by the export's caps, and its answer is dropped.
        max_in_flight: most requests admitted at once, queued ones included (more:
            UNAVAILABLE, HTTP 503).
        workers: threads that run model calls (concurrent requests run side by side).
        keep_alive_seconds: how long the REST server keeps an idle connection open
            (uvicorn's `timeout_keep_alive`, whose own default is 5 s). Longer than the
            idle expiry of common clients (httpx and aiohttp: 5 s and 15 s), so that a
            client closes an idle connection before the server does: the other way round,
            a request sent on a connection just as the server closes it is reset (seen
            under load with uvicorn's 5 s).

    Raises:
        TypeError: a value that is not a number, naming it.
        ValueError: a value that is not positive, naming it.
    """

    max_body_bytes: int = 4 * 1024 * 1024
    max_batch_size: int = 64
    max_string_bytes: int = 65536
    max_elements: int = 65536
    deadline_seconds: float = 60.0
    max_in_flight: int = 64
    workers: int = 4
    keep_alive_seconds: float = 75.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Expected a number for `{field.name}`. Received: {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(
                    f"Expected a positive value for `{field.name}`. "
                    f"Received: {field.name}={value!r}"
                )

    @classmethod
    def from_overrides(cls, overrides) -> ServerLimits:
        """Limits from `NAME=VALUE` strings (`textrnn serve --limit`), the defaults
        elsewhere.

        Raises:
            ValueError: an unknown name, a value that is not a number or not positive.
        """
        return parse_overrides(cls, overrides, _number, "a number")


def _number(text: str):
    return float(text) if any(c in text for c in ".eE") or text in ("inf", "nan") else int(text)
