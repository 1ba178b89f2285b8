"""Reading and writing photos as the library expects them: uint8 RGB, H x W x 3.

Users hand the tools whatever they have: grayscale scans, RGBA screenshots, 16-bit PNGs from a raw
converter, portrait JPEGs, CMYK files, truncated downloads. `read_image` turns every supported case into
upright sRGB uint8 (through `common.photo_read`) and every unsupported one into an `ImageReadError` that
names the file, before TensorFlow sees it.
"""
import os
import pathlib

import numpy as np
from PIL import Image

from common.errors import ImageReadError, PhotoEnhanceError
from common.photo_read import read_photo
from common.photo_write import write_photo

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def to_rgb_uint8(array, path="<array>"):
    """Convert a decoded image array (gray, gray+alpha, RGB, RGBA; bool, uint8, uint16, float) to uint8 RGB.

    Alpha is dropped (the colour channels are kept as stored), 16-bit values are rounded to 8 bits,
    float images are taken as [0, 1] and clipped.
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageReadError(path, f"expected a 2-D image, got an array of shape {a.shape}")
    channels = a.shape[-1]
    if channels in (1, 2):
        a = np.repeat(a[..., :1], 3, axis=-1)
    elif channels in (3, 4):
        a = a[..., :3]
    else:
        raise ImageReadError(path, f"unsupported channel count {channels} (expected 1, 2, 3 or 4)")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint16:
        return np.round(a.astype(np.float32) / 257.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ImageReadError(path, "image contains NaN or infinite values")
        return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        scaled = (a.astype(np.float64) - max(info.min, 0)) / (info.max - max(info.min, 0))
        return np.round(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ImageReadError(path, f"unsupported pixel type {a.dtype}")


def read_image(path):
    """Read one photo as upright sRGB uint8 `H x W x 3` (`common.photo_read.read_photo`, 16-bit rounded
    to 8 bits); raise `ImageReadError` naming the file on any problem."""
    return to_rgb_uint8(read_photo(path).pixels, path)


def write_image(path, image):
    """Atomically write a uint8 (or [0,1] float) RGB image; the format follows the extension. Creates
    parent folders (`common.atomic_files`)."""
    path = pathlib.Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise PhotoEnhanceError(f"{path}: unknown image extension {path.suffix!r}")
    return write_photo(path, to_rgb_uint8(image, path), fmt)


def to_float(image):
    """uint8 [0,255] -> float32 [0,1] (floats pass through as float32)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


def to_uint8(image):
    """float [0,1] -> uint8 with rounding and clipping."""
    return np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def list_images(folder):
    """Image files directly inside `folder`, sorted naturally (2.jpg before 10.jpg)."""
    folder = pathlib.Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: _natural_key(p.name))


def images_in(folder, what="images", error=PhotoEnhanceError):
    """`list_images(folder)`, or `error` naming the folder and the `what` it should hold when it is
    missing, not a folder, or holds no image file."""
    folder = pathlib.Path(folder).expanduser()
    if not folder.is_dir():
        problem = "folder not found" if not folder.exists() else "not a folder"
        raise error(f"{folder}: {problem} (expected {what})")
    files = list_images(folder)
    if not files:
        raise error(f"{folder}: no images in the folder (expected {what}: {', '.join(IMAGE_EXTENSIONS)})")
    return files


def _natural_key(name):
    stem, ext = os.path.splitext(name)
    return (0, int(stem), ext) if stem.isdigit() else (1, stem, ext)


def collect_image_files(inputs):
    """Image files from a mix of files and folders (folders: their images, natural order), each once.

    Raises `PhotoEnhanceError` for a missing input or a folder without images.
    """
    files = []
    for item in inputs:
        path = pathlib.Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise PhotoEnhanceError(f"{path}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise PhotoEnhanceError(f"{path}: input not found")
    seen = set()
    return [p for p in files if not (p.resolve() in seen or seen.add(p.resolve()))]
