"""Full-resolution inference within a memory budget: overlapping tiles blended with smooth windows.

A fully convolutional enhancer can take a whole photo, but its activations grow with the pixel count
(the DPED generator keeps several 64-channel float32 maps alive: ~2 KB per pixel, ~2 GB for 1280x720).
`enhance_tiled` runs the whole image when its estimate fits the budget, otherwise overlapping tiles whose
outputs are blended with raised-cosine ramps over the overlap (weights normalised, so flat regions stay
exact). Networks with instance norm see per-tile statistics, so tiles should be as large as the budget
allows and overlap well beyond the receptive-field radius; `plan_tile` picks the largest tile that fits.
"""
import math

import numpy as np

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
