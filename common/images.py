"""Reading and writing photos as the library expects them: uint8 RGB, H x W x 3.

Users hand the tools whatever they have: grayscale scans, RGBA screenshots, 16-bit PNGs from a raw
converter, truncated downloads. `read_image` turns every supported case into uint8 RGB and turns every
unsupported one into an `ImageReadError` that names the file, before TensorFlow sees it.
"""
import os
import pathlib

import imageio.v3 as iio
import numpy as np

from common.errors import ImageReadError, PhotoEnhanceError

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
    """Read one photo as uint8 RGB `H x W x 3`; raise `ImageReadError` naming the file on any problem."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ImageReadError(path, "file not found" if not path.exists() else "not a regular file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "file is empty")
    try:
        if _is_16bit_png(path):
            array = _read_16bit_png(path)
        elif path.suffix.lower() in (".gif", ".tif", ".tiff"):
            array = iio.imread(path, index=0)
        else:
            array = iio.imread(path)
    except Exception as exc:  # imageio raises many kinds; the user needs the file name and the reason.
        raise ImageReadError(path, f"cannot be decoded as an image ({type(exc).__name__}: {exc})") from None
    return to_rgb_uint8(array, path)


def _is_16bit_png(path):
    """True for a PNG whose IHDR declares 16 bits per sample (Pillow would drop their low byte)."""
    with open(path, "rb") as f:
        header = f.read(25)
    return header[:8] == b"\x89PNG\r\n\x1a\n" and len(header) == 25 and header[24] == 16


def _read_16bit_png(path):
    import tensorflow as tf

    return tf.io.decode_png(pathlib.Path(path).read_bytes(), channels=0, dtype=tf.uint16).numpy()


def write_image(path, image):
    """Write a uint8 (or [0,1] float) RGB image; the format follows the extension. Creates parent folders."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = to_rgb_uint8(image, path)
    iio.imwrite(path, image, **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}))
    return path


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


def _natural_key(name):
    stem, ext = os.path.splitext(name)
    return (0, int(stem), ext) if stem.isdigit() else (1, stem, ext)


def collect_image_files(inputs):
    """Image files from a mix of files and folders (folders: their images, natural order).

    Raises `PhotoEnhanceError` for a missing input, a folder without images, or two inputs that would be
    written to the same `<stem>.png`.
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
    stems = {}
    for path in files:
        if path.stem in stems:
            raise PhotoEnhanceError(f"{path} and {stems[path.stem]} would both be written as {path.stem}.png")
        stems[path.stem] = path
    return files
