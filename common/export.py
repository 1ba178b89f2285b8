"""Exports of an image-to-image Keras model for servers and phones, built on Keras' export machinery.

The model handed in maps float32 photos in [0, 1] to [0, 1] (a model family with another value range
wraps its network first, e.g. `pix2pix.serving.unit_range_model`). Formats:
- `saved_model` (`keras.export.ExportArchive`), TF Serving's layout `PATH/<version>/` when a version is
  given: `serving_default` uint8 `[N,H,W,C]` -> uint8 (clipped, rounded) and `float32` [0,1] -> [0,1]
  (unclipped, so HDR values above 1 survive), both for any N, H, W, input and output key `images`;
- `litert` (`.tflite`, the LiteRT converter on the archive): `[1,H,W,C]` float32, any H and W or a fixed
  `input_size`, `quantize` none | float16 | dynamic-int8 | int8 (int8 needs calibration photos; inputs
  and outputs stay float32). `scale=255` gives the ai-challenge convention (values 0-255 in and out;
  the input is then named `images_0_255` so runtimes can tell);
- `onnx` (`Model.export(format="onnx")`, tf2onnx): `[N,H,W,C]` float32, any size or a fixed one.
Every writer builds in a temporary name in the target folder and renames at the end: a failed export
leaves nothing behind and never replaces an existing artifact.
"""
import os
import pathlib
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from common.atomic_files import atomic_output, write_bytes
from common.errors import PhotoEnhanceError

FORMATS = ("saved_model", "litert", "onnx")
QUANTIZATIONS = ("none", "float16", "dynamic-int8", "int8")
INPUT_NAME = "images"
SCALED_INPUT_NAME = "images_0_255"
SCALES = {1.0: INPUT_NAME, 255.0: SCALED_INPUT_NAME}
# Named mobile presets: the ai-challenge convention ([1,H,W,3] float 0-255 in and out, fixed size; the
# size is that of the challenge's own conversion example).
MOBILE_PRESETS = {"ai-challenge": {"input_size": (1024, 1536), "scale": 255.0}}
SAMPLE_SIDE = 256


class ExportError(PhotoEnhanceError):
    """An export was asked for with settings that do not fit together, or a target that is in use."""


def parse_input_size(text):
    """"HxW" (e.g. "720x1280") -> (720, 1280)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match or min(int(match.group(1)), int(match.group(2))) < 1:
        raise ExportError(f"--input-size must look like HxW with positive integers (e.g. 720x1280), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def next_version(root):
    """TF Serving's next model version under `root`: one more than the largest numeric subfolder, or 1."""
    root = pathlib.Path(root)
    versions = [int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit()] if root.is_dir() else []
    return max(versions, default=0) + 1


def _channels(model):
    return int(model.input_shape[-1])


def _scaled_call(model, scale):
    """[0, scale] float32 in -> model -> [0, scale] float32 out."""
    def call(images):
        y = model(images / scale if scale != 1.0 else images, training=False)
        y = tf.cast(y, tf.float32)
        return y * scale if scale != 1.0 else y
    return call


