"""Degradations: exact values against closed forms and scipy, determinism per seed."""
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from common import degradations as deg
from common.errors import PhotoEnhanceError


def _rand(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.mark.parametrize("sigma,kernel_size", [(1.0, None), (2.0, None), (1.5, 7)])
def test_gaussian_blur_matches_scipy_reflect(sigma, kernel_size):
    x = _rand((2, 23, 17, 3))
    out = deg.gaussian_blur(x, sigma, kernel_size).numpy()
    radius = (kernel_size // 2) if kernel_size else int(np.ceil(3 * sigma))
    ref = np.stack([
        np.stack([
            scipy.ndimage.gaussian_filter(x[n, :, :, c].astype(np.float64), sigma, mode="reflect",
                                          truncate=(radius + 0.25) / sigma)
            for c in range(3)], -1)
        for n in range(2)])
    # scipy's radius is int(truncate * sigma + 0.5); the + 0.25 makes it exactly `radius`.
    assert out.shape == x.shape
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_gaussian_blur_constant_and_mean():
    const = np.full((1, 12, 9, 3), 0.37, np.float32)
    np.testing.assert_allclose(deg.gaussian_blur(const, 1.0).numpy(), const, atol=1e-6)
    x = _rand((3, 20, 31, 3), seed=1)
    out = deg.gaussian_blur(x, 1.7).numpy()
    np.testing.assert_allclose(out.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=1e-6)
    assert out.std() < x.std()  # it does blur


def test_gaussian_blur_single_image_and_tf_function():
    x = _rand((10, 10, 3))
    single = deg.gaussian_blur(x, 1.0).numpy()
    batched = tf.function(lambda t: deg.gaussian_blur(t, 1.0))(x[None]).numpy()[0]
    np.testing.assert_allclose(single, batched, atol=1e-7)


def test_gaussian_blur_rejects_kernel_larger_than_image():
    with pytest.raises(PhotoEnhanceError, match="radius"):
        deg.gaussian_blur(_rand((1, 4, 4, 3)), 3.0)


def test_overexpose_closed_form_and_inverse():
    x = _rand((2, 8, 8, 3), seed=2)
    tau = np.array([0.5, 0.8], np.float32)
    over = deg.overexpose(x, tau).numpy()
    lin = x.astype(np.float64) ** 2.2
    t = tau[:, None, None, None]
    expected = (np.minimum(lin, t) / t) ** (1 / 2.2)
    np.testing.assert_allclose(over, expected, atol=1e-6)
    back = deg.inverse_overexpose(over, tau).numpy()
    clipped = lin >= t
    assert clipped.any() and (~clipped).any()
    np.testing.assert_allclose(back[~clipped], x[~clipped], atol=2e-6)
    # Clipped pixels became 1 and come back as tau**(1/gamma), below the lost original value.
    np.testing.assert_allclose(over[clipped], 1.0, atol=1e-6)
    np.testing.assert_allclose(back[clipped], np.broadcast_to(t ** (1 / 2.2), x.shape)[clipped], atol=1e-6)
    assert np.all(back[clipped] < x[clipped] + 1e-6)


def test_overexpose_scalar_tau_and_identity_at_one():
    x = _rand((6, 5, 3), seed=3)
    np.testing.assert_allclose(deg.overexpose(x, 1.0).numpy(), x, atol=2e-6)
    assert deg.overexpose(x, 0.5).numpy().shape == x.shape
    with pytest.raises(PhotoEnhanceError, match="tau"):
        deg.overexpose(x, 0.0)


def test_random_tau_range_and_determinism():
    a = deg.random_tau(1000, seed=5).numpy()
    assert a.min() >= 0.5 and a.max() < 1.0 and 0.7 < a.mean() < 0.8
    np.testing.assert_array_equal(a, deg.random_tau(1000, seed=5).numpy())
    assert not np.array_equal(a, deg.random_tau(1000, seed=6).numpy())


def test_contrast_stretch_known_values():
    x = np.array([0, 10, 125, 240, 255], np.float32).reshape(1, 1, 5, 1) / 255.0
    out = deg.contrast_stretch(x).numpy().ravel()
    np.testing.assert_allclose(out, [0.0, 0.0, 115 / 230, 1.0, 1.0], atol=1e-6)


def test_phone_degrade_deterministic_per_seed():
    x = _rand((2, 32, 32, 3), seed=4) * 0.8 + 0.1
    a = deg.phone_degrade(x, seed=7).numpy()
    b = deg.phone_degrade(x, seed=7).numpy()
    c = deg.phone_degrade(x, seed=8).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    assert 0.01 < np.abs(a - x).mean() < 0.3  # degraded, yet still the same picture
    # Stronger degradation moves further from the clean image.
    mild = deg.phone_degrade(x, seed=7, strength=0.3).numpy()
    assert np.abs(mild - x).mean() < np.abs(a - x).mean()
    np.testing.assert_array_equal(deg.phone_degrade(x, seed=7, strength=0.0).numpy(), x)


def test_phone_degrade_in_tf_data_with_tensor_seed():
    x = _rand((2, 16, 16, 3), seed=9)
    ds = tf.data.Dataset.from_tensors(x).map(lambda im: deg.phone_degrade(im, tf.constant([3, 4], tf.int64)))
    out = next(iter(ds)).numpy()
    np.testing.assert_array_equal(out, deg.phone_degrade(x, [3, 4]).numpy())


def test_phone_camera_closed_form_on_flat_colours():
    # Flat colours: blur and JPEG leave them (nearly) unchanged, so the camera's tone and colour show exactly.
    colours = np.array([[0.2, 0.5, 0.8], [0.9, 0.3, 0.1], [0.5, 0.5, 0.5]], np.float32)
    x = np.broadcast_to(colours[:, None, None, :], (3, 16, 16, 3)).copy()
    got = deg.phone_camera(x, seed=1, noise=0.0, jpeg_quality=(100, 100)).numpy()[:, 8, 8]
    tone = 0.5 + 0.8 * (colours ** 1.25 - 0.5)
    grey = tone.mean(-1, keepdims=True)
    want = np.clip((grey + 0.7 * (tone - grey)) * [0.96, 1.0, 1.07], 0, 1)
    np.testing.assert_allclose(got, want, atol=2.5 / 255)


def test_phone_camera_one_look_per_camera_noise_per_shot():
    x = tf.random.stateless_uniform([2, 32, 32, 3], seed=[0, 1]).numpy()
    a = deg.phone_camera(x, seed=[4, 5]).numpy()
    np.testing.assert_array_equal(a, deg.phone_camera(x, seed=[4, 5]).numpy())
    b = deg.phone_camera(x, seed=[4, 6]).numpy()
    assert 0 < np.abs(a - b).mean() < 0.02  # other noise and JPEG, the same tone and colour
    assert np.abs(a.mean(axis=(1, 2)) - b.mean(axis=(1, 2))).max() < 0.01
    assert np.abs(a - x).mean() > 3 * np.abs(a - b).mean()  # the look itself is the larger change


def test_phone_camera_rejects_bad_arguments():
    x = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(PhotoEnhanceError, match="RGB"):
        deg.phone_camera(np.zeros((8, 8, 1), np.float32), seed=0)
    with pytest.raises(PhotoEnhanceError, match="jpeg_quality"):
        deg.phone_camera(x, seed=0, jpeg_quality=(90, 80))
