"""TensorFlow Serving's REST API on Starlette (`http_rest_api_handler.cc`).

- `GET /v1/models/{name}[/versions/{v}|/labels/{l}]`: the version status.
- `GET /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata`: the signature defs.
- `POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict`: `instances` or `inputs`.
- `POST ...:classify` / `:regress`: TF2 SavedModels carry predict signatures only, so
  these answer TensorFlow Serving's error for a predict signature (400).
- `GET /healthz`: 200 with the loaded versions and their warm-up counts once every
  model has a version, else 503.

Paths are matched with TensorFlow Serving's own regular expressions (case-insensitive,
whole path); a path under `/v1/` that does not match is "Malformed request" (400), any
other path 404. Errors are `{"error": message}` with TensorFlow Serving's status mapping.

Example:
    >>> app = make_app(manager, predictor)
    >>> uvicorn.run(app, host="127.0.0.1", port=8501)
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from textrnn.serving import json_tensors
from textrnn.serving.errors import ServingError
from textrnn.serving.status import metadata_response, status_response

# TensorFlow Serving's kPredictionApiGegex and kModelStatusApiRegex.
_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_MAX_VERSION = 2**63 - 1


def _json(content, status: int = 200) -> Response:
    body = json.dumps(content, indent=1, ensure_ascii=False)
    return Response(body, status_code=status, media_type="application/json")


def _error(error: ServingError) -> Response:
    return _json({"error": error.message}, error.http_status)


def _parse_path(method: str, path: str):
    """(model name, version, label, verb or subresource) of a request path.

    Raises:
        ServingError: INVALID_ARGUMENT "Malformed request" / "Failed to convert
            version", as TensorFlow Serving.
    """
    malformed = ServingError.invalid_argument(f"Malformed request: {method} {path}")
    if method == "POST":
        match = _PREDICT_PATH.fullmatch(path)
    elif method == "GET":
        match = _STATUS_PATH.fullmatch(path)
    else:
        raise malformed
    if match is None:
        raise malformed
    name, version, label, verb = match.groups()
    if version is not None:
        if int(version) > _MAX_VERSION:
            raise ServingError.invalid_argument(f"Failed to convert version: {version} to numeric.")
        version = int(version)
    name = unquote(name) if name else name
    label = unquote(label) if label else label
    return name, version, label, (verb.lower() if verb else None)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServingError.invalid_argument(f"Request body over {limit} bytes.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServingError.invalid_argument(f"Request body over {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def make_app(manager, predictor) -> Starlette:
    """The Starlette application of the REST API.

    Args:
        manager: the `ModelManager`.
        predictor: the `Predictor` (thread pool, limits).

    Returns:
        An ASGI application.
    """

    async def handle(request: Request) -> Response:
        # The decoded path as the server got it (`request.url` would drop newlines and tabs).
        path = request.scope["path"]
        if not _API_PATH.fullmatch(path):
            return Response(status_code=404)
        try:
            name, version, label, verb = _parse_path(request.method, path)
            if request.method == "GET":
                if not name:
                    raise ServingError.invalid_argument("Missing model name in request.")
                if verb == "metadata":
                    entry = manager.resolve(name, version, label)
                    return _json(metadata_response(entry))
                return _json(status_response(manager.status(name, version, label)))
            try:
                body = await _read_body(request, predictor.limits.max_body_bytes)
            except ServingError as error:
                return _json({"error": error.message}, 413)
            entry = manager.resolve(name, version, label)
            doc = json_tensors.parse_body(body)
            if verb in ("classify", "regress"):
                raise _classify_regress_error(entry, doc, verb)
            signature = json_tensors.signature_name(doc)
            key = signature or "serving_default"
            if key not in entry.signatures:
                raise ServingError.invalid_argument(
                    f'Serving signature name: "{key}" not found in signature def'
                )
            dtypes = {n: spec.dtype for n, spec in entry.input_specs(key).items()}
            inputs, fmt = json_tensors.predict_inputs(doc, dtypes)
            outputs = await predictor.run(entry, key, inputs)
            return _json(json_tensors.predict_response(outputs, fmt))
        except ServingError as error:
            return _error(error)
        except ClientDisconnect:
            return Response(status_code=499)

    async def healthz(request: Request) -> Response:
        summary = manager.summary()
        ready = all(summary[name] for name in summary)
        return _json(
            {"status": "ok" if ready else "loading", "models": summary}, 200 if ready else 503
        )

    async def every_other_path(scope, receive, send) -> None:
        # Starlette's router default, not a `{rest:path}` route: that one's pattern stops at
        # a newline ("%0A" in a path), whose request would get Starlette's plain-text 404.
        if scope["type"] != "http":
            return
        response = await handle(Request(scope, receive))
        await response(scope, receive, send)

    app = Starlette(routes=[Route("/healthz", healthz, methods=["GET"])])
    app.router.default = every_other_path
    return app


def _classify_regress_error(entry, doc: dict, verb: str) -> ServingError:
    """TensorFlow Serving's answer to `:classify` / `:regress` on a SavedModel whose
    signatures are all predict signatures (TF2's)."""
    name = json_tensors.signature_name(doc) or "serving_default"  # raises if not a string
    if name not in entry.signature_defs:
        return ServingError.invalid_argument(f"No signature was found with the name: {name}")
    method = entry.signature_defs[name].method_name
    kind, expected = {
        "classify": ("classification", "tensorflow/serving/classify"),
        "regress": ("regression", "tensorflow/serving/regress"),
    }[verb]
    return ServingError.invalid_argument(
        f"Expected {kind} signature method_name to be {expected}. Was: {method}"
    )
