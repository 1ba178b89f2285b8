"""Full-resolution inference within a memory budget that bounds the process's peak resident memory.

A fully convolutional enhancer can take a whole photo, but its activations grow with the pixel count.
The budget is planned from measurements, not from a guess at the activations: `plan_memory` takes the
process's resident memory once TensorFlow and the model are loaded (`peak_rss_bytes`, about 700 MB on
CPU), the photo's own buffers, and the measured cost per pixel of one traced inference
(`traced_bytes_per_pixel`: 1,098 B per pixel for the DPED paper network, i.e. 17.2 B per channel of its
widest full-resolution layer; measured with `tf.function` in fresh processes on 256^2 to 720x1280
inputs, see `benchmarks/enhance_memory.py`). It runs the whole photo when that fits, else tiles as
large as the rest of the budget allows.

`enhance_tiled` runs overlapping tiles blended with raised-cosine ramps over the overlap (weights
normalised, so flat regions stay exact): for any callable, but networks with instance norm see per-tile
statistics there. `enhance_tiled_exact` (Keras models with instance norm) instead gathers the
whole image's norm statistics tile by tile and reproduces whole-image inference to float precision, at
about five times the compute. Both accept uint8/uint16 photos and convert tile by tile, so a 24 MP photo
never exists as float32 in full.
"""
import math
import os
import resource

import keras
import numpy as np
import tensorflow as tf

from common.errors import PhotoEnhanceError
from common.layers import is_instance_norm

DEFAULT_TILE = 768
DEFAULT_OVERLAP = 128
MIN_TILE = 8
MIN_PLANNED_TILE = 64
# Measured (see the module docstring): peak bytes per pixel of one traced inference, per channel of the
# widest full-resolution convolution (1,098 B / 64 channels), with a 5 % margin.
BYTES_PER_CHANNEL_PIXEL = 18.0
PAPER_NETWORK_BYTES_PER_PIXEL = 64 * BYTES_PER_CHANNEL_PIXEL
# Photo buffers per pixel besides the network: the decoded file, the RGB array and the output (uint8,
# 3 B each), the encoder's copy; whole-image runs add the float32 input, output and their tensors.
TILED_BUFFER_BYTES_PER_PIXEL = 16
# Blended tiles also keep a float32 output sum and weight for the whole photo (16 B per pixel) and the
# SavedModel's own buffers: a SavedModel on a 6000x4000 photo at 2,048 MB peaked at 2,455 MB without this
# term and at 2,092 MB with 16 B; 24 B is the margin for that (not yet re-measured).
BLENDED_BUFFER_BYTES_PER_PIXEL = TILED_BUFFER_BYTES_PER_PIXEL + 24
WHOLE_BUFFER_BYTES_PER_PIXEL = 64
# Tiled runs trace one function per instance-norm layer (the exact mode) and keep tile buffers: with
# 64 MB reserved, a 1280x720 photo at a 1,024 MB budget peaked at 1,033 MB (benchmarks/enhance_memory.py).
# The rest is run-to-run spread of TensorFlow's scratch memory: on an AMD EPYC (AVX2), a 800x600 photo at
# a 900 MB budget peaked at 883-926 MB with 112 MB reserved; with 176 MB and malloc arenas capped to the
# core count (`common/__init__.py`) at 807-840 MB over four runs (child ru_maxrss).
TILED_FIXED_BYTES = 176 * 2**20


def estimate_memory_bytes(height, width, channels=64, live_tensors=8, bytes_per_value=4):
    """Rough peak activation memory of a conv net on an HxW input: `live_tensors` maps of `channels`."""
    return int(height) * int(width) * int(channels) * int(live_tensors) * int(bytes_per_value)


def plan_tile(height, width, memory_budget_bytes=None, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP,
              bytes_per_pixel=None):
    """Tile side to use: None when the whole image fits the budget (or no budget), else the largest side
    <= `tile` (and >= 2 * overlap) whose estimated memory fits. The budget here is for activations only;
    `plan_memory` plans a whole process."""
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


def peak_rss_bytes():
    """This process's peak resident memory so far: Linux's VmHWM, the high-water mark of this program's own
    memory. (`ru_maxrss` is not: it also holds the peak of the parent that started this process, since
    Linux folds the parent's memory into it at exec; a test runner of 2 GB would read as 2 GB here.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine_memory_bytes():
    """Physical memory of the machine."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def traced_bytes_per_pixel(model):
    """Measured-model cost per pixel of one traced inference of a Keras model: `BYTES_PER_CHANNEL_PIXEL`
    times the widest stride-1 convolution (the full-resolution maps dominate)."""
    widths = [layer.filters for layer in model.layers
              if isinstance(layer, keras.layers.Conv2D) and all(s == 1 for s in layer.strides)]
    return BYTES_PER_CHANNEL_PIXEL * max(widths or [64])


