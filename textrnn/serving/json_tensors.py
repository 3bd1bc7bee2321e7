"""JSON bodies of the REST API to tensors and back, as TensorFlow Serving reads and writes
them (`tensorflow_serving/util/json_tensor.cc`).

A predict body is an object with an optional string `signature_name` and exactly one of
`instances` (the row format: a non-empty list, one element per example; for a signature
with several inputs each element is an object with one key per input) or `inputs` (the
columnar format: a value or list for a one-input signature, else an object of named
values). A tensor is a (nested) list whose shape follows the first element at every
level; a string value may be `{"b64": "..."}`; numbers may be `NaN`, `Infinity`,
`-Infinity`. Answers: `{"predictions": [...]}` (row) or `{"outputs": ...}` (columnar);
an output whose name ends in `_bytes` is written as `{"b64": ...}`, float NaN/Inf as
`NaN`/`Infinity`. Every malformed body raises an `InvalidArgument` `ServingError` with
TensorFlow Serving's message.

Example:
    >>> doc = parse_body(b'{"instances": ["a fine film"]}')
    >>> inputs, fmt = predict_inputs(doc, {"texts": tf.string})
    >>> inputs["texts"], fmt
    (array([b'a fine film'], dtype=object), 'row')
"""

from __future__ import annotations

import base64
import binascii
import json

import grpc
import numpy as np
import tensorflow as tf

from textrnn.serving.errors import ServingError

ROW, COLUMNAR = "row", "columnar"
_DEBUG_STRING_BYTES = 256  # TensorFlow Serving's kMaxJsonDebugStringBytes


