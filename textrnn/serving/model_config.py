"""TensorFlow Serving's model config file (`--model_config_file`, the `models.config`
text format of `tensorflow.serving.ModelServerConfig`) as `ModelSpecConfig`s.

Example:
    >>> read_model_config("models.config")
    [ModelSpecConfig(name='shakes', base_path='/models/shakes', policy='latest', ...)]

A file reads like:

    model_config_list {
      config {
        name: "shakes"
        base_path: "/models/shakes"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
      }
    }
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from textrnn.serving.models import ModelSpecConfig


def parse_model_config(text: str, origin: str = "model config") -> list[ModelSpecConfig]:
    """The models of a `ModelServerConfig` in text format.

    Raises:
        ValueError: text that does not parse, no `model_config_list`, a model without a
            name or base path, a platform other than "tensorflow", or a label of a version
            the policy does not serve (as TensorFlow Serving refuses it), naming it.
    """
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ValueError(f"{origin}: not a ModelServerConfig: {error}") from None
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{origin}: expected a model_config_list.")
    models = []
    for entry in config.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise ValueError(f"{origin}: every model needs a name and a base_path: {entry}")
        if entry.model_platform not in ("", "tensorflow"):
            raise ValueError(
                f'{origin}: model {entry.name!r}: only model_platform "tensorflow" is '
                f"served. Received: {entry.model_platform!r}"
            )
        policy = entry.model_version_policy.WhichOneof("policy_choice") or "latest"
        num = entry.model_version_policy.latest.num_versions or 1
        versions = tuple(entry.model_version_policy.specific.versions)
        labels = dict(entry.version_labels)
        if policy == "specific":
            for label, version in labels.items():
                if version not in versions:
                    raise ValueError(
                        f"{origin}: model {entry.name!r}: label {label!r} names version "
                        f"{version}, which the specific policy does not serve."
                    )
        models.append(
            ModelSpecConfig(
                name=entry.name,
                base_path=entry.base_path,
                policy=policy,
                num_versions=num,
                versions=versions,
                labels=labels,
            )
        )
    return models


def read_model_config(path) -> list[ModelSpecConfig]:
    """`parse_model_config` of a file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: see `parse_model_config`.
    """
    path = Path(path)
    return parse_model_config(path.read_text(encoding="utf-8"), origin=str(path))
