"""The playground's ASGI app: a thin Starlette layer over :class:`Session`.

Routes (all JSON unless said otherwise; every ``{id}`` route answers 404 for an
unknown or expired session):

``GET /``                                    the page (``static/index.html``)
``GET /static/…``                            the page's script, styles and icons
``POST /api/session``                        a new session ``{"preset"?, "state"?}`` → snapshot
``GET /api/session/{id}``                    the session's snapshot
``POST /api/session/{id}/preset``            ``{"name"}``: start over from a preset
``POST /api/session/{id}/data``              ``{"name"}`` (a preset data set), or
                                             ``{"target", "inputs"}`` (the uploaded file)
``POST /api/session/{id}/upload?name=F``     the CSV file's bytes → its columns
``POST /api/session/{id}/weight``            ``{"name": "w1[1,2]", "value": -10}``
``POST /api/session/{id}/architecture``      ``{"hidden", "activations", "output_activation"}``
``POST /api/session/{id}/settings``          any of the training and view settings
``POST /api/session/{id}/train``             ``{"steps"}`` or ``{"epochs"}``
``POST /api/session/{id}/reset``             initial weights back, history cleared
``POST /api/session/{id}/randomize``         new random weights (next seed)
``GET /api/session/{id}/dataflow``           the example's diagram and backprop steps
``GET /api/session/{id}/paths?weight=w``     path sums for one weight
``GET /api/session/{id}/state``              the shareable state (JSON)
``POST /api/session/{id}/state``             restore a shared state
``GET /api/session/{id}/model``              a model file (safetensors layout) for chainrule.load
``WS /api/session/{id}/live``                live training: send ``{"action": "play"}``, then
                                             ``"next"`` after drawing each frame,
                                             ``"pause"`` to stop

Bad input answers 400 with ``{"error": message}``; an unexpected failure answers 500
with the same shape and is logged with its traceback, so the page always has a
message to show.
"""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..errors import ChainruleError
from ..io import save
from . import backprop
from . import data as datasets
from .session import PRESETS, PlaygroundError, Session, check_int

LOG = logging.getLogger("chainrule.playground")

#: JSON bodies larger than this are refused (a shared state is a few kilobytes).
MAX_JSON_BYTES = 256_000
#: Sessions kept at once; the least recently used is dropped past this.
MAX_SESSIONS = 200
#: One live-training frame trains for about this long before it sends a snapshot.
FRAME_SECONDS = 0.02
#: Steps or epochs one request may ask for.
MAX_STEPS = 5_000
MAX_EPOCHS = 200

STATIC = resources.files("chainrule.playground") / "static"


