"""Request batching in `textrnn serve` (`textrnn.serving.batching`) and overload.

In-process: concurrent requests merged into one model call answer exactly what each gets
alone (texts, ids, labels, shapes; floats to float32 rounding), for greedy and beam of
the character model and the translator and for both sentiment signatures, with prompts
and sources of different lengths in one batch; sampled requests are never merged, so
the same seed gives the same text; a failing batch falls back to one call per request;
a full queue is UNAVAILABLE; a deadline passed in the queue is DEADLINE_EXCEEDED.

Subprocess: a server with batching on and small caps answers a full batch queue and
too many requests in flight with 503, a deadline with 504 (TensorFlow Serving's error
shape), and answers normally afterwards.
"""

import asyncio
import json
import threading
import time

import numpy as np
import pytest
from test_serving import FIXTURE, REPO, Server, http

from textrnn.export.run_export import export_run_version
from textrnn.serving.batching import QUEUE_FULL, BatchingOptions, export_policy, split_outputs
from textrnn.serving.errors import ServingError
from textrnn.serving.limits import ServerLimits
from textrnn.serving.models import ModelManager, ModelSpecConfig
from textrnn.serving.predict import Predictor

TASKS = ("charlm", "sentiment", "translate")


def fixture_exports(tmp_path_factory):
    """Exports of the three fixture runs (version 1 each), made once per test session
    (the fuzz tests reuse them): a directory with `charlm/`, `sentiment/`, `translate/`."""
    root = tmp_path_factory.getbasetemp() / "serving-fixture-exports"
    complete = root / ".complete"
    if not complete.exists():
        for task in TASKS:
            if not (root / task / "1").exists():
                export_run_version(FIXTURE / task, root / task)
        complete.touch()
    return root


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return fixture_exports(tmp_path_factory)


@pytest.fixture(scope="module")
def manager(exports):
    manager = ModelManager([ModelSpecConfig(task, str(exports / task)) for task in TASKS])
    manager.poll()
    return manager


# Requests of one row and of several, of different lengths (and empty), so that the
# batch pads every short row.
PROMPTS = [["The "], ["ROMEO: what light through yonder window breaks"], [""], ["a", "xy\n"]]
TEXTS = [["a gem of a film"], [""], ["the worst movie i have ever seen , truly awful", "ok"]]
SOURCES = [["Ein Hund rennt."], [""], ["Zwei Männer spielen Fußball auf einer Wiese.", "Hallo"]]


def _requests(task, signature):
    """(rows of each request, the shared inputs) for one signature."""
    if task == "charlm":
        rows = PROMPTS
        shared = {"max_length": np.array(12, np.int32)}
        if signature == "sample":
            shared.update(
                temperature=np.array(1.0, np.float32),
                top_k=np.array(0, np.int32),
                top_p=np.array(1.0, np.float32),
                seed=np.array(7, np.int32),
                repetition_penalty=np.array(1.0, np.float32),
            )
        return "prompts", rows, shared
    if task == "sentiment":
        return "texts", TEXTS, {}
    rows = SOURCES
    shared = {"max_length": np.array(12, np.int32)}
    if signature == "beam":
        shared.update(
            beam_width=np.array(3, np.int32),
            n_best=np.array(2, np.int32),
            alpha=np.array(0.6, np.float32),
        )
    return "sources", rows, shared


async def _gather(predictor, entry, signature, key, rows, shared):
    calls = [
        predictor.run(entry, signature, {key: np.array(r, dtype=object), **shared}) for r in rows
    ]
    return await asyncio.gather(*calls)


def _assert_same(batched, alone):
    assert set(batched) == set(alone)
    for name in alone:
        got, want = np.asarray(batched[name]), np.asarray(alone[name])
        assert got.shape == want.shape, name
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            assert np.array_equal(got, want), name


@pytest.mark.parametrize(
    "task, signature, merged",
    [
        ("charlm", "greedy", True),
        ("charlm", "beam", True),
        ("charlm", "sample", False),
        ("sentiment", "serving_default", True),
        ("sentiment", "explain", True),
        ("translate", "greedy", True),
        ("translate", "beam", True),
        ("translate", "sample", False),
    ],
)
def test_batched_answers_are_the_unbatched_ones(manager, task, signature, merged):
    entry = manager.resolve(task)
    key, rows, shared = _requests(task, signature)
    if task == "translate" and signature == "sample":
        shared.update(
            temperature=np.array(1.0, np.float32),
            top_k=np.array(0, np.int32),
            top_p=np.array(1.0, np.float32),
            seed=np.array(7, np.int32),
        )
    alone = Predictor(ServerLimits())
    want = asyncio.run(_gather(alone, entry, signature, key, rows, shared))
    # A long timeout: every request joins the first batch (all of them fit in one).
    options = BatchingOptions(max_batch_size=32, batch_timeout_micros=500_000)
    batching = Predictor(ServerLimits(), batching=options)
    got = asyncio.run(_gather(batching, entry, signature, key, rows, shared))
    for batched, unbatched in zip(got, want, strict=True):
        _assert_same(batched, unbatched)
    batcher = batching.batcher
    if merged:
        assert (batcher.batches_run, batcher.requests_batched) == (1, len(rows))
    else:
        assert batcher.batches_run == 0
    alone.shutdown()
    batching.shutdown()


