"""Hostile and damaged images, crafted here: pixel bombs in every format, corrupt JPEG
scans, limits from the config or the environment, and what the readers make of them."""

from __future__ import annotations

import io
import resource
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from karyoflow import imageio
from karyoflow.imageio import (
    ImageLimits,
    ImageReadError,
    declared_size,
    decode_image,
    read_image,
    set_image_limits,
)
from karyoflow.readers.crops import read_crops

BOMB = 50_000  # declared width and height: 2.5 G pixels


@pytest.fixture(autouse=True)
def _default_limits():
    set_image_limits()
    yield
    set_image_limits()


def _picture(h: int = 240, w: int = 320) -> np.ndarray:
    """A grey test picture with edges and texture (so JPEG scans carry real data)."""
    rng = np.random.default_rng(0)
    img = np.full((h, w), 220, np.uint8)
    for _ in range(30):
        y, x = rng.integers(0, max(h - 40, 1)), rng.integers(0, max(w - 12, 1))
        img[y : y + 40, x : x + 12] = rng.integers(20, 120)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def _encoded(ext: str) -> bytes:
    if ext == ".gif":
        buf = io.BytesIO()
        Image.fromarray(_picture(20, 20)).save(buf, format="GIF")
        return buf.getvalue()
    ok, buf = cv2.imencode(ext, _picture(20, 20))
    assert ok
    return buf.tobytes()


def _png_bomb() -> bytes:
    data = bytearray(_encoded(".png"))
    data[16:24] = struct.pack(">II", BOMB, BOMB)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # a valid IHDR CRC
    return bytes(data)


def _jpeg_bomb() -> bytes:
    data = bytearray(_encoded(".jpg"))
    pos = data.index(b"\xff\xc0")  # baseline start of frame: length, precision, h, w
    data[pos + 5 : pos + 9] = struct.pack(">HH", BOMB, BOMB)
    return bytes(data)


def _tiff_bomb() -> bytes:
    w = h = BOMB
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, h),
               (279, 4, 1, 16)]  # fmt: skip
    ifd = 8 + 16
    out = b"II*\x00" + struct.pack("<I", ifd) + bytes(16) + struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        packed = struct.pack("<I", value) if typ == 4 else struct.pack("<HH", value, 0)
        out += struct.pack("<HHI", tag, typ, count) + packed
    return out + struct.pack("<I", 0)


def _gif_bomb() -> bytes:
    data = bytearray(_encoded(".gif"))
    data[6:10] = struct.pack("<HH", BOMB, BOMB)
    return bytes(data)


def _bmp_bomb() -> bytes:
    data = bytearray(_encoded(".bmp"))
    data[18:26] = struct.pack("<ii", BOMB, BOMB)
    return bytes(data)


BOMBS = {".png": _png_bomb, ".jpg": _jpeg_bomb, ".tif": _tiff_bomb, ".gif": _gif_bomb,
         ".bmp": _bmp_bomb}  # fmt: skip


