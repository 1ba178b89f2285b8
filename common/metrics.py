"""Image-quality metrics as TensorFlow ops: PSNR, SSIM, the DPED authors' MS-SSIM, UQI, and a dataset accumulator.

Every metric takes two batches `[N, H, W, C]` (an `[H, W, C]` image is promoted to a batch of one) of uint8
or float pixels and an explicit `max_val` in the same units as the pixels (255 for uint8, as in
`tf.image.psnr`), and returns one value per image, shape `[N]`. They are plain graph-compatible ops, so they
run eagerly, inside `tf.function` and inside `tf.data` maps.

Two PSNR conventions circulate in DPED reproductions and differ by more than 2 dB (SPEC.md, "DPED evaluation
conventions"): the PIRM challenge averages per-image PSNR, the authors' training script takes the PSNR of
the mean MSE over batches of 50. `MetricAccumulator` reports both under explicit names.
"""
import math

import numpy as np
import tensorflow as tf

from common.errors import PhotoEnhanceError

SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# The DPED authors' MS-SSIM (and Wang et al. 2003) scale weights, finest scale first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
UQI_WINDOW = 8

METRIC_NAMES = ("psnr", "ssim", "ms_ssim", "uqi")


def _prepare(a, b, max_val, name):
    """Validate a pair of image batches before TensorFlow sees them; return them as rank-4 tensors.

    Both batches must have the same shape and kind (both uint8 or both float). uint8 pixels span 0..255,
    so uint8 input with any other `max_val` is a caller mistake and is refused rather than scored wrongly.
    """
    a = tf.convert_to_tensor(a)
    b = tf.convert_to_tensor(b)
    for t in (a, b):
        if t.dtype != tf.uint8 and not t.dtype.is_floating:
            raise PhotoEnhanceError(f"{name}: images must be uint8 or float, got {t.dtype.name}")
    if (a.dtype == tf.uint8) != (b.dtype == tf.uint8):
        raise PhotoEnhanceError(
            f"{name}: cannot compare {a.dtype.name} with {b.dtype.name} images; convert both to the same range"
        )
    if a.shape.rank is None or b.shape.rank is None or a.shape.rank not in (3, 4) or b.shape.rank != a.shape.rank:
        raise PhotoEnhanceError(
            f"{name}: expected two [N,H,W,C] batches or two [H,W,C] images, got shapes {a.shape} and {b.shape}"
        )
    if not a.shape.is_compatible_with(b.shape):
        raise PhotoEnhanceError(f"{name}: image shapes differ: {a.shape} vs {b.shape}")
    if a.shape.rank == 3:
        a, b = a[None], b[None]
    if isinstance(max_val, (int, float, np.integer, np.floating)):
        if not max_val > 0:
            raise PhotoEnhanceError(f"{name}: max_val must be positive, got {max_val}")
        if a.dtype == tf.uint8 and max_val != 255:
            raise PhotoEnhanceError(f"{name}: uint8 images span 0..255; pass max_val=255 (got {max_val})")
    return a, b


def _check_min_size(a, size, name, what):
    h, w = a.shape[1], a.shape[2]
    if (h is not None and h < size) or (w is not None and w < size):
        raise PhotoEnhanceError(f"{name}: images of {h}x{w} are smaller than the {size}x{size} {what}")


def _channel_mse(a, b):
    """Per-image, per-channel mean squared error `[N, C]` of prepared batches, in float64 (PSNR of large photos)."""
    d = tf.cast(a, tf.float64) - tf.cast(b, tf.float64)
    return tf.reduce_mean(tf.square(d), axis=[1, 2])


def _psnr_from_mse(mse, max_val):
    """`10 log10(max^2 / MSE)`; MSE 0 (identical images) gives +inf explicitly, a NaN MSE stays NaN."""
    max_val = tf.cast(max_val, tf.float64)
    safe_mse = tf.where(tf.equal(mse, 0.0), tf.ones_like(mse), mse)
    value = 10.0 * tf.math.log(tf.square(max_val) / safe_mse) / math.log(10.0)
    return tf.where(tf.equal(mse, 0.0), tf.constant(np.inf, tf.float64), value)


