"""``karyoflow serve``: a web page and JSON API around :mod:`karyoflow.predict`, on
FastAPI and uvicorn.

Endpoints (the OpenAPI document is generated at ``/api/openapi.json``, rendered at
``/api/docs`` without anything fetched from elsewhere):

* ``GET /`` - the upload page: a metaphase (or one chromosome crop) in, the karyogram,
  the boxes, the table and the ISCN summary out.
* ``POST /api/predict`` - the image as the raw body (``Content-Type: image/png``,
  ``image/jpeg``, ``image/tiff``, ``image/bmp``, ``image/gif``), as a multipart form
  (``curl -F image=@cell.png``; optional fields ``boxes`` - JSON - and ``kind``), or as
  JSON ``{"image": "<base64>", "boxes": [[x0, y0, x1, y1], ...], "kind": ...}``; query
  ``?kind=crop`` for one chromosome.
* ``GET /api/health`` - ``{"status": "ok", "model": "<model name>"}``.

Every bad request is a 4xx with ``{"error": "<reason>"}``: 400 undecodable image, bad
JSON, bad boxes; 401 missing or wrong token; 403 foreign origin; 404; 405; 413 upload,
image or box count over the limits (:class:`ServeLimits`); 415 content type; 421 host
not allowed; 503 busy (every worker taken and the queue full) or a prediction that
waited longer than ``queue_timeout_s``. An unexpected failure answers 500 with
``{"error": "internal error"}`` (the traceback goes to the server's log, never to the
client). Predictions run in a bounded pool of ``workers`` threads; the image is
decoded inside a worker slot, so memory is bounded by ``workers`` requests at a time.

Beyond loopback a token is required (``--token`` or ``KARYOFLOW_SERVE_TOKEN``), sent as
``Authorization: Bearer <token>`` (the page takes it from its address:
``http://host:8050/#token=...``); the ``Host`` header must name the bound address or an
``--allowed-host``.
"""

# no "from __future__ import annotations": FastAPI reads the endpoints' annotations,
# which name classes imported inside make_app
import base64
import binascii
import hmac
import html
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "TOKEN_ENV",
    "ServeLimits",
    "Server",
    "check_boxes",
    "make_app",
    "make_server",
    "model_name",
]

#: Environment variable holding the API token (instead of ``--token``).
TOKEN_ENV = "KARYOFLOW_SERVE_TOKEN"
_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/tiff": ".tif",
    "image/bmp": ".bmp",
    "image/gif": ".gif",
}
_KINDS = ("metaphase", "crop")
#: An over-limit body up to this size is read (and dropped) before the 413, so that
#: the client sees the answer instead of a reset connection.
_DRAIN_BYTES = 64 * 1024 * 1024
#: The upload page (package data).
_PAGE_PATH = Path(__file__).resolve().parent / "data" / "serve" / "index.html"
_LOG = logging.getLogger("karyoflow.serve")


@dataclass(frozen=True)
class ServeLimits:
    """What one request may cost (``karyoflow serve`` options).

    Parameters
    ----------
    max_bytes : int
        Request body (the upload, base64 or form included).
    max_pixels : int
        Pixels the image header may declare (checked before decoding).
    max_boxes : int
        Boxes of a JSON or form request.
    workers : int
        Predictions at a time (each holds one decoded image).
    queue : int
        Requests that may wait for a worker; more get 503.
    queue_timeout_s : float
        Longest wait for a worker before 503.
    keep_alive_s : float
        Idle time before a connection is closed.
    """

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 16_000_000
    max_boxes: int = 200
    workers: int = 1
    queue: int = 8
    queue_timeout_s: float = 300.0
    keep_alive_s: float = 5.0


