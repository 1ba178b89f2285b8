"""Full-resolution inference within a memory budget: overlapping tiles blended with smooth windows.

A fully convolutional enhancer can take a whole photo, but its activations grow with the pixel count
(the DPED generator keeps several 64-channel float32 maps alive: ~2 KB per pixel, ~2 GB for 1280x720).
`enhance_tiled` runs the whole image when its estimate fits the budget, otherwise overlapping tiles whose
outputs are blended with raised-cosine ramps over the overlap (weights normalised, so flat regions stay
exact). Networks with instance norm see per-tile statistics, so tiles should be as large as the budget
allows and overlap well beyond the receptive-field radius; `plan_tile` picks the largest tile that fits.
For Keras models with `InstanceNormalization`, `enhance_tiled_exact` instead gathers the whole image's
norm statistics tile by tile and reproduces whole-image inference to float precision, at a few times
the compute.
"""
import math

import keras
import numpy as np
import tensorflow as tf

from common.errors import PhotoEnhanceError

DEFAULT_TILE = 768
DEFAULT_OVERLAP = 128
MIN_TILE = 8


def estimate_memory_bytes(height, width, channels=64, live_tensors=8, bytes_per_value=4):
    """Rough peak activation memory of a conv net on an HxW input: `live_tensors` maps of `channels`."""
    return int(height) * int(width) * int(channels) * int(live_tensors) * int(bytes_per_value)


def plan_tile(height, width, memory_budget_bytes=None, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP,
              bytes_per_pixel=None):
    """Tile side to use: None when the whole image fits the budget (or no budget), else the largest side
    <= `tile` (and >= 2 * overlap) whose estimated memory fits."""
    per_pixel = bytes_per_pixel or estimate_memory_bytes(1, 1)
    if memory_budget_bytes is None or height * width * per_pixel <= memory_budget_bytes:
        return None
    side = int(math.sqrt(memory_budget_bytes / per_pixel))
    side = min(side, int(tile))
    if side < max(MIN_TILE, 2 * overlap + 1):
        raise PhotoEnhanceError(
            f"memory budget {memory_budget_bytes / 2**20:.1f} MB allows only {side}x{side} tiles, smaller than "
            f"the minimum {max(MIN_TILE, 2 * overlap + 1)} px for overlap {overlap}; raise the budget")
    return side


def _starts(length, tile, overlap):
    """Tile origins along one axis: stride tile - overlap, the last tile flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp(size, overlap, ramp_start, ramp_end):
    """1-D weight: raised-cosine ramps (strictly > 0) over `overlap` px at the tile's inner sides."""
    w = np.ones(size, np.float32)
    n = min(overlap, size // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n, dtype=np.float32) + 0.5) / n)).astype(np.float32)
        if ramp_start:
            w[:n] = ramp
        if ramp_end:
            w[size - n:] = ramp[::-1]
    return w


def enhance_tiled(fn, image, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP, memory_budget_bytes=None,
                  bytes_per_pixel=None):
    """Apply `fn` ([1,h,w,C] float32 -> [1,h,w,C']) to an [H,W,C] float image, whole or in tiles.

    With `memory_budget_bytes` None or large enough the image is processed whole. Otherwise tiles of the
    side chosen by `plan_tile` overlap by `overlap` px and are blended with normalised raised-cosine
    weights. Returns float32 [H,W,C'].
    """
    image = np.asarray(image, np.float32)
    if image.ndim != 3:
        raise PhotoEnhanceError(f"enhance_tiled expects an [H,W,C] image, got shape {image.shape}")
    height, width = image.shape[:2]
    if overlap < 0:
        raise PhotoEnhanceError(f"tile overlap must be >= 0, got {overlap}")
    side = plan_tile(height, width, memory_budget_bytes, tile, overlap, bytes_per_pixel)
    if side is None:
        return np.asarray(fn(image[None]), np.float32)[0]
    ys, xs = _starts(height, side, overlap), _starts(width, side, overlap)
    out = weight = None
    for y in ys:
        th = min(side, height)
        wy = _ramp(th, overlap, y > 0, y + th < height)
        for x in xs:
            tw = min(side, width)
            wx = _ramp(tw, overlap, x > 0, x + tw < width)
            result = np.asarray(fn(image[None, y:y + th, x:x + tw]), np.float32)[0]
            if out is None:
                out = np.zeros((height, width, result.shape[-1]), np.float32)
                weight = np.zeros((height, width, 1), np.float32)
            w = (wy[:, None] * wx[None, :])[..., None]
            out[y:y + th, x:x + tw] += result * w
            weight[y:y + th, x:x + tw] += w
    return out / weight


class _GlobalStatsNorm(keras.layers.Layer):
    """Instance norm with externally set statistics: the whole image's, gathered tile by tile."""

    def __init__(self, source, **kwargs):
        super().__init__(name=source.name, **kwargs)
        self.epsilon, self.source = source.epsilon, source

    def build(self, input_shape):
        channels = input_shape[-1]
        self.mean = self.add_weight(name="mean", shape=(channels,), initializer="zeros", trainable=False)
        self.var = self.add_weight(name="var", shape=(channels,), initializer="ones", trainable=False)

    def call(self, x):
        x32 = keras.ops.cast(x, "float32")
        y = (x32 - self.mean) / keras.ops.sqrt(self.var + self.epsilon)
        if self.source.gamma is not None:
            y = y * keras.ops.cast(self.source.gamma, "float32")
        if self.source.beta is not None:
            y = y + keras.ops.cast(self.source.beta, "float32")
        return keras.ops.cast(y, x.dtype)


def _tile_boxes(height, width, side):
    """Non-overlapping output boxes (y0, y1, x0, x1) covering the image with tiles of at most `side`."""
    ys = list(range(0, height, side))
    xs = list(range(0, width, side))
    return [(y, min(y + side, height), x, min(x + side, width)) for y in ys for x in xs]


def _run_with_halo(fn, image, box, halo):
    """`fn` on the box grown by `halo` px (clamped to the image), cropped back to the box."""
    y0, y1, x0, x1 = box
    hy0, hx0 = max(0, y0 - halo), max(0, x0 - halo)
    hy1, hx1 = min(image.shape[0], y1 + halo), min(image.shape[1], x1 + halo)
    out = np.asarray(fn(image[None, hy0:hy1, hx0:hx1]))[0]
    return out[y0 - hy0:y1 - hy0, x0 - hx0:x1 - hx0]


def receptive_radius(model):
    """Receptive-field radius in px of a stride-1 convolutional Keras model (sum of the kernel radii)."""
    radius = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            if any(s != 1 for s in layer.strides):
                raise PhotoEnhanceError(f"receptive_radius: layer {layer.name} has strides {layer.strides}; "
                                        "only stride-1 networks are supported")
            radius += max((k - 1) // 2 * d for k, d in zip(layer.kernel_size, layer.dilation_rate))
    return radius


def _traced(model):
    """`model` as a numpy-friendly function traced once for every tile size."""
    channels = model.inputs[0].shape[-1]
    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec([1, None, None, channels], tf.float32)])
    return lambda x: fn(tf.convert_to_tensor(x, tf.float32)).numpy()


