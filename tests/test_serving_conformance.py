"""Conformance of `textrnn serve`'s REST API with TensorFlow Serving's, case by case from
its own tests: `tensorflow_serving/model_servers/http_rest_api_handler_test.cc`
(malformed paths, unknown models and versions, bad bodies) and
`tensorflow_serving/util/json_tensor_test.cc` (row and columnar formats, b64, NaN and
Infinity, shapes). Each case checks the HTTP status and the `{"error": ...}` body that
TensorFlow Serving gives (its wording where the handler fixes it; where rapidjson
words a parse error, only the prefix).

One server per module (a sentiment export: one string input; a character-LM export:
signatures with several inputs), with small server caps so that the caps are tested too.
"""

import json

import pytest
from test_serving import FIXTURE, REPO, Server, http

from textrnn.export.run_export import export_run_version


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance")
    for task in ("charlm", "sentiment"):
        export_run_version(FIXTURE / task, root / task)
    (root / "models.config").write_text(
        "model_config_list {\n"
        f'  config {{ name: "charlm" base_path: "{root / "charlm"}" }}\n'
        f'  config {{ name: "sentiment" base_path: "{root / "sentiment"}" '
        'version_labels { key: "stable" value: 1 } }\n}\n'
    )
    caps = ["max_body_bytes=65536", "max_string_bytes=5000", "max_batch_size=8",
            "deadline_seconds=1.0"]  # fmt: skip
    server = Server(
        ["--model-config-file", str(root / "models.config"), "--rest-port", "0",
         "--grpc-port", "0", *[arg for cap in caps for arg in ("--limit", cap)]],
        root / "server.log",
        REPO,
    )  # fmt: skip
    yield server
    server.stop()


def _error(server, method, path, body=None):
    status, answer = http(server, method, path, body)
    assert isinstance(answer, dict) and set(answer) == {"error"}, answer
    return status, answer["error"]


# http_rest_api_handler_test.cc, UnsupportedApiCalls: every one is INVALID_ARGUMENT (400).
@pytest.mark.parametrize(
    "method, path, message",
    [
        ("GET", "/v1/foo", "Malformed request: GET /v1/foo"),
        ("POST", "/v1/foo", "Malformed request: POST /v1/foo"),
        ("GET", "/v1/models", "Missing model name in request."),
        ("GET", "/v1/models/debug/model_name", "Malformed request"),
        ("POST", "/v1/models", "Malformed request"),
        ("GET", "/v1/models/foo:predict", "Malformed request: GET /v1/models/foo:predict"),
        ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
        ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/18446744073709551615:regress",
         "Failed to convert version: 18446744073709551615 to numeric."),
        ("POST", "/v1/models/foo/metadata", "Malformed request"),
        ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
        ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
        ("GET", "/v1/models/sentiment/versions/1/labels/stable", "Malformed request"),
        ("PUT", "/v1/models/sentiment", "Malformed request: PUT /v1/models/sentiment"),
    ],
)  # fmt: skip
def test_malformed_paths(server, method, path, message):
    status, error = _error(server, method, path, b"{}" if method != "GET" else None)
    assert status == 400 and error.startswith(message)


def test_paths_outside_the_api_and_case(server):
    assert http(server, "GET", "/statuspage")[0] == 404
    assert http(server, "GET", "/index")[0] == 404
    # TensorFlow Serving's path expressions are case-insensitive.
    assert http(server, "GET", "/V1/Models/sentiment")[0] == 200


# PredictModelNameVersionErrors and the status / metadata equivalents: NOT_FOUND (404).
@pytest.mark.parametrize(
    "method, path, message",
    [
        ("POST", "/v1/models/foo:predict", "Servable not found for request: Latest(foo)"),
        ("POST", "/v1/models/foo/versions/50:predict",
         "Servable not found for request: Specific(foo, 50)"),
        ("POST", "/v1/models/sentiment/versions/99:predict",
         "Servable not found for request: Specific(sentiment, 99)"),
        ("GET", "/v1/models/foo", "Could not find any versions of model foo"),
        ("GET", "/v1/models/sentiment/versions/99", "Could not find version 99 of model sentiment"),
        ("GET", "/v1/models/foo/metadata", "Servable not found for request: Latest(foo)"),
        ("GET", "/v1/models/sentiment/versions/99/metadata",
         "Servable not found for request: Specific(sentiment, 99)"),
    ],
)  # fmt: skip
def test_unknown_model_or_version(server, method, path, message):
    body = json.dumps({"instances": ["x"]}).encode() if method == "POST" else None
    assert _error(server, method, path, body) == (404, message)


