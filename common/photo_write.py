"""Writing enhanced photos a photographer accepts, without ever leaving a half-written file.

Every write goes to a temporary file in the destination folder and is renamed over the destination only
once complete (`common.atomic_files`), so an interrupted run leaves either the old file or the new one. JPEG,
PNG, TIFF and WebP are written with Pillow, carrying the source's EXIF (orientation already reset to 1
by `common.photo_read`) and ICC profile (pixels converted back from sRGB into an RGB profile they were
converted out of). Pillow cannot hold 16-bit colour, so 16-bit PNGs are encoded by TensorFlow (with the
profile and EXIF added as iCCP / eXIf chunks) and 16-bit TIFFs by tifffile (profile only).
"""
import io
import pathlib
import struct
import zlib

import numpy as np
import tensorflow as tf
import tifffile
from PIL import Image, ImageCms

from common.atomic_files import atomic_output
from common.errors import PhotoEnhanceError
from common.photo_read import SRGB_PROFILE

FORMATS = {"jpg": "JPEG", "png": "PNG", "tiff": "TIFF", "webp": "WEBP"}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp"}
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")


def write_photo(path, pixels, fmt, *, quality=95, exif=None, icc=None, from_srgb=False):
    """Atomically write uint8 or uint16 RGB `pixels` to `path` in Pillow format `fmt` (JPEG/PNG/TIFF/WEBP).

    `exif` and `icc` are embedded where the format allows; with `from_srgb` the (sRGB) pixels are first
    converted into the `icc` profile (8-bit only). uint16 pixels need PNG or TIFF.
    """
    pixels = np.ascontiguousarray(pixels)
    if pixels.dtype == np.uint16 and fmt not in SIXTEEN_BIT_FORMATS:
        raise PhotoEnhanceError(f"{path}: 16-bit output needs PNG or TIFF, not {fmt}")
    with atomic_output(path) as tmp:
        if pixels.dtype == np.uint16:
            _write16(tmp, pixels, fmt, exif, icc)
        else:
            image = Image.fromarray(pixels.astype(np.uint8), "RGB")
            if icc and from_srgb:
                profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                image = ImageCms.profileToProfile(image, SRGB_PROFILE, profile, outputMode="RGB")
            image.save(tmp, fmt, **_save_options(fmt, quality, exif, icc))
    return pathlib.Path(path)


def _save_options(fmt, quality, exif, icc):
    """Pillow `save` keywords: metadata where the format carries it; JPEG 4:4:4 at `quality`."""
    options = {}
    if exif:
        options["exif"] = exif
    if icc:
        options["icc_profile"] = icc
    if fmt == "JPEG":
        options.update(quality=int(quality), subsampling=0, optimize=True)
    elif fmt == "WEBP":
        options.update(quality=int(quality))
    elif fmt == "TIFF":
        options.update(compression="tiff_deflate")
    return options


def _write16(tmp, pixels, fmt, exif, icc):
    if fmt == "TIFF":
        tifffile.imwrite(tmp, pixels, photometric="rgb", compression="zlib", iccprofile=icc)
        return

    png = tf.io.encode_png(pixels).numpy()
    tmp.write_bytes(_png_with_metadata(png, exif, icc))


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_with_metadata(png, exif, icc):
    """Insert iCCP and eXIf chunks after a PNG's IHDR chunk (8-byte signature + 25-byte IHDR)."""
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc))
    if exif:
        extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    return png[:33] + extra + png[33:]
