"""Synthetic degradations that turn clean photos into training inputs, and their classical inverses.

All functions take float images in [0, 1], either a batch `[N, H, W, C]` or one image `[H, W, C]`, and
return the same shape. They are plain TensorFlow ops, so they work eagerly, inside `tf.function` and inside
`tf.data` maps. Random choices use stateless ops keyed on an explicit seed, so a degradation is a fixed
function of `(image, seed)`.

- `gaussian_blur`: the deblurring task of seed 000 (DSLR patches blurred with sigma = 1).
- `overexpose` / `inverse_overexpose`: the overexposure task of seed 003 (clip in linear light, gamma 2.2)
  and its exact inverse, the paper's classical baseline.
- `phone_degrade`: a phone-like chain (blur, noise, colour cast, tone shift, JPEG), drawn per image.
- `phone_camera`: one fixed phone "look" (the same tone, colour and blur on every shot) plus per-shot noise
  and JPEG: the offline demo's data, a mapping a generator can learn as DPED's real pairs are.
- `contrast_stretch`: seed 000's post-processing `(G - 10) / (240 - 10)`.
"""
import math

import numpy as np
import tensorflow as tf

from common.errors import PhotoEnhanceError


def _as_batch(images):
    """Return (float32 NHWC tensor, whether the input was a single HWC image)."""
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise PhotoEnhanceError(f"degradations expect float images in [0, 1], got dtype {images.dtype.name}")
    images = tf.cast(images, tf.float32)
    rank = images.shape.rank
    if rank == 3:
        return images[None], True
    if rank == 4:
        return images, False
    raise PhotoEnhanceError(f"expected an image [H, W, C] or a batch [N, H, W, C], got shape {images.shape}")


def _restore(images, single):
    return images[0] if single else images


def _seed_pair(seed):
    """An int or a shape-[2] integer tensor -> the shape-[2] int64 seed that stateless ops expect."""
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        raise PhotoEnhanceError(f"seed must be an integer or a pair of integers, got dtype {seed.dtype.name}")
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.constant(0, tf.int64)])
    return tf.reshape(seed, [2])


def _sub_seed(seed, salt):
    """An independent stateless seed for one random decision of a chain."""
    return tf.random.experimental.stateless_fold_in(seed, salt)


def gaussian_kernel_1d(sigma, kernel_size=None):
    """Normalised sampled Gaussian `exp(-x^2 / (2 sigma^2))`, x = -r..r; default radius r = ceil(3 sigma)."""
    if not sigma > 0:
        raise PhotoEnhanceError(f"blur sigma must be positive, got {sigma}")
    if kernel_size is None:
        kernel_size = 2 * int(math.ceil(3.0 * sigma)) + 1
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise PhotoEnhanceError(f"blur kernel_size must be a positive odd number, got {kernel_size}")
    radius = kernel_size // 2
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def gaussian_blur(images, sigma, kernel_size=None):
    """Separable Gaussian blur with reflect padding (edge pixel repeated: `d c b a | a b c d | d c b a`).

    This is scipy's `gaussian_filter(mode="reflect")` (TensorFlow's "SYMMETRIC" padding), so a constant
    image stays constant and the image mean is preserved exactly. `sigma` is a Python float (the kernel
    shape is static); the kernel radius defaults to ceil(3 sigma) and must not exceed the image size.
    """
    images, single = _as_batch(images)
    k = gaussian_kernel_1d(float(sigma), kernel_size)
    radius = len(k) // 2
    height, width = images.shape[1], images.shape[2]
    for name, size in (("height", height), ("width", width)):
        if size is not None and radius > size:
            raise PhotoEnhanceError(
                f"blur kernel radius {radius} exceeds the image {name} {size}; use a smaller sigma or kernel_size"
            )
    channels = images.shape[-1]
    if channels is None:
        raise PhotoEnhanceError("gaussian_blur needs a known channel count")
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    kv = tf.tile(tf.constant(k)[:, None, None, None], [1, 1, channels, 1])
    kh = tf.tile(tf.constant(k)[None, :, None, None], [1, 1, channels, 1])
    out = tf.nn.depthwise_conv2d(padded, kv, strides=[1, 1, 1, 1], padding="VALID")
    out = tf.nn.depthwise_conv2d(out, kh, strides=[1, 1, 1, 1], padding="VALID")
    return _restore(out, single)


