"""Centromere annotation tool: session, CSV round trip, server, and a real browser."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from karyoflow.annotate import AnnotationSession, list_crops, make_server, read_annotations
from karyoflow.readers.centromeres import read_centromere_csv


def _crops(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = np.full((40, 20), 235, np.uint8)
        img[5:35, 6:14] = 60 + 20 * i
        path = folder / f"cell{i}.K.chr{i + 1}.1.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


@pytest.fixture
def served(tmp_path):
    _crops(tmp_path / "crops")
    session = AnnotationSession.open(tmp_path / "crops", tmp_path / "centromeres.csv")
    server = make_server(session, "127.0.0.1", 0, log=lambda msg: None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield session, server, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _post(url: str, body: dict, headers: dict | None = None):
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.loads(res.read())


def test_session_resumes_and_writes_reader_format(tmp_path):
    _crops(tmp_path / "crops")
    out = tmp_path / "centromeres.csv"
    s = AnnotationSession.open(tmp_path / "crops", out)
    assert s.first_open() == 0 and s.name(0) == "crops/cell0.K.chr1.1.png"
    s.set_point(0, 9.5, 14.0)
    s.set_point(2, 10.0, 20.0)
    assert s.save() == 2
    again = AnnotationSession.open(tmp_path / "crops", out)
    assert again.first_open() == 1 and again.point(0) == (9.5, 14.0)
    # the ingest rule's reader reads what the tool writes
    res = read_centromere_csv(out, dataset="clicked", options={"label_preset": "karyotype_gif"})
    assert not res.rejects
    assert [(r["label"], r["centromere_x"], r["centromere_y"]) for r in res.records] == [
        ("1", 9.5, 14.0),
        ("3", 10.0, 20.0),
    ]


def test_bad_input_one_line_errors(tmp_path):
    _crops(tmp_path / "crops", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("image,px,py\na.png,1,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv: wrong columns"):
        AnnotationSession.open(tmp_path / "crops", bad)
    bad.write_text("chr,tel,x,y\na.png,,one,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv: line 2"):
        read_annotations(bad)
    listing = tmp_path / "list.txt"
    listing.write_text("crops/cell0.K.chr1.1.png\ncrops/missing.png\n")
    with pytest.raises(FileNotFoundError, match=r"list\.txt: crop not found: .*missing\.png"):
        list_crops(listing)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        list_crops(tmp_path / "nothing")
    s = AnnotationSession.open(tmp_path / "crops", tmp_path / "ok.csv")
    with pytest.raises(
        ValueError, match=r"cell0\.K\.chr1\.1\.png: point \(25, 3\) outside the 20x40"
    ):
        s.set_point(0, 25, 3)


def test_csv_write_is_atomic(tmp_path, monkeypatch):
    _crops(tmp_path / "crops", 2)
    out = tmp_path / "c.csv"
    s = AnnotationSession.open(tmp_path / "crops", out)
    s.set_point(0, 1, 2)
    s.save()
    before = out.read_bytes()
    s.set_point(1, 3, 4)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        s.save()
    assert out.read_bytes() == before  # the previous file, never half a file
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_server_endpoints(served):
    session, _, url = served
    with urllib.request.urlopen(url + "/", timeout=10) as res:
        assert b"Centromere annotation" in res.read()
    with urllib.request.urlopen(url + "/api/image/1.png", timeout=10) as res:
        assert res.headers["Content-Type"] == "image/png"
        png = cv2.imdecode(np.frombuffer(res.read(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.shape == (40, 20)
    assert _post(url + "/api/point", {"index": 1, "x": 4, "y": 5})["x"] == 4
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(url + "/api/point", {"index": 1, "x": 400, "y": 5})
    assert err.value.code == 400 and "outside" in json.loads(err.value.read())["error"]
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(url + "/api/save", {}, {"Origin": "http://evil.example"})
    assert err.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(url + "/api/save", {}, {"Host": "rebound.example:80"})
    assert err.value.code == 403
    assert _post(url + "/api/save", {})["saved"] == 1
    assert read_annotations(session.csv_path) == {"crops/cell1.K.chr2.1.png": ("", 4.0, 5.0)}


@pytest.mark.slow
def test_browser_click_to_csv_row(served, browser_page):
    """Headless Chromium: click -> s (save) -> CSV row; n -> next; q -> saved and stopped."""
    session, _, url = served
    page = browser_page
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("#img[data-loaded='1']")
    zoom = int(page.get_attribute("#img", "data-zoom"))
    box = page.locator("#img").bounding_box()
    # centre of pixel (7, 12): pixel-centre coordinates x = 7, y = 12
    page.mouse.click(box["x"] + 7.5 * zoom, box["y"] + 12.5 * zoom)
    page.wait_for_selector("#status.dirty")
    page.keyboard.press("s")
    page.wait_for_selector("#status.saved")
    rows = read_annotations(session.csv_path)
    assert list(rows) == ["crops/cell0.K.chr1.1.png"]
    _, x, y = rows["crops/cell0.K.chr1.1.png"]
    assert abs(x - 7) <= 0.5 and abs(y - 12) <= 0.5
    # next crop (saves first), click, quit: both rows on disk and the server stops
    page.keyboard.press("n")
    page.wait_for_function("document.getElementById('name').textContent.includes('cell1')")
    page.wait_for_selector("#img[data-loaded='1']")
    box = page.locator("#img").bounding_box()
    page.mouse.click(box["x"] + 10.5 * zoom, box["y"] + 30.5 * zoom)
    page.wait_for_selector("#status.dirty")
    page.keyboard.press("q")
    page.wait_for_selector("body[data-quit='1']")
    rows = read_annotations(session.csv_path)
    assert len(rows) == 2
    _, x, y = rows["crops/cell1.K.chr2.1.png"]
    assert abs(x - 10) <= 0.5 and abs(y - 30) <= 0.5
    # resumable: a new session starts at the first crop without a point
    assert AnnotationSession.open(session.crops[0].parent, session.csv_path).first_open() == 2


def test_cli_bad_input_is_one_line(tmp_path):
    from karyoflow.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["annotate-centromeres", str(tmp_path / "nope"), "--out", str(tmp_path / "c.csv")])
    message = str(exc.value)
    assert message.startswith("karyoflow: ") and "nope" in message and "\n" not in message
    _crops(tmp_path / "crops", 1)
    (tmp_path / "c.csv").write_text("a,b\n")
    with pytest.raises(SystemExit, match=r"karyoflow: .*c\.csv: wrong columns"):
        main(["annotate-centromeres", str(tmp_path / "crops"), "--out", str(tmp_path / "c.csv")])


def test_hostile_requests_get_400_and_do_not_block(served):
    """Infinity, huge or non-integer indices, negative or bad Content-Length: each a
    400 with a reason, at once (a negative length once made the server wait forever)."""
    import socket

    _, server, url = served
    bodies = (b'{"index": Infinity, "x": 1, "y": 1}', b'{"index": 1e400, "x": 1, "y": 1}',
              b'{"index": "1", "x": 1, "y": 1}', b'{"index": true, "x": 1, "y": 1}',
              b'{"index": 0, "x": NaN, "y": 1}', b'{"index": 99999999999999999999}')  # fmt: skip
    for body in bodies:
        req = urllib.request.Request(url + "/api/point", body, {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 400, body
        assert json.loads(err.value.read())["error"]
    for length in (b"-5", b"abc"):
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as s:
            s.sendall(b"POST /api/point HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                      + length + b"\r\n\r\n")  # fmt: skip
            assert s.recv(4096).startswith(b"HTTP/1.0 400")


@pytest.mark.slow
def test_sigterm_saves_the_clicks(tmp_path):
    """``karyoflow annotate-centromeres`` stopped by SIGTERM (or SIGHUP) writes the
    points clicked since the last save, as Ctrl-C does."""
    import re
    import signal
    import subprocess
    import sys
    import time

    _crops(tmp_path / "crops", 2)
    csv = tmp_path / "c.csv"
    for sig in (signal.SIGTERM, signal.SIGHUP):
        proc = subprocess.Popen(
            [sys.executable, "-m", "karyoflow.cli", "annotate-centromeres", str(tmp_path / "crops"),
             "--out", str(csv), "--no-browser", "--port", "0"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        url = None
        while url is None:
            line = proc.stderr.readline()
            assert line, "annotate exited"
            found = re.search(r"open (http://\S+/)", line)
            url = found.group(1) if found else None
        index = 0 if sig == signal.SIGTERM else 1
        _post(url + "api/point", {"index": index, "x": 3, "y": 4})
        proc.send_signal(sig)
        proc.wait(timeout=30)
        time.sleep(0.1)
        assert len(read_annotations(csv)) == index + 1, sig