class RequestError(Exception):
    """A request the server refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Sessions:
    """Every open session by id, bounded: the least recently used goes first."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, preset: Any = "titanic_hand") -> Session:
        """A new session with a fresh unguessable id."""
        session = Session(secrets.token_urlsafe(12), preset)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.limit:
                oldest = min(self._sessions.values(), key=lambda s: s.last_used)
                del self._sessions[oldest.id]
        return session

    def get(self, session_id: str) -> Session:
        """The session, or a 404 RequestError."""
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise RequestError(
                404, "this playground session has expired or the server restarted: reload the page"
            )
        return session

    def __len__(self) -> int:
        return len(self._sessions)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes without reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the request is {int(declared):,} bytes; the limit is {limit:,}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise RequestError(413, f"the request is larger than the limit of {limit:,} bytes")
    return bytes(body)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await _read_body(request, MAX_JSON_BYTES)
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(400, f"the request body is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """Turn every failure into a JSON error the page can show (and log the unexpected ones)."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except RequestError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        except (ChainruleError, ValueError, TypeError, KeyError) as error:
            # Validation problems carry a message written for the user.
            return JSONResponse({"error": str(error)}, status_code=400)
        except Exception as error:  # anything else is a bug: say so, log it
            LOG.exception("error in %s %s", request.method, request.url.path)
            return JSONResponse(
                {"error": f"internal error ({type(error).__name__}: {error}); see the server log"},
                status_code=500,
            )

    return guarded


def create_app(
    initial_data: tuple[str, bytes, str, list[str] | None] | None = None,
    session_limit: int = MAX_SESSIONS,
) -> Starlette:
    """The playground's ASGI application.

    Args:
        initial_data: ``(file name, CSV bytes, target column, input columns or None)``
            to load into every new session (``chainrule playground --data``); None
            input columns means every other column.
        session_limit: sessions kept at once.
    """
    sessions = Sessions(session_limit)

    def session_of(request: Request) -> Session:
        return sessions.get(request.path_params["session_id"])

    async def index(request: Request) -> Response:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    async def create(request: Request) -> Response:
        body = await _json_body(request)
        session = await run_in_threadpool(sessions.create, body.get("preset", "titanic_hand"))
        if initial_data is not None and "preset" not in body:
            name, content, target, inputs = initial_data
            table = datasets.read_upload(name, content)
            session.uploaded_table = table
            columns = inputs or [column for column in table.header if column != target]
            session.use_dataset(datasets.dataset_from_table(table, target, columns))
        if "state" in body:
            await run_in_threadpool(session.import_state, body["state"])
        return JSONResponse(await run_in_threadpool(session.snapshot))

    async def show(request: Request) -> Response:
        session = session_of(request)
        return JSONResponse(await run_in_threadpool(session.snapshot))

    def action(work: Callable[[Session, dict[str, Any]], Any]) -> Handler:
        async def handler(request: Request) -> Response:
            session = session_of(request)
            body = await _json_body(request)

            def run() -> dict[str, Any]:
                work(session, body)
                return session.snapshot()

            return JSONResponse(await run_in_threadpool(run))

        return handler

    def preset(session: Session, body: dict[str, Any]) -> None:
        session.load_preset(body.get("name"))

    def weight(session: Session, body: dict[str, Any]) -> None:
        session.set_weight(body.get("name"), body.get("value"))

    def architecture(session: Session, body: dict[str, Any]) -> None:
        session.set_architecture(body)

    def settings(session: Session, body: dict[str, Any]) -> None:
        session.update_settings(body)

    def train(session: Session, body: dict[str, Any]) -> None:
        unknown = set(body) - {"steps", "epochs"}
        if unknown or len(body) != 1:
            raise PlaygroundError('train takes {"steps": n} or {"epochs": n}')
        if "steps" in body:
            session.train(steps=check_int(body["steps"], "steps", 1, MAX_STEPS))
        else:
            session.train(epochs=check_int(body["epochs"], "epochs", 1, MAX_EPOCHS))

    def reset(session: Session, body: dict[str, Any]) -> None:
        session.reset()

    def randomize(session: Session, body: dict[str, Any]) -> None:
        session.randomize()

    def use_data(session: Session, body: dict[str, Any]) -> None:
        if "name" in body:
            if set(body) != {"name"}:
                raise PlaygroundError('data takes {"name": preset} or {"target", "inputs"}')
            session.use_preset_data(body["name"])
            return
        if set(body) != {"target", "inputs"}:
            raise PlaygroundError(
                'data takes {"name": preset} or {"target": column, "inputs": [columns]}'
            )
        if session.uploaded_table is None:
            raise PlaygroundError("upload a CSV file first")
        target, inputs = body["target"], body["inputs"]
        if not isinstance(target, str):
            raise PlaygroundError(f"target: must be a column name, got {target!r}")
        if not isinstance(inputs, list) or not all(isinstance(c, str) for c in inputs):
            raise PlaygroundError("inputs: must be a list of column names")
        session.use_dataset(datasets.dataset_from_table(session.uploaded_table, target, inputs))

    async def upload(request: Request) -> Response:
        session = session_of(request)
        name = request.query_params.get("name", "upload.csv")
        content = await _read_body(request, datasets.MAX_UPLOAD_BYTES)
        table = await run_in_threadpool(datasets.read_upload, name, content)
        with session.lock:
            session.uploaded_table = table
        return JSONResponse(
            {"file": str(table.path), "columns": list(table.header), "rows": len(table)}
        )

    async def dataflow(request: Request) -> Response:
        session = session_of(request)
        return JSONResponse(await run_in_threadpool(backprop.dataflow, session))

    async def paths(request: Request) -> Response:
        session = session_of(request)
        weight_name = request.query_params.get("weight")
        return JSONResponse(await run_in_threadpool(backprop.path_sums, session, weight_name))

    async def export_state(request: Request) -> Response:
        return JSONResponse(session_of(request).export_state())

    async def import_state(request: Request) -> Response:
        session = session_of(request)
        body = await _json_body(request)

        def run() -> dict[str, Any]:
            session.import_state(body)
            return session.snapshot()

        return JSONResponse(await run_in_threadpool(run))

    async def model_file(request: Request) -> Response:
        session = session_of(request)

        def write() -> bytes:
            with session.lock, tempfile.TemporaryDirectory(prefix="chainrule-model-") as folder:
                path = Path(folder) / "model.safetensors"
                save(session.model, path, metadata=session.model_metadata())
                return path.read_bytes()

        content = await run_in_threadpool(write)
        stem = "titanic" if session.dataset.name == "titanic" else session.dataset.name
        return Response(
            content,
            media_type="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{stem}-playground.safetensors"'
            },
        )

    async def presets(request: Request) -> Response:
        return JSONResponse(
            {
                "presets": list(PRESETS),
                "data": list(datasets.PRESET_DATA),
                "max_upload_bytes": datasets.MAX_UPLOAD_BYTES,
            }
        )

    async def live(websocket: WebSocket) -> None:
        # One frame at a time: the page answers each frame with "next" once it has drawn
        # it, so a slow page is never buried under a backlog of frames.
        await websocket.accept()
        try:
            session = sessions.get(websocket.path_params["session_id"])
        except RequestError as error:
            await websocket.send_json({"error": str(error)})
            await websocket.close()
            return
        playing = False
        try:
            while True:
                message = await websocket.receive_json()
                action_name = message.get("action") if isinstance(message, dict) else None
                if action_name not in ("play", "next", "pause"):
                    await websocket.send_json({"error": 'send {"action": "play"|"next"|"pause"}'})
                    continue
                if action_name == "pause":
                    playing = False
                    await websocket.send_json({"paused": True})
                    continue
                if action_name == "next" and not playing:
                    continue  # a frame drawn after "pause": nothing more to send
                playing = True
                try:
                    frame = await run_in_threadpool(_frame, session)
                except ChainruleError as error:
                    playing = False
                    await websocket.send_json({"error": str(error), "paused": True})
                    continue
                await websocket.send_json(frame)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the tab closed or reloaded
        except Exception:  # log, then close: the page shows the lost connection
            LOG.exception("error in live training of session %s", session.id)

    routes = [
        Route("/", index),
        Route("/api/presets", _guarded(presets)),
        Route("/api/session", _guarded(create), methods=["POST"]),
        Route("/api/session/{session_id}", _guarded(show)),
        Route("/api/session/{session_id}/preset", _guarded(action(preset)), methods=["POST"]),
        Route("/api/session/{session_id}/data", _guarded(action(use_data)), methods=["POST"]),
        Route("/api/session/{session_id}/upload", _guarded(upload), methods=["POST"]),
        Route("/api/session/{session_id}/weight", _guarded(action(weight)), methods=["POST"]),
        Route(
            "/api/session/{session_id}/architecture",
            _guarded(action(architecture)),
            methods=["POST"],
        ),
        Route("/api/session/{session_id}/settings", _guarded(action(settings)), methods=["POST"]),
        Route("/api/session/{session_id}/train", _guarded(action(train)), methods=["POST"]),
        Route("/api/session/{session_id}/reset", _guarded(action(reset)), methods=["POST"]),
        Route("/api/session/{session_id}/randomize", _guarded(action(randomize)), methods=["POST"]),
        Route("/api/session/{session_id}/dataflow", _guarded(dataflow)),
        Route("/api/session/{session_id}/paths", _guarded(paths)),
        Route("/api/session/{session_id}/state", _guarded(export_state), methods=["GET"]),
        Route("/api/session/{session_id}/state", _guarded(import_state), methods=["POST"]),
        Route("/api/session/{session_id}/model", _guarded(model_file)),
        WebSocketRoute("/api/session/{session_id}/live", live),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.sessions = sessions
    return app


def _frame(session: Session) -> dict[str, Any]:
    """One frame of live training: train for a moment, then the snapshot to draw."""
    started = time.perf_counter()
    session.train_for(FRAME_SECONDS)
    snapshot = session.snapshot(live=True)
    snapshot["frame_seconds"] = time.perf_counter() - started
    return snapshot


@contextmanager
def running_server(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a background thread; yields its base URL.

    For tests, benchmarks and notebooks: ``port=0`` picks a free port. The server
    stops (open connections closed) when the block ends.

    Args:
        app: from :func:`create_app`.
        host: the address to bind.
        port: the port, or 0 for any free one.
    """
    import socket

    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((host, port))
    listener.listen(128)
    bound_port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the playground server did not start")
            time.sleep(0.02)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


__all__ = ["MAX_JSON_BYTES", "RequestError", "Sessions", "create_app", "running_server"]
