"""Tiled inference: exact reassembly for pointwise functions, budget planning, and parity with whole-image
DPED enhancement on a real photo crop."""
import numpy as np
import pytest

from common.errors import PhotoEnhanceError
from common.tiling import enhance_tiled, estimate_memory_bytes, plan_tile


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


def test_tiled_dped_close_to_whole_on_real_photo_crop(dped_sample):
    from common.images import read_image, to_float
    from dped.convert_original import load_original_checkpoint
    from dped.enhance import make_predictor

    predictor = make_predictor(load_original_checkpoint(dped_sample / "pretrained" / "iphone_orig"))
    image = to_float(read_image(dped_sample / "full_size" / "1.png"))[200:360, 300:540]
    whole = np.clip(predictor(image[None])[0], 0, 1)
    tiled = np.clip(enhance_tiled(predictor, image, tile=96, overlap=32,
                                  memory_budget_bytes=estimate_memory_bytes(96, 96)), 0, 1)
    psnr = 10 * np.log10(1.0 / np.mean((tiled - whole) ** 2))
    assert 30.0 < psnr < 80.0  # instance norm sees per-tile statistics, so tiling is close but not exact
