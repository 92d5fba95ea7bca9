"""Robust image reading for every dataset the workflow ingests.

:func:`read_image` decodes JPEG, PNG, GIF, BMP and TIFF (8/16-bit, grey/RGB/RGBA) and
*detects* damaged files instead of returning partial pixels: OpenCV and libjpeg happily
return the top half of a truncated JPEG, so each format is checked structurally first.

TIFF is parsed here (first IFD, both byte orders). Uncompressed strips are decoded
directly with numpy; compressed ones go to OpenCV (libtiff) once the strips are known to
lie inside the file. Files whose strip table is inconsistent -- the
``pampaj7-datanew`` crops declare two strips of which the second points at the IFD --
are decoded leniently when one uncompressed plane of ``width * height * samples`` bytes
is available from the first strip offset -- and before the IFD, when the IFD follows the
pixels (:func:`read_tiff_lenient`). A file that is genuinely short of pixel data is an
error.

Colour images are returned in RGB(A) order (not OpenCV's BGR).

Every image is checked against :class:`ImageLimits` *before* any pixel is decoded: the
file size, and the pixel count its header declares (a 69-byte PNG may declare
50,000 x 50,000 pixels). JPEGs are first decoded strictly (libjpeg-turbo through
``simplejpeg``, every decoder warning an error), which rejects cut, padded and
overwritten scans that PIL and OpenCV return as grey or smeared pixels; single flipped
bits that still decode to valid codes cannot be detected (JPEG has no checksum).
Every decoder failure becomes an :class:`ImageReadError` naming the file.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile

__all__ = [
    "IMAGE_EXTENSIONS",
    "LIMIT_ENV",
    "ImageLimits",
    "ImageReadError",
    "TiffInfo",
    "declared_size",
    "decode_image",
    "image_limits",
    "image_size",
    "parse_tiff_header",
    "read_image",
    "read_tiff_lenient",
    "set_image_limits",
]

#: File extensions (lower case, no dot) the readers treat as images by default.
IMAGE_EXTENSIONS: tuple[str, ...] = ("jpg", "jpeg", "png", "tif", "tiff", "gif", "bmp")

# Never let PIL paper over truncation.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_TIFF_TYPES = {  # type -> (struct code, size)
    1: ("B", 1),
    2: ("c", 1),
    3: ("H", 2),
    4: ("I", 4),
    5: ("II", 8),
    6: ("b", 1),
    7: ("B", 1),
    8: ("h", 2),
    9: ("i", 4),
    10: ("ii", 8),
    11: ("f", 4),
    12: ("d", 8),
    16: ("Q", 8),
}
_WANTED_TAGS = {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 339}


class ImageReadError(ValueError):
    """An image that cannot be decoded; the message is ``"<path>: <reason>"``."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class ImageLimits:
    """What one image may cost before it is decoded (config ``limits``).

    Parameters
    ----------
    max_pixels : int
        Pixels the header may declare (width x height); 50 M is a 7,000 x 7,000 frame,
        70 times a Taichung metaphase.
    max_bytes : int
        Size of the file.
    """

    max_pixels: int = 50_000_000
    max_bytes: int = 200_000_000

    def check(self, path: str | Path, width: int, height: int) -> None:
        """Raise :class:`ImageReadError` when ``width x height`` is over the limit."""
        if width <= 0 or height <= 0:
            raise ImageReadError(path, f"corrupt image (declared size {width}x{height})")
        if width * height > self.max_pixels:
            raise ImageReadError(
                path,
                f"image too large ({width}x{height} = {width * height:,} pixels declared; "
                f"limit {self.max_pixels:,})",
            )

    def env(self) -> dict[str, str]:
        """The environment variables that carry these limits to job processes."""
        return {LIMIT_ENV[k]: str(getattr(self, k)) for k in LIMIT_ENV}


#: Environment variables read by :func:`image_limits` (set from config ``limits`` by
#: the workflow and the ``karyoflow`` command, so every job process applies them).
LIMIT_ENV = {"max_pixels": "KARYOFLOW_MAX_IMAGE_PIXELS", "max_bytes": "KARYOFLOW_MAX_IMAGE_BYTES"}
_LIMITS: list[ImageLimits | None] = [None]