def psnr(a, b, max_val=1.0):
    """PSNR per image, `10 log10(max_val^2 / MSE)` over all pixels and channels, shape `[N]` float32.

    The MSE is accumulated in float64; identical images give +inf.
    """
    a, b = _prepare(a, b, max_val, "psnr")
    mse = tf.reduce_mean(_channel_mse(a, b), axis=-1)
    return tf.cast(_psnr_from_mse(mse, max_val), tf.float32)


def psnr_per_channel_mean(a, b, max_val=1.0):
    """Mean over channels of the per-channel PSNR (seed 000's convention), shape `[N]` float32.

    Never lower than `psnr` (log is concave); a channel that matches exactly makes the value +inf.
    """
    a, b = _prepare(a, b, max_val, "psnr_per_channel_mean")
    return tf.cast(tf.reduce_mean(_psnr_from_mse(_channel_mse(a, b), max_val), axis=-1), tf.float32)


def _gaussian_1d(size, sigma, dtype):
    """Normalised 1-D Gaussian taps centred between samples for even sizes (MATLAB `fspecial` style)."""
    coords = tf.cast(tf.range(size), dtype) - tf.cast(size - 1, dtype) / 2.0
    g = tf.exp(-tf.square(coords) / (2.0 * tf.square(tf.cast(sigma, dtype))))
    return g / tf.reduce_sum(g)


def _ssim_maps(x, y, max_val, size, sigma):
    """Per-image, per-channel spatial means of SSIM and of its contrast-structure term `cs`, each `[N, C]`.

    Gaussian window `size` x `size` (separable), VALID filtering, population (co)variances: the formulas of
    `tf.image.ssim` and of the authors' `_SSIMForMultiScale`. `size` and `sigma` may be tensors so that
    the window can follow the per-scale image size in graphs with unknown shapes.
    """
    dtype = x.dtype
    channels = tf.shape(x)[-1]
    g = _gaussian_1d(size, sigma, dtype)
    # Moments of images shifted by their global means: (co)variances are unchanged but lose less to
    # cancellation in float32; the window means get the shift back for the luminance term.
    shift_x = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    shift_y = tf.reduce_mean(y, axis=[1, 2], keepdims=True)
    x, y = x - shift_x, y - shift_y
    # Filter the five moment maps in one separable depthwise pass: x, y, x^2, y^2, xy for every channel.
    stack = tf.concat([x, y, x * x, y * y, x * y], axis=-1)
    taps = tf.tile(g[:, None, None, None], [1, 1, 5 * channels, 1])
    stack = tf.nn.depthwise_conv2d(stack, taps, [1, 1, 1, 1], "VALID")
    stack = tf.nn.depthwise_conv2d(stack, tf.transpose(taps, [1, 0, 2, 3]), [1, 1, 1, 1], "VALID")
    mc_x, mc_y, xx, yy, xy = tf.split(stack, 5, axis=-1)
    var_sum = xx + yy - tf.square(mc_x) - tf.square(mc_y)
    cov = xy - mc_x * mc_y
    mu_x, mu_y = mc_x + shift_x, mc_y + shift_y
    c1 = tf.square(SSIM_K1 * tf.cast(max_val, dtype))
    c2 = tf.square(SSIM_K2 * tf.cast(max_val, dtype))
    luminance = (2.0 * mu_x * mu_y + c1) / (tf.square(mu_x) + tf.square(mu_y) + c1)
    cs = (2.0 * cov + c2) / (var_sum + c2)
    return tf.reduce_mean(luminance * cs, axis=[1, 2]), tf.reduce_mean(cs, axis=[1, 2])


def ssim(a, b, max_val=1.0):
    """SSIM per image with the `tf.image.ssim` defaults, shape `[N]` float32.

    11x11 Gaussian window (sigma 1.5), k1 0.01, k2 0.03, VALID; the per-channel means are averaged over
    channels. Equals scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)` to ~1e-5. Images must be at least 11x11.
    """
    a, b = _prepare(a, b, max_val, "ssim")
    _check_min_size(a, SSIM_FILTER_SIZE, "ssim", "SSIM window")
    x, y = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
    s, _ = _ssim_maps(x, y, max_val, SSIM_FILTER_SIZE, SSIM_FILTER_SIGMA)
    return tf.reduce_mean(s, axis=-1)