def plan_memory(height, width, budget_bytes, baseline_bytes, bytes_per_pixel, halo=0, tile=None,
                buffer_bytes_per_pixel=TILED_BUFFER_BYTES_PER_PIXEL):
    """Tile side (None: whole photo) keeping the process's peak resident memory under `budget_bytes`.

    `baseline_bytes` is the process's resident memory before the photo (TensorFlow, the model, a traced
    warm-up). Tiles carry `halo` px of context on each side; `tile` caps their side; the tiled mode keeps
    `buffer_bytes_per_pixel` of whole-photo buffers. Raises `PhotoEnhanceError` when even
    `MIN_PLANNED_TILE` px tiles would not fit.
    """
    pixels = height * width
    whole = baseline_bytes + pixels * (bytes_per_pixel + WHOLE_BUFFER_BYTES_PER_PIXEL)
    if whole <= budget_bytes and (tile is None or max(height, width) <= tile):
        return None
    room = budget_bytes - baseline_bytes - TILED_FIXED_BYTES - pixels * buffer_bytes_per_pixel
    side = min(int(math.sqrt(max(room, 0) / bytes_per_pixel)) - 2 * halo, max(height, width))
    if tile is not None and tile < side:
        if tile < MIN_TILE:
            raise PhotoEnhanceError(f"--tile {tile} is below the minimum of {MIN_TILE} px")
        return tile
    if side < MIN_PLANNED_TILE:
        need = (baseline_bytes + TILED_FIXED_BYTES + pixels * buffer_bytes_per_pixel
                + (MIN_PLANNED_TILE + 2 * halo) ** 2 * bytes_per_pixel)
        raise PhotoEnhanceError(f"a {width}x{height} photo needs a memory budget of at least {need / 2**20:.0f} "
                                f"MB here (TensorFlow and the model take {baseline_bytes / 2**20:.0f} MB); "
                                "raise --memory-budget-mb")
    return side


def as_float(tile):
    """A uint8/uint16/float tile as float32 in [0, 1]."""
    if tile.dtype == np.uint8:
        return tile.astype(np.float32) / 255.0
    if tile.dtype == np.uint16:
        return tile.astype(np.float32) / 65535.0
    return tile.astype(np.float32)


def quantize(values, dtype):
    """float output -> `dtype` storage: uint8/uint16 rounded and clipped from [0, 1], float32 unchanged."""
    if dtype == np.float32:
        return np.asarray(values, np.float32)
    top = float(np.iinfo(dtype).max)
    return np.round(np.clip(np.asarray(values, np.float32), 0.0, 1.0) * top).astype(dtype)


def _starts(length, window, overlap):
    """Window origins along one axis: stride `window - overlap`, the last window flush with the end."""
    if length <= window:
        return [0]
    stride = max(1, window - overlap)
    return sorted(set(list(range(0, length - window, stride)) + [length - window]))


def _ramp(size, overlap, ramp_start, ramp_end):
    """1-D weight: raised-cosine ramps (strictly > 0) over `overlap` px at the window's inner sides."""
    w = np.ones(size, np.float32)
    n = min(overlap, size // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n, dtype=np.float32) + 0.5) / n)).astype(np.float32)
        if ramp_start:
            w[:n] = ramp
        if ramp_end:
            w[size - n:] = ramp[::-1]
    return w


def blend_windows(fn, image, window, overlap, prepare=None):
    """`fn` ([1,wh,ww,C] -> [1,wh,ww,C']) over an [H,W,C] image in windows of exactly `window` = (wh, ww)
    that overlap by `overlap` px, blended with normalised raised-cosine weights (flat regions stay exact);
    an image smaller than a window is mirror-padded to it. `prepare` converts each window before `fn`.
    Returns float32 [H,W,C']."""
    wh, ww = window
    height, width = image.shape[:2]
    pad_h, pad_w = max(0, wh - height), max(0, ww - width)
    padded = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric") if pad_h or pad_w else image
    ph, pw = padded.shape[:2]
    out = weight = None
    for y in _starts(ph, wh, overlap):
        wy = _ramp(wh, overlap, y > 0, y + wh < ph)
        for x in _starts(pw, ww, overlap):
            tile = padded[None, y:y + wh, x:x + ww]
            result = np.asarray(fn(prepare(tile) if prepare else tile), np.float32)[0]
            if out is None:
                out = np.zeros((ph, pw, result.shape[-1]), np.float32)
                weight = np.zeros((ph, pw, 1), np.float32)
            w = (wy[:, None] * _ramp(ww, overlap, x > 0, x + ww < pw)[None, :])[..., None]
            out[y:y + wh, x:x + ww] += result * w
            weight[y:y + wh, x:x + ww] += w
    out /= weight  # in place: no third whole-photo buffer
    return out[:height, :width]


def enhance_tiled(fn, image, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP, memory_budget_bytes=None,
                  bytes_per_pixel=None, side=None):
    """Apply `fn` ([1,h,w,C] float32 -> [1,h,w,C']) to an [H,W,C] image (uint8, uint16 or float in [0,1]),
    whole or in tiles; returns float32 [H,W,C'].

    `side` fixes the tile side (e.g. from `plan_memory`); otherwise `plan_tile` picks it from the
    activation budget `memory_budget_bytes` (None or large enough: the whole image). Tiles overlap by
    `overlap` px and are blended (`blend_windows`).
    """
    image = _check_image(image, "enhance_tiled")
    height, width = image.shape[:2]
    if overlap < 0:
        raise PhotoEnhanceError(f"tile overlap must be >= 0, got {overlap}")
    if side is None:
        side = plan_tile(height, width, memory_budget_bytes, tile, overlap, bytes_per_pixel)
    if side is None or side >= max(height, width):
        return np.asarray(fn(as_float(image)[None]), np.float32)[0]
    return blend_windows(fn, image, (min(side, height), min(side, width)), overlap, prepare=as_float)


def _check_image(image, name):
    image = np.asarray(image)
    if image.ndim != 3:
        raise PhotoEnhanceError(f"{name} expects an [H,W,C] image, got shape {image.shape}")
    return image


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
    """`fn` on the box grown by `halo` px (clamped to the image, converted to float), cropped back."""
    y0, y1, x0, x1 = box
    hy0, hx0 = max(0, y0 - halo), max(0, x0 - halo)
    hy1, hx1 = min(image.shape[0], y1 + halo), min(image.shape[1], x1 + halo)
    out = np.asarray(fn(as_float(image[None, hy0:hy1, hx0:hx1])))[0]
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


def traced(model):
    """`model` as a numpy function [1,h,w,C] -> [1,h,w,C'] traced once for every size: a fixed channel
    signature lets TensorFlow plan the graph, which peaks at a fraction of eager execution's memory
    (1,098 B per pixel for the DPED paper network against 9,319 B eagerly)."""
    channels = model.inputs[0].shape[-1]
    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec([1, None, None, channels], tf.float32)])
    return lambda x: fn(tf.convert_to_tensor(x, tf.float32)).numpy()