def enhance_tiled_exact(model, image, halo=None, tile=DEFAULT_TILE, memory_budget_bytes=None,
                        bytes_per_pixel=None):
    """Tiled inference of a Keras functional model with instance norm that matches whole-image inference.

    Per-tile instance norm would see per-tile statistics. Here every `InstanceNormalization` layer gets the
    whole image's mean and variance instead, gathered in one pass over the tiles per norm layer (in graph
    order, each pass using the statistics found before it); a last pass produces the output. Each tile is
    run with a `halo` of context at least the model's receptive-field radius (18 px for the DPED
    generator; by default `receptive_radius(model)`) and cropped back, so tiles join without seams and
    without blending. Costs about
    (number of norm layers / 2 + 1) whole-image passes; falls back to one whole pass when the image fits
    the budget. Returns float32 [H,W,C'].
    """
    from common.layers import InstanceNormalization

    image = np.asarray(image, np.float32)
    if image.ndim != 3:
        raise PhotoEnhanceError(f"enhance_tiled_exact expects an [H,W,C] image, got shape {image.shape}")
    height, width = image.shape[:2]
    side = plan_tile(height, width, memory_budget_bytes, tile, 0, bytes_per_pixel)
    if side is None:
        return np.asarray(model(image[None], training=False), np.float32)[0]
    halo = receptive_radius(model) if halo is None else int(halo)
    side = max(MIN_TILE, side - 2 * halo)
    norms = []

    def swap(layer):
        if isinstance(layer, InstanceNormalization):
            norms.append(_GlobalStatsNorm(layer))
            return norms[-1]
        return layer

    clone = keras.models.clone_model(model, clone_function=swap)
    boxes = _tile_boxes(height, width, side)
    for norm in norms:
        probe = _traced(keras.Model(clone.inputs[0], norm.input))
        total = total_sq = 0.0
        for box in boxes:
            values = _run_with_halo(probe, image, box, halo).astype(np.float64)
            total = total + values.sum(axis=(0, 1))
            total_sq = total_sq + (values ** 2).sum(axis=(0, 1))
        mean = total / (height * width)
        norm.mean.assign(mean.astype(np.float32))
        norm.var.assign(np.maximum(total_sq / (height * width) - mean ** 2, 0.0).astype(np.float32))
    out, run = None, _traced(clone)
    for box in boxes:
        result = _run_with_halo(run, image, box, halo)
        if out is None:
            out = np.zeros((height, width, result.shape[-1]), np.float32)
        out[box[0]:box[1], box[2]:box[3]] = result
    return out
