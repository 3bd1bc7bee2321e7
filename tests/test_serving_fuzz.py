"""Fuzzing `textrnn serve` over HTTP and gRPC (hypothesis, capped in examples and time).

One server subprocess serves the exports of the three fixture runs, with batching on (so
the batcher is fuzzed too). Requests: random paths under `/v1/models` and methods,
random bodies (bytes, JSON of any shape with `NaN` / `Infinity` literals, `{"b64": ...}`
values) and predict bodies for every signature of every model (its input names from the
metadata endpoint) with random strings, bytes and parameter values, in both the row and
the columnar format; over gRPC, `PredictRequest`s with random model specs and tensors.

Asserted: the process never dies; no answer is a 500 (or another 5xx than 503/504, which
`textrnn serve` documents for overload and deadlines; gRPC: never INTERNAL or UNKNOWN);
every error is TensorFlow Serving's `{"error": "..."}`; the server's resident memory
(VmRSS, /proc/PID/status) and its peak (VmHWM) grow by less than `RSS_GROWTH_BOUND`
(256 MiB) over the fuzzing, after a warm-up round that calls every signature once.
"""

import base64
import json
import time
from pathlib import Path
from urllib.parse import quote

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from test_serving import REPO, Server
from test_serving_batching import TASKS, fixture_exports

RSS_GROWTH_BOUND = 256 * 2**20  # bytes
HTTP_SECONDS = 15.0  # wall-time caps of the fuzzing (examples beyond them are skipped)
GRPC_SECONDS = 6.0
ALLOWED_5XX = {503, 504}


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of process `pid` from /proc/PID/status (kB there), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"No {field} in /proc/{pid}/status")


class _Fuzzed:
    def __init__(self, server, client, signatures):
        self.server = server
        self.client = client
        self.signatures = signatures  # model -> signature -> {input: dtype name}
        self.statuses = {}
        self.rss_before = None
        self.hwm_before = None


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    exports = fixture_exports(tmp_path_factory)
    config = exports / "fuzz.config"
    config.write_text(
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{t}" base_path: "{exports / t}" '
            'version_labels { key: "stable" value: 1 } }\n'
            for t in TASKS
        )
        + "}\n"
    )
    args = ["--model-config-file", str(config), "--rest-port", "0", "--grpc-port", "0",
            "--limit", "deadline_seconds=10", "--enable-batching",
            "--batching", "batch_timeout_micros=1000"]  # fmt: skip
    server = Server(args, exports / "fuzz.log", REPO)
    client = httpx.Client(base_url=server.url, timeout=60)
    signatures = {}
    for task in TASKS:
        body = client.get(f"/v1/models/{task}/metadata").json()
        defs = body["metadata"]["signature_def"]["signature_def"]
        signatures[task] = {
            name: {alias: info["dtype"] for alias, info in sig["inputs"].items()}
            for name, sig in defs.items()
            if name != "__saved_model_init_op"
        }
    fuzzed = _Fuzzed(server, client, signatures)
    # Warm-up: every signature once, so that RSS growth is the fuzzing's, not first calls'.
    for task, sigs in signatures.items():
        for name, inputs in sigs.items():
            values = {a: _VALID_VALUES[d] for a, d in inputs.items()}
            answer = client.post(
                f"/v1/models/{task}:predict", json={"signature_name": name, "inputs": values}
            )
            assert answer.status_code == 200, (task, name, answer.text)
    fuzzed.rss_before = rss_bytes(server.process.pid)
    fuzzed.hwm_before = rss_bytes(server.process.pid, "VmHWM")
    yield fuzzed
    client.close()
    server.stop()


_VALID_VALUES = {"DT_STRING": ["The "], "DT_INT32": 3, "DT_FLOAT": 0.5}

# ---------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------

_MODELS = st.sampled_from([*TASKS, "nope", "Charlm", "a%2Fb", "x" * 300])
_SEGMENTS = st.sampled_from(
    ["models", "versions", "version", "labels", "metadata", "1", "0", "2", "99", "stable",
     "-1", "18446744073709551616", "9" * 40, ":predict", ""]
) | st.text(max_size=12)  # fmt: skip
_VERBS = st.sampled_from(["", ":predict", ":classify", ":regress", ":PREDICT", ":nope", "/"])
_VERSIONS = st.sampled_from(["", "/versions/1", "/versions/2", "/labels/stable", "/labels/x",
                             "/versions/1/labels/stable", "/versions/", "/versions/abc"])  # fmt: skip


def _path(parts) -> str:
    return quote(parts, safe="/:%")


_PATHS = st.one_of(
    st.builds(lambda m, v, s, verb: _path(f"/v1/models/{m}{v}{s}{verb}"), _MODELS, _VERSIONS,
              st.sampled_from(["", "/metadata"]), _VERBS),
    st.builds(lambda segs, verb: _path("/v1/" + "/".join(segs) + verb),
              st.lists(_SEGMENTS, max_size=6), _VERBS),
)  # fmt: skip

