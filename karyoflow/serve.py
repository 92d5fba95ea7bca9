"""``karyoflow serve``: a local web app and JSON API around :mod:`karyoflow.predict`.

Endpoints (loopback by default; described at ``/api/openapi.json``):

* ``GET /`` - an HTML page: upload a metaphase (or one chromosome crop), see the
  karyogram, the boxes, the table and the ISCN summary.
* ``POST /api/predict`` - body: the image file itself (``Content-Type: image/png``,
  ``image/jpeg``, ``image/tiff``, ``image/bmp``), or JSON ``{"image": "<base64>",
  "boxes": [[x0, y0, x1, y1], ...], "kind": "metaphase" | "crop"}``; query
  ``?kind=crop`` for a single chromosome. Answers JSON with the ISCN summary, the
  chromosome table and the karyogram / overlay as PNG data URLs.
* ``GET /api/health`` - ``{"status": "ok", "model": ...}``.

Uploads above ``max_bytes`` get 413, other types 415, undecodable images 400, each with a
JSON ``{"error": "..."}`` naming the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import tempfile
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

__all__ = ["DEFAULT_MAX_BYTES", "OPENAPI", "make_server", "serve"]

#: Largest accepted upload (bytes).
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/tiff": ".tif",
    "image/bmp": ".bmp",
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "karyoflow prediction API",
        "version": "1",
        "description": "Chromosomes found, classified, arranged and counted in a metaphase image.",
    },
    "paths": {
        "/api/health": {
            "get": {
                "summary": "Service and model status",
                "responses": {"200": {"description": "OK", "content": {"application/json": {}}}},
            }
        },
        "/api/predict": {
            "post": {
                "summary": "Karyogram and ISCN count of one metaphase (or class of one crop)",
                "parameters": [
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["metaphase", "crop"]},
                        "description": "metaphase (default) or a single-chromosome crop",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        **{t: {"schema": {"type": "string", "format": "binary"}} for t in _TYPES},
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["image"],
                                "properties": {
                                    "image": {"type": "string", "format": "byte"},
                                    "boxes": {
                                        "type": "array",
                                        "items": {
                                            "type": "array",
                                            "items": {"type": "integer"},
                                            "minItems": 4,
                                            "maxItems": 4,
                                        },
                                    },
                                    "kind": {"type": "string", "enum": ["metaphase", "crop"]},
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "200": {"description": "Prediction", "content": {"application/json": {}}},
                    "400": {"description": "Undecodable image or bad request"},
                    "413": {"description": "Upload too large"},
                    "415": {"description": "Unsupported content type"},
                },
            }
        },
    },
}

#: The upload page (package data).
_PAGE_PATH = Path(__file__).resolve().parent / "data" / "serve" / "index.html"


def _png_data_url(rgb: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(np.asarray(rgb)[..., ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


class _App:
    """State shared by the request handlers: the model, its settings and a lock."""

    def __init__(
        self,
        classifier: Any,
        *,
        preprocess: Mapping[str, Any] | None,
        detect: Mapping[str, Any] | None,
        max_bytes: int,
        call: Mapping[str, Any] | None = None,
    ) -> None:
        self.classifier = classifier
        self.call = dict(call or {})
        self.preprocess = dict(preprocess or {})
        self.detect = dict(detect or {})
        self.max_bytes = int(max_bytes)
        self.lock = threading.Lock()

    def decode(self, data: bytes, suffix: str) -> np.ndarray:
        from karyoflow.imageio import ImageReadError, read_image

        with tempfile.TemporaryDirectory(prefix="karyoflow-upload-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(data)
            try:
                return read_image(path)
            except ImageReadError as exc:
                raise ValueError(f"cannot decode the image: {exc.reason}") from exc

    def predict(self, image: np.ndarray, kind: str, boxes: Any) -> dict[str, Any]:
        import time

        from karyoflow.predict import predict_cell, predict_crops

        start = time.perf_counter()
        with self.lock:
            if kind == "crop":
                table = predict_crops([image], self.classifier, preprocess=self.preprocess)
                row = table.iloc[0].to_dict()
                if row["status"] != "ok":
                    raise ValueError(f"crop rejected: {row['status']}")
                return {
                    "kind": "crop",
                    "label": row["label"],
                    "probability": row["probability"],
                    "second_label": row["second_label"],
                    "seconds": round(time.perf_counter() - start, 3),
                }
            arr = None
            if boxes is not None:
                arr = np.asarray(boxes, dtype=np.int64)
                if arr.ndim != 2 or arr.shape[1] != 4:
                    raise ValueError("boxes must be a list of [x0, y0, x1, y1]")
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


def _handler(app: _App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "karyoflow"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # errors go to the client as JSON

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path in ("/", "/index.html"):
                self._send(200, _PAGE_PATH.read_bytes(), "text/html; charset=utf-8")
            elif path == "/api/health":
                self._json(200, {"status": "ok", "model": str(app.classifier.source)})
            elif path == "/api/openapi.json":
                self._json(200, OPENAPI)
            else:
                self._json(404, {"error": f"not found: {path}"})

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/api/predict":
                self._json(404, {"error": f"not found: {parts.path}"})
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._json(411, {"error": "Content-Length required"})
                return
            if length > app.max_bytes:
                # read (and drop) a moderate excess so that the client sees the answer
                # instead of a reset connection; beyond that, answer and close
                self.close_connection = True
                left = min(length, 64 * 1024 * 1024)
                while left > 0:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    left -= len(chunk)
                self._json(
                    413, {"error": f"upload of {length} bytes exceeds the limit of {app.max_bytes}"}
                )
                return
            if length <= 0:
                self._json(400, {"error": "empty upload"})
                return
            data = self.rfile.read(length)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            kind = parse_qs(parts.query).get("kind", ["metaphase"])[0]
            boxes = None
            try:
                if ctype == "application/json":
                    payload = json.loads(data)
                    if not isinstance(payload, dict) or "image" not in payload:
                        raise ValueError('JSON body needs an "image" (base64)')
                    data = base64.b64decode(payload["image"], validate=True)
                    boxes = payload.get("boxes")
                    kind = payload.get("kind", kind)
                    suffix = ".img"
                elif ctype in _TYPES:
                    suffix = _TYPES[ctype]
                else:
                    self._json(
                        415,
                        {
                            "error": f"unsupported content type {ctype or '(none)'!r}; "
                            f"send {', '.join(sorted(_TYPES))} or application/json"
                        },
                    )
                    return
                if kind not in ("metaphase", "crop"):
                    raise ValueError(f"kind must be metaphase or crop, not {kind!r}")
                image = app.decode(data, suffix)
                result = app.predict(image, kind, boxes)
            except (ValueError, binascii.Error, json.JSONDecodeError) as exc:
                self._json(400, {"error": str(exc)})
                return
            except Exception as exc:  # a bug must answer, not hang the client
                self._json(500, {"error": f"{type(exc).__name__}: {exc}"})
                return
            self._json(HTTPStatus.OK, result)

    return Handler


def make_server(
    classifier: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8050,
    preprocess: Mapping[str, Any] | None = None,
    detect: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    call: Mapping[str, Any] | None = None,
) -> ThreadingHTTPServer:
    """A ready (not yet serving) HTTP server; ``port=0`` picks a free port.

    ``call``: the karyotype-call settings (config ``evaluate.call``)."""
    app = _App(classifier, preprocess=preprocess, detect=detect, max_bytes=max_bytes, call=call)
    server = ThreadingHTTPServer((host, int(port)), _handler(app))
    server.daemon_threads = True
    return server


def serve(classifier: Any, *, host: str = "127.0.0.1", port: int = 8050, **kw: Any) -> None:
    """Serve until interrupted (Ctrl-C)."""
    server = make_server(classifier, host=host, port=port, **kw)
    h, p = server.server_address[:2]
    print(f"karyoflow serve: http://{h}:{p}/  (model {classifier.source}; Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
