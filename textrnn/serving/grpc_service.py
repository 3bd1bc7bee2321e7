"""TensorFlow Serving's gRPC API on `grpc.aio`, with the services and messages of the
`tensorflow-serving-api` package, so its `PredictionServiceStub` and
`ModelServiceStub` work unchanged.

- `PredictionService.Predict`, `GetModelMetadata` (field `signature_def`),
  `Classify` / `Regress` (TensorFlow Serving's INVALID_ARGUMENT for predict-only
  signatures; TF2 SavedModels carry no others). `MultiInference` is UNIMPLEMENTED.
- `ModelService.GetModelStatus`.

Example:
    >>> server = grpc.aio.server()
    >>> add_services(server, manager, predictor)
"""

from __future__ import annotations

import logging
import time

import grpc
from tensorflow_serving.apis import (
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from textrnn.serving.errors import ServingError
from textrnn.serving.predict import arrays_to_tensor_protos, tensor_protos_to_arrays
from textrnn.serving.status import SIGNATURE_DEF, metadata_proto, status_proto

log = logging.getLogger("textrnn.serving.access")


def _spec(model_spec):
    """(name, version or None, label or None) of a `ModelSpec`."""
    if not model_spec.name:
        raise ServingError.invalid_argument("Missing ModelSpec")
    choice = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if choice == "version" else None
    label = model_spec.version_label if choice == "version_label" else None
    return model_spec.name, version, label


async def _answer(method: str, request, context, call):
    """Runs `call()`; a `ServingError` aborts the RPC with its code; logs one line (the
    method, model, status and time)."""
    start = time.monotonic()
    code = grpc.StatusCode.OK
    try:
        return await call()
    except ServingError as error:
        code = error.code
        await context.abort(error.code, error.message)
    finally:
        log.info(
            "%s grpc %s model=%s %s %.1f ms",
            context.peer(),
            method,
            request.model_spec.name,
            code.name,
            1000 * (time.monotonic() - start),
        )


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """`tensorflow.serving.PredictionService` over a `ModelManager` and a `Predictor`."""

    def __init__(self, manager, predictor):
        self._manager = manager
        self._predictor = predictor

    async def Predict(self, request, context):
        async def call():
            if not request.HasField("model_spec"):
                raise ServingError.invalid_argument("Missing ModelSpec")
            entry = self._manager.resolve(*_spec(request.model_spec))
            signature = request.model_spec.signature_name or "serving_default"
            inputs = tensor_protos_to_arrays(request.inputs, self._predictor.limits.max_elements)
            outputs = await self._predictor.run(
                entry, signature, inputs, tuple(request.output_filter), context.time_remaining()
            )
            response = predict_pb2.PredictResponse()
            response.model_spec.name = entry.name
            response.model_spec.version.value = entry.version
            response.model_spec.signature_name = signature
            arrays_to_tensor_protos(outputs, response.outputs)
            return response

        return await _answer("Predict", request, context, call)

    async def GetModelMetadata(self, request, context):
        async def call():
            if not request.HasField("model_spec"):
                raise ServingError.invalid_argument("Missing ModelSpec")
            for field in request.metadata_field:
                if field != SIGNATURE_DEF:
                    raise ServingError.invalid_argument(f"Metadata field {field} is not supported")
            return metadata_proto(self._manager.resolve(*_spec(request.model_spec)))

        return await _answer("GetModelMetadata", request, context, call)

    async def _not_classify_or_regress(self, request, kind: str, method_name: str):
        if not request.HasField("model_spec"):
            raise ServingError.invalid_argument("Missing ModelSpec")
        entry = self._manager.resolve(*_spec(request.model_spec))
        name = request.model_spec.signature_name or "serving_default"
        if name not in entry.signature_defs:
            raise ServingError.invalid_argument(f"No signature was found with the name: {name}")
        raise ServingError.invalid_argument(
            f"Expected {kind} signature method_name to be {method_name}. "
            f"Was: {entry.signature_defs[name].method_name}"
        )

    async def Classify(self, request, context):
        async def call():
            await self._not_classify_or_regress(
                request, "classification", "tensorflow/serving/classify"
            )

        return await _answer("Classify", request, context, call)

    async def Regress(self, request, context):
        async def call():
            await self._not_classify_or_regress(request, "regression", "tensorflow/serving/regress")

        return await _answer("Regress", request, context, call)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """`tensorflow.serving.ModelService.GetModelStatus` over a `ModelManager`."""

    def __init__(self, manager):
        self._manager = manager

    async def GetModelStatus(self, request, context):
        async def call():
            if not request.HasField("model_spec"):
                raise ServingError.invalid_argument("Missing ModelSpec")
            return status_proto(self._manager.status(*_spec(request.model_spec)))

        return await _answer("GetModelStatus", request, context, call)


def add_services(server, manager, predictor) -> None:
    """Adds `PredictionService` and `ModelService` to a `grpc.aio` server."""
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, predictor), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
