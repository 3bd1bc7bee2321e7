"""Exports in TensorFlow Serving's layout: numbered versions written under a temporary
name, the warm-up file (read here with a TFRecord reader written from the format's
definition, not TensorFlow's), the metadata asset, and the model config file."""

import json
import os
import re
import struct

import pytest
import tensorflow as tf
from conftest import REPO
from tensorflow_serving.apis import prediction_log_pb2

from textrnn.export.metadata import read_metadata, textrnn_version
from textrnn.export.run_export import export_run_version
from textrnn.export.versions import numeric_versions, write_next_version
from textrnn.export.warmup import MAX_RECORDS, warmup_path, write_warmup_requests
from textrnn.serving.model_config import parse_model_config

FIXTURE = REPO / "tests" / "fixtures" / "flat_layout_runs"


def _fake_savedmodel(seen):
    def write(directory):
        seen.append(directory)
        directory.mkdir()
        (directory / "saved_model.pb").write_bytes(b"")

    return write


def test_versions_are_numbered_and_written_under_a_temporary_name(tmp_path):
    base = tmp_path / "base"
    seen = []
    assert write_next_version(base, _fake_savedmodel(seen)) == base / "1"
    (base / "7").mkdir()  # numbering continues after the highest version
    (base / "notes").mkdir()  # non-numeric entries are not versions
    assert write_next_version(base, _fake_savedmodel(seen)) == base / "8"
    assert numeric_versions(base) == [1, 7, 8]
    # The half-written version had a name that is not a number.
    assert all(not d.name.isdigit() and d.name.startswith(".tmp-") for d in seen)
    assert sorted(os.listdir(base)) == ["1", "7", "8", "notes"]


def test_a_failed_export_leaves_no_version_and_no_temporary(tmp_path):
    base = tmp_path / "base"

    def fail(directory):
        directory.mkdir()
        (directory / "half").write_text("x")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        write_next_version(base, fail)
    assert os.listdir(base) == []


def test_a_flat_savedmodel_is_not_a_base_directory(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(FileExistsError, match="is itself a SavedModel"):
        write_next_version(tmp_path, _fake_savedmodel([]))


def _tfrecords(path):
    """The records of a TFRecord file, from the format: uint64 length, uint32 masked
    CRC of the length, the data, uint32 masked CRC of the data (CRCs not checked)."""
    data, records, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        offset += 12
        records.append(data[offset : offset + length])
        offset += length + 4
    return records


def test_sentiment_export_carries_warmup_and_metadata(tmp_path):
    version = export_run_version(FIXTURE / "sentiment", tmp_path / "sst")
    assert version == tmp_path / "sst" / "1"
    logs = []
    for record in _tfrecords(warmup_path(version)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record)
        logs.append(log.predict_log.request)
    assert [r.model_spec.signature_name for r in logs] == ["explain", "serving_default"]
    for request in logs:
        texts = request.inputs["texts"]
        assert texts.dtype == tf.string.as_datatype_enum
        assert [d.size for d in texts.tensor_shape.dim] == [1]
        assert texts.string_val == [b"a fine film"]
    # Every warm-up request runs on the export as TensorFlow Serving would run it.
    loaded = tf.saved_model.load(str(version))
    for request in logs:
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        loaded.signatures[request.model_spec.signature_name](**inputs)

    # docs/serving holds `saved_model_cli show --all` of this export: the same signatures.
    shown = (REPO / "docs" / "serving" / "sentiment.saved_model_cli.txt").read_text()
    names = set(re.findall(r"signature_def\['([^']+)'\]", shown)) - {"__saved_model_init_op"}
    assert names == set(loaded.signatures) == {"serving_default", "explain"}

    metadata = read_metadata(version)
    results = json.loads((FIXTURE / "sentiment" / "results.json").read_text())
    config = results.pop("config")
    assert metadata["task"] == "sentiment"
    assert metadata["textrnn_version"] == textrnn_version() != "unknown"
    assert metadata["figures"] == results
    # The fixture run predates `model.fast_layers`: the recipe holds it at its default.
    assert metadata["recipe"]["model"] == {**config["model"], "fast_layers": True}
    assert metadata["recipe"]["data"] == config["data"]
    assert metadata["vocabulary_sizes"] == {"words": results["vocabulary_size"]}


def test_warmup_file_bounds(tmp_path):
    with pytest.raises(ValueError, match="1 to 1000"):
        write_warmup_requests(tmp_path, [])
    with pytest.raises(ValueError, match="1 to 1000"):
        write_warmup_requests(tmp_path, [("s", {"x": 1})] * (MAX_RECORDS + 1))


def test_model_config_file():
    configs = parse_model_config(
        """model_config_list {
             config { name: "a" base_path: "/m/a" model_platform: "tensorflow" }
             config { name: "b" base_path: "/m/b"
                      model_version_policy { specific { versions: 1 versions: 3 } }
                      version_labels { key: "stable" value: 1 }
                      version_labels { key: "canary" value: 3 } }
           }"""
    )
    assert [(c.name, c.policy, c.num_versions) for c in configs] == [
        ("a", "latest", 1),
        ("b", "specific", 1),
    ]
    assert configs[1].versions == (1, 3)
    assert configs[1].labels == {"stable": 1, "canary": 3}
    with pytest.raises(ValueError, match="not a ModelServerConfig"):
        parse_model_config("model_config_list { nope: 1 }")
    with pytest.raises(ValueError, match="label 'x' names version 2"):
        parse_model_config(
            'model_config_list { config { name: "b" base_path: "/m" model_version_policy '
            '{ specific { versions: 1 } } version_labels { key: "x" value: 2 } } }'
        )
    with pytest.raises(ValueError, match="only model_platform"):
        parse_model_config(
            'model_config_list { config { name: "b" base_path: "/m" model_platform: "tflite" } }'
        )


def test_server_limits_from_the_command_line_name_what_is_wrong():
    from textrnn.serving.limits import ServerLimits

    limits = ServerLimits.from_overrides(["deadline_seconds=2.5", " workers = 2"])
    assert (limits.deadline_seconds, limits.workers) == (2.5, 2)
    with pytest.raises(ValueError, match="NAME one of"):
        ServerLimits.from_overrides(["deadline=3"])
    with pytest.raises(ValueError, match="Expected a number for `workers`"):
        ServerLimits.from_overrides(["workers=many"])
    with pytest.raises(ValueError, match="positive value for `deadline_seconds`"):
        ServerLimits.from_overrides(["deadline_seconds=-1"])