def _archive(model, endpoints):
    """An `ExportArchive` tracking `model` with `{name: (fn, spec)}` endpoints."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, spec) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=[spec])
    return archive


def _saved_model_endpoints(model):
    channels, call = _channels(model), _scaled_call(model, 1.0)

    def as_float(images):
        return {"images": call(images)}

    def as_uint8(images):
        y = call(tf.cast(images, tf.float32) / 255.0)
        return {"images": tf.cast(tf.round(tf.clip_by_value(y, 0.0, 1.0) * 255.0), tf.uint8)}

    return {"serving_default": (as_uint8, tf.TensorSpec([None, None, None, channels], tf.uint8, name=INPUT_NAME)),
            "float32": (as_float, tf.TensorSpec([None, None, None, channels], tf.float32, name=INPUT_NAME))}


def _free_target(path):
    """Refuse to overwrite: `path` must not exist, or be an empty folder."""
    path = pathlib.Path(path)
    if path.is_dir() and not any(path.iterdir()):
        return path
    if path.exists():
        raise ExportError(f"{path}: exists; choose a new name (exports never overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def export_saved_model(model, out_dir, *, version=None):
    """Write `model` as a SavedModel in `out_dir` (or `out_dir/<version>/`, TF Serving's layout) with the
    `serving_default` (uint8) and `float32` signatures. Returns the SavedModel folder.

    Reload: `tf.saved_model.load(folder).signatures["serving_default"](images=uint8_batch)["images"]`.
    """
    out_dir = pathlib.Path(out_dir)
    target = _free_target(out_dir / str(int(version)) if version is not None else out_dir)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _archive(model, _saved_model_endpoints(model)).write_out(str(tmp), verbose=False)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_bytes(path, data):
    return write_bytes(_free_target(path), data)


def photo_batches(images, input_size=None, scale=1.0):
    """Photos as model inputs (int8 calibration, parity checks): each [H,W,3] uint8 photo as a float32
    [1,h,w,3] batch at the model's fixed `input_size` (resized to cover it, centre-cropped) or, for
    any-size models, scaled down to at most `SAMPLE_SIDE` px on its long side."""
    batches = []
    for image in images:
        x = tf.convert_to_tensor(np.asarray(image, np.float32)[None] / 255.0)
        if input_size:
            h, w = int(x.shape[1]), int(x.shape[2])
            ratio = max(input_size[0] / h, input_size[1] / w)
            x = tf.image.resize(x, (max(input_size[0], round(h * ratio)), max(input_size[1], round(w * ratio))),
                                antialias=True)
            x = tf.image.resize_with_crop_or_pad(x, *input_size)
        elif max(x.shape[1:3]) > SAMPLE_SIDE:
            ratio = SAMPLE_SIDE / max(x.shape[1:3])
            x = tf.image.resize(x, (round(x.shape[1] * ratio), round(x.shape[2] * ratio)), antialias=True)
        batches.append((tf.clip_by_value(x, 0.0, 1.0) * scale).numpy().astype(np.float32))
    return batches


def _configure_quantization(converter, quantize, calibration):
    if quantize == "none":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if not calibration:
            raise ExportError("--quantize int8 needs calibration photos (--calibration-dir DIR)")
        converter.representative_dataset = lambda: ([batch] for batch in calibration)


def litert_bytes(model, *, quantize="none", input_size=None, scale=1.0, calibration_images=None):
    """The `.tflite` flatbuffer of `model` (see the module docstring for the conventions)."""
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"--quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    if scale not in SCALES:
        raise ExportError(f"scale must be one of {sorted(SCALES)}, got {scale!r}")
    height, width = input_size or (None, None)
    spec = tf.TensorSpec([1, height, width, _channels(model)], tf.float32, name=SCALES[scale])
    call = _scaled_call(model, scale)
    archive = _archive(model, {"serving_default": (lambda images: {"images": call(images)}, spec)})
    calibration = photo_batches(calibration_images, input_size, scale) if calibration_images else None
    with tempfile.TemporaryDirectory() as folder:
        archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serving_default"])
        _configure_quantization(converter, quantize, calibration)
        return converter.convert()


def export_litert(model, path, **options):
    """Write `litert_bytes(model, **options)` to `path` (a new `.tflite` file); returns the path."""
    path = pathlib.Path(path)
    if path.suffix != ".tflite":
        raise ExportError(f"{path}: a LiteRT model file must end in .tflite")
    return _write_bytes(path, litert_bytes(model, **options))


def export_onnx(model, path, *, input_size=None):
    """Write `model` as ONNX (`Model.export`, opset chosen by tf2onnx) to a new `.onnx` file at `path`."""
    path = pathlib.Path(path)
    if path.suffix != ".onnx":
        raise ExportError(f"{path}: an ONNX model file must end in .onnx")
    path = _free_target(path)
    height, width = input_size or (None, None)
    spec = tf.TensorSpec([None, height, width, _channels(model)], tf.float32, name=INPUT_NAME)
    with atomic_output(path) as tmp:
        model.export(str(tmp), format="onnx", input_signature=[spec], verbose=False)
    return path


def load_saved_model_signature(path, signature="float32"):
    """`fn(images) -> images` for a signature of an exported SavedModel folder, flat or in TF Serving's
    layout (`PATH/<version>/`, the highest version is used)."""
    path = pathlib.Path(path)
    folder = saved_model_folder(path)
    loaded = tf.saved_model.load(str(folder))
    if signature not in loaded.signatures:
        raise PhotoEnhanceError(f"{folder}: SavedModel has no {signature!r} signature "
                                f"(has {sorted(loaded.signatures)}); export it with common.export")
    concrete = loaded.signatures[signature]

    def call(images):
        return concrete(images=tf.convert_to_tensor(images))["images"]

    call.loaded = loaded  # keep the module alive as long as the function is used
    return call


def saved_model_folder(path):
    """The folder holding `saved_model.pb`: `path` itself or its highest numeric version subfolder."""
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((int(p.name), p) for p in path.glob("*") if p.name.isdigit() and (p / "saved_model.pb").is_file())
    if not versions:
        raise PhotoEnhanceError(f"{path}: not a SavedModel folder (no saved_model.pb, nor <version>/saved_model.pb)")
    return versions[-1][1]