_B64 = st.builds(lambda b: {"b64": base64.b64encode(b).decode()}, st.binary(max_size=30))
_BAD_B64 = st.sampled_from([{"b64": "!!"}, {"b64": 1}, {"b64": "QQ"}, {"b64": "QQ==", "x": 1}])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.integers(-5, 50)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
_JSON = st.recursive(
    _SCALARS | _B64 | _BAD_B64,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_STRINGS = st.lists(st.text(max_size=60) | _B64, max_size=4)
# Mostly values a signature takes (so that the model runs, batched or not), sometimes the
# extremes and values of another type.
_VALUES = {
    "DT_STRING": st.one_of(_STRINGS, _STRINGS, _STRINGS, _JSON),
    "DT_INT32": st.one_of(
        st.integers(0, 30),
        st.integers(0, 30),
        st.integers(-3, 40),
        st.sampled_from([4097, 2**31 - 1, -(2**31), 2**31, 10**12, 2**64]),
        st.floats(allow_nan=True, allow_infinity=True),
        _JSON,
    ),
    "DT_FLOAT": st.one_of(
        st.floats(0.1, 2.0),
        st.floats(0.1, 2.0),
        st.floats(-5, 5),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-3, 5),
        _JSON,
    ),
}


@st.composite
def _predict_bodies(draw, signatures):
    """(path, body bytes) of a predict call to a real signature, every input drawn."""
    task = draw(st.sampled_from(TASKS))
    name = draw(st.sampled_from(sorted(signatures[task])))
    inputs = {alias: draw(_VALUES[dtype]) for alias, dtype in signatures[task][name].items()}
    if draw(st.integers(0, 9)) == 0 and inputs:  # a missing or an extra input
        inputs.pop(draw(st.sampled_from(sorted(inputs))))
    if draw(st.integers(0, 9)) == 0:
        inputs[draw(st.text(max_size=8))] = draw(_JSON)
    body = {"signature_name": name}
    if draw(st.integers(0, 3)):
        body["inputs"] = inputs
    else:  # the row format: one object per row (scalars per row are refused)
        body["instances"] = [inputs] * draw(st.integers(0, 3))
    if draw(st.integers(0, 9)) == 0:
        body["signature_name"] = draw(_JSON)
    version = draw(st.sampled_from(["", "/versions/1", "/labels/stable"]))
    return f"/v1/models/{task}{version}:predict", json.dumps(body, allow_nan=True).encode()


_RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda v: json.dumps(v, allow_nan=True).encode(), _JSON),
    st.builds(lambda v: json.dumps(v, allow_nan=True).encode()[:-1], _JSON),  # truncated
    st.just(b"{" * 5000),
    st.just(b"[" * 100_000),  # deeper than any JSON parser's recursion
)


def _over_budget(budget: dict, seconds: float) -> bool:
    """Whether the test's wall-time budget (started at its first example) is spent."""
    if budget["until"] is None:
        budget["until"] = time.monotonic() + seconds
    return time.monotonic() > budget["until"]


def _check(fuzzed, answer):
    status = answer.status_code
    fuzzed.statuses[status] = fuzzed.statuses.get(status, 0) + 1
    assert status < 500 or status in ALLOWED_5XX, (status, answer.text[:500])
    if status >= 400 and answer.content:
        body = answer.json()
        assert set(body) == {"error"} and isinstance(body["error"], str), answer.text[:500]
    assert fuzzed.server.process.poll() is None, fuzzed.server.log()[-3000:]


_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def http_budget():
    return {"until": None}


@_SETTINGS
@given(data=st.data())
def test_fuzz_http(fuzzed, http_budget, data):
    kind = data.draw(st.sampled_from(["predict", "predict", "predict", "path", "raw"]))
    if kind == "predict":
        path, body = data.draw(_predict_bodies(fuzzed.signatures))
        method = "POST"
    else:
        path = data.draw(_PATHS)
        method = data.draw(st.sampled_from(["GET", "POST", "POST", "PUT", "DELETE"]))
        body = data.draw(_RAW_BODIES) if method != "GET" else b""
    if _over_budget(http_budget, HTTP_SECONDS):  # after every draw: generation stays stable
        return
    try:
        answer = fuzzed.client.request(method, path, content=body)
    except httpx.InvalidURL:
        return  # the client refuses to send it: nothing reached the server
    _check(fuzzed, answer)


_DTYPES = [types_pb2.DT_STRING, types_pb2.DT_INT32, types_pb2.DT_INT64, types_pb2.DT_FLOAT,
           types_pb2.DT_DOUBLE, types_pb2.DT_BOOL, types_pb2.DT_HALF, types_pb2.DT_RESOURCE,
           types_pb2.DT_VARIANT, 999]  # fmt: skip


