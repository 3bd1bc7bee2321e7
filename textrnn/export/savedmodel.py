"""Writing SavedModels, shared by every task's export: raw strings in, raw strings (and
numbers) out.

Each task's `export` module (`textrnn.charlm.export`, `textrnn.sentiment.export`,
`textrnn.translation.export`) builds a `tf.Module` holding its tokeniser(s), the model
and, for generating models, the decoding loop (`tf.while_loop`), so a bare
`tf.saved_model.load` runs it in a process that never imports textrnn; `write_savedmodel`
saves it with its signatures. `core_op_report` lists the ops that are not core
TensorFlow; the list goes into `textrnn_export.json` beside `saved_model.pb`.

Example:
    >>> write_savedmodel(module, check_empty("exports/x"), {"serving_default": fn}, {})
    >>> core_op_report("exports/x")  # empty: stock TensorFlow Serving runs it
    set()
"""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf

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


def write_savedmodel(module, export_dir: Path, signatures: dict, info: dict) -> Path:
    """Saves `module` with `signatures` and writes `INFO_FILE` (`info`, the signature
    names and the non-core ops) beside it.

    Returns:
        The export directory.
    """
    tf.saved_model.save(module, str(export_dir), signatures=signatures)
    info = {
        **info,
        "signatures": sorted(signatures),
        "non_core_ops": sorted(core_op_report(export_dir)),
    }
    (export_dir / INFO_FILE).write_text(json.dumps(info, indent=2))
    return export_dir


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