def test_unknown_label_is_invalid_argument(server):
    for method, path in [
        ("POST", "/v1/models/sentiment/labels/nope:predict"),
        ("GET", "/v1/models/sentiment/labels/nope"),
        ("GET", "/v1/models/sentiment/labels/nope/metadata"),
    ]:
        body = b'{"instances": ["x"]}' if method == "POST" else None
        assert _error(server, method, path, body) == (
            400,
            "Unrecognized servable version label: nope",
        )
    status, answer = http(
        server, "POST", "/v1/models/sentiment/labels/stable:predict", {"instances": ["x"]}
    )
    assert status == 200 and len(answer["predictions"]) == 1


PREDICT = "/v1/models/sentiment:predict"
CHARLM = "/v1/models/charlm:predict"


# PredictRequestErrors and json_tensor_test.cc: INVALID_ARGUMENT (400) with these messages.
@pytest.mark.parametrize(
    "path, body, message",
    [
        (PREDICT, b"", "JSON Parse error: The document is empty"),
        (PREDICT, b"instances = [1, 2]", "JSON Parse error: "),
        (PREDICT, b'{"instances": ["a"', "JSON Parse error: "),
        (PREDICT, b"[1, 2]", "JSON Value: [1,2] Is not object"),
        (PREDICT, b'{"instances": [1, 2]}',
         ("Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON "
         "Value: 1 Type: Number is not of expected type: string")),
        (PREDICT, b'{"signature_name": 100}',
         ("JSON Value: {\"signature_name\":100} not formatted correctly. 'signature_name' key "
         "must be a string value.")),
        (PREDICT, b'{"signature_name": "nope", "instances": ["x"]}',
         'Serving signature name: "nope" not found in signature def'),
        (PREDICT, b'{"instances": ["x"], "inputs": ["x"]}',
         "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
        (PREDICT, b"{}", "Missing 'inputs' or 'instances' key"),
        (PREDICT, b'{"instances": "x"}', "Expecting 'instances' to be an list/array"),
        (PREDICT, b'{"instances": []}', "No values in 'instances' array"),
        (PREDICT, b'{"instances": [{"nope": "x"}]}',
         ("Failed to process element: 0 key: nope of 'instances' list. Error: INVALID_ARGUMENT: "
         "JSON object: does not have named input: nope")),
        (PREDICT, b'{"inputs": {"nope": ["x"]}}', "Missing named input: texts in 'inputs' object."),
        (PREDICT, b'{"inputs": [["a"], "b"]}', "JSON Value: \"b\" found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
        (PREDICT, b'{"inputs": [["a"], ["b", "c"]]}', "Encountered list at unexpected size: 2"),
        (PREDICT, b'{"inputs": [{"b64": "!!!"}]}', "Unable to base64 decode"),
        (PREDICT, b'{"inputs": [{"b64": 1}]}', "not formatted correctly for base64 data"),
        (PREDICT, b'{"inputs": [NaN]}', "JSON Value: NaN Type: Number is not of expected type: string"),
        (PREDICT, b'{"inputs": [["a"]]}', "Input `texts` of signature `serving_default` takes shape (None,)"),
        (PREDICT, b'{"inputs": "a"}', "Input `texts` of signature `serving_default` takes shape (None,)"),
        (CHARLM, b'{"signature_name": "greedy", "instances": ["x"]}',
         "instances is a plain list, but expecting list of objects as multiple input tensors"),
        (CHARLM, b'{"signature_name": "greedy", "inputs": ["x"]}',
         "inputs is a plain value/list, but expecting an object as multiple input tensors"),
        (CHARLM, b'{"signature_name": "greedy", "inputs": {"prompts": ["x"]}}',
         "Missing named input: max_length in 'inputs' object."),
        (CHARLM, b'{"signature_name": "greedy", "inputs": {"prompts": ["x"], "max_length": 1.5}}',
         "JSON Value: 1.5 Type: Number is not of expected type: int32"),
        (CHARLM, b'{"signature_name": "greedy", "inputs": {"prompts": ["x"], "max_length": 4294967296}}',
         "is not of expected type: int32"),
        (CHARLM, b'{"signature_name": "greedy", "instances": [{"prompts": "x"}]}',
         "keys must be equal to: max_length,prompts"),
    ],
)  # fmt: skip
def test_bad_bodies(server, path, body, message):
    status, error = _error(server, "POST", path, body)
    assert status == 400 and message in error, error


def _sample(temperature):
    inputs = {"prompts": ["The "], "max_length": 3, "top_k": 0, "top_p": 1.0, "seed": 0,
              "repetition_penalty": 1.0}  # fmt: skip
    return (
        '{"signature_name": "sample", "inputs": {'
        + ", ".join(f'"{k}": {json.dumps(v)}' for k, v in inputs.items())
        + f', "temperature": {temperature}}}}}'
    ).encode()


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "-1.0"])
def test_nan_and_infinity_reach_the_export_check(server, value):
    # Parsed as numbers (rapidjson's kParseNanAndInfFlag), then refused by the export's
    # in-graph check, which names the input.
    status, error = _error(server, "POST", CHARLM, _sample(value))
    assert status == 400 and error.startswith("assertion failed: [Expected `temperature`")


