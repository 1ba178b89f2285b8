"""Metrics against independent references on real DPED photos: scikit-image (PSNR, SSIM), float64 NumPy
re-implementations of the published UQI formula and of the DPED authors' MS-SSIM, and tf.image."""
import json

import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage, signal
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from common import metrics as M
from common.errors import PhotoEnhanceError
from common.images import read_image


# ---------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def patches(dped_sample):
    """Eight real iPhone/Canon 100x100 pairs, uint8."""
    iphone = np.stack([read_image(dped_sample / "patches" / "iphone" / f"{i}.jpg") for i in range(8)])
    canon = np.stack([read_image(dped_sample / "patches" / "canon" / f"{i}.jpg") for i in range(8)])
    return iphone, canon


@pytest.fixture(scope="module")
def photo(dped_sample):
    """A full-size phone photo (720x1280) downsized 4x by block means to 180x320, uint8."""
    img = read_image(dped_sample / "full_size" / "0.png").astype(np.float64)
    h, w = img.shape[0] // 4 * 4, img.shape[1] // 4 * 4
    small = img[:h, :w].reshape(h // 4, 4, w // 4, 4, 3).mean(axis=(1, 3))
    return np.round(small).astype(np.uint8)


def _noisy(img, sigma, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


# ---------------------------------------------------------------- PSNR

def test_psnr_matches_skimage_on_real_pairs(patches, photo):
    iphone, canon = patches
    ours = M.psnr(iphone, canon, max_val=255).numpy()
    ref = [peak_signal_noise_ratio(c, i, data_range=255) for i, c in zip(iphone, canon)]
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert ours.shape == (8,) and ours.dtype == np.float32
    distorted = _noisy(photo, 6.0)
    ours = M.psnr(photo / 255.0, distorted / 255.0, max_val=1.0).numpy()
    np.testing.assert_allclose(ours, [peak_signal_noise_ratio(photo / 255.0, distorted / 255.0, data_range=1.0)],
                               atol=1e-4)


def test_psnr_per_channel_mean_is_mean_of_channel_psnrs(patches):
    iphone, canon = patches
    ours = M.psnr_per_channel_mean(iphone, canon, max_val=255).numpy()
    ref = [np.mean([peak_signal_noise_ratio(c[..., k], i[..., k], data_range=255) for k in range(3)])
           for i, c in zip(iphone, canon)]
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert np.all(ours > M.psnr(iphone, canon, max_val=255).numpy())  # concavity of log


def test_psnr_identical_images_is_inf(patches):
    iphone, canon = patches
    values = M.psnr(np.stack([iphone[0], iphone[1]]), np.stack([iphone[0], canon[1]]), max_val=255).numpy()
    assert values[0] == np.inf and np.isfinite(values[1])
    broken = np.full((1, 4, 4, 3), np.nan, np.float32)
    assert np.isnan(M.psnr(broken, np.zeros_like(broken), max_val=1.0).numpy()[0])  # not mistaken for identical


# ---------------------------------------------------------------- SSIM

def _skimage_ssim(a, b, data_range):
    return structural_similarity(a.astype(np.float64), b.astype(np.float64), gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=data_range, channel_axis=-1)


def test_ssim_matches_skimage_and_tf_on_real_photos(patches, photo):
    iphone, canon = patches
    ours = M.ssim(iphone, canon, max_val=255).numpy()
    np.testing.assert_allclose(ours, [_skimage_ssim(i, c, 255) for i, c in zip(iphone, canon)], atol=2e-5)
    # tf.image.ssim runs the same formula in float32 on uncentred values and strays up to ~3e-4 from skimage
    # on these patches; ours centres each image first and stays within ~1e-5.
    np.testing.assert_allclose(ours, tf.image.ssim(iphone, canon, 255).numpy(), atol=5e-4)
    blurred = ndimage.gaussian_filter(photo / 255.0, (1.2, 1.2, 0))
    ours = M.ssim(photo / 255.0, blurred, max_val=1.0).numpy()
    np.testing.assert_allclose(ours, [_skimage_ssim(photo / 255.0, blurred, 1.0)], atol=1e-4)


def test_ssim_refuses_images_smaller_than_its_window():
    with pytest.raises(PhotoEnhanceError, match="smaller than the 11x11"):
        M.ssim(np.zeros((8, 20, 3), np.float32), np.zeros((8, 20, 3), np.float32))


# ---------------------------------------------------------------- MS-SSIM

def _authors_ms_ssim(img1, img2, max_val):
    """The DPED authors' MultiScaleSSIM re-done in float64 NumPy/SciPy for one [H,W,C] pair."""
    weights = np.array(M.MS_SSIM_WEIGHTS)
    im1, im2 = img1[None].astype(np.float64), img2[None].astype(np.float64)
    cs_values, ssim_values = [], []
    for _ in range(len(weights)):
        h, w = im1.shape[1:3]
        size = min(11, h, w)
        sigma = size * 1.5 / 11
        half = (size - 1) / 2.0
        yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
        win = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
        win = (win / win.sum())[None, :, :, None]
        mu1, mu2 = (signal.fftconvolve(im, win, mode="valid") for im in (im1, im2))
        s11 = signal.fftconvolve(im1 * im1, win, mode="valid") - mu1 * mu1
        s22 = signal.fftconvolve(im2 * im2, win, mode="valid") - mu2 * mu2
        s12 = signal.fftconvolve(im1 * im2, win, mode="valid") - mu1 * mu2
        c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
        v1, v2 = 2 * s12 + c2, s11 + s22 + c2
        ssim_values.append(np.mean((2 * mu1 * mu2 + c1) * v1 / ((mu1 ** 2 + mu2 ** 2 + c1) * v2)))
        cs_values.append(np.mean(v1 / v2))
        down = np.ones((1, 2, 2, 1)) / 4.0
        im1, im2 = (ndimage.convolve(im, down, mode="reflect")[:, ::2, ::2, :] for im in (im1, im2))
    return np.prod(np.array(cs_values[:-1]) ** weights[:-1]) * ssim_values[-1] ** weights[-1]


def test_ms_ssim_matches_authors_method_on_100x100_patches(patches):
    iphone, canon = patches
    ours = M.ms_ssim(iphone, canon, max_val=255).numpy()
    ref = [_authors_ms_ssim(i, c, 255) for i, c in zip(iphone, canon)]
    np.testing.assert_allclose(ours, ref, atol=2e-5)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.image.ssim_multiscale(iphone, canon, 255)  # the reason the authors' variant exists


def test_ms_ssim_per_scale_window_on_odd_sizes(photo):
    # 37x53 -> 19x27 -> 10x14 -> 5x7 -> 3x4: windows 11, 11, 10 (even), 5, 3.
    a = photo[:37, :53]
    b = _noisy(a, 10.0)
    np.testing.assert_allclose(M.ms_ssim(a, b, max_val=255).numpy(), [_authors_ms_ssim(a, b, 255)], atol=2e-5)


def test_ms_ssim_properties_on_patches(patches):
    iphone, _ = patches
    x = iphone[:4] / 255.0
    np.testing.assert_allclose(M.ms_ssim(x, x, max_val=1.0).numpy(), 1.0, atol=1e-6)
    previous = np.ones(4)
    for sigma in (2.0, 8.0, 20.0, 40.0):
        scores = M.ms_ssim(x, _noisy(iphone[:4], sigma) / 255.0, max_val=1.0).numpy()
        assert np.all(np.isfinite(scores)) and np.all(scores < previous - 1e-3)
        previous = scores
    blur_scores = [M.ms_ssim(x, ndimage.gaussian_filter(x, (0, s, s, 0)), max_val=1.0).numpy() for s in (0.7, 1.5, 3)]
    assert np.all(np.diff(np.stack(blur_scores), axis=0) < 0)


def test_ms_ssim_versus_tf_ssim_multiscale_on_large_image(photo):
    """Where both run they coincide per channel (same window, weights, constants, downsampling including the
    odd-size padding). For colour TF combines the scales per channel and averages the channels afterwards,
    the authors average the channels at each scale: equal to ~1e-5 when all channels are distorted alike,
    measurably different when one channel carries the distortion."""
    rng = np.random.default_rng(0)
    noisy = _noisy(photo, 12.0)
    red_only = photo.copy()
    red_only[..., 0] = np.clip(photo[..., 0] + rng.normal(0, 40.0, photo.shape[:2]), 0, 255).round()
    a = photo[None, 1:, 3:]  # 179x317: odd sizes exercise the padding at every scale
    for distorted in (noisy, red_only):
        b = distorted[None, 1:, 3:]
        for k in range(3):
            np.testing.assert_allclose(M.ms_ssim(a[..., k:k + 1], b[..., k:k + 1], max_val=255).numpy(),
                                       tf.image.ssim_multiscale(a[..., k:k + 1], b[..., k:k + 1], 255).numpy(),
                                       atol=1e-5)
    ours_noisy = M.ms_ssim(a, noisy[None, 1:, 3:], max_val=255).numpy()
    np.testing.assert_allclose(ours_noisy, tf.image.ssim_multiscale(a, noisy[None, 1:, 3:], 255).numpy(), atol=1e-4)
    ours_red = M.ms_ssim(a, red_only[None, 1:, 3:], max_val=255).numpy()
    tf_red = tf.image.ssim_multiscale(a, red_only[None, 1:, 3:], 255).numpy()
    assert ours_red[0] - tf_red[0] > 2e-3, (ours_red, tf_red)


# ---------------------------------------------------------------- UQI

def _reference_uqi(x, y, window=8):
    """Wang & Bovik's Q for one [H,W,C] pair in float64 with the MATLAB code's degenerate-window rules."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    per_channel = []
    for k in range(x.shape[-1]):
        wx = sliding_window_view(x[..., k], (window, window)).reshape(-1, window * window)
        wy = sliding_window_view(y[..., k], (window, window)).reshape(-1, window * window)
        mx, my = wx.mean(axis=1), wy.mean(axis=1)
        vx = ((wx - mx[:, None]) ** 2).mean(axis=1)
        vy = ((wy - my[:, None]) ** 2).mean(axis=1)
        cxy = ((wx - mx[:, None]) * (wy - my[:, None])).mean(axis=1)
        flat = (np.ptp(wx, axis=1) == 0) & (np.ptp(wy, axis=1) == 0)
        q = np.ones(len(mx))
        msq = mx ** 2 + my ** 2
        for i in range(len(q)):
            if flat[i]:
                if msq[i] != 0:
                    q[i] = 2 * mx[i] * my[i] / msq[i]
            elif (vx[i] + vy[i]) * msq[i] != 0:
                q[i] = 4 * cxy[i] * mx[i] * my[i] / ((vx[i] + vy[i]) * msq[i])
        per_channel.append(q.mean())
    return float(np.mean(per_channel))


def test_uqi_matches_reference_formula_on_real_pairs(patches):
    iphone, canon = patches
    ours = M.uqi(iphone[:4], canon[:4], max_val=255).numpy()
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, [_reference_uqi(i, c) for i, c in zip(iphone[:4], canon[:4])], atol=1e-6)
    ours = M.uqi(iphone[:2] / 255.0, canon[:2] / 255.0, max_val=1.0, window=5).numpy()
    np.testing.assert_allclose(ours, [_reference_uqi(i / 255.0, c / 255.0, 5) for i, c in zip(iphone[:2], canon[:2])],
                               atol=1e-6)


def test_uqi_degenerate_windows(patches):
    iphone, canon = patches
    # Flat regions: a block constant in both images (equal and different levels), one constant in one only.
    x, y = iphone[0].astype(np.float32) / 255, canon[0].astype(np.float32) / 255
    x[10:40, 10:40], y[10:40, 10:40] = 0.25, 0.25
    x[50:80, 10:40], y[50:80, 10:40] = 0.2, 0.6
    x[10:40, 50:90], y[10:40, 50:90] = 0.0, 0.0
    x[60:95, 60:95] = 0.5
    np.testing.assert_allclose(M.uqi(x, y, max_val=1.0).numpy(), [_reference_uqi(x, y)], atol=1e-6)
    const = lambda v: np.full((1, 16, 16, 3), v, np.float32)  # noqa: E731
    cases = [(0.4, 0.4, 1.0), (0.0, 0.0, 1.0), (0.2, 0.6, 2 * 0.2 * 0.6 / (0.2 ** 2 + 0.6 ** 2)), (0.0, 0.7, 0.0)]
    for a, b, expected in cases:
        ours = M.uqi(const(a), const(b), max_val=1.0).numpy()
        np.testing.assert_allclose(ours, [expected], atol=1e-12)
        np.testing.assert_allclose(ours, [_reference_uqi(const(a)[0], const(b)[0])], atol=1e-12)


def test_uqi_is_not_sewar(patches):
    sewar = pytest.importorskip("sewar")
    iphone, canon = patches
    a, b = canon[0].astype(np.float64), iphone[0].astype(np.float64)
    ours = float(M.uqi(a, b, max_val=255).numpy()[0])
    theirs = float(sewar.full_ref.uqi(a, b))
    np.testing.assert_allclose(ours, _reference_uqi(a, b), atol=1e-6)
    assert theirs - ours > 0.2, (ours, theirs)


# ---------------------------------------------------------------- inputs and graphs

ALL = {"psnr": M.psnr, "psnr_per_channel_mean": M.psnr_per_channel_mean, "ssim": M.ssim,
       "ms_ssim": M.ms_ssim, "uqi": M.uqi}


@pytest.mark.parametrize("name", sorted(ALL))
def test_uint8_and_float_agree_and_single_images_are_promoted(patches, name):
    fn = ALL[name]
    iphone, canon = patches
    from_uint8 = fn(iphone[:3], canon[:3], max_val=255).numpy()
    from_float = fn(iphone[:3] / 255.0, canon[:3].astype(np.float32) / 255.0, max_val=1.0).numpy()
    np.testing.assert_allclose(from_uint8, from_float, atol=2e-5)
    single = fn(iphone[1], canon[1], max_val=255).numpy()
    assert single.shape == (1,)
    np.testing.assert_allclose(single, from_uint8[1:2], atol=1e-6)


def test_bad_inputs_raise_clear_errors():
    u8 = np.zeros((1, 16, 16, 3), np.uint8)
    with pytest.raises(PhotoEnhanceError, match="max_val=255"):
        M.psnr(u8, u8)
    with pytest.raises(PhotoEnhanceError, match="shapes differ"):
        M.ssim(np.zeros((1, 16, 16, 3)), np.zeros((1, 16, 17, 3)))
    with pytest.raises(PhotoEnhanceError, match="uint8 with float64|uint8 with"):
        M.uqi(u8, u8.astype(np.float64), max_val=255)
    with pytest.raises(PhotoEnhanceError, match=r"\[N,H,W,C\]"):
        M.ms_ssim(np.zeros((16, 16)), np.zeros((16, 16)))
    with pytest.raises(PhotoEnhanceError, match="unknown metric"):
        M.MetricAccumulator(metrics=("psnr", "lpips"))


def test_metrics_run_in_tf_data_graphs_with_unknown_shapes(patches):
    iphone, canon = patches
    a, b = iphone[:4, :97, :90], canon[:4, :97, :90]
    spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
    ds = tf.data.Dataset.from_generator(lambda: iter([(a[:2], b[:2]), (a[2:], b[2:])]), output_signature=(spec, spec))
    ds = ds.map(lambda x, y: tuple(fn(x, y, max_val=255) for fn in ALL.values()))
    graph = [np.concatenate(v) for v in zip(*ds.as_numpy_iterator())]
    for value, fn in zip(graph, ALL.values()):
        np.testing.assert_allclose(value, fn(a, b, max_val=255).numpy(), atol=1e-6)


# ---------------------------------------------------------------- accumulator

def test_accumulator_psnr_conventions_on_hand_made_case():
    # Targets 0, predictions constant e -> MSE e^2; image 2 is identical; updates straddle the groups of 2.
    errors = [0.1, 0.01, 0.0, 0.2, np.sqrt(0.001)]
    target = np.zeros((5, 4, 4, 3), np.float32)
    pred = np.stack([np.full((4, 4, 3), e, np.float32) for e in errors])
    pred[4, ..., 0] = 0.0  # one image with unequal channel errors: MSE 0.001 * 2/3
    acc = M.MetricAccumulator(max_val=1.0, metrics=("psnr",), mse_batch_size=2)
    acc.update(pred[:3], target[:3])
    acc.update(pred[3:], target[3:])
    res = acc.result()
    mse = np.array([0.01, 0.0001, 0.0, 0.04, 0.001 * 2 / 3], np.float64)
    psnr = lambda m: 10 * np.log10(1.0 / m)  # noqa: E731
    assert res["n_images"] == 5 and res["n_identical"] == 1
    np.testing.assert_allclose(res["psnr_per_image"], np.mean(psnr(mse[[0, 1, 3, 4]])), rtol=1e-5)
    np.testing.assert_allclose(res["psnr_batch_mse"], np.mean(
        [psnr(0.00505), psnr(0.02), psnr(0.001 * 2 / 3)]), rtol=1e-5)
    # Images 2 (identical) and 4 (one exact channel) have an infinite per-channel-mean PSNR: left out.
    np.testing.assert_allclose(res["psnr_per_channel_mean"], np.mean(psnr(mse[[0, 1, 3]])), rtol=1e-5)
    assert set(res) == {"n_images", "n_identical", "psnr_per_image", "psnr_batch_mse", "psnr_per_channel_mean"}
    per_image = acc.per_image()
    assert per_image["psnr"][2] is None and per_image["psnr_per_channel_mean"][4] is None
    json.dumps(per_image, allow_nan=False)


def test_accumulator_identical_pairs_and_real_metrics(patches):
    iphone, canon = patches
    acc = M.MetricAccumulator(max_val=255)
    acc.update(iphone[:3], iphone[:3])
    res = acc.result()
    assert res["n_identical"] == 3 and res["psnr_per_image"] is None and res["psnr_batch_mse"] is None
    assert res["ssim"] == pytest.approx(1.0) and res["uqi"] == pytest.approx(1.0)
    acc.reset()
    acc.update(iphone[:5], canon[:5])
    acc.update(iphone[5], canon[5])
    res = acc.result()
    assert res["n_images"] == 6 and res["n_identical"] == 0
    for name in ("ssim", "ms_ssim", "uqi"):
        direct = ALL[name](iphone[:6], canon[:6], max_val=255).numpy()
        np.testing.assert_allclose(res[name], direct.mean(), atol=1e-6)
        np.testing.assert_allclose(acc.per_image()[name], direct, atol=1e-6)
    np.testing.assert_allclose(res["psnr_per_image"], M.psnr(iphone[:6], canon[:6], max_val=255).numpy().mean(),
                               atol=1e-4)


@pytest.mark.slow
def test_phone_photos_score_on_all_shared_pairs(dped_sample):
    """The 100 shared iPhone/Canon pairs, scored as the evaluation scripts do: SPEC.md quotes ~17.3 dB
    per-image PSNR for the phone photos on the full 400-pair test set; the batch-MSE PSNR is lower (Jensen)."""
    acc = M.MetricAccumulator(max_val=255)
    for start in range(0, 100, 25):
        pair = [np.stack([read_image(dped_sample / "patches" / phone / f"{i}.jpg") for i in range(start, start + 25)])
                for phone in ("iphone", "canon")]
        acc.update(*pair)
    res = acc.result()
    assert res["n_images"] == 100
    assert 16.0 < res["psnr_per_image"] < 18.5
    assert res["psnr_batch_mse"] < res["psnr_per_image"] - 1.0
    assert 0.0 < res["uqi"] < res["ssim"] < res["ms_ssim"] < 1.0