def enhance_tiled_exact(model, image, halo=None, tile=DEFAULT_TILE, memory_budget_bytes=None,
                        bytes_per_pixel=None, side=None, out_dtype=np.float32, run=None):
    """Tiled inference of a Keras functional model with instance norm that matches whole-image inference.

    Per-tile instance norm would see per-tile statistics. Here every instance-norm layer gets the
    whole image's mean and variance instead, gathered in one pass over the tiles per norm layer (in graph
    order, each pass using the statistics found before it); a last pass produces the output. Each tile is
    run with a `halo` of context at least the model's receptive-field radius (18 px for the DPED
    generator; by default `receptive_radius(model)`) and cropped back, so tiles join without seams.
    Costs about (number of norm layers / 2 + 1) whole-image passes. `side` fixes the tiles' side without
    the halo (e.g. from `plan_memory`); otherwise `plan_tile` picks it from the activation budget, and the
    image runs whole (through `run`, by default `traced(model)`) when it fits. `image` is uint8, uint16 or
    float in [0,1]; the output is stored as `out_dtype` (see `quantize`), [H,W,C'].
    """
    image = _check_image(image, "enhance_tiled_exact")
    height, width = image.shape[:2]
    halo = receptive_radius(model) if halo is None else int(halo)
    if side is None:
        side = plan_tile(height, width, memory_budget_bytes, tile, 0, bytes_per_pixel)
        side = None if side is None else max(MIN_TILE, side - 2 * halo)
    if side is None or side >= max(height, width):
        return quantize((run or traced(model))(as_float(image)[None])[0], out_dtype)
    norms = []

    def swap(layer):
        if is_instance_norm(layer):
            norms.append(_GlobalStatsNorm(layer))
            return norms[-1]
        return layer

    clone = keras.models.clone_model(model, clone_function=swap)
    boxes = _tile_boxes(height, width, side)
    for norm in norms:
        _gather_statistics(traced(keras.Model(clone.inputs[0], norm.input)), image, boxes, halo, norm)
    out, run = None, traced(clone)
    for box in boxes:
        result = quantize(_run_with_halo(run, image, box, halo), out_dtype)
        if out is None:
            out = np.zeros((height, width, result.shape[-1]), out_dtype)
        out[box[0]:box[1], box[2]:box[3]] = result
    return out


def _gather_statistics(probe, image, boxes, halo, norm):
    """Set `norm`'s mean and variance to those of `probe`'s output over the whole image, tile by tile."""
    total = total_sq = 0.0
    for box in boxes:
        values = _run_with_halo(probe, image, box, halo)
        for rows in np.array_split(values, max(1, len(values) // 16)):  # float64 sums, 16 rows at a time
            rows = rows.astype(np.float64)
            total = total + rows.sum(axis=(0, 1))
            total_sq = total_sq + (rows * rows).sum(axis=(0, 1))
    count = image.shape[0] * image.shape[1]
    mean = total / count
    norm.mean.assign(mean.astype(np.float32))
    norm.var.assign(np.maximum(total_sq / count - mean ** 2, 0.0).astype(np.float32))
