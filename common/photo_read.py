"""Reading a photo as the networks expect it, upright and in sRGB, with what is needed to write it back.

Phone photos carry an EXIF orientation (portrait shots are stored sideways), editors write CMYK/YCCK
JPEGs and ICC-tagged files (Display P3, Adobe RGB), raw converters write 16-bit PNG/TIFF. `read_photo`
returns a `Photo`: the pixels upright (EXIF orientation applied), as RGB uint8 or uint16, converted to
sRGB with `PIL.ImageCms` where an 8-bit file has an ICC profile or is CMYK; plus the EXIF bytes (with
the orientation reset to 1, since the pixels are now upright), the ICC profile, the format and the bit
depth, so that the writer can give the photographer back a file of the same kind. 16-bit files keep the
pixel values of their own colour space (Pillow's colour management is 8-bit only) and their profile.
"""
import dataclasses
import io
import pathlib
import warnings

import numpy as np
import tensorflow as tf
import tifffile
from PIL import Image, ImageCms, ImageOps

from common.errors import ImageReadError

EXIF_ORIENTATION = 0x0112
SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# Pillow's transposes for EXIF orientations 2..8 (the table `ImageOps.exif_transpose` applies), used for
# 16-bit pixels, which Pillow holds only as single-channel images.
_TRANSPOSES = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


@dataclasses.dataclass
class Photo:
    """An upright RGB photo (uint8 or uint16 `H x W x 3`) and the metadata to write it back.

    `icc` is the profile the output should carry: the file's own RGB profile, or sRGB's for a file
    converted from a CMYK or gray profile. `srgb_converted` says whether `pixels` were converted from
    `icc` to sRGB (8-bit RGB files: the writer converts back), or are still in its space (16-bit files).
    """

    pixels: np.ndarray
    path: pathlib.Path
    format: str
    bit_depth: int
    exif: bytes | None = None
    icc: bytes | None = None
    srgb_converted: bool = False


def read_photo(path):
    """Read one photo as a `Photo`; raise `ImageReadError` naming the file on any problem."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found" if not path.exists() else "not a regular file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. Pillow's "truncated EXIF" notes; the pixels decide.
            with Image.open(path) as image:
                image.load()
                return _photo_from(image, path)
    except ImageReadError:
        raise
    except Exception as exc:  # Pillow raises many kinds; the user needs the file name and the reason.
        raise ImageReadError(path, f"cannot be decoded as an image ({type(exc).__name__}: {exc})") from None


def _photo_from(image, path):
    """The `Photo` of an opened Pillow image: 16-bit files through their own decoders, others 8-bit."""
    exif = Image.Exif()
    exif.load(image.getexif().tobytes())  # a copy: exif_transpose reads the image's own orientation
    orientation = exif.get(EXIF_ORIENTATION, 1)
    icc = image.info.get("icc_profile") or None
    fmt = image.format or path.suffix.lstrip(".").upper()
    if orientation != 1:
        exif[EXIF_ORIENTATION] = 1
    exif_bytes = exif.tobytes() if len(exif) else None
    if _is_16bit(image, path):
        pixels = _orient16(_rgb16(_read16(image, path), path), orientation)
        return Photo(pixels, path, fmt, 16, exif_bytes, icc, False)
    upright = ImageOps.exif_transpose(image) if orientation != 1 else image
    rgb, converted = _to_srgb(upright, icc, path)
    if converted and _profile_space(icc) != "RGB":
        icc, converted = SRGB_PROFILE.tobytes(), False  # the output is sRGB: tag it so.
    return Photo(np.asarray(rgb, np.uint8).copy(), path, fmt, 8, exif_bytes, icc, converted)


def _is_16bit(image, path):
    """True for 16-bit PNG/TIFF (gray or colour), whose low byte Pillow's RGB modes would drop."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.format in ("PNG", "TIFF")
    if image.format == "PNG":
        return _png_bit_depth(path) == 16
    if image.format == "TIFF":
        bits = image.tag_v2.get(258, (8,))
        return max(bits if isinstance(bits, tuple) else (bits,)) == 16
    return False


def _png_bit_depth(path):
    with open(path, "rb") as f:
        header = f.read(25)
    return header[24] if len(header) == 25 else 8


def _read16(image, path):
    """The 16-bit samples of a PNG (TensorFlow's decoder) or TIFF (tifffile) as uint16 `H x W [x C]`."""
    if image.format == "PNG":
        return tf.io.decode_png(pathlib.Path(path).read_bytes(), channels=0, dtype=tf.uint16).numpy()

    return tifffile.imread(path, key=0)


def _rgb16(array, path):
    """uint16 gray / gray+alpha / RGB / RGBA -> uint16 RGB (alpha dropped)."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4):
        raise ImageReadError(path, f"unsupported 16-bit layout {a.shape}")
    a = np.repeat(a[..., :1], 3, axis=-1) if a.shape[-1] < 3 else a[..., :3]
    return np.ascontiguousarray(a.astype(np.uint16))


def _orient16(pixels, orientation):
    """Apply an EXIF orientation to uint16 RGB pixels, channel by channel with Pillow's transposes."""
    method = _TRANSPOSES.get(orientation)
    if method is None:
        return pixels
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c])).transpose(method))
                     for c in range(3)], axis=-1)


def _profile_space(icc):
    """The colour space of an ICC profile ("RGB", "CMYK", "GRAY", ...)."""
    return ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space.strip()


def _to_srgb(image, icc, path):
    """8-bit Pillow image -> (sRGB "RGB" image, whether an ICC conversion was applied)."""
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L", "LA"):
        source = image.convert("RGB") if image.mode in ("RGBA", "L", "LA") else image
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(source, profile, SRGB_PROFILE, outputMode="RGB"), True
        except (OSError, ImageCms.PyCMSError):
            pass  # a broken or mismatched profile: fall back to the plain conversion below.
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("I", "F"):
        raise ImageReadError(path, f"unsupported pixel mode {image.mode} for a {image.format} file")
    return image.convert("RGB"), False