class _Reject(Exception):
    """A request answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _png_data_url(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(np.asarray(rgb)[..., ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


def model_name(source: Any) -> str:
    """What ``/api/health`` shows of a model: a file's name or a registry URI, never a
    path of the server's disk.

    Examples
    --------
    >>> model_name("/home/lab/results/train/x/model.keras"), model_name("models:/k/3")
    ('model.keras', 'models:/k/3')
    """
    text = str(source)
    if ":/" in text and not Path(text).exists():
        return text
    return Path(text).name


def check_boxes(boxes: Any, width: int, height: int, max_boxes: int) -> np.ndarray:
    """Boxes of a request as an ``(n, 4)`` int64 array, each inside the image.

    Raises
    ------
    ValueError
        Not a list of ``[x0, y0, x1, y1]`` integers with ``0 <= x0 < x1 <= width`` and
        ``0 <= y0 < y1 <= height``, or more than ``max_boxes`` boxes (the message says
        which box and why).

    Examples
    --------
    >>> check_boxes([[1, 2, 5, 9]], 10, 10, 5).tolist()
    [[1, 2, 5, 9]]
    >>> check_boxes([[0, 0, 100000, 100000]], 10, 10, 5)
    Traceback (most recent call last):
    ...
    ValueError: box 0 [0, 0, 100000, 100000] is not inside the 10x10 image
    """
    if not isinstance(boxes, list):
        raise ValueError("boxes must be a list of [x0, y0, x1, y1]")
    if len(boxes) > max_boxes:
        raise ValueError(f"{len(boxes)} boxes; at most {max_boxes}")
    out = np.zeros((len(boxes), 4), np.int64)
    for i, box in enumerate(boxes):
        if (
            not isinstance(box, list)
            or len(box) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)
        ):
            raise ValueError(f"box {i} must be [x0, y0, x1, y1] integers")
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise ValueError(f"box {i} {box} is not inside the {width}x{height} image")
        out[i] = box
    return out


@dataclass
class _State:
    """What the endpoints share: the model, its settings, the limits and the pool."""

    classifier: Any
    preprocess: dict[str, Any]
    detect: dict[str, Any]
    call: dict[str, Any]
    limits: ServeLimits
    token: str | None
    slots: threading.BoundedSemaphore = field(init=False)
    waiting: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.slots = threading.BoundedSemaphore(max(1, int(self.limits.workers)))

    def run(self, work: Any) -> Any:
        """Run ``work()`` in a worker slot (a bounded queue in front of it)."""
        with self.lock:
            if self.waiting >= self.limits.queue + self.limits.workers:
                raise _Reject(503, "busy: every worker is taken and the queue is full; retry")
            self.waiting += 1
        try:
            if not self.slots.acquire(timeout=self.limits.queue_timeout_s):
                raise _Reject(503, f"busy: no worker free within {self.limits.queue_timeout_s} s")
            try:
                return work()
            finally:
                self.slots.release()
        finally:
            with self.lock:
                self.waiting -= 1

    def decode(self, data: bytes) -> np.ndarray:
        from karyoflow.imageio import ImageLimits, ImageReadError, decode_image, image_limits

        limits = ImageLimits(
            max_pixels=min(self.limits.max_pixels, image_limits().max_pixels),
            max_bytes=self.limits.max_bytes,
        )
        try:
            return decode_image(data, "upload", limits=limits)
        except ImageReadError as exc:
            status = 413 if exc.reason.startswith(("image too large", "file too large")) else 400
            raise _Reject(status, f"cannot decode the image: {exc.reason}") from None

    def predict(self, data: bytes, kind: str, boxes: Any) -> dict[str, Any]:
        from karyoflow.predict import predict_cell, predict_crops

        start = time.perf_counter()
        image = self.decode(data)
        if kind == "crop":
            table = predict_crops([image], self.classifier, preprocess=self.preprocess)
            row = table.iloc[0].to_dict()
            if row["status"] != "ok":
                raise _Reject(400, f"crop rejected: {row['status']}")
            return {
                "kind": "crop",
                "label": row["label"],
                "probability": row["probability"],
                "second_label": row["second_label"],
                "seconds": round(time.perf_counter() - start, 3),
            }
        arr = None
        if boxes is not None:
            try:
                arr = check_boxes(boxes, image.shape[1], image.shape[0], self.limits.max_boxes)
            except ValueError as exc:
                status = 413 if "at most" in str(exc) else 400
                raise _Reject(status, str(exc)) from None
        pred = predict_cell(
            image,
            self.classifier,
            boxes=arr,
            preprocess=self.preprocess,
            detect=self.detect,
            call=self.call,
            source="upload",
        )
        table = pred.table()
        return {
            "kind": "metaphase",
            **pred.summary(),
            "chromosomes": json.loads(table.to_json(orient="records")),
            "karyogram_png": _png_data_url(pred.karyogram),
            "overlay_png": _png_data_url(pred.overlay),
            "seconds": round(time.perf_counter() - start, 3),
        }


def _json_body(raw: bytes) -> tuple[bytes, Any, str | None]:
    """``(image bytes, boxes, kind)`` of a JSON request body."""
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # huge integers, deep nesting, bad JSON
        raise _Reject(400, f"the body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("image"), str):
        raise _Reject(400, 'JSON body needs "image": the image file as a base64 string')
    try:
        data = base64.b64decode(payload["image"], validate=True)
    except (binascii.Error, ValueError):
        raise _Reject(400, '"image" is not valid base64') from None
    kind = payload.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise _Reject(400, '"kind" must be a string')
    return data, payload.get("boxes"), kind


async def _form_body(request: Any, limits: ServeLimits) -> tuple[bytes, Any, str | None]:
    """``(image bytes, boxes, kind)`` of a multipart form (field ``image`` or ``file``)."""
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=limits.max_bytes)
    except Exception as exc:  # the parser's own errors: a malformed form
        raise _Reject(400, f"malformed form: {str(exc)[:200]}") from None
    part = form.get("image") or form.get("file")
    if part is None or isinstance(part, str):
        raise _Reject(400, 'the form needs a file field "image" (or "file")')
    data = await part.read()
    boxes = form.get("boxes")
    if isinstance(boxes, str) and boxes.strip():
        try:
            boxes = json.loads(boxes)
        except (ValueError, RecursionError):
            raise _Reject(400, 'form field "boxes" is not valid JSON') from None
    else:
        boxes = None
    kind = form.get("kind")
    return data, boxes, kind if isinstance(kind, str) else None


async def _read_body(request: Any, limit: int) -> bytes:
    """The request body, refused with 413 once it passes ``limit`` bytes (whether or not
    a Content-Length was sent)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise _Reject(400, "bad Content-Length") from None
        if size < 0:
            raise _Reject(400, "bad Content-Length")
        if size > limit:
            if size <= _DRAIN_BYTES:  # read and drop it, so the client sees the answer
                async for _chunk in request.stream():
                    pass
            raise _Reject(413, f"upload of {size} bytes exceeds the limit of {limit}")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _Reject(413, f"upload exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # starlette's cache: form parsing reads it from here
    return body


def _docs_page(spec: Mapping[str, Any]) -> str:
    """A self-contained HTML rendering of the OpenAPI document (no CDN assets)."""
    rows = []
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            responses = ", ".join(
                f"{code} {html.escape(str(r.get('description', '')))}"
                for code, r in op.get("responses", {}).items()
            )
            rows.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p>{html.escape(op.get('summary', ''))}</p>"
                f"<pre>{html.escape(op.get('description', '') or '')}</pre>"
                f"<p>Responses: {responses}</p>"
            )
    title = html.escape(spec.get("info", {}).get("title", "API"))
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em;max-width:900px}"
        "pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em}</style></head><body>"
        f"<h1>{title}</h1><p>OpenAPI document: <a href='/api/openapi.json'>"
        f"/api/openapi.json</a></p>{''.join(rows)}</body></html>"
    )


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def make_app(
    classifier: Any,
    *,
    preprocess: Mapping[str, Any] | None = None,
    detect: Mapping[str, Any] | None = None,
    call: Mapping[str, Any] | None = None,
    limits: ServeLimits | None = None,
    token: str | None = None,
    allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1"),
) -> Any:
    """The FastAPI application (module docstring); serve it with :class:`Server`.

    ``call``: the karyotype-call settings (config ``evaluate.call``); ``token``: required
    as ``Authorization: Bearer <token>`` on ``/api/*`` when given; ``allowed_hosts``:
    ``Host`` header values accepted (with or without the port).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    state = _State(
        classifier,
        dict(preprocess or {}),
        dict(detect or {}),
        dict(call or {}),
        limits or ServeLimits(),
        token or None,
    )
    hosts = {h.lower().strip("[]") for h in allowed_hosts}
    app = FastAPI(
        title="karyoflow prediction API",
        version="2",
        description="Chromosomes found, classified, arranged and counted in a metaphase image.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        host = (request.headers.get("host") or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.strip("[]") not in hosts:
            return error(421, f"host {host or '(none)'!r} is not served here")
        origin = request.headers.get("origin")
        if origin and request.method not in ("GET", "HEAD"):
            from urllib.parse import urlsplit

            if (urlsplit(origin).hostname or "").lower() not in hosts:
                return error(403, f"requests from origin {origin!r} are not accepted")
        if state.token and request.url.path.startswith("/api/"):
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {state.token}".encode()):
                return error(401, "a valid token is required (Authorization: Bearer <token>)")
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(_Reject)
    async def rejected(_request: Request, exc: _Reject) -> JSONResponse:
        return error(exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> JSONResponse:
        _LOG.exception("request failed")
        return error(500, "internal error")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_PAGE_PATH.read_text(encoding="utf-8"))

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_docs_page(app.openapi()))

    @app.get("/api/health", summary="Service and model status")
    async def health() -> dict[str, str]:
        cal = state.classifier.calibration
        trained_on = getattr(cal, "trained_on", "") or "unknown"
        return {
            "status": "ok",
            "model": model_name(state.classifier.source),
            "trained_on": trained_on,
        }

    @app.post(
        "/api/predict",
        summary="Karyogram and ISCN call of one metaphase (or the class of one crop)",
        description=(
            "Body: the image (image/png, image/jpeg, image/tiff, image/bmp, image/gif), a "
            "multipart form with a file field 'image' (and optional 'boxes' JSON, 'kind'), "
            "or JSON {image: base64, boxes: [[x0, y0, x1, y1], ...], kind}. Query kind: "
            f"metaphase (default) or crop. Limits: {state.limits.max_bytes} bytes, "
            f"{state.limits.max_pixels} pixels, {state.limits.max_boxes} boxes."
        ),
        responses={
            400: {"description": "Undecodable image, bad JSON, form or boxes"},
            401: {"description": "Token missing or wrong"},
            413: {"description": "Upload, image or box count over the limits"},
            415: {"description": "Unsupported content type"},
            503: {"description": "Busy: retry later"},
        },
    )
    async def predict(request: Request, kind: str = "metaphase") -> Response:
        from starlette.concurrency import run_in_threadpool

        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype != "multipart/form-data" and ctype != "application/json" and ctype not in _TYPES:
            raise _Reject(
                415,
                f"unsupported content type {ctype or '(none)'!r}; send "
                f"{', '.join(sorted(_TYPES))}, multipart/form-data or application/json",
            )
        raw = await _read_body(request, state.limits.max_bytes)
        boxes = None
        if ctype == "application/json":
            data, boxes, asked = _json_body(raw)
        elif ctype == "multipart/form-data":
            data, boxes, asked = await _form_body(request, state.limits)
        else:
            data, asked = raw, None
        kind = asked or kind
        if kind not in _KINDS:
            raise _Reject(400, f"kind must be metaphase or crop, not {kind!r}")
        if not data:
            raise _Reject(400, "empty upload")
        result = await run_in_threadpool(state.run, lambda: state.predict(data, kind, boxes))
        return JSONResponse(result)

    return app


class Server:
    """A uvicorn server for :func:`make_app` on a socket bound at construction (so a
    taken port is an ``OSError`` at once): :meth:`run` in the foreground, or
    :meth:`start` / :meth:`stop` in a background thread (tests)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8050, **kw: Any) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, int(port)))
        except OSError as exc:
            self.socket.close()
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.socket.listen(128)
        self.host, self.port = self.socket.getsockname()[:2]
        limits = kw.pop("limits", ServeLimits())
        config = uvicorn.Config(
            app,
            log_level=kw.pop("log_level", "warning"),
            timeout_keep_alive=int(max(1, limits.keep_alive_s)),
            limit_concurrency=kw.pop("limit_concurrency", 64),
            h11_max_incomplete_event_size=16 * 1024,
            server_header=False,
            **kw,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve until interrupted."""
        self.server.run(sockets=[self.socket])

    def start(self, timeout: float = 30.0) -> "Server":
        """Serve from a background thread; return once it accepts connections."""
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("karyoflow serve did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.socket.close()


def make_server(
    classifier: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    token: str | None = None,
    allowed_hosts: Sequence[str] = (),
    limits: ServeLimits | None = None,
    **settings: Any,
) -> Server:
    """A ready (not yet serving) :class:`Server`; ``port=0`` picks a free port.

    Raises
    ------
    ValueError
        Bound beyond loopback without a token (``token`` or :data:`TOKEN_ENV`).
    OSError
        The address cannot be bound (``cannot listen on host:port: <reason>``).
    """
    token = token or os.environ.get(TOKEN_ENV) or None
    if not _loopback(host) and not token:
        raise ValueError(
            f"serving on {host} (beyond loopback) needs a token: --token or {TOKEN_ENV}"
        )
    limits = limits or ServeLimits()
    hosts = ["127.0.0.1", "localhost", "::1", *allowed_hosts]
    if host not in ("0.0.0.0", "::"):
        hosts.append(host)
    app = make_app(classifier, limits=limits, token=token, allowed_hosts=hosts, **settings)
    return Server(app, host, port, limits=limits)