def test_zero_batch_b64_and_float_output(server):
    # Columnar zero batch: empty outputs of the right rank.
    status, answer = http(server, "POST", PREDICT, {"inputs": []})
    assert status == 200
    assert answer == {"outputs": {"label_ids": [], "labels": [], "probabilities": []}}
    plain = http(server, "POST", PREDICT, {"instances": ["a gem of a film"]})
    b64 = http(server, "POST", PREDICT, {"instances": [{"b64": "YSBnZW0gb2YgYSBmaWxt"}]})
    assert plain == b64 and plain[0] == 200
    row = plain[1]["predictions"][0]
    assert set(row) == {"label_ids", "labels", "probabilities"}
    # float32 outputs as the shortest decimal that reads back as the float32
    for p in row["probabilities"]:
        assert len(repr(p)) <= 12
    ok = http(server, "POST", CHARLM, _sample("1.0"))
    assert ok[0] == 200 and isinstance(ok[1]["outputs"]["text"][0], str)


def test_classify_and_regress(server):
    for verb, kind in (("classify", "classification"), ("regress", "regression")):
        path = f"/v1/models/sentiment:{verb}"
        assert _error(server, "POST", path, b'{"examples": []}') == (
            400,
            (
                f"Expected {kind} signature method_name to be tensorflow/serving/{verb}. "
                "Was: tensorflow/serving/predict"
            ),
        )
        assert _error(server, "POST", path, b'{"signature_name": "x", "examples": []}') == (
            400,
            "No signature was found with the name: x",
        )
        assert _error(server, "POST", path, b"")[1] == "JSON Parse error: The document is empty"
        assert _error(server, "POST", f"/v1/models/foo:{verb}", b"{}")[0] == 404


def test_server_caps(server):
    status, error = _error(server, "POST", PREDICT, {"instances": ["x" * 5001]})
    assert (
        status == 400
        and error == "Input `texts` has a string of 5001 bytes; at most 5000 are served."
    )
    status, error = _error(server, "POST", PREDICT, {"instances": ["x"] * 9})
    assert status == 400 and error == "Input `texts` has a batch of 9; at most 8 are served."
    status, error = _error(server, "POST", PREDICT, b'{"inputs": ["' + b"x" * 70000 + b'"]}')
    assert status == 413 and error == "Request body over 65536 bytes."
    # Longer than the 1 s deadline (4,096 prompt characters and 4,096 beam-search steps,
    # seconds): 504, and the server goes on serving.
    prompts = ["The " * 1024] * 8
    body = {"signature_name": "beam", "inputs": {"prompts": prompts, "max_length": 4096}}
    status, error = _error(server, "POST", CHARLM, body)
    assert status == 504 and error == "Deadline exceeded: no answer within 1 s."
    assert http(server, "GET", "/v1/models/sentiment")[0] == 200
