"""``karyoflow serve`` against hostile and careless clients: every bad request gets its
4xx with a reason, the limits hold, the token and host checks hold, and a bounded load
test with hostile requests mixed in leaves the server answering within its memory."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from karyoflow.predict import load_classifier
from karyoflow.serve import ServeLimits, make_server


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    from karyoflow.models.registry import build_model

    path = tmp_path_factory.mktemp("model") / "model.keras"
    build_model("karyonet_fast", (96, 48, 1), 24, seed=0, size_features=2).save(path)
    return path


@pytest.fixture(scope="module")
def server(model_file):
    limits = ServeLimits(max_bytes=2_000_000, max_pixels=4_000_000, max_boxes=50)
    srv = make_server(load_classifier(model_file), port=0, limits=limits).start()
    yield srv
    srv.stop()


def _crop_png() -> bytes:
    img = np.full((70, 40), 235, np.uint8)
    img[8:62, 12:28] = 70
    img[30:34, 12:28] = 150  # a band
    return cv2.imencode(".png", img)[1].tobytes()


def _png_bomb(side: int = 50_000) -> bytes:
    data = bytearray(_crop_png())
    data[16:24] = struct.pack(">II", side, side)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _post(url: str, **kw) -> tuple[int, dict]:
    r = requests.post(url, timeout=120, **kw)
    return r.status_code, r.json()


def test_valid_uploads_raw_multipart_and_json(server) -> None:
    url = server.url + "/api/predict?kind=crop"
    status, body = _post(url, data=_crop_png(), headers={"Content-Type": "image/png"})
    assert status == 200 and body["label"], body
    # what `curl -F image=@crop.png` and a browser form send
    status, body = _post(url, files={"image": ("crop.png", _crop_png(), "image/png")})
    assert status == 200 and body["label"], body
    payload = {"image": base64.b64encode(_crop_png()).decode(), "kind": "crop"}
    status, body = _post(server.url + "/api/predict", json=payload)
    assert status == 200 and body["kind"] == "crop"


JSON = {"Content-Type": "application/json"}
HOSTILE = {
    # name: (request keyword arguments, expected status, a fragment of the error)
    "pixel bomb": (dict(data=_png_bomb(), headers={"Content-Type": "image/png"}), 413,
                   "image too large (50000x50000"),
    "not an image": (dict(data=b"GIF89a" + bytes(40), headers={"Content-Type": "image/gif"}),
                     400, "cannot decode"),
    "broken png": (dict(data=b"\x89PNG\r\n\x1a\nbroken", headers={"Content-Type": "image/png"}),
                   400, "cannot decode"),
    "too big": (dict(data=b"x" * 2_000_001, headers={"Content-Type": "image/png"}), 413,
                "exceeds the limit"),
    "wrong type": (dict(data=b"hello", headers={"Content-Type": "text/plain"}), 415,
                   "unsupported content type"),
    "no type": (dict(data=b"hello", headers={"Content-Type": ""}), 415, "unsupported"),
    "json without image": (dict(json={"boxes": []}), 400, '"image"'),
    "json image not a string": (dict(json={"image": 5}), 400, '"image"'),
    "json bad base64": (dict(json={"image": "***"}), 400, "base64"),
    "json huge integer": (dict(data=b'{"image": "", "boxes": [[' + b"9" * 5000 + b", 0, 1, 1]]}",
                               headers=JSON), 400, "not valid JSON"),
    "json deep nesting": (dict(data=b"[" * 100_000 + b"]" * 100_000, headers=JSON), 400,
                          "not valid JSON"),
    "json not json": (dict(data=b"{nope", headers={"Content-Type": "application/json"}), 400,
                      "not valid JSON"),
    "bad kind": (dict(json={"image": base64.b64encode(_crop_png()).decode(), "kind": "x"}), 400,
                 "kind must be"),
    "box beyond the image": (dict(json={"image": base64.b64encode(_crop_png()).decode(),
                                        "boxes": [[0, 0, 100000, 100000]]}), 400, "not inside"),
    "box of strings": (dict(json={"image": base64.b64encode(_crop_png()).decode(),
                                  "boxes": [["0", 0, 5, 5]]}), 400, "integers"),
    "box of floats": (dict(json={"image": base64.b64encode(_crop_png()).decode(),
                                 "boxes": [[0.5, 0, 5, 5]]}), 400, "integers"),
    "boxes not a list": (dict(json={"image": base64.b64encode(_crop_png()).decode(),
                                    "boxes": {"a": 1}}), 400, "list"),
    "too many boxes": (dict(json={"image": base64.b64encode(_crop_png()).decode(),
                                  "boxes": [[0, 0, 5, 5]] * 300}), 413, "at most 50"),
    "form without file": (dict(files={"other": ("a.txt", b"x", "text/plain")}), 400,
                          'file field "image"'),
    "form bad boxes": (dict(files={"image": ("c.png", _crop_png(), "image/png")},
                            data={"boxes": "[[1,"}), 400, "boxes"),
    "empty body": (dict(data=b"", headers={"Content-Type": "image/png"}), 400, "empty"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_requests_get_their_4xx(server, name: str) -> None:
    kw, status, fragment = HOSTILE[name]
    got, body = _post(server.url + "/api/predict", **kw)
    assert got == status, body
    assert fragment in body["error"]


def test_host_origin_paths_and_health(server, model_file) -> None:
    r = requests.get(server.url + "/api/health", headers={"Host": "evil.example"}, timeout=10)
    assert r.status_code == 421 and "not served here" in r.json()["error"]
    r = requests.post(
        server.url + "/api/predict",
        data=_crop_png(),
        headers={"Content-Type": "image/png", "Origin": "http://evil.example"},
        timeout=10,
    )
    assert r.status_code == 403
    assert requests.get(server.url + "/nope", timeout=10).status_code == 404
    assert requests.get(server.url + "/api/predict", timeout=10).status_code == 405
    health = requests.get(server.url + "/api/health", timeout=10).json()
    # no path of the server's disk; no calibration.json beside this model: data unknown
    assert health == {"status": "ok", "model": "model.keras", "trained_on": "unknown"}
    assert str(model_file.parent) not in json.dumps(health)
    spec = requests.get(server.url + "/api/openapi.json", timeout=10).json()
    assert "/api/predict" in spec["paths"] and spec["openapi"].startswith("3.")
    docs = requests.get(server.url + "/api/docs", timeout=10)
    assert docs.status_code == 200 and "POST /api/predict" in docs.text and "cdn" not in docs.text


def test_raw_socket_abuse(server) -> None:
    """A negative Content-Length and a stalled half-request are answered or dropped
    without holding the server (it answers the next client at once)."""
    for head in (b"Content-Length: -5\r\n", b"Content-Length: abc\r\n"):
        with socket.create_connection((server.host, server.port), timeout=10) as s:
            s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n" + head + b"\r\n")
            answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    stalled = [socket.create_connection((server.host, server.port)) for _ in range(20)]
    for s in stalled:
        s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99\r\n\r\n")
    start = time.perf_counter()
    assert requests.get(server.url + "/api/health", timeout=10).status_code == 200
    assert time.perf_counter() - start < 5
    for s in stalled:
        s.close()


def test_token_and_binding(model_file) -> None:
    classifier = load_classifier(model_file)
    with pytest.raises(ValueError, match="beyond loopback\\) needs a token"):
        make_server(classifier, host="0.0.0.0", port=0)
    srv = make_server(classifier, port=0, token="s3cret").start()
    try:
        assert requests.get(srv.url + "/api/health", timeout=10).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert requests.get(srv.url + "/api/health", headers=bad, timeout=10).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert requests.get(srv.url + "/api/health", headers=good, timeout=10).status_code == 200
        assert requests.get(srv.url + "/", timeout=10).status_code == 200  # the page itself
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{srv.port}: "):
            make_server(classifier, port=srv.port)
    finally:
        srv.stop()


def _rss_peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


@pytest.mark.slow
def test_bounded_load_with_hostile_requests(repo, model_file, tmp_path) -> None:
    """8 clients x 100 requests, every 10th hostile (a pixel bomb, an oversize body, a
    box beyond the image, bad JSON), the rest health checks and crop predictions, against
    a `karyoflow serve` process: each request gets its expected status, the server's
    peak memory stays under 2 GB and it answers afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "karyoflow.cli", "serve", "--model", str(model_file),
         "--port", "0", "--max-mb", "2", "--results", str(tmp_path / "results")],
        cwd=repo, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            match = re.search(r"karyoflow serve: (http://\S+)/ ", line)
            url = match.group(1) if match else None
            assert line or proc.poll() is None, "serve exited"
        assert url, "serve did not start"
        crop = _crop_png()
        hostile = [
            (dict(data=_png_bomb(), headers={"Content-Type": "image/png"}), 413),
            (dict(data=b"x" * (2 * 1024 * 1024 + 1), headers={"Content-Type": "image/png"}), 413),
            (dict(json={"image": base64.b64encode(crop).decode(),
                        "boxes": [[0, 0, 10**6, 10**6]]}), 400),
            (dict(data=b"{" * 5000, headers={"Content-Type": "application/json"}), 400),
        ]  # fmt: skip

        def client(k: int) -> list[tuple[int, int]]:
            session, out = requests.Session(), []
            for i in range(100):
                if i % 10 == k % 10:
                    kw, want = hostile[(i // 10 + k) % len(hostile)]
                    got = session.post(url + "/api/predict", timeout=120, **kw).status_code
                elif i % 2:
                    want = 200
                    got = session.post(url + "/api/predict?kind=crop", data=crop,
                                       headers={"Content-Type": "image/png"},
                                       timeout=120).status_code  # fmt: skip
                else:
                    want, got = 200, session.get(url + "/api/health", timeout=30).status_code
                out.append((want, got))
            return out

        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            results = [r for rs in pool.map(client, range(8)) for r in rs]
        wall = time.perf_counter() - start
        wrong = [(w, g) for w, g in results if w != g]
        assert len(results) == 800 and not wrong, wrong[:10]
        assert sum(1 for w, _ in results if w != 200) == 80
        peak = _rss_peak_mb(proc.pid)
        assert peak < 2048, f"serve peaked at {peak:.0f} MB"
        assert requests.get(url + "/api/health", timeout=10).json()["status"] == "ok"
        print(f"load test: 800 requests in {wall:.1f} s, serve peak RSS {peak:.0f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
