"""`GetModelStatus` and `GetModelMetadata` answers, as protos (gRPC) and as the JSON
TensorFlow Serving's REST API writes from them (`http_rest_api_util.cc`: field names
kept, fields without presence printed, int64 versions as strings).

Example:
    >>> status_response([(1, "AVAILABLE", "")])
    {'model_version_status': [{'version': '1', 'state': 'AVAILABLE', 'status': {'error_code': 'OK', 'error_message': ''}}]}
"""

from __future__ import annotations

from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

SIGNATURE_DEF = "signature_def"


def _dict(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def status_proto(states) -> get_model_status_pb2.GetModelStatusResponse:
    """The `GetModelStatusResponse` of `(version, state, error_message)` triples."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for version, state, error in states:
        status = response.model_version_status.add()
        status.version = version
        status.state = get_model_status_pb2.ModelVersionStatus.State.Value(state)
        status.status.SetInParent()  # TensorFlow Serving always sends it ("OK", "")
        if error:
            status.status.error_code = 2  # UNKNOWN: the load failed
            status.status.error_message = error
    return response


def status_response(states) -> dict:
    """The REST JSON of `status_proto(states)`."""
    return _dict(status_proto(states))


def metadata_proto(entry) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """The `GetModelMetadataResponse` (signature defs) of a `LoadedVersion`."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = entry.name
    response.model_spec.version.value = entry.version
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in entry.signature_defs.items():
        signatures.signature_def[name].CopyFrom(signature)
    response.metadata[SIGNATURE_DEF].Pack(signatures)
    return response


def metadata_response(entry) -> dict:
    """The REST JSON of `metadata_proto(entry)`: `{"model_spec": ..., "metadata":
    {"signature_def": {"signature_def": {...}}}}`."""
    response = metadata_proto(entry)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[SIGNATURE_DEF].Unpack(signatures)
    return {
        "model_spec": _dict(response.model_spec),
        "metadata": {SIGNATURE_DEF: _dict(signatures)},
    }