def test_which_signatures_are_batched(tmp_path):
    def policies(info):
        (tmp_path / "textrnn_export.json").write_text(json.dumps(info))
        found, largest = export_policy(tmp_path)
        return {name: p.batchable for name, p in found.items()}, largest

    limits = {"limits": {"max_batch_size": 7}}
    assert policies({"task": "charlm", **limits}) == (
        {"greedy": True, "beam": True, "sample": False, "serving_default": False},
        7,
    )
    assert policies({"task": "sentiment"}) == ({"serving_default": True, "explain": True}, 32)
    beam, sample = (
        {"task": "translate", "serving_default": {"strategy": s}} for s in ("beam", "sample")
    )
    assert policies(beam)[0]["serving_default"] and not policies(beam)[0]["sample"]
    assert not policies(sample)[0]["serving_default"]
    (tmp_path / "textrnn_export.json").unlink()
    assert export_policy(tmp_path) == ({}, 0)  # not a textrnn export: nothing is batched


def test_split_outputs_cuts_padding_back_per_request():
    tokens = np.array([[b"a", b"b", b""], [b"c", b"", b""], [b"d", b"e", b"f"]], dtype=object)
    weights = np.arange(9, dtype=np.float32).reshape(3, 3)
    attention = np.arange(3 * 2 * 3, dtype=np.float32).reshape(3, 2, 3)
    target = np.array([[b"x", b""], [b"", b""], [b"y", b"z"]], dtype=object)
    outputs = {"tokens": tokens, "weights": weights, "target": target, "attention": attention}
    padded = {"tokens": ("tokens",), "weights": ("tokens",), "attention": ("target", "tokens")}
    first, second = split_outputs(outputs, [2, 1], padded)
    assert first["tokens"].tolist() == [[b"a", b"b"], [b"c", b""]]
    assert first["weights"].tolist() == [[0, 1], [3, 4]]
    assert first["attention"].shape == (2, 1, 2)
    assert first["attention"].tolist() == [[[0, 1]], [[6, 7]]]
    assert first["target"].shape == (2, 2)  # not declared padded: kept
    assert second["tokens"].tolist() == [[b"d", b"e", b"f"]]
    assert second["attention"].tolist() == attention[2:].tolist()
    none = split_outputs({"tokens": tokens[1:2, :0]}, [1], padded)[0]
    assert none["tokens"].shape == (1, 0)
    with pytest.raises(ValueError, match="no batch axis of 4 rows"):
        split_outputs(outputs, [2, 2], padded)


def test_batching_options_name_what_is_wrong():
    options = BatchingOptions.from_overrides(["max_batch_size=4", "batch_timeout_micros=0"])
    assert (options.max_batch_size, options.batch_timeout_micros) == (4, 0)
    with pytest.raises(ValueError, match="NAME one of"):
        BatchingOptions.from_overrides(["batch_size=4"])
    with pytest.raises(ValueError, match="Expected an integer for `num_batch_threads`"):
        BatchingOptions.from_overrides(["num_batch_threads=1.5"])
    with pytest.raises(ValueError, match="Expected `max_enqueued_batches` >= 1"):
        BatchingOptions(max_enqueued_batches=0)


def _greedy(prompts, max_length):
    return {
        "prompts": np.array(prompts, dtype=object),
        "max_length": np.array(max_length, np.int32),
    }