def _per_image(value, images):
    """A float or a per-image tensor [N] -> a tensor broadcastable against NHWC `images`."""
    value = tf.cast(tf.convert_to_tensor(value), tf.float32)
    if value.shape.rank == 0:
        return value
    return tf.reshape(value, [-1, 1, 1, 1])


def _check_tau(tau):
    if isinstance(tau, (int, float)) and not 0.0 < tau <= 1.0:
        raise PhotoEnhanceError(f"overexposure threshold tau must be in (0, 1], got {tau}")


def overexpose(images, tau, gamma=2.2):
    """Simulate overexposure (seed 003): to linear light `x**gamma`, clip at `tau`, rescale by `1/tau`, back.

    `tau` is a float or a per-image tensor `[N]` (see `random_tau`); tau = 1 leaves images unchanged, and
    pixels whose linear value is at least tau become 1 (their detail is lost).
    """
    _check_tau(tau)
    images, single = _as_batch(images)
    tau_t = _per_image(tau, images)
    linear = tf.pow(tf.clip_by_value(images, 0.0, 1.0), gamma)
    clipped = tf.minimum(linear, tau_t) / tau_t
    return _restore(tf.pow(clipped, 1.0 / gamma), single)


def inverse_overexpose(images, tau, gamma=2.2):
    """Exact inverse of `overexpose` where nothing clipped: to linear, times tau, back to gamma space.

    This is seed 003's classical baseline. Clipped pixels (value 1) come back as `tau**(1/gamma)`, not as
    the lost original value.
    """
    _check_tau(tau)
    images, single = _as_batch(images)
    tau_t = _per_image(tau, images)
    linear = tf.pow(tf.clip_by_value(images, 0.0, 1.0), gamma) * tau_t
    return _restore(tf.pow(linear, 1.0 / gamma), single)


def random_tau(n, low=0.5, high=1.0, seed=0):
    """Per-image overexposure thresholds, uniform in [low, high) (seed 003's random-overexposure run)."""
    if not 0.0 < low <= high <= 1.0:
        raise PhotoEnhanceError(f"need 0 < low <= high <= 1 for tau, got low={low}, high={high}")
    return tf.random.stateless_uniform([n], seed=_seed_pair(seed), minval=low, maxval=high)


def phone_degrade(images, seed, strength=1.0):
    """Make clean photos look like cheap phone shots, deterministically for a seed (offline demo data).

    Chain per image, each amount drawn per image with stateless ops and scaled by `strength` (0 = identity):
    1. mild optical blur: mix of the image and its sigma-1 blur, weight in [0.4, 1] * strength;
    2. tone: gamma in [0.8, 1.25] ** strength, contrast reduced by up to 25 % * strength;
    3. colour cast: per-channel gains in 1 +- 0.08 * strength;
    4. sensor noise: Gaussian, std `strength * (0.005 + 0.02 * sqrt(x))` (shot + read noise);
    5. JPEG re-encode with quality in [95 - 55 * strength, 95 - 25 * strength] (clamped to [10, 95]),
       via `tf.image.adjust_jpeg_quality`.
    Different seeds give different degradations; the same seed gives the same output.
    """
    images, single = _as_batch(images)
    seed = _seed_pair(seed)
    strength = float(strength)
    if strength < 0:
        raise PhotoEnhanceError(f"phone_degrade strength must be >= 0, got {strength}")
    if strength == 0:
        return _restore(images, single)
    n = tf.shape(images)[0]
    x = tf.clip_by_value(images, 0.0, 1.0)

    def uniform(salt, shape, low, high):
        return tf.random.stateless_uniform(shape, seed=_sub_seed(seed, salt), minval=low, maxval=high)

    blur_weight = uniform(1, [n, 1, 1, 1], 0.4, 1.0) * min(strength, 1.0)
    x = x + blur_weight * (gaussian_blur(x, 1.0) - x)

    gamma = tf.pow(uniform(2, [n, 1, 1, 1], 0.8, 1.25), strength)
    x = tf.pow(tf.maximum(x, 0.0), gamma)
    contrast = 1.0 - uniform(3, [n, 1, 1, 1], 0.0, 0.25) * min(strength, 1.0)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = mean + contrast * (x - mean)

    gains = 1.0 + uniform(4, [n, 1, 1, 3], -0.08, 0.08) * strength
    x = x * gains

    noise_std = strength * (0.005 + 0.02 * tf.sqrt(tf.clip_by_value(x, 0.0, 1.0)))
    x = x + noise_std * tf.random.stateless_normal(tf.shape(x), seed=_sub_seed(seed, 5))
    x = tf.clip_by_value(x, 0.0, 1.0)

    q_low = max(10.0, min(95.0, 95.0 - 55.0 * strength))
    q_high = max(10.0, min(95.0, 95.0 - 25.0 * strength)) + 1.0
    quality = tf.cast(tf.floor(uniform(6, [n], q_low, q_high)), tf.int32)
    return _restore(_jpeg_each(x, quality), single)