@pytest.mark.parametrize("ext", sorted(BOMBS))
def test_pixel_bombs_are_refused_before_decoding(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"bomb{ext}"
    path.write_bytes(BOMBS[ext]())
    assert path.stat().st_size < 2000
    assert declared_size(path.read_bytes(), path) == (BOMB, BOMB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageReadError, match=r"image too large \(50000x50000 = 2,500,000,000"):
        read_image(path)
    with pytest.raises(ImageReadError, match="image too large"):
        imageio.image_size(path)  # the header-only size check applies the limits too
    # nothing was decoded: the process grew by far less than one bomb's 2.5 GB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".gif", ".bmp"])
def test_ordinary_images_of_every_format_still_decode(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"ok{ext}"
    if ext == ".tif":
        import tifffile

        tifffile.imwrite(path, _picture(20, 20))
    else:
        path.write_bytes(_encoded(ext))
    assert read_image(path, grey=True).shape == (20, 20)
    assert imageio.image_size(path) == (20, 20)


def test_limits_from_arguments_config_and_environment(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "ok.png"
    path.write_bytes(_encoded(".png"))
    with pytest.raises(ImageReadError, match=r"20x20 = 400 pixels declared; limit 399"):
        read_image(path, limits=ImageLimits(max_pixels=399))
    with pytest.raises(ImageReadError, match=r"file too large \(\d+ bytes; limit 10\)"):
        read_image(path, limits=ImageLimits(max_bytes=10))
    from karyoflow.config import apply_limits

    apply_limits({"limits": {"max_image_pixels": 100}})  # as the workflow and the CLI do
    assert imageio.os.environ["KARYOFLOW_MAX_IMAGE_PIXELS"] == "100"
    with pytest.raises(ImageReadError, match="limit 100"):
        read_image(path)
    # a job process finds them in its environment
    imageio._LIMITS[0] = None
    monkeypatch.setenv("KARYOFLOW_MAX_IMAGE_PIXELS", "300")
    with pytest.raises(ImageReadError, match="limit 300"):
        read_image(path)
    monkeypatch.setenv("KARYOFLOW_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="KARYOFLOW_MAX_IMAGE_PIXELS='lots': not an integer"):
        read_image(path)


def _jpeg(tmp_path: Path) -> tuple[bytes, np.ndarray]:
    _, buf = cv2.imencode(".jpg", _picture(), [cv2.IMWRITE_JPEG_QUALITY, 90])
    data = buf.tobytes()
    return data, read_image_bytes(data)


def read_image_bytes(data: bytes) -> np.ndarray:
    return decode_image(data, "x.jpg", grey=True)


def test_corrupt_jpeg_scans_are_rejected(tmp_path: Path) -> None:
    data, clean = _jpeg(tmp_path)
    assert clean.shape == (240, 320)
    # cut in half with an end marker appended: PIL and OpenCV return grey rows
    half = data[: len(data) // 2] + b"\xff\xd9"
    pil = np.asarray(Image.open(io.BytesIO(half)).convert("L"))
    assert pil.shape == clean.shape  # what a lenient decoder returns
    with pytest.raises(ImageReadError, match=r"corrupt image \(JPEG: .*premature end of data"):
        read_image_bytes(half)
    # 400 bytes overwritten in the middle of the scan
    broken = bytearray(data)
    mid = len(data) // 2
    broken[mid : mid + 400] = np.random.default_rng(1).integers(0, 256, 400, np.uint8).tobytes()
    with pytest.raises(ImageReadError, match=r"corrupt image \(JPEG: "):
        read_image_bytes(bytes(broken))
    # cut without an end marker
    with pytest.raises(ImageReadError, match="truncated image"):
        read_image_bytes(data[: len(data) * 2 // 3])


def test_decoder_exceptions_become_image_errors(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(_encoded(".png"))

    def boom(*_a, **_k):
        raise cv2.error("OpenCV(4) imgcodecs: out of memory")

    monkeypatch.setattr(imageio.cv2, "imdecode", boom)
    with pytest.raises(ImageReadError, match=r"x.png: corrupt image \(OpenCV: "):
        read_image(path)


def test_crop_reader_quarantines_bombs_and_corrupt_files(tmp_path: Path) -> None:
    good = tmp_path / "1" / "good.png"
    good.parent.mkdir()
    good.write_bytes(_encoded(".png"))
    for ext, make in BOMBS.items():
        (tmp_path / "2" / f"bomb{ext}").parent.mkdir(exist_ok=True)
        (tmp_path / "2" / f"bomb{ext}").write_bytes(make())
    data, _ = _jpeg(tmp_path)
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "cut.jpg").write_bytes(data[: len(data) // 2] + b"\xff\xd9")
    res = read_crops(tmp_path, dataset="c", options={})
    assert [Path(r["source"]).name for r in res.records] == ["good.png"]
    reasons = {Path(r.source).name: r.reason for r in res.rejects}
    assert set(reasons) == {*(f"bomb{e}" for e in BOMBS), "cut.jpg"}
    assert all(reasons[f"bomb{e}"].startswith("image too large") for e in BOMBS)
    assert reasons["cut.jpg"].startswith("corrupt image (JPEG")