def image_limits() -> ImageLimits:
    """The limits :func:`read_image` applies when it is given none: those set by
    :func:`set_image_limits`, else those of :data:`LIMIT_ENV`, else the defaults."""
    if _LIMITS[0] is not None:
        return _LIMITS[0]
    values = {}
    for key, name in LIMIT_ENV.items():
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                values[key] = int(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r}: not an integer") from None
    return ImageLimits(**values)


def set_image_limits(limits: ImageLimits | None = None, **values: int) -> ImageLimits:
    """Set this process's default limits and export them (:data:`LIMIT_ENV`) to the
    processes it starts; no argument restores the built-in defaults.

    Examples
    --------
    >>> set_image_limits(max_pixels=1000).max_pixels
    1000
    >>> set_image_limits().max_pixels
    50000000
    """
    _LIMITS[0] = limits or ImageLimits(**values)
    os.environ.update(_LIMITS[0].env())
    return _LIMITS[0]


@dataclass(frozen=True)
class TiffInfo:
    """The fields of a TIFF's first IFD that decoding needs."""

    byteorder: str  # "<" or ">"
    width: int
    height: int
    bits_per_sample: int
    samples_per_pixel: int
    compression: int
    photometric: int
    planar: int
    sample_format: int
    rows_per_strip: int
    strip_offsets: tuple[int, ...]
    strip_byte_counts: tuple[int, ...]
    tiled: bool
    ifd_offset: int


# --------------------------------------------------------------------------- TIFF


def parse_tiff_header(data: bytes, path: str | Path = "<bytes>") -> TiffInfo:
    """Parse the first IFD of a classic (non-Big) TIFF.

    Parameters
    ----------
    data : bytes
        The whole file, or at least everything up to the end of the first IFD and the
        arrays it points at.
    path : str or Path, optional
        Used in error messages only.

    Returns
    -------
    TiffInfo

    Raises
    ------
    ImageReadError
        If the header or IFD is damaged or lies outside ``data``.
    """
    if len(data) < 8:
        raise ImageReadError(path, "truncated image (TIFF header)")
    if data[:2] == b"II":
        bo = "<"
    elif data[:2] == b"MM":
        bo = ">"
    else:
        raise ImageReadError(path, "not a TIFF file")
    magic, ifd = struct.unpack(bo + "HI", data[2:8])
    if magic == 43:
        raise ImageReadError(path, "BigTIFF is not supported")
    if magic != 42:
        raise ImageReadError(path, "not a TIFF file")
    if ifd + 2 > len(data) or ifd < 8:
        raise ImageReadError(path, "truncated image (IFD offset outside file)")
    (n,) = struct.unpack(bo + "H", data[ifd : ifd + 2])
    if ifd + 2 + 12 * n > len(data):
        raise ImageReadError(path, "truncated image (IFD runs past end of file)")
    tags: dict[int, tuple[int, ...]] = {}
    for k in range(n):
        pos = ifd + 2 + 12 * k
        tag, typ, count = struct.unpack(bo + "HHI", data[pos : pos + 8])
        if tag not in _WANTED_TAGS or typ not in _TIFF_TYPES:
            continue
        code, size = _TIFF_TYPES[typ]
        nbytes = size * count
        if nbytes <= 4:
            start = pos + 8
        else:
            (start,) = struct.unpack(bo + "I", data[pos + 8 : pos + 12])
            if start + nbytes > len(data):
                raise ImageReadError(path, f"truncated image (tag {tag} data outside file)")
        fmt = bo + (code[0] * (count * len(code)))
        tags[tag] = tuple(int(v) for v in struct.unpack(fmt, data[start : start + nbytes]))

    def one(tag: int, default: int | None = None) -> int:
        if tags.get(tag):
            return tags[tag][0]
        if default is None:
            raise ImageReadError(path, f"not a valid TIFF (required tag {tag} missing)")
        return default

    width, height = one(256), one(257)
    spp = one(277, 1)
    bps_all = tags.get(258, (1,))
    if len(set(bps_all)) > 1:
        raise ImageReadError(path, f"unsupported TIFF (mixed bits per sample {bps_all})")
    tiled = 322 in tags
    offsets = tags.get(324 if tiled else 273, ())
    counts = tags.get(325 if tiled else 279, ())
    if not offsets:
        raise ImageReadError(path, "not a valid TIFF (no strip or tile offsets)")
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"not a valid TIFF (size {width}x{height})")
    return TiffInfo(
        byteorder=bo,
        width=width,
        height=height,
        bits_per_sample=bps_all[0],
        samples_per_pixel=spp,
        compression=one(259, 1),
        photometric=one(262, 1 if spp < 3 else 2),
        planar=one(284, 1),
        sample_format=one(339, 1),
        rows_per_strip=min(one(278, height), height) or height,
        strip_offsets=offsets,
        strip_byte_counts=counts,
        tiled=tiled,
        ifd_offset=ifd,
    )