def _halve(x):
    """2x2 mean downsampling; an odd last row/column is averaged with a copy of itself.

    This is what the authors' `convolve(im, ones((1,2,2,1))/4, mode='reflect')[:, ::2, ::2, :]` computes
    (and what `tf.image.ssim_multiscale` does), giving ceil(H/2) x ceil(W/2).
    """
    shape = tf.shape(x)
    pad = [[0, 0], [0, shape[1] % 2], [0, shape[2] % 2], [0, 0]]
    x = tf.pad(x, pad, mode="SYMMETRIC")
    return tf.nn.avg_pool2d(x, 2, 2, "VALID")


def ms_ssim(a, b, max_val=1.0):
    """The DPED authors' multi-scale SSIM per image, shape `[N]` float32; works on 100x100 patches.

    At each of 5 scales the Gaussian window is `min(11, h, w)` of that scale's size with sigma scaled by the
    same factor (`1.5 * size / 11`), so 100x100 patches (scales 100, 50, 25, 13, 7) end with a 7x7 window
    where `tf.image.ssim_multiscale` refuses to run. Per scale, SSIM and cs are averaged over pixels *and
    channels*, then combined as `prod(cs_1..4 ** w_1..4) * ssim_5 ** w_5` with weights
    (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); scales are linked by 2x2 mean downsampling.

    Differences from `tf.image.ssim_multiscale`, where both run: TF combines the scales per channel and
    averages the channel results afterwards, so the two agree for one channel; for colour they agree to
    ~1e-5 when all channels are distorted alike and differ by a few 1e-3 when one channel carries the
    distortion. Negative cs/SSIM terms (anti-correlated images) are clamped to 0 as TF does; the authors'
    NumPy code returns NaN there.
    """
    a, b = _prepare(a, b, max_val, "ms_ssim")
    x, y = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
    weights = tf.constant(MS_SSIM_WEIGHTS, tf.float32)
    terms = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        if scale > 0:
            x, y = _halve(x), _halve(y)
        shape = tf.shape(x)
        size = tf.minimum(SSIM_FILTER_SIZE, tf.minimum(shape[1], shape[2]))
        sigma = tf.cast(size, tf.float32) * (SSIM_FILTER_SIGMA / SSIM_FILTER_SIZE)
        s, cs = _ssim_maps(x, y, max_val, size, sigma)
        last = scale == len(MS_SSIM_WEIGHTS) - 1
        terms.append(tf.nn.relu(tf.reduce_mean(s if last else cs, axis=-1)))
    return tf.reduce_prod(tf.pow(tf.stack(terms, axis=-1), weights), axis=-1)


def _window_sum(t, height, width):
    """Sums over every `height` x `width` window (VALID, stride 1) of `[N, H, W, C]` via cumulative sums:
    constant cost per pixel whatever the window, and fast in float64 where pooling ops are not."""
    for axis, k in ((1, height), (2, width)):
        length = tf.shape(t)[axis]
        c = tf.cumsum(t, axis=axis)
        pad = [[0, 0]] * 4
        pad[axis] = [1, 0]
        c = tf.pad(c, pad)
        begin_hi = [0, 0, 0, 0]
        begin_hi[axis] = k
        size = [-1, -1, -1, -1]
        size[axis] = length + 1 - k
        t = tf.slice(c, begin_hi, size) - tf.slice(c, [0, 0, 0, 0], size)
    return t


