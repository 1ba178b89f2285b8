"""SavedModel export of an image-to-image Keras model for serving (TF Serving, TFLite converters, C++).

The exported `tf.Module` has two signatures, both for batches of any height and width:
- `serving_default`: uint8 `[N,H,W,C]` in -> uint8 `[N,H,W,C']` out (clipped, rounded), key `images`;
- `float32`: float32 `[N,H,W,C]` in [0,1] -> float32 out on the same [0,1] scale, not clipped (an HDR
  model's values above 1 survive), key `images`.
The model's own value range is a boundary detail: `input_range`/`output_range` "unit" ([0,1], DPED) or
"symmetric" ([-1,1], pix2pix). `pad_multiple` pads H and W by edge replication up to a multiple (a U-Net of
depth d needs 2^d) and crops the output back, so callers never see the constraint.
"""
import pathlib

import tensorflow as tf

from common.errors import PhotoEnhanceError

RANGES = ("unit", "symmetric")


def _to_model(x, value_range):
    return x * 2.0 - 1.0 if value_range == "symmetric" else x


def _from_model(y, value_range):
    return (y + 1.0) * 0.5 if value_range == "symmetric" else y


def _pad_to_multiple(images, multiple):
    """Edge-replicate H and W up to a multiple of `multiple` (works for any size, unlike reflection)."""
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    padded_h = (height + multiple - 1) // multiple * multiple
    padded_w = (width + multiple - 1) // multiple * multiple
    images = tf.gather(images, tf.minimum(tf.range(padded_h), height - 1), axis=1)
    return tf.gather(images, tf.minimum(tf.range(padded_w), width - 1), axis=2)


class ImageModelModule(tf.Module):
    """The exported module: the Keras model plus range conversion, padding and uint8 handling."""

    def __init__(self, model, input_range="unit", output_range="unit", pad_multiple=None):
        super().__init__(name="image_model")
        self.model = model
        self.input_range, self.output_range = input_range, output_range
        self.pad_multiple = int(pad_multiple) if pad_multiple else None
        channels = int(model.input_shape[-1])
        self.enhance_float = tf.function(
            self._float, input_signature=[tf.TensorSpec([None, None, None, channels], tf.float32, name="images")])
        self.enhance_uint8 = tf.function(
            self._uint8, input_signature=[tf.TensorSpec([None, None, None, channels], tf.uint8, name="images")])

    def _run(self, images):
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        x = _to_model(images, self.input_range)
        if self.pad_multiple:
            x = _pad_to_multiple(x, self.pad_multiple)
        y = tf.cast(self.model(x, training=False), tf.float32)
        return _from_model(y[:, :height, :width, :], self.output_range)

    def _float(self, images):
        return {"images": self._run(images)}

    def _uint8(self, images):
        y = self._run(tf.cast(images, tf.float32) / 255.0)
        return {"images": tf.cast(tf.round(tf.clip_by_value(y, 0.0, 1.0) * 255.0), tf.uint8)}


def export_saved_model(model, out_dir, *, input_range="unit", output_range="unit", pad_multiple=None):
    """Write `model` as a SavedModel in `out_dir` with `serving_default` (uint8) and `float32` signatures.

    Reload with `tf.saved_model.load(out_dir).signatures["serving_default"](images=uint8_batch)["images"]`.
    Returns the output folder.
    """
    for label, value in (("input_range", input_range), ("output_range", output_range)):
        if value not in RANGES:
            raise PhotoEnhanceError(f"{label} must be one of {RANGES}, got {value!r}")
    if pad_multiple is not None and int(pad_multiple) < 1:
        raise PhotoEnhanceError(f"pad_multiple must be a positive integer, got {pad_multiple!r}")
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise PhotoEnhanceError(f"{out_dir}: export folder exists and is not empty; choose a new folder")
    module = ImageModelModule(model, input_range, output_range, pad_multiple)
    tf.saved_model.save(module, str(out_dir), signatures={
        "serving_default": module.enhance_uint8.get_concrete_function(),
        "float32": module.enhance_float.get_concrete_function(),
    })
    return out_dir


def load_saved_model_signature(path, signature="float32"):
    """Load an exported SavedModel folder and return `fn(images) -> images` for the named signature."""
    path = pathlib.Path(path)
    if not (path / "saved_model.pb").is_file():
        raise PhotoEnhanceError(f"{path}: not a SavedModel folder (no saved_model.pb)")
    loaded = tf.saved_model.load(str(path))
    if signature not in loaded.signatures:
        raise PhotoEnhanceError(f"{path}: SavedModel has no {signature!r} signature "
                                f"(has {sorted(loaded.signatures)}); export it with common.export")
    concrete = loaded.signatures[signature]

    def call(images):
        return concrete(images=tf.convert_to_tensor(images))["images"]

    call.loaded = loaded  # keep the module alive as long as the function is used
    return call