def test_a_failing_batch_runs_its_requests_one_by_one(manager):
    entry = manager.resolve("charlm")
    # Over the export's own 65,536-byte cap (the server's cap is raised above it): the
    # merged call fails, so each request runs alone and gets its own answer.
    limits = ServerLimits(max_string_bytes=100_000)
    predictor = Predictor(limits, BatchingOptions(batch_timeout_micros=500_000))

    async def both():
        calls = [
            predictor.run(entry, "greedy", _greedy(["The "], 5)),
            predictor.run(entry, "greedy", _greedy(["x" * 70_000], 5)),
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    good, bad = asyncio.run(both())
    assert predictor.batcher.batches_run == 1
    want = Predictor(ServerLimits()).run_sync(entry, "greedy", _greedy(["The "], 5))
    _assert_same(good, want)
    assert isinstance(bad, ServingError) and bad.http_status == 400
    assert bad.message.startswith(
        "assertion failed: [Expected every string in `prompts` to have at most 65536 bytes."
    )
    assert "Received: 70000 bytes in prompts[0]" in bad.message  # its own row, not row 1
    predictor.shutdown()


def test_a_full_queue_is_unavailable_and_a_queued_deadline_is_exceeded(manager):
    entry = manager.resolve("charlm")
    options = BatchingOptions(max_enqueued_batches=1, batch_timeout_micros=300_000)
    predictor = Predictor(ServerLimits(max_in_flight=8), options)

    async def scenario():
        # Different max_length: two batches, and only one may wait.
        first = asyncio.ensure_future(predictor.run(entry, "greedy", _greedy(["The "], 3)))
        await asyncio.sleep(0)
        with pytest.raises(ServingError) as full:
            await predictor.run(entry, "greedy", _greedy(["The "], 4))
        # A deadline shorter than the batch timeout passes in the queue.
        with pytest.raises(ServingError) as late:
            await predictor.run(entry, "greedy", _greedy(["The "], 3), timeout=0.05)
        return await first, full.value, late.value

    answer, full, late = asyncio.run(scenario())
    assert answer["ids"].shape == (1, 3)
    assert (full.http_status, full.message) == (503, QUEUE_FULL)
    assert late.http_status == 504 and late.message == "Deadline exceeded: no answer within 0.05 s."
    assert predictor._in_flight == 0  # every admitted request was released
    predictor.shutdown()


# ---------------------------------------------------------------------------------------
# Overload against a server subprocess
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overload_server(exports):
    (exports / "overload.config").write_text(
        "model_config_list {\n"
        f'  config {{ name: "charlm" base_path: "{exports / "charlm"}" }}\n'
        "}\n"
    )
    args = ["--model-config-file", str(exports / "overload.config"), "--rest-port", "0",
            "--grpc-port", "0", "--limit", "max_in_flight=3", "--limit", "deadline_seconds=1.0",
            "--enable-batching", "--batching", "num_batch_threads=1",
            "--batching", "max_enqueued_batches=1"]  # fmt: skip
    server = Server(args, exports / "overload.log", REPO)
    yield server
    server.stop()


CHARLM = "/v1/models/charlm:predict"


def _error(server, body):
    status, answer = http(server, "POST", CHARLM, body, timeout=120)
    assert isinstance(answer, dict) and set(answer) == {"error"}, answer
    return status, answer["error"]


def test_overload_answers_503_and_504_and_the_server_recovers(overload_server):
    server = overload_server
    # Beam search, 32 prompts of 4,096 characters, 4,096 steps: seconds; it holds the
    # only batch thread long after its 1 s deadline.
    slow = {"signature_name": "beam",
            "inputs": {"prompts": ["The " * 1024] * 32, "max_length": 4096}}  # fmt: skip
    sampled = {"signature_name": "sample",
               "inputs": {"prompts": ["The "] * 32, "max_length": 4096, "temperature": 1.0,
                          "top_k": 0, "top_p": 1.0, "seed": 0, "repetition_penalty": 1.0}}  # fmt: skip
    answers = {}

    def send(name, body):
        answers[name] = _error(server, body)

    def send_sampled():
        # Not batched, it runs in a model thread beside the batch thread: on a quiet
        # machine it may answer within its 1 s deadline, on a busy one not.
        status, answer = http(server, "POST", CHARLM, sampled, timeout=120)
        answers["sampled"] = (status, answer)

    threads = [threading.Thread(target=send, args=("slow", slow))]
    threads[0].start()
    time.sleep(0.5)
    # A batch of another key waits for the busy batch thread (and passes its deadline)...
    waiting = {"signature_name": "greedy", "inputs": {"prompts": ["The "], "max_length": 3}}
    threads.append(threading.Thread(target=send, args=("waiting", waiting)))
    threads[-1].start()
    time.sleep(0.3)
    # ... so the queue (max_enqueued_batches=1) is full for a third key.
    other = {"signature_name": "greedy", "inputs": {"prompts": ["The "], "max_length": 4}}
    assert _error(server, other) == (503, QUEUE_FULL)
    # A request that is not batched (sampling) takes the third place in flight.
    threads.append(threading.Thread(target=send_sampled))
    threads[-1].start()
    time.sleep(0.3)
    status, error = _error(server, other)
    assert status == 503 and error == "Too many requests in flight (3); retry later."
    for thread in threads:
        thread.join(120)
    deadline = "Deadline exceeded: no answer within 1 s."
    status, answer = answers.pop("sampled")
    assert (status, answer) == (504, {"error": deadline}) or (
        status == 200 and len(answer["outputs"]["ids"]) == 32
    ), (status, answer)
    assert answers == {name: (504, deadline) for name in ("slow", "waiting")}
    # Once the model calls are over, the server answers as before.
    until = time.monotonic() + 120
    while time.monotonic() < until:
        status, body = http(server, "POST", CHARLM, other)
        if status == 200:
            break
        time.sleep(0.5)
    assert status == 200 and len(body["outputs"]["ids"][0]) == 4
    assert http(server, "GET", "/healthz")[0] == 200
    assert server.process.poll() is None
