"""Tiled inference: exact reassembly for pointwise functions, budget planning, and parity with whole-image
DPED enhancement on a real photo crop."""
import numpy as np
import pytest

from common.errors import PhotoEnhanceError
from common.tiling import (TILED_FIXED_BYTES, enhance_tiled, enhance_tiled_exact, estimate_memory_bytes, plan_memory,
                           plan_tile, receptive_radius)


class Recorder:
    """A pointwise function that remembers the shapes it was called with."""

    def __init__(self):
        self.shapes = []

    def __call__(self, x):
        self.shapes.append(x.shape)
        return np.sqrt(x) * 0.5 + 0.1


def test_whole_image_when_it_fits():
    image = np.random.default_rng(0).uniform(0, 1, (37, 53, 3)).astype(np.float32)
    fn = Recorder()
    out = enhance_tiled(fn, image, memory_budget_bytes=None)
    assert fn.shapes == [(1, 37, 53, 3)]
    np.testing.assert_allclose(out, np.sqrt(image) * 0.5 + 0.1, rtol=1e-6)
    fn = Recorder()
    enhance_tiled(fn, image, memory_budget_bytes=estimate_memory_bytes(37, 53))
    assert len(fn.shapes) == 1


def test_tiles_reassemble_pointwise_function_exactly():
    image = np.random.default_rng(1).uniform(0, 1, (37, 53, 3)).astype(np.float32)
    fn = Recorder()
    out = enhance_tiled(fn, image, tile=16, overlap=5, memory_budget_bytes=estimate_memory_bytes(16, 16))
    assert len(fn.shapes) > 6 and all(s[1] <= 16 and s[2] <= 16 for s in fn.shapes)
    np.testing.assert_allclose(out, np.sqrt(image) * 0.5 + 0.1, rtol=1e-6, atol=1e-6)


def test_plan_tile_uses_largest_tile_in_budget_and_rejects_tiny_budgets():
    assert plan_tile(100, 100, None) is None
    assert plan_tile(1000, 1000, estimate_memory_bytes(300, 300), tile=768, overlap=64) == 300
    assert plan_tile(1000, 1000, estimate_memory_bytes(2000, 2000), tile=768) is None
    with pytest.raises(PhotoEnhanceError, match="raise the budget"):
        plan_tile(1000, 1000, estimate_memory_bytes(50, 50), overlap=64)
    with pytest.raises(PhotoEnhanceError, match=r"\[H,W,C\]"):
        enhance_tiled(Recorder(), np.zeros((2, 4, 4, 3), np.float32))


def test_exact_tiling_matches_whole_image_with_instance_norm():
    from dped.models import build_generator

    assert receptive_radius(build_generator()) == 18
    model = build_generator(width=6, num_blocks=2)
    model.set_weights([w * 8 if w.ndim == 4 else w for w in model.get_weights()])
    assert receptive_radius(model) == 4 + 6 + 4
    image = np.random.default_rng(2).uniform(0, 1, (45, 61, 3)).astype(np.float32)
    whole = model(image[None]).numpy()[0]
    exact = enhance_tiled_exact(model, image, tile=40, memory_budget_bytes=estimate_memory_bytes(40, 40))
    np.testing.assert_allclose(exact, whole, atol=1e-5)
    blended = enhance_tiled(model, image, tile=40, overlap=14, memory_budget_bytes=estimate_memory_bytes(40, 40))
    assert np.abs(blended - whole).max() > 1e-3  # per-tile statistics: what the exact mode avoids


def test_plan_memory_whole_when_it_fits_else_largest_tiles_in_the_rest():
    mb = 2**20
    assert plan_memory(720, 1280, 2048 * mb, 700 * mb, 1152) is None  # 700 MB + 0.92 MP x ~1.2 KB fits
    side = plan_memory(720, 1280, 1024 * mb, 700 * mb, 1152, halo=18)
    room = 1024 * mb - 700 * mb - TILED_FIXED_BYTES - 720 * 1280 * 16
    assert (side + 36) ** 2 * 1152 <= room < (side + 37) ** 2 * 1152
    assert plan_memory(720, 1280, 4096 * mb, 700 * mb, 1152, tile=300) == 300  # --tile caps even when it fits
    with pytest.raises(PhotoEnhanceError, match="needs a memory budget of at least"):
        plan_memory(3000, 4000, 800 * mb, 700 * mb, 1152, halo=18)


def test_exact_tiling_takes_uint8_and_stores_uint8():
    from dped.models import build_generator

    model = build_generator(width=4, num_blocks=1)
    pixels = np.random.default_rng(4).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    whole = np.clip(model(pixels[None].astype(np.float32) / 255).numpy()[0], 0, 1) * 255
    tiled = enhance_tiled_exact(model, pixels, side=12, out_dtype=np.uint8)
    assert tiled.dtype == np.uint8 and np.abs(tiled - whole).max() <= 0.5 + 1e-3


@pytest.mark.slow
def test_tiled_dped_close_to_whole_on_real_photo_crop(dped_sample):
    from common.images import read_image, to_float
    from dped.convert_original import load_original_checkpoint
    from dped.loading import make_predictor

    model = load_original_checkpoint(dped_sample / "pretrained" / "iphone_orig")
    image = to_float(read_image(dped_sample / "full_size" / "1.png"))[200:360, 300:540]
    whole = np.clip(model(image[None]).numpy()[0], 0, 1)
    budget = estimate_memory_bytes(96, 96)

    def psnr(x):
        return 10 * np.log10(1.0 / np.mean((np.clip(x, 0, 1) - whole) ** 2))

    blended = enhance_tiled(make_predictor(model), image, tile=96, overlap=32, memory_budget_bytes=budget)
    assert 30.0 < psnr(blended) < 60.0  # instance norm sees per-tile statistics: close, not exact
    assert psnr(enhance_tiled_exact(model, image, tile=96, memory_budget_bytes=budget)) > 80.0