def debug_string(value) -> str:
    """A JSON value as TensorFlow Serving quotes it in errors (truncated to 256 bytes)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text[:_DEBUG_STRING_BYTES]


def _type_string(value) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _invalid(message: str) -> ServingError:
    return ServingError.invalid_argument(message)


def parse_body(body: bytes) -> dict:
    """The JSON object of a request body.

    Raises:
        ServingError: an empty body, invalid JSON, or a JSON value that is not an object.
    """
    if not body:
        raise _invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except RecursionError:
        raise _invalid("JSON Parse error: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as error:
        # rapidjson's wording differs; the offset is the same idea.
        offset = getattr(error, "pos", getattr(error, "start", 0))
        reason = getattr(error, "msg", str(error))
        raise _invalid(f"JSON Parse error: {reason} at offset: {offset}") from None
    if not isinstance(doc, dict):
        raise _invalid(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def signature_name(doc: dict) -> str:
    """The body's `signature_name` ("" when absent).

    Raises:
        ServingError: `signature_name` is not a string.
    """
    value = doc.get("signature_name", "")
    if not isinstance(value, str):
        raise _invalid(
            f"JSON Value: {debug_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return value


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _shape(value) -> list[int]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _type_error(value, dtype: tf.DType) -> ServingError:
    return _invalid(
        f"JSON Value: {debug_string(value)} Type: {_type_string(value)} "
        f"is not of expected type: {dtype.name}"
    )


def _scalar(value, dtype: tf.DType):
    if dtype == tf.string:
        if isinstance(value, dict):
            if not _is_b64(value):
                raise _invalid(
                    f"JSON Value: {debug_string(value)} not formatted correctly for base64 data"
                )
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise _invalid("Unable to base64 decode") from None
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8", errors="surrogatepass")
    if dtype == tf.bool:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype.is_floating:
        if not number:
            raise _type_error(value, dtype)
        return float(value)
    if dtype.is_integer:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _type_error(value, dtype)
        if not dtype.min <= value <= dtype.max:
            raise _type_error(value, dtype)
        return value
    raise ServingError(
        grpc.StatusCode.UNIMPLEMENTED,
        f"Conversion of JSON Value: {debug_string(value)} to type: {dtype.name}",
    )


def json_to_array(value, dtype: tf.DType) -> np.ndarray:
    """One tensor from a JSON value (scalar or nested lists), TensorFlow Serving's way:
    the shape follows the first element at each level, every list of a level must have
    that size and every leaf must be at the last level.

    Raises:
        ServingError: a ragged list, a leaf at the wrong level or a value of another type.
    """
    shape = _shape(value)
    rank = len(shape)
    flat = []

    def fill(item, level):
        if not isinstance(item, list):
            if level != rank:
                raise _invalid(
                    f"JSON Value: {debug_string(item)} found at incorrect level: {level + 1} "
                    f"in the JSON DOM. Expected at level: {rank}"
                )
            flat.append(_scalar(item, dtype))
            return
        if level >= rank:
            raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
        if len(item) != shape[level]:
            raise _invalid(
                f"Encountered list at unexpected size: {len(item)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        for element in item:
            fill(element, level + 1)

    fill(value, 0)
    numpy_dtype = object if dtype == tf.string else dtype.as_numpy_dtype
    return np.array(flat, dtype=numpy_dtype).reshape(shape)


def predict_inputs(doc: dict, input_dtypes: dict) -> tuple[dict, str]:
    """The input arrays of a predict body and its format (`ROW` or `COLUMNAR`).

    Args:
        doc: the parsed body (`parse_body`).
        input_dtypes: input name -> `tf.DType`, the signature's inputs.

    Returns:
        `({name: np.ndarray}, format)`.

    Raises:
        ServingError: TensorFlow Serving's `InvalidArgument` for every malformed body.
    """
    if not input_dtypes:
        raise _invalid("Failed to get input map for signature")
    names = sorted(input_dtypes)
    if "instances" in doc and "inputs" in doc:
        raise _invalid(
            f"JSON Value: {debug_string(doc)} Not formatted correctly expecting only one "
            "of 'inputs' or 'instances' keys to exist "
        )
    if "instances" in doc:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise _invalid(
                f"JSON Value: {debug_string(doc)} Expecting 'instances' to be an list/array"
            )
        if not instances:
            raise _invalid(f"JSON Value: {debug_string(doc)} No values in 'instances' array")
        return _from_instances(instances, input_dtypes, names), ROW
    if "inputs" in doc:
        return _from_inputs(doc["inputs"], input_dtypes, names), COLUMNAR
    raise _invalid("Missing 'inputs' or 'instances' key")


def _is_named(value) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _from_instances(instances, input_dtypes, names) -> dict:
    if not isinstance(instances[0], dict) and len(names) > 1:
        raise _invalid(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    named = _is_named(instances[0])
    rows = {name: [] for name in names}
    shapes = {}
    for index, element in enumerate(instances):
        if named:
            if not _is_named(element):
                raise _invalid(f"Expecting object but got list at item {index} of input list")
            items = element.items()
        else:
            if _is_named(element):
                raise _invalid(f"Expecting value/list but got object at item {index} of input list")
            items = [(names[0], element)]
        for name, value in items:
            if name not in input_dtypes:
                raise _invalid(
                    f"Failed to process element: {index} key: {name} of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {name}"
                )
            try:
                array = json_to_array(value, input_dtypes[name])
            except ServingError as error:
                where = f"key: {name} " if named else ""
                raise _invalid(
                    f"Failed to process element: {index} {where}of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: {error.message}"
                ) from None
            if name in shapes and shapes[name] != array.shape:
                raise _invalid(
                    f"Expecting shape {_shape_string(shapes[name])} but got: "
                    f"{_shape_string(array.shape)}"
                )
            shapes[name] = array.shape
            rows[name].append(array)
        if named and set(element) != set(names):
            raise _invalid(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{debug_string(element)} keys must be equal to: {','.join(names)}"
            )
    return {name: np.stack(arrays) for name, arrays in rows.items()}


def _shape_string(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _from_inputs(value, input_dtypes, names) -> dict:
    if not isinstance(value, dict) or _is_b64(value):
        if len(names) > 1:
            raise _invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {names[0]: json_to_array(value, input_dtypes[names[0]])}
    arrays = {}
    for name in names:
        if name not in value:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = json_to_array(value[name], input_dtypes[name])
    return arrays


def _json_value(value, as_bytes: bool):
    if isinstance(value, bytes):
        if as_bytes:
            return {"b64": base64.b64encode(value).decode("ascii")}
        # The exports' strings are valid UTF-8; anything else is replaced, not a 500.
        return value.decode("utf-8", errors="replace")
    return value  # json.dumps writes float NaN / Inf as NaN / Infinity, as TF Serving


def _nested(array, as_bytes: bool):
    array = np.asarray(array)
    if array.ndim == 0:
        if array.dtype == np.float32:
            # The shortest decimal that reads back as this float32 (0.22879674, not
            # 0.22879673540592194); NaN and infinities stay floats.
            value = array.item()
            return float(str(array)) if np.isfinite(value) else value
        return _json_value(array.item(), as_bytes)
    return [_nested(sub, as_bytes) for sub in array]


def predict_response(outputs: dict, fmt: str) -> dict:
    """The JSON answer to a predict body of format `fmt`.

    Args:
        outputs: output name -> `np.ndarray`.
        fmt: `ROW` (`{"predictions": [...]}`, one element per example, an object of the
            outputs when there are several) or `COLUMNAR` (`{"outputs": ...}`).

    Raises:
        ServingError: in the row format, outputs with different batch sizes or a scalar
            output (TensorFlow Serving's messages).
    """
    if not outputs:
        raise _invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if fmt == COLUMNAR:
        values = {
            name: _nested(np.asarray(outputs[name]), name.endswith("_bytes")) for name in names
        }
        return {"outputs": values if len(names) > 1 else values[names[0]]}
    batch = None
    for name in names:
        array = np.asarray(outputs[name])
        if array.ndim == 0:
            raise _invalid(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise _invalid(
                f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
        batch = array.shape[0]
    rows = []
    for index in range(batch):
        row = {
            name: _nested(np.asarray(outputs[name])[index], name.endswith("_bytes"))
            for name in names
        }
        rows.append(row if len(names) > 1 else row[names[0]])
    return {"predictions": rows}
