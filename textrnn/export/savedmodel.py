"""Writing SavedModels, shared by every task's export: raw strings in, raw strings (and
numbers) out.

Each task's `export` module (`textrnn.charlm.export`, `textrnn.sentiment.export`,
`textrnn.translation.export`) builds a `tf.Module` holding its tokeniser(s), the model
and, for generating models, the decoding loop (`tf.while_loop`), so a bare
`tf.saved_model.load` runs it in a process that never imports textrnn; `write_savedmodel`
saves it with its signatures. `core_op_report` lists the ops that are not core
TensorFlow; the list goes into `textrnn_export.json` beside `saved_model.pb`. With
`warmup_values`, one request per signature goes into TensorFlow Serving's warm-up file
(`textrnn.export.warmup`); with `metadata`, the metadata asset is written
(`textrnn.export.metadata`). `write_savedmodel` writes one plain directory;
`textrnn.export.versions` puts it under a base directory as the next version.

Example:
    >>> write_savedmodel(module, check_empty("exports/x"), {"serving_default": fn}, {})
    >>> core_op_report("exports/x")  # empty: stock TensorFlow Serving runs it
    set()
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from textrnn.export.metadata import write_metadata
from textrnn.export.warmup import write_warmup_requests

INFO_FILE = "textrnn_export.json"


def check_empty(export_dir) -> Path:
    """The export directory as a `Path`; it must not exist yet, or be empty.

    Raises:
        FileExistsError: it exists and holds something.
    """
    export_dir = Path(export_dir)
    if export_dir.exists() and any(export_dir.iterdir()):
        raise FileExistsError(f"Export directory {export_dir} exists and is not empty.")
    return export_dir


def write_savedmodel(
    module,
    export_dir: Path,
    signatures: dict,
    info: dict,
    warmup_values: dict | None = None,
    metadata: dict | None = None,
) -> Path:
    """Saves `module` with `signatures` and writes `INFO_FILE` (`info`, the signature
    names and the non-core ops) beside it.

    Args:
        module: the `tf.Module` to save.
        export_dir: the SavedModel directory (see `check_empty`).
        signatures: signature name -> concrete function.
        info: what `INFO_FILE` records besides the signatures and ops (`info["task"]`
            names the task).
        warmup_values: input name -> a value for it (strings: one string, a batch of
            one is sent); every signature gets one warm-up request built from these
            (`warmup_requests`). None: no warm-up file.
        metadata: `{"vocabulary_sizes": {...}, "recipe": {...} or None}` for the
            metadata asset. None: no metadata asset.

    Returns:
        The export directory.

    Raises:
        KeyError: `warmup_values` lacks an input of a signature, naming both.
    """
    tf.saved_model.save(module, str(export_dir), signatures=signatures)
    info = {
        **info,
        "signatures": sorted(signatures),
        "non_core_ops": sorted(core_op_report(export_dir)),
    }
    (export_dir / INFO_FILE).write_text(json.dumps(info, indent=2))
    if warmup_values is not None:
        write_warmup_requests(export_dir, warmup_requests(signatures, warmup_values))
    if metadata is not None:
        write_metadata(
            export_dir, info.get("task"), metadata["vocabulary_sizes"], metadata.get("recipe")
        )
    return export_dir


def warmup_requests(signatures: dict, values: dict) -> list:
    """One `(signature_name, inputs)` warm-up request per signature, sorted by name.

    Each input takes `values[name]` in the dtype of the signature's input; a string
    vector input gets the batch `[values[name]]`.

    Raises:
        KeyError: a signature input that `values` lacks, naming it.
    """
    requests = []
    for name in sorted(signatures):
        args, kwargs = signatures[name].structured_input_signature
        # A traced function has positional specs (named by `TensorSpec.name`), a loaded
        # signature keyword ones.
        specs = {**{spec.name: spec for spec in args}, **kwargs}
        inputs = {}
        for key, spec in sorted(specs.items()):
            if key not in values:
                raise KeyError(f"No warm-up value for input `{key}` of signature `{name}`.")
            value = values[key]
            if spec.shape.rank == 1 and not isinstance(value, (list, tuple)):
                value = [value]
            dtype = object if spec.dtype == tf.string else spec.dtype.as_numpy_dtype
            inputs[key] = np.asarray(value, dtype=dtype)
        requests.append((name, inputs))
    return requests


def core_op_report(export_dir) -> set[str]:
    """Op types in a SavedModel's graphs that are not core TensorFlow ops.

    An empty set means stock TensorFlow Serving can run the export.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(export_dir) / "saved_model.pb").read_bytes())
    ops, functions = set(), set()
    for meta in proto.meta_graphs:
        functions.update(f.signature.name for f in meta.graph_def.library.function)
        ops.update(node.op for node in meta.graph_def.node)
        for function in meta.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    core = set(dir(tf.raw_ops))
    # A node whose op is a library function is a call, not an op.
    return {op for op in ops if op not in core and op not in functions}