def _tiff_dtype(info: TiffInfo) -> np.dtype | None:
    if info.sample_format != 1 or info.bits_per_sample not in (8, 16):
        return None
    return np.dtype(f"{info.byteorder}u{info.bits_per_sample // 8}")


def _plane_shape(info: TiffInfo) -> tuple[int, ...]:
    if info.samples_per_pixel == 1:
        return (info.height, info.width)
    return (info.height, info.width, info.samples_per_pixel)


def _finish_plain(info: TiffInfo, buf: bytes | memoryview) -> np.ndarray:
    dtype = _tiff_dtype(info)
    assert dtype is not None
    count = info.width * info.height * info.samples_per_pixel
    arr = np.frombuffer(buf, dtype=dtype, count=count).reshape(_plane_shape(info))
    arr = arr.astype(dtype.newbyteorder("="), copy=True)
    if info.photometric == 0 and info.samples_per_pixel == 1:  # WhiteIsZero
        arr = np.iinfo(arr.dtype).max - arr
    return arr


def read_tiff_lenient(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """Decode an uncompressed 8/16-bit TIFF whose strip table is inconsistent.

    The pixel plane is read as ``width * height * samples`` contiguous values starting
    at the first strip offset, ignoring the declared strip count and sizes. This is what
    the malformed ``pampaj7-datanew`` crops need (two strips declared, the second one
    pointing at the IFD).

    Parameters
    ----------
    path : str or Path
        The file (read when ``data`` is not given; named in errors).
    data : bytes, optional
        The file's content, if already in memory.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` or ``(H, W, S)`` array of ``uint8``/``uint16``.

    Raises
    ------
    ImageReadError
        If the file is compressed, not 8/16-bit unsigned, planar, or holds fewer than
        ``width * height * samples`` values after the first strip offset (truncated).
    """
    if data is None:
        data = Path(path).read_bytes()
    info = parse_tiff_header(data, path)
    if info.compression != 1:
        raise ImageReadError(path, f"truncated image (compressed TIFF, scheme {info.compression})")
    dtype = _tiff_dtype(info)
    if dtype is None or info.planar != 1 or info.tiled:
        raise ImageReadError(path, "truncated image (unsupported layout for lenient decoding)")
    need = info.width * info.height * info.samples_per_pixel * dtype.itemsize
    start = info.strip_offsets[0]
    # Pixel data may not run into the IFD: bytes "available" end at the IFD when it
    # follows the data (pampaj7: the plane ends exactly where the IFD starts).
    limit = info.ifd_offset if info.ifd_offset >= start else len(data)
    limit = min(limit, len(data))
    if start < 8 or start + need > limit:
        raise ImageReadError(
            path, f"truncated image ({max(0, limit - start)} of {need} pixel bytes present)"
        )
    return _finish_plain(info, memoryview(data)[start : start + need])


def _strips_consistent(info: TiffInfo, size: int) -> bool:
    offs, counts = info.strip_offsets, info.strip_byte_counts
    if len(offs) != len(counts):
        return False
    if not info.tiled and info.planar == 1:
        expected = -(-info.height // info.rows_per_strip)
        if len(offs) != expected:
            return False
    return all(o >= 8 and c >= 0 and o + c <= size for o, c in zip(offs, counts, strict=True))


def _read_tiff(path: str | Path, data: bytes) -> np.ndarray:
    info = parse_tiff_header(data, path)
    dtype = _tiff_dtype(info)
    plain = (
        info.compression == 1
        and dtype is not None
        and info.planar == 1
        and not info.tiled
        and info.photometric in (0, 1, 2)
    )
    if not _strips_consistent(info, len(data)):
        # Lenient path: only for uncompressed data that is fully present.
        return read_tiff_lenient(path, data)
    if plain:
        need = info.width * info.height * info.samples_per_pixel * dtype.itemsize
        if len(info.strip_offsets) == 1:
            buf: bytes | memoryview = memoryview(data)[info.strip_offsets[0] :][:need]
        else:
            pairs = zip(info.strip_offsets, info.strip_byte_counts, strict=True)
            buf = b"".join(data[o : o + c] for o, c in pairs)
        if len(buf) < need:
            raise ImageReadError(path, f"truncated image ({len(buf)} of {need} pixel bytes)")
        return _finish_plain(info, buf)
    arr = _cv2_decode(path, data)
    if arr is None:
        return _pil_decode(path, data)
    return _bgr_to_rgb(arr)


# --------------------------------------------------------------------------- others


def _cv2_decode(path: str | Path, data: bytes) -> np.ndarray | None:
    """OpenCV's decoder, its exceptions as :class:`ImageReadError` (None: it declined)."""
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "OpenCV error"
        raise ImageReadError(path, f"corrupt image (OpenCV: {reason})") from None


def _check_jpeg(path: str | Path, data: bytes) -> None:
    """Decode strictly (libjpeg-turbo warnings are errors): corrupt or cut scans."""
    import simplejpeg

    try:
        _, _, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        space = "CMYK" if colorspace in ("CMYK", "YCCK") else "GRAY"
        simplejpeg.decode_jpeg(data, colorspace=space, fastdct=True, strict=True)
    except (ValueError, RuntimeError, OSError) as exc:
        msg = str(exc).strip() or type(exc).__name__
        kind = "truncated" if "premature end of jpeg file" in msg.lower() else "corrupt"
        raise ImageReadError(path, f"{kind} image (JPEG: {msg})") from None


def _jpeg_size(path: str | Path, data: bytes) -> tuple[int, int]:
    """``(width, height)`` of the first start-of-frame marker."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ImageReadError(path, "corrupt image (JPEG marker expected)")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:
            break
        pos += 2 + length
    raise ImageReadError(path, "truncated image (JPEG without a frame header)")


def declared_size(data: bytes, path: str | Path = "<bytes>") -> tuple[int, int]:
    """``(width, height)`` as the header of a JPEG, PNG, GIF, BMP or TIFF declares it,
    from its first bytes (a TIFF may need the whole file), without decoding pixels.

    Raises
    ------
    ImageReadError
        Unknown signature, or a header too short or damaged to tell.

    Examples
    --------
    >>> png = b"\\x89PNG\\r\\n\\x1a\\n" + bytes(4) + b"IHDR" + (50000).to_bytes(4, "big") * 2
    >>> declared_size(png)
    (50000, 50000)
    """
    kind = _sniff(data)
    if kind == "tiff":
        info = parse_tiff_header(data, path)
        return info.width, info.height
    if kind == "png":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageReadError(path, "truncated image (PNG header)")
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if kind == "gif":
        if len(data) < 10:
            raise ImageReadError(path, "truncated image (GIF header)")
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if kind == "bmp":
        if len(data) < 26:
            raise ImageReadError(path, "truncated image (BMP header)")
        (dib,) = struct.unpack("<I", data[14:18])
        if dib == 12:  # OS/2 BITMAPCOREHEADER
            width, height = struct.unpack("<HH", data[18:22])
        else:
            width, height = struct.unpack("<ii", data[18:26])
        return abs(int(width)), abs(int(height))
    if kind == "jpeg":
        return _jpeg_size(path, data)
    raise ImageReadError(path, "not an image (unknown file signature)")


def _bgr_to_rgb(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    return arr


def _check_png(path: str | Path, data: bytes) -> None:
    """Walk the PNG chunks: every chunk complete, CRCs right, IEND present."""
    pos = 8
    size = len(data)
    while True:
        if pos + 8 > size:
            raise ImageReadError(path, "truncated image (PNG ends before IEND)")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > size:
            raise ImageReadError(path, f"truncated image (PNG chunk {ctype!r} incomplete)")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            raise ImageReadError(path, f"corrupt image (PNG chunk {ctype!r} CRC mismatch)")
        if ctype == b"IEND":
            return
        pos = end


def _pil_decode(path: str | Path, data: bytes) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                mode = im.mode
                if mode == "P":
                    im2 = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif mode in ("1", "L", "RGB", "RGBA", "I;16", "I;16B", "I;16L", "I", "F"):
                    im2 = im
                elif mode in ("LA", "PA"):
                    im2 = im.convert("RGBA")
                else:  # CMYK, YCbCr, LAB, ...
                    im2 = im.convert("RGB")
                arr = np.asarray(im2)
    except ImageReadError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        msg = str(exc) or type(exc).__name__
        if "truncated" in msg.lower() or isinstance(exc, EOFError):
            raise ImageReadError(path, f"truncated image ({msg})") from None
        raise ImageReadError(path, f"corrupt image ({msg})") from None
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"image too large ({exc})") from None
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    return np.ascontiguousarray(arr)


def _sniff(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return ""


def _to_grey(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        return arr
    if arr.shape[2] == 4:
        # Composite over white: transparent background becomes background.
        rgb = arr[..., :3].astype(np.float32)
        alpha = arr[..., 3:4].astype(np.float32) / float(np.iinfo(arr.dtype).max)
        top = float(np.iinfo(arr.dtype).max)
        rgb = rgb * alpha + top * (1.0 - alpha)
        arr = np.clip(np.rint(rgb), 0, top).astype(arr.dtype)
    if arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    return arr[..., 0]


def read_image(
    path: str | Path, *, grey: bool = False, limits: ImageLimits | None = None
) -> np.ndarray:
    """Read an image, refusing truncated, corrupt or oversized files.

    Parameters
    ----------
    path : str or Path
        JPEG, PNG, GIF, BMP or TIFF file. The format is taken from the file's magic
        bytes, not its extension.
    grey : bool, optional
        Return a 2-D array; RGB is converted with ITU-R 601 weights, RGBA is first
        composited over white.
    limits : ImageLimits, optional
        File size and declared pixels allowed (default :func:`image_limits`), checked
        before decoding.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA; ``uint8`` or
        ``uint16`` as stored (16-bit TIFF/PNG stay 16-bit).

    Raises
    ------
    ImageReadError
        ``"<path>: <reason>"`` where reason starts with ``empty file``, ``not an
        image``, ``file too large``, ``image too large``, ``truncated image`` or
        ``corrupt image``.
    OSError
        If the file cannot be opened at all (missing, permission denied).
    """
    limits = limits or image_limits()
    size = Path(path).stat().st_size
    if size > limits.max_bytes:
        raise ImageReadError(path, f"file too large ({size:,} bytes; limit {limits.max_bytes:,})")
    data = Path(path).read_bytes()
    return decode_image(data, path, grey=grey, limits=limits)


def decode_image(
    data: bytes,
    path: str | Path = "<upload>",
    *,
    grey: bool = False,
    limits: ImageLimits | None = None,
) -> np.ndarray:
    """:func:`read_image` for bytes already in memory (an upload); ``path`` names them
    in errors."""
    limits = limits or image_limits()
    if len(data) > limits.max_bytes:
        raise ImageReadError(
            path, f"file too large ({len(data):,} bytes; limit {limits.max_bytes:,})"
        )
    if not data:
        raise ImageReadError(path, "empty file")
    kind = _sniff(data)
    if not kind:
        raise ImageReadError(path, "not an image (unknown file signature)")
    limits.check(path, *declared_size(data, path))
    if kind == "tiff":
        arr = _read_tiff(path, data)
    elif kind == "png":
        _check_png(path, data)
        arr = _cv2_decode(path, data)
        arr = _pil_decode(path, data) if arr is None else _bgr_to_rgb(arr)
    else:
        if kind == "jpeg":
            _check_jpeg(path, data)
        arr = _pil_decode(path, data)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.size == 0:
        raise ImageReadError(path, "corrupt image (no pixels)")
    return _to_grey(arr) if grey else arr


def image_size(path: str | Path, *, limits: ImageLimits | None = None) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding pixels.

    This does not prove the image decodes; use :func:`read_image` for that.

    Raises
    ------
    ImageReadError
        If the header cannot be read, or declares more pixels than ``limits``
        (default :func:`image_limits`) allow.
    """
    width, height = _header_size(Path(path))
    (limits or image_limits()).check(path, width, height)
    return width, height


def _header_size(path: Path) -> tuple[int, int]:
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(65536)
    if not head:
        raise ImageReadError(path, "empty file")
    if _sniff(head) == "tiff":
        try:
            return declared_size(head, path)
        except ImageReadError:
            return declared_size(path.read_bytes(), path)
    return declared_size(head, path)