def uqi(a, b, max_val=1.0, window=UQI_WINDOW):
    """Wang & Bovik (2002) universal quality index per image, shape `[N]` float64.

    Per `window` x `window` sliding window (VALID, stride 1):
    `Q = 4 s_xy m_x m_y / ((s_x^2 + s_y^2)(m_x^2 + m_y^2))`, averaged over windows, then channels.
    Degenerate windows follow the authors' MATLAB code: where both windows are constant but the means are not
    both 0, `Q = 2 m_x m_y / (m_x^2 + m_y^2)`; where the denominator is otherwise 0, `Q = 1`. Constancy is
    tested exactly (no adjacent pixel pair in the window differs), not through a rounded variance. UQI has
    no constants, so `max_val` only validates the input range; float64 keeps near-flat windows accurate.

    This is not `sewar.uqi`, which mixes window means with sums and scores far higher (SPEC.md).
    """
    a, b = _prepare(a, b, max_val, "uqi")
    if int(window) != window or window < 1:
        raise PhotoEnhanceError(f"uqi: window must be a positive integer, got {window}")
    window = int(window)
    _check_min_size(a, window, "uqi", "UQI window")
    x, y = tf.cast(a, tf.float64), tf.cast(b, tf.float64)
    # (Co)variances from images shifted by their global mean: the same values, less cancellation.
    shift_x = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    shift_y = tf.reduce_mean(y, axis=[1, 2], keepdims=True)
    xc, yc = x - shift_x, y - shift_y
    moments = _window_sum(tf.concat([xc, yc, xc * xc, yc * yc, xc * yc], axis=-1), window, window)
    mc_x, mc_y, xx, yy, xy = tf.split(moments / float(window * window), 5, axis=-1)
    m_x, m_y = mc_x + shift_x, mc_y + shift_y
    var_sum = tf.maximum(xx - tf.square(mc_x), 0.0) + tf.maximum(yy - tf.square(mc_y), 0.0)
    cov = xy - mc_x * mc_y
    mean_prod = m_x * m_y
    mean_sq = tf.square(m_x) + tf.square(m_y)
    # Both windows are constant iff no horizontally or vertically adjacent pixel pair inside either differs:
    # exact integer counts, no rounded variance.
    steps_h = tf.cast(tf.not_equal(x[:, :, 1:], x[:, :, :-1]), tf.float32) + tf.cast(
        tf.not_equal(y[:, :, 1:], y[:, :, :-1]), tf.float32)
    steps_v = tf.cast(tf.not_equal(x[:, 1:], x[:, :-1]), tf.float32) + tf.cast(
        tf.not_equal(y[:, 1:], y[:, :-1]), tf.float32)
    both_flat = tf.equal(_window_sum(steps_h, window, window - 1) + _window_sum(steps_v, window - 1, window), 0.0)
    # A constant window's mean is its first pixel, exactly (so that 0 stays 0 for the Q = 1 rule).
    out_h, out_w = tf.shape(mean_sq)[1], tf.shape(mean_sq)[2]
    fx, fy = x[:, :out_h, :out_w], y[:, :out_h, :out_w]
    flat_sq = tf.square(fx) + tf.square(fy)
    flat_q = tf.where(flat_sq > 0, 2.0 * fx * fy / tf.where(flat_sq > 0, flat_sq, 1.0), 1.0)
    denominator = var_sum * mean_sq
    regular = tf.logical_and(tf.logical_not(both_flat), denominator > 0)
    regular_q = 4.0 * cov * mean_prod / tf.where(regular, denominator, 1.0)
    q = tf.where(both_flat, flat_q, tf.where(regular, regular_q, 1.0))
    return tf.reduce_mean(q, axis=[1, 2, 3])


