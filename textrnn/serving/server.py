"""The `textrnn serve` process: REST (uvicorn) and gRPC (`grpc.aio`) on one event loop,
the version poller, signals.

Start-up: every model's versions are loaded and warmed up, then both ports listen and
one line says so (`textrnn serve: ready: REST http://HOST:PORT gRPC HOST:PORT`; port 0
picks a free one, and this line names it). With `batching`, concurrent requests are
merged into batches (`textrnn.serving.batching`). Every `poll_seconds` the base directories
are read again and new versions loaded. SIGTERM or SIGINT: both servers stop accepting,
the requests in flight finish (up to `ServerLimits.deadline_seconds`), then the
process exits with status 0.

Example:
    >>> serve([ModelSpecConfig("shakes", "exports/shakes")], rest_port=8501, grpc_port=8500)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from concurrent.futures import ThreadPoolExecutor

import grpc
import uvicorn

from textrnn.serving.batching import BatchingOptions
from textrnn.serving.grpc_service import add_services
from textrnn.serving.limits import ServerLimits
from textrnn.serving.models import ModelManager
from textrnn.serving.predict import Predictor
from textrnn.serving.rest import make_app

log = logging.getLogger("textrnn.serving")


class _RestServer(uvicorn.Server):
    """uvicorn's server without its own signal handling: `serve` stops both servers."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _bound_port(rest: uvicorn.Server) -> int:
    for server in rest.servers:
        for sock in server.sockets:
            return sock.getsockname()[1]
    raise RuntimeError("The REST server did not bind a port.")


async def _serve(configs, host, rest_port, grpc_port, limits, poll_seconds, batching) -> int:
    loop = asyncio.get_running_loop()
    predictor = Predictor(limits, batching)
    if batching is not None:
        log.info("batching: %s", batching)
    manager = ModelManager(configs, warmup=predictor.replay_warmup)
    poller = ThreadPoolExecutor(1, "textrnn-poll")
    await loop.run_in_executor(poller, manager.poll)

    options = [
        ("grpc.max_receive_message_length", limits.max_body_bytes),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ("grpc.so_reuseport", 0),
    ]
    grpc_server = grpc.aio.server(options=options)
    add_services(grpc_server, manager, predictor)
    bound_grpc = grpc_server.add_insecure_port(f"{host}:{grpc_port}")
    if not bound_grpc:
        raise RuntimeError(f"Could not bind the gRPC port {host}:{grpc_port}.")
    await grpc_server.start()

    config = uvicorn.Config(
        make_app(manager, predictor),
        host=host,
        port=rest_port,
        log_config=None,
        access_log=True,
        timeout_graceful_shutdown=int(limits.deadline_seconds) + 1,
        timeout_keep_alive=max(1, math.ceil(limits.keep_alive_seconds)),
        lifespan="off",
    )
    rest = _RestServer(config)
    rest_task = asyncio.create_task(rest.serve())
    while not rest.started and not rest_task.done():
        await asyncio.sleep(0.05)
    if rest_task.done():
        await grpc_server.stop(0)
        raise RuntimeError(f"Could not start the REST server on {host}:{rest_port}.")

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def poll_forever():
        while True:
            await asyncio.sleep(poll_seconds)
            await loop.run_in_executor(poller, manager.poll)

    poll_task = asyncio.create_task(poll_forever())
    print(
        f"textrnn serve: ready: REST http://{host}:{_bound_port(rest)} gRPC {host}:{bound_grpc}",
        flush=True,
    )
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([waiter, rest_task], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down: letting the requests in flight finish")
    rest.should_exit = True
    await asyncio.gather(rest_task, grpc_server.stop(limits.deadline_seconds))
    poll_task.cancel()
    waiter.cancel()
    predictor.shutdown()
    poller.shutdown(wait=True, cancel_futures=True)
    log.info("stopped")
    return 0


def serve(
    configs,
    host: str = "127.0.0.1",
    rest_port: int = 8501,
    grpc_port: int = 8500,
    limits: ServerLimits | None = None,
    poll_seconds: float = 1.0,
    batching: BatchingOptions | None = None,
) -> int:
    """Serves `configs` until SIGTERM or SIGINT.

    Args:
        configs: `ModelSpecConfig`s (see `textrnn.serving.model_config`).
        host: the address both servers bind (default loopback only).
        rest_port: the REST port (TensorFlow Serving's default 8501; 0 = any free one).
        grpc_port: the gRPC port (TensorFlow Serving's default 8500; 0 = any free one).
        limits: the request caps (`ServerLimits()` by default).
        poll_seconds: how often base directories are read for new versions.
        batching: `BatchingOptions` to merge concurrent requests into one model call
            (`textrnn.serving.batching`); None (the default): no batching.

    Returns:
        The exit status (0 after a clean shutdown).

    Raises:
        RuntimeError: a port that cannot be bound, naming it.
        ValueError: a bad `poll_seconds`.
    """
    if not poll_seconds > 0:
        raise ValueError(f"Expected a positive `poll_seconds`. Received: {poll_seconds!r}")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    return asyncio.run(
        _serve(
            configs, host, rest_port, grpc_port, limits or ServerLimits(), poll_seconds, batching
        )
    )
