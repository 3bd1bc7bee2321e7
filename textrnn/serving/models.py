"""The models a server serves: versions of base directories, loaded, warmed up, polled.

A served model is a name and a base path in TensorFlow Serving's layout (`BASE/1/`,
`BASE/2/`, ...; a base path that is itself a SavedModel is served as version 1). Which
versions are served follows TensorFlow Serving's version policy (`latest` N, default 1;
`all`; `specific`). `ModelManager.poll` loads versions that appeared (a new version is
served once it has loaded and replayed its warm-up file, then older ones are unloaded)
and is called periodically by the server, so a new version directory is picked up
without restart. A version that fails to load is reported in its status (state END
with the error) and is not retried until it changes.

Example:
    >>> manager = ModelManager([ModelSpecConfig("shakes", "exports/shakes")])
    >>> manager.poll()
    >>> manager.resolve("shakes").version
    1
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path

import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the WordPiece op of the exports)
from tensorflow.core.protobuf import saved_model_pb2

from textrnn.export.versions import is_savedmodel, numeric_versions
from textrnn.export.warmup import read_warmup_requests
from textrnn.serving.errors import ServingError

log = logging.getLogger("textrnn.serving")

DEFAULT_SIGNATURE = "serving_default"


@dataclasses.dataclass(frozen=True)
class ModelSpecConfig:
    """One served model (what a `models.config` entry or `--model-name` /
    `--model-base-path` give).

    Args:
        name: the model name in request paths and `ModelSpec.name`.
        base_path: its base directory (versions as numbered sub-directories), or a
            SavedModel directory (served as version 1).
        policy: `"latest"`, `"all"` or `"specific"`.
        num_versions: with `latest`, how many of the newest versions are served.
        versions: with `specific`, the versions served.
        labels: version label -> version.
    """

    name: str
    base_path: str
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    labels: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class LoadedVersion:
    """One loaded version of a model.

    Attributes:
        name: the model name.
        version: its version number.
        path: its SavedModel directory.
        signatures: signature name -> concrete function.
        signature_defs: signature name -> `SignatureDef` proto (from `saved_model.pb`,
            what `GetModelMetadata` answers).
        warmup_replayed: how many warm-up requests were replayed at load.
        load_seconds: the time loading and warm-up took.
        module: the loaded SavedModel object (it keeps the variables alive).
    """

    name: str
    version: int
    path: Path
    signatures: dict
    signature_defs: dict
    warmup_replayed: int = 0
    load_seconds: float = 0.0
    module: object = None

    def signature(self, name: str):
        """The concrete function of signature `name` ("" = `serving_default`).

        Raises:
            ServingError: FAILED_PRECONDITION, as TensorFlow Serving's Predict.
        """
        key = name or DEFAULT_SIGNATURE
        if key not in self.signatures:
            raise ServingError.failed_precondition(f'Serving signature key "{key}" not found.')
        return self.signatures[key]

    def input_specs(self, name: str) -> dict:
        """Input name -> `tf.TensorSpec` of signature `name`."""
        return dict(self.signature(name).structured_input_signature[1])


def _signature_defs(path: Path) -> dict:
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    return dict(proto.meta_graphs[0].signature_def)


@dataclasses.dataclass
class _Model:
    config: ModelSpecConfig
    loaded: dict = dataclasses.field(default_factory=dict)  # version -> LoadedVersion
    ended: dict = dataclasses.field(default_factory=dict)  # version -> error ("" = unloaded)
    failed_at: dict = dataclasses.field(default_factory=dict)  # version -> mtime of the failure


class ModelManager:
    """Loads, serves and unloads the versions of the configured models.

    Args:
        configs: the `ModelSpecConfig`s (model names must be unique).
        warmup: a function `warmup(loaded_version, prediction_log)` that replays one
            warm-up record (the server passes its predict path); None: warm-up files
            are not replayed.

    Raises:
        ValueError: two models with the same name, naming it.
    """

    def __init__(self, configs, warmup=None):
        self._models = {}
        for config in configs:
            if config.name in self._models:
                raise ValueError(f"Model name {config.name!r} is configured twice.")
            self._models[config.name] = _Model(config)
        self._warmup = warmup
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return sorted(self._models)

    def available_versions(self, config: ModelSpecConfig) -> list[int]:
        """The versions on disk that `config`'s policy serves, ascending."""
        base = Path(config.base_path)
        on_disk = [1] if is_savedmodel(base) else numeric_versions(base)
        on_disk = [v for v in on_disk if self._path(config, v).joinpath("saved_model.pb").exists()]
        if config.policy == "all":
            return on_disk
        if config.policy == "specific":
            return [v for v in on_disk if v in config.versions]
        return on_disk[-config.num_versions :] if on_disk else []

    @staticmethod
    def _path(config: ModelSpecConfig, version: int) -> Path:
        base = Path(config.base_path)
        return base if is_savedmodel(base) else base / str(version)

    def poll(self) -> None:
        """Loads the versions the policies serve that are not loaded yet (and warms them
        up), then unloads the versions no longer served. Errors are logged and recorded
        in the versions' status, never raised."""
        with self._poll_lock:
            for model in self._models.values():
                wanted = self.available_versions(model.config)
                for version in wanted:
                    if version not in model.loaded:
                        self._load(model, version)
                with self._lock:
                    self._unload_unwanted(model, wanted)

    def _unload_unwanted(self, model: _Model, wanted: list[int]) -> None:
        served = [v for v in wanted if v in model.loaded]
        for version in sorted(model.loaded):
            if version in wanted:
                continue
            # While no wanted version has loaded (a newer one failed), the newest loaded
            # one stays, as long as its directory does.
            keep = not served and version == max(model.loaded)
            if keep and self._path(model.config, version).joinpath("saved_model.pb").exists():
                continue
            del model.loaded[version]
            model.ended[version] = ""
            log.info("unloaded %s version %d", model.config.name, version)

    def _load(self, model: _Model, version: int) -> None:
        config = model.config
        path = self._path(config, version)
        mtime = (path / "saved_model.pb").stat().st_mtime
        if model.failed_at.get(version) == mtime:
            return
        start = time.monotonic()
        log.info("loading %s version %d from %s", config.name, version, path)
        try:
            loaded = tf.saved_model.load(str(path))
            entry = LoadedVersion(
                name=config.name,
                version=version,
                path=path,
                signatures=dict(loaded.signatures),
                signature_defs=_signature_defs(path),
                module=loaded,
            )
            logs = read_warmup_requests(path)
            if self._warmup is not None:
                for record in logs:
                    self._warmup(entry, record)
                entry.warmup_replayed = len(logs)
        except (ServingError, ValueError, OSError, tf.errors.OpError) as error:
            message = getattr(error, "message", str(error))
            log.error("failed to load %s version %d: %s", config.name, version, message)
            with self._lock:
                model.ended[version] = message or type(error).__name__
                model.failed_at[version] = mtime
            return
        entry.load_seconds = time.monotonic() - start
        log.info(
            "loaded %s version %d in %.1f s; warm-up: replayed %d requests",
            config.name,
            version,
            entry.load_seconds,
            entry.warmup_replayed,
        )
        with self._lock:
            model.loaded[version] = entry
            model.ended.pop(version, None)
            model.failed_at.pop(version, None)

    def _model(self, name: str) -> _Model:
        if name not in self._models:
            raise ServingError.not_found(f"Servable not found for request: Latest({name})")
        return self._models[name]

    def resolve(self, name: str, version: int | None = None, label: str | None = None):
        """The loaded version a request names: the highest without `version` or `label`.

        Raises:
            ServingError: NOT_FOUND for an unknown model or version (TensorFlow
                Serving's "Servable not found for request: ..."), INVALID_ARGUMENT for
                an unknown label or both a version and a label.
        """
        if version is not None and label is not None:
            raise ServingError.invalid_argument(
                f"Both model version ({version}) and model version label ({label}) "
                "cannot be supplied."
            )
        if name not in self._models:
            what = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise ServingError.not_found(f"Servable not found for request: {what}")
        model = self._models[name]
        if label is not None:
            if label not in model.config.labels:
                raise ServingError.invalid_argument(f"Unrecognized servable version label: {label}")
            version = model.config.labels[label]
        with self._lock:
            if version is None:
                if not model.loaded:
                    raise ServingError.not_found(f"Servable not found for request: Latest({name})")
                return model.loaded[max(model.loaded)]
            if version not in model.loaded:
                raise ServingError.not_found(
                    f"Servable not found for request: Specific({name}, {version})"
                )
            return model.loaded[version]

    def status(self, name: str, version: int | None = None, label: str | None = None):
        """`(version, state, error_message)` triples, ascending by version, for
        `GetModelStatus`: state `AVAILABLE` (loaded) or `END` (unloaded, or failed with
        `error_message`).

        Raises:
            ServingError: NOT_FOUND for an unknown model or version (TensorFlow
                Serving's "Could not find ..."), INVALID_ARGUMENT for an unknown label.
        """
        if name not in self._models:
            raise ServingError.not_found(f"Could not find any versions of model {name}")
        model = self._models[name]
        if version is not None and label is not None:
            self.resolve(name, version, label)  # raises TF Serving's error
        if label is not None:
            if label not in model.config.labels:
                raise ServingError.invalid_argument(f"Unrecognized servable version label: {label}")
            version = model.config.labels[label]
        with self._lock:
            states = {v: ("END", error) for v, error in model.ended.items()}
            states.update({v: ("AVAILABLE", "") for v in model.loaded})
        if version is not None:
            if version not in states:
                raise ServingError.not_found(f"Could not find version {version} of model {name}")
            return [(version, *states[version])]
        if not states:
            raise ServingError.not_found(f"Could not find any versions of model {name}")
        return [(v, *states[v]) for v in sorted(states)]

    def summary(self) -> dict:
        """What the health endpoint shows: per model, the loaded versions with their
        warm-up count and load time."""
        with self._lock:
            return {
                name: {
                    str(v): {
                        "warmup_requests_replayed": entry.warmup_replayed,
                        "load_seconds": round(entry.load_seconds, 3),
                    }
                    for v, entry in sorted(model.loaded.items())
                }
                for name, model in sorted(self._models.items())
            }