class MetricAccumulator:
    """Dataset means of the metrics over any sequence of batches, with both DPED PSNR conventions named.

    `update(pred, target)` scores one batch (nothing is clipped here: clip `pred` to [0, max_val] first for
    the challenge convention). `result()` gives:

    - `psnr_per_image`: challenge style, the mean of per-image PSNR over images with MSE > 0;
    - `psnr_batch_mse`: training-script style, PSNR of the mean per-image MSE of consecutive groups of
      `mse_batch_size` images (regardless of how `update` calls were batched), averaged over groups; a
      trailing partial group counts as one group (the authors' script drops it; with n a multiple of
      `mse_batch_size` the two agree); a group whose MSE is 0 is left out;
    - `psnr_per_channel_mean`: mean, leaving out +inf, of the per-image mean of per-channel PSNRs;
    - `ssim`, `ms_ssim`, `uqi`: means of the per-image values;
    - `n_images`, and `n_identical`: pairs with MSE 0. Their PSNR is +inf, so they are excluded from the
      PSNR means and counted here instead of turning the mean into inf; they do count in SSIM/MS-SSIM/UQI.

    Only the metrics named in `metrics` are computed ("psnr" yields the three PSNR entries); a mean over no
    values is reported as None.
    """

    def __init__(self, max_val=1.0, metrics=METRIC_NAMES, mse_batch_size=50):
        unknown = [m for m in metrics if m not in METRIC_NAMES]
        if unknown:
            raise PhotoEnhanceError(f"MetricAccumulator: unknown metric(s) {unknown}; choose from {METRIC_NAMES}")
        if int(mse_batch_size) != mse_batch_size or mse_batch_size < 1:
            raise PhotoEnhanceError(
                f"MetricAccumulator: mse_batch_size must be a positive integer, got {mse_batch_size}")
        self.max_val = max_val
        self.metrics = tuple(dict.fromkeys(metrics))
        self.mse_batch_size = int(mse_batch_size)
        self._score = tf.function(self._score_batch, reduce_retracing=True)
        self.reset()

    def reset(self):
        """Forget every image seen so far."""
        self._values = {"mse": [], **{k: [] for k in self._per_image_keys()}}

    def _per_image_keys(self):
        keys = []
        for m in self.metrics:
            keys += ["psnr", "psnr_per_channel_mean"] if m == "psnr" else [m]
        return keys

    def _score_batch(self, pred, target):
        out = {}
        mse_c = _channel_mse(pred, target)
        out["mse"] = tf.reduce_mean(mse_c, axis=-1)
        if "psnr" in self.metrics:
            out["psnr"] = _psnr_from_mse(out["mse"], self.max_val)
            out["psnr_per_channel_mean"] = tf.reduce_mean(_psnr_from_mse(mse_c, self.max_val), axis=-1)
        for name, fn in (("ssim", ssim), ("ms_ssim", ms_ssim), ("uqi", uqi)):
            if name in self.metrics:
                out[name] = fn(pred, target, max_val=self.max_val)
        return out

    def update(self, pred, target):
        """Score a batch (`[N,H,W,C]` or one `[H,W,C]` image) of predictions against targets."""
        pred, target = _prepare(pred, target, self.max_val, "MetricAccumulator.update")
        for key, value in self._score(pred, target).items():
            self._values[key].extend(np.asarray(value, np.float64).tolist())

    @staticmethod
    def _mean_without_inf(values):
        """Mean leaving out +inf (identical pairs); NaN is kept so that a broken model stays visible."""
        values = np.asarray(values, np.float64)
        values = values[values != np.inf]
        return float(values.mean()) if values.size else None

    def result(self):
        """Dataset means (see the class docstring for the conventions) as a dict of floats and counts."""
        mse = np.asarray(self._values["mse"], np.float64)
        out = {"n_images": int(mse.size), "n_identical": int(np.sum(mse == 0))}
        if "psnr" in self.metrics:
            out["psnr_per_image"] = self._mean_without_inf(self._values["psnr"])
            groups = [mse[i:i + self.mse_batch_size].mean() for i in range(0, mse.size, self.mse_batch_size)]
            with np.errstate(divide="ignore"):
                batch_psnr = 10.0 * np.log10(float(self.max_val) ** 2 / np.asarray(groups, np.float64))
            out["psnr_batch_mse"] = self._mean_without_inf(batch_psnr)
            out["psnr_per_channel_mean"] = self._mean_without_inf(self._values["psnr_per_channel_mean"])
        for name in ("ssim", "ms_ssim", "uqi"):
            if name in self.metrics:
                out[name] = float(np.mean(self._values[name])) if self._values[name] else None
        return out

    def per_image(self):
        """Per-image lists for JSON output: `mse` plus each requested metric, in update order.

        The infinite PSNR of identical pairs (and of a channel that matches exactly) becomes None, so the
        lists serialise as strict JSON.
        """
        return {
            key: [v if math.isfinite(v) else None for v in values]
            for key, values in self._values.items()
        }
