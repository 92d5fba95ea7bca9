"""Unit tests for karyoflow.imageio on crafted files."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from karyoflow.imageio import ImageReadError, image_size, read_image, read_tiff_lenient


def _pattern(h: int = 20, w: int = 30, channels: int = 0, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    shape = (h, w) if channels == 0 else (h, w, channels)
    return rng.integers(0, top, size=shape, endpoint=True).astype(dtype)


def malformed_tiff(pixels: np.ndarray, byteorder: str = "<", strips: int = 2) -> bytes:
    """Build a TIFF with the pampaj7 defect: two strips, the second pointing at the IFD.

    Layout: header, pixel plane at offset 48, IFD right after the plane. Both strips
    declare the full plane size, so the second one runs past the end of the file.
    """
    h, w = pixels.shape
    start = 48
    plane = pixels.astype(np.uint8).tobytes()
    ifd = start + len(plane)
    bo = byteorder
    entries = []
    # arrays are placed between header and plane (offset 8..48)
    offs_pos, counts_pos = 8, 8 + 4 * strips

    def entry(tag: int, typ: int, count: int, value: int) -> bytes:
        if typ == 3 and count == 1:
            return struct.pack(bo + "HHIHH", tag, typ, count, value, 0)
        return struct.pack(bo + "HHII", tag, typ, count, value)

    entries.append(entry(256, 3, 1, w))
    entries.append(entry(257, 3, 1, h))
    entries.append(entry(258, 3, 1, 8))
    entries.append(entry(259, 3, 1, 1))
    entries.append(entry(262, 3, 1, 1))
    if strips == 1:
        entries.append(entry(273, 4, 1, start))
    else:
        entries.append(entry(273, 4, strips, offs_pos))
    entries.append(entry(277, 3, 1, 1))
    entries.append(entry(278, 4, 1, h))
    if strips == 1:
        entries.append(entry(279, 4, 1, len(plane)))
    else:
        entries.append(entry(279, 4, strips, counts_pos))
    offsets = [start] + [ifd] * (strips - 1)
    arrays = struct.pack(bo + "I" * strips, *offsets) + struct.pack(
        bo + "I" * strips, *([len(plane)] * strips)
    )
    head = (b"II" if bo == "<" else b"MM") + struct.pack(bo + "HI", 42, ifd)
    pre = head + arrays
    pre = pre + b"\0" * (start - len(pre))
    body = struct.pack(bo + "H", len(entries)) + b"".join(entries) + struct.pack(bo + "I", 0)
    return pre + plane + body


# ------------------------------------------------------------------ positive cases


@pytest.mark.parametrize("channels", [0, 3, 4])
def test_png_roundtrip(tmp_path: Path, channels: int) -> None:
    arr = _pattern(channels=channels)
    path = tmp_path / "a.png"
    Image.fromarray(arr).save(path)
    out = read_image(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, arr)
    assert image_size(path) == (30, 20)


def test_png_16bit(tmp_path: Path) -> None:
    arr = _pattern(dtype=np.uint16)
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), arr)
    out = read_image(path)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize(
    ("channels", "dtype", "byteorder"),
    [
        (0, np.uint8, "<"),
        (0, np.uint16, "<"),
        (0, np.uint16, ">"),
        (3, np.uint8, ">"),
        (4, np.uint8, "<"),
    ],
)
def test_tiff_roundtrip(tmp_path: Path, channels: int, dtype, byteorder: str) -> None:
    arr = _pattern(channels=channels, dtype=dtype)
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, arr, byteorder=byteorder, rowsperstrip=7)
    out = read_image(path)
    assert out.dtype == arr.dtype
    np.testing.assert_array_equal(out, arr)
    assert image_size(path) == (30, 20)


def test_tiff_lzw(tmp_path: Path) -> None:
    arr = _pattern(h=40, w=25)
    path = tmp_path / "a.tiff"
    Image.fromarray(arr).save(path, compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(path), arr)


def test_jpeg_gif_bmp(tmp_path: Path) -> None:
    arr = np.full((16, 24, 3), 200, np.uint8)
    arr[4:10, 5:15] = (10, 20, 30)
    for ext in ("jpg", "gif", "bmp"):
        path = tmp_path / f"a.{ext}"
        Image.fromarray(arr).save(path)
        out = read_image(path)
        assert out.shape == (16, 24, 3), ext
        assert abs(int(out[7, 10, 0]) - 10) < 12, ext
        assert read_image(path, grey=True).shape == (16, 24)
        assert image_size(path) == (24, 16)


def test_grey_rgba_composites_over_white(tmp_path: Path) -> None:
    arr = np.zeros((4, 4, 4), np.uint8)  # transparent black
    arr[0, 0] = (0, 0, 0, 255)  # one opaque black pixel
    path = tmp_path / "a.png"
    Image.fromarray(arr).save(path)
    grey = read_image(path, grey=True)
    assert grey[0, 0] == 0
    assert grey[3, 3] == 255


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_lenient_tiff_pampaj7_defect(tmp_path: Path, byteorder: str) -> None:
    arr = np.full((60, 52), 255, np.uint8)
    arr[10:50, 20:30] = 40
    path = tmp_path / "bad.tiff"
    path.write_bytes(malformed_tiff(arr, byteorder))
    with pytest.raises(OSError):  # the defect is real: PIL refuses it
        Image.open(path).load()
    np.testing.assert_array_equal(read_image(path), arr)
    np.testing.assert_array_equal(read_tiff_lenient(path), arr)
    assert image_size(path) == (52, 60)


def test_lenient_tiff_refuses_short_plane(tmp_path: Path) -> None:
    arr = np.full((60, 52), 255, np.uint8)
    path = tmp_path / "short.tiff"
    data = malformed_tiff(arr)
    # keep the IFD but drop pixel bytes: rewrite so the plane is 100 bytes short
    ifd = struct.unpack("<I", data[4:8])[0]
    body = data[ifd:]
    short_plane_end = ifd - 100
    new_ifd = short_plane_end
    data2 = data[:4] + struct.pack("<I", new_ifd) + data[8:short_plane_end] + body
    path.write_bytes(data2)
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(path)


# ------------------------------------------------------------------ bad inputs


def test_truncated_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    Image.fromarray(_pattern(h=200, w=200, channels=3)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(path)) is not None  # OpenCV would silently accept it
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(path)


def test_truncated_png(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(_pattern(h=100, w=100)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(path)


def test_corrupt_png_crc(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(_pattern(h=50, w=50)).save(path)
    data = bytearray(path.read_bytes())
    data[60] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match="corrupt"):
        read_image(path)


@pytest.mark.parametrize("compression", [None, "tiff_lzw"])
def test_truncated_tiff(tmp_path: Path, compression: str | None) -> None:
    path = tmp_path / "a.tif"
    arr = _pattern(h=120, w=80)
    # strips first, IFD at the end is PIL's layout; put the IFD first with tifffile
    if compression is None:
        tifffile.imwrite(path, arr)
    else:
        Image.fromarray(arr).save(path, compression=compression)
    data = path.read_bytes()
    ifd = struct.unpack("<I", data[4:8])[0]
    if ifd > len(data) // 2:  # IFD at the end: cut pixel data out of the middle
        cut = data[:100] + data[len(data) // 2 :]
        shift = len(data) - len(cut)
        cut = cut[:4] + struct.pack("<I", ifd - shift) + cut[8:]
        path.write_bytes(cut)
    else:
        path.write_bytes(data[: len(data) - 500])
    with pytest.raises(ImageReadError):
        read_image(path)


def test_empty_and_not_an_image(tmp_path: Path) -> None:
    empty = tmp_path / "e.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        read_image(empty)
    text = tmp_path / "t.jpg"
    text.write_text("hello")
    with pytest.raises(ImageReadError, match="not an image"):
        read_image(text)
    with pytest.raises(ImageReadError, match="not an image"):
        image_size(text)


def test_error_message_names_path(tmp_path: Path) -> None:
    path = tmp_path / "x.gif"
    path.write_bytes(b"GIF89a\x10\x00")
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert str(info.value).startswith(f"{path}: ")
    assert isinstance(info.value, ValueError)