def phone_camera(images, seed, gamma=1.25, contrast=0.8, saturation=0.7, gains=(0.96, 1.0, 1.07),
                 blur_sigma=1.0, noise=1.0, jpeg_quality=(70, 85)):
    """Render clean photos as one particular cheap phone camera would, deterministically for a seed.

    Unlike `phone_degrade`, the camera's look is the same for every image, as a real phone's is, so the
    mapping back is learnable and a model trained on it improves held-out shots (the offline demo's data):
    1. optics: Gaussian blur of `blur_sigma` (0 = none);
    2. tone: `x ** gamma`, then contrast scaled by `contrast` around mid-grey;
    3. colour: saturation scaled by `saturation` around each pixel's grey, then per-channel `gains`;
    4. sensor noise (per shot): Gaussian, std `noise * (0.004 + 0.015 * sqrt(x))`;
    5. JPEG (per shot): quality drawn in `jpeg_quality` (inclusive).
    """
    images, single = _as_batch(images)
    seed = _seed_pair(seed)
    if images.shape[-1] != 3:
        raise PhotoEnhanceError(f"phone_camera expects RGB images, got {images.shape[-1]} channels")
    low, high = (int(q) for q in jpeg_quality)
    if not 1 <= low <= high <= 100:
        raise PhotoEnhanceError(f"phone_camera jpeg_quality must be 1 <= low <= high <= 100, got {jpeg_quality}")
    x = tf.clip_by_value(images, 0.0, 1.0)
    if blur_sigma > 0:
        x = gaussian_blur(x, blur_sigma)
    x = 0.5 + contrast * (tf.pow(tf.maximum(x, 0.0), gamma) - 0.5)
    grey = tf.reduce_mean(x, axis=-1, keepdims=True)
    x = (grey + saturation * (x - grey)) * tf.constant(gains, tf.float32)
    noise_std = noise * (0.004 + 0.015 * tf.sqrt(tf.clip_by_value(x, 0.0, 1.0)))
    x = tf.clip_by_value(x + noise_std * tf.random.stateless_normal(tf.shape(x), seed=_sub_seed(seed, 1)), 0.0, 1.0)
    quality = tf.random.stateless_uniform([tf.shape(x)[0]], seed=_sub_seed(seed, 2), minval=low, maxval=high + 1,
                                          dtype=tf.int32)
    return _restore(_jpeg_each(x, quality), single)


@tf.function(reduce_retracing=True)
def _jpeg_each(images, quality):
    """JPEG re-encode each image at its own quality (a graph loop: eager map_fn is ~10x slower)."""
    return tf.map_fn(
        lambda args: tf.image.adjust_jpeg_quality(args[0], args[1]),
        (images, quality),
        fn_output_signature=tf.TensorSpec(images.shape[1:], tf.float32),
    )


def contrast_stretch(images, low=10, high=240):
    """Seed 000's post-processing: `(G - low) / (high - low)` on 0-255 values, clipped; here for [0, 1] images."""
    if not 0 <= low < high <= 255:
        raise PhotoEnhanceError(f"contrast_stretch needs 0 <= low < high <= 255, got low={low}, high={high}")
    images, single = _as_batch(images)
    out = tf.clip_by_value((images * 255.0 - low) / float(high - low), 0.0, 1.0)
    return _restore(out, single)
