"""A small local web server for clicking centromeres (standard library only).

``GET /`` the page; ``GET /api/state`` crops and points (JSON); ``GET /api/image/<i>``
crop ``i`` as PNG; ``POST /api/point`` ``{"index", "x", "y"}``; ``POST /api/clear``
``{"index"}``; ``POST /api/save``; ``POST /api/quit`` (saves, then stops the server).
Binds to the loopback interface by default; port 0 picks a free port.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from karyoflow.annotate.page import PAGE
from karyoflow.annotate.session import AnnotationSession

__all__ = ["make_server", "serve"]

_IMAGE = re.compile(r"^/api/image/(\d+)(?:\.png)?$")
_MAX_BODY = 1 << 16
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


_SOCKET_TIMEOUT_S = 30


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _index(data: dict) -> int:
    value = data.get("index")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"index must be an integer, not {value!r}")
    return value


def _number(data: dict, key: str) -> float:
    value = data.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{key} must be a number, not {value!r}")
    return float(value)


def _handler(session: AnnotationSession, log) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "karyoflow-annotate"
        timeout = _SOCKET_TIMEOUT_S  # a stalled client frees its thread

        def log_message(self, format, *args):
            pass  # quiet; errors are returned to the page

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, data, status: int = HTTPStatus.OK) -> None:
            self._send(status, json.dumps(data).encode(), "application/json")

        def _error(self, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
            self._json({"error": message}, status)

        def _host_ok(self) -> bool:
            """Refuse foreign Host headers on loopback (DNS rebinding)."""
            if self.server.server_address[0] not in _LOOPBACK:
                return True
            host = self.headers.get("Host", "").rsplit(":", 1)[0].strip("[]")
            if host in _LOOPBACK:
                return True
            self._error("unexpected Host header", HTTPStatus.FORBIDDEN)
            return False

        def do_GET(self):
            if not self._host_ok():
                return
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
            elif path == "/api/state":
                self._json(session.state())
            elif m := _IMAGE.match(path):
                try:
                    self._send(HTTPStatus.OK, session.png(int(m.group(1))), "image/png")
                except (ValueError, OSError) as exc:
                    self._error(str(exc), HTTPStatus.NOT_FOUND)
            else:
                self._error(f"no such page: {path}", HTTPStatus.NOT_FOUND)

        def _body(self) -> dict:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise ValueError("bad Content-Length") from None
            if length < 0:
                raise ValueError("bad Content-Length")
            if length > _MAX_BODY:
                raise ValueError("request too large")
            raw = self.rfile.read(length) if length else b"{}"
            data = json.loads(raw.decode() or "{}", parse_constant=_no_constant)
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            return data

        def do_POST(self):
            if not self._host_ok():
                return
            # Same-origin only: a page elsewhere must not write the user's CSV.
            origin = self.headers.get("Origin")
            host = self.headers.get("Host", "")
            if origin and origin.split("://", 1)[-1] != host:
                self._error("cross-origin request refused", HTTPStatus.FORBIDDEN)
                return
            path = self.path.split("?", 1)[0]
            try:
                data = self._body()
                if path == "/api/point":
                    index = _index(data)
                    x, y = session.set_point(index, _number(data, "x"), _number(data, "y"))
                    self._json({"index": index, "x": x, "y": y, "dirty": True})
                elif path == "/api/clear":
                    index = _index(data)
                    session.clear(index)
                    self._json({"index": index, "dirty": True})
                elif path == "/api/save":
                    self._json({"saved": session.save(), "csv": str(session.csv_path)})
                elif path == "/api/quit":
                    n = session.save()
                    self._json({"saved": n, "csv": str(session.csv_path), "quit": True})
                    log(f"annotate: saved {n} rows to {session.csv_path}; quitting")
                    threading.Thread(target=self.server.shutdown, daemon=True).start()
                else:
                    self._error(f"no such action: {path}", HTTPStatus.NOT_FOUND)
            except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
                self._error(str(exc).strip("'\""))

    return Handler


def make_server(
    session: AnnotationSession, host: str = "127.0.0.1", port: int = 0, *, log=None
) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``session`` (not started); ``server.server_port``."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    server = ThreadingHTTPServer((host, int(port)), _handler(session, log))
    server.daemon_threads = True
    return server


def serve(
    session: AnnotationSession,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    open_browser: bool = True,
    log=None,
) -> int:
    """Serve until the page quits (``q``) or Ctrl-C (which saves too); rows saved."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    server = make_server(session, host, port, log=log)
    url = f"http://{host if ':' not in host else f'[{host}]'}:{server.server_port}/"
    state = session.state()
    log(
        f"annotate: {len(session.crops)} crops, {state['done']} done; writing "
        f"{session.csv_path}\nannotate: open {url}  (click = centromere, s = save, "
        "n / Enter = save + next, p = previous, u = undo point, q = save + quit)"
    )
    if host not in _LOOPBACK:
        log(f"annotate: warning: listening on {host}; anyone who can reach it can edit the CSV")
    if open_browser:
        import webbrowser

        threading.Timer(0.3, webbrowser.open, args=(url,)).start()

    def stop(signum, _frame):  # SIGTERM / SIGHUP save the clicks, as Ctrl-C does
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {
        sig: signal.signal(sig, stop)
        for sig in (signal.SIGTERM, signal.SIGHUP)
        if threading.current_thread() is threading.main_thread()
    }
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt as exc:
        log(f"annotate: interrupted{f' ({exc})' if str(exc) else ''}; saving")
    finally:
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if session.dirty:
        session.save()
    return len(session.points)