@st.composite
def _tensor_protos(draw):
    if draw(st.booleans()):  # a well-formed tensor of a random dtype and shape
        shape = draw(st.lists(st.integers(0, 3), max_size=3))
        kind = draw(st.sampled_from(["str", "i32", "i64", "f32", "f64", "bool"]))
        size = int(np.prod(shape)) if shape else 1
        if kind == "str":
            flat = draw(st.lists(st.binary(max_size=30), min_size=size, max_size=size))
            array = np.array(flat, dtype=object).reshape(shape)
        else:
            dtype = {"i32": np.int32, "i64": np.int64, "f32": np.float32, "f64": np.float64,
                     "bool": np.bool_}[kind]  # fmt: skip
            raw = draw(st.binary(min_size=size * 8, max_size=size * 8))
            array = np.frombuffer(raw, np.uint8)[: size * np.dtype(dtype).itemsize]
            array = array.view(dtype).reshape(shape) if kind != "bool" else (array[:size] % 2 == 1)
            array = array.reshape(shape)
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=draw(st.sampled_from(_DTYPES)))
    dims = draw(st.lists(st.integers(-2, 2**40), max_size=3))
    proto.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto(dim=[{"size": d} for d in dims]))
    proto.tensor_content = draw(st.binary(max_size=64))
    proto.int_val.extend(draw(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=3)))
    proto.string_val.extend(draw(st.lists(st.binary(max_size=10), max_size=3)))
    return proto


@pytest.fixture(scope="module")
def grpc_stub(fuzzed):
    channel = grpc.insecure_channel(fuzzed.server.grpc_target)
    yield prediction_service_pb2_grpc.PredictionServiceStub(channel), {"until": None}
    channel.close()


@_SETTINGS
@given(data=st.data())
def test_fuzz_grpc(fuzzed, grpc_stub, data):
    stub, budget = grpc_stub
    request = predict_pb2.PredictRequest()
    task = data.draw(_MODELS)
    if data.draw(st.integers(0, 9)):
        request.model_spec.name = task
    choice = data.draw(st.sampled_from(["", "version", "label"]))
    if choice == "version":
        request.model_spec.version.value = data.draw(st.integers(-1, 3))
    elif choice == "label":
        request.model_spec.version_label = data.draw(st.sampled_from(["stable", "x", ""]))
    signatures = fuzzed.signatures.get(task, {"serving_default": {"x": "DT_STRING"}})
    name = data.draw(st.sampled_from(sorted(signatures)) | st.text(max_size=8))
    request.model_spec.signature_name = name
    aliases = sorted(signatures.get(name, {"x": "DT_STRING"}))
    for alias in data.draw(st.lists(st.sampled_from(aliases) | st.text(max_size=6), max_size=8)):
        request.inputs[alias].CopyFrom(data.draw(_tensor_protos()))
    request.output_filter.extend(data.draw(st.lists(st.text(max_size=12), max_size=2)))
    if _over_budget(budget, GRPC_SECONDS):
        return
    try:
        stub.Predict(request, timeout=30)
        code = grpc.StatusCode.OK
    except grpc.RpcError as error:
        code = error.code()
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (code, request)
    assert fuzzed.server.process.poll() is None, fuzzed.server.log()[-3000:]


def test_paths_with_a_newline_are_answered_as_json(fuzzed):
    # A newline in a path once fell through to Starlette's plain-text 404.
    for method, path, status in [
        ("GET", "/v1/%0A0", 400),
        ("GET", "/v1/models/a%0Ab", 404),
        ("POST", "/v1/models/sentiment%0A:predict", 404),
    ]:
        answer = fuzzed.client.request(method, path, content=b'{"instances": ["x"]}')
        assert answer.status_code == status and set(answer.json()) == {"error"}, answer.text


def test_a_tensor_proto_declaring_a_huge_shape_allocates_nothing(fuzzed, grpc_stub):
    # No values and shape [2**30]: `tf.make_ndarray` would fill 4 GiB with zeros.
    stub, _ = grpc_stub
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "charlm"
    request.model_spec.signature_name = "greedy"
    request.inputs["prompts"].CopyFrom(tf.make_tensor_proto(["The "]))
    huge = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32)
    huge.tensor_shape.dim.add(size=2**30)
    request.inputs["max_length"].CopyFrom(huge)
    before = rss_bytes(fuzzed.server.process.pid)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Predict(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == (
        "Input `max_length` has 1073741824 values; at most 65536 are served."
    )
    assert rss_bytes(fuzzed.server.process.pid) - before < 2**30


def test_the_server_survived_with_bounded_memory(fuzzed):
    """Last in the module: after both fuzzers."""
    answer = fuzzed.client.post(
        "/v1/models/sentiment:predict", json={"instances": ["a gem of a film"]}
    )
    assert answer.status_code == 200
    pid = fuzzed.server.process.pid
    growth = rss_bytes(pid) - fuzzed.rss_before
    peak_growth = rss_bytes(pid, "VmHWM") - fuzzed.hwm_before
    print(
        f"statuses: {dict(sorted(fuzzed.statuses.items()))}; VmRSS growth "
        f"{growth / 2**20:.0f} MiB, VmHWM growth {peak_growth / 2**20:.0f} MiB"
    )
    assert growth < RSS_GROWTH_BOUND
    assert peak_growth < RSS_GROWTH_BOUND  # no request spiked either
    assert sum(fuzzed.statuses.values()) >= 50  # the fuzzing ran
    assert fuzzed.statuses.get(200, 0) >= 10 and 400 in fuzzed.statuses  # models ran
