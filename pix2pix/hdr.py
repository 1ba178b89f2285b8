"""Reading and writing HDR images (linear float RGB) for the LDR->HDR task.

Radiance `.hdr` (RGBE) is read and written here with numpy, because imageio's only Radiance reader
(FreeImage) needs a binary download: flat and run-length-encoded scanlines in the standard `-Y H +X W`
orientation are supported. OpenEXR `.exr` goes through imageio when an EXR-capable plugin is installed;
otherwise a clear `ImageReadError` says what to do. Values come back as float32 `H x W x 3`, >= 0.
"""
import pathlib

import imageio.v3 as iio
import numpy as np

from common.atomic_files import write_bytes
from common.errors import ImageReadError

HDR_EXTENSIONS = (".hdr", ".exr")


def _rgbe_to_float(rgbe):
    rgbe = rgbe.astype(np.int32)
    exponent = rgbe[..., 3]
    scale = np.where(exponent > 0, np.ldexp(1.0, exponent - (128 + 8)), 0.0)
    return ((rgbe[..., :3] + 0.5) * scale[..., None] * (exponent[..., None] > 0)).astype(np.float32)


def _float_to_rgbe(image):
    image = np.maximum(np.asarray(image, np.float64), 0.0)
    peak = image.max(axis=-1)
    mantissa, exponent = np.frexp(peak)
    scale = np.where(peak > 1e-32, mantissa * 256.0 / np.where(peak > 0, peak, 1.0), 0.0)
    rgb = np.clip(np.floor(image * scale[..., None]), 0, 255)
    e = np.where(peak > 1e-32, exponent + 128, 0)
    return np.concatenate([rgb, e[..., None]], axis=-1).astype(np.uint8)


def _read_header(data, path):
    if not (data.startswith(b"#?RADIANCE") or data.startswith(b"#?RGBE")):
        raise ImageReadError(path, "not a Radiance HDR file (missing #?RADIANCE header)")
    pos = 0
    fmt = None
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise ImageReadError(path, "truncated Radiance header")
        line = data[pos:end].strip()
        pos = end + 1
        if line.startswith(b"FORMAT="):
            fmt = line[7:].decode("ascii", "replace")
        if not line and pos > 1:
            break
    if fmt not in (None, "32-bit_rle_rgbe"):
        raise ImageReadError(path, f"unsupported Radiance pixel format {fmt!r} (only 32-bit_rle_rgbe)")
    end = data.find(b"\n", pos)
    parts = data[pos:end].split()
    if len(parts) != 4 or parts[0] != b"-Y" or parts[2] != b"+X":
        raise ImageReadError(path, f"unsupported Radiance orientation {data[pos:end]!r} (expected '-Y H +X W')")
    return int(parts[1]), int(parts[3]), end + 1


def _read_rle_scanline(buf, pos, width, path):
    line = np.empty((4, width), np.uint8)
    for c in range(4):
        x = 0
        while x < width:
            if pos >= len(buf):
                raise ImageReadError(path, "truncated Radiance pixel data")
            count = buf[pos]
            pos += 1
            if count > 128:
                count -= 128
                if x + count > width:
                    raise ImageReadError(path, "corrupt run-length data in Radiance file")
                line[c, x:x + count] = buf[pos]
                pos += 1
            else:
                if count == 0 or x + count > width:
                    raise ImageReadError(path, "corrupt run-length data in Radiance file")
                line[c, x:x + count] = np.frombuffer(buf, np.uint8, count, pos)
                pos += count
            x += count
    return line.T, pos


def read_radiance(path):
    """Read a Radiance `.hdr` file as float32 linear RGB `H x W x 3`."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found")
    data = path.read_bytes()
    height, width, pos = _read_header(data, path)
    out = np.empty((height, width, 4), np.uint8)
    for y in range(height):
        head = data[pos:pos + 4]
        if len(head) < 4:
            raise ImageReadError(path, f"truncated Radiance pixel data (row {y} of {height})")
        if 8 <= width < 32768 and head[0] == 2 and head[1] == 2 and (head[2] << 8 | head[3]) == width:
            out[y], pos = _read_rle_scanline(data, pos + 4, width, path)
        else:
            row = np.frombuffer(data, np.uint8, width * 4, pos) if len(data) >= pos + width * 4 else None
            if row is None:
                raise ImageReadError(path, f"truncated Radiance pixel data (row {y} of {height})")
            out[y] = row.reshape(width, 4)
            pos += width * 4
    return _rgbe_to_float(out)


def write_radiance(path, image):
    """Write float RGB `H x W x 3` (values >= 0) as an uncompressed Radiance `.hdr` file, whole or not at all."""
    path = pathlib.Path(path)
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"write_radiance expects H x W x 3, got {image.shape}")
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {image.shape[0]} +X {image.shape[1]}\n".encode()
    return write_bytes(path, header + _float_to_rgbe(image).tobytes())


def read_hdr(path):
    """Read `.hdr` (built-in) or `.exr` (imageio plugin) as float32 linear RGB `H x W x 3`, >= 0."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix == ".hdr":
        image = read_radiance(path)
    elif suffix == ".exr":
        if not path.is_file():
            raise ImageReadError(path, "file not found")
        try:
            image = np.asarray(iio.imread(path), np.float32)
        except Exception as exc:  # the plugin that can read EXR varies by installation.
            raise ImageReadError(path, f"cannot read OpenEXR ({type(exc).__name__}: {exc}); install an "
                                 "EXR plugin for imageio (e.g. `pip install OpenEXR`) or convert to .hdr") from None
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        image = image[..., :3]
    else:
        raise ImageReadError(path, f"not an HDR file (expected one of {HDR_EXTENSIONS})")
    if not np.all(np.isfinite(image)):
        raise ImageReadError(path, "HDR image contains NaN or infinite values")
    return np.maximum(image, 0.0)
