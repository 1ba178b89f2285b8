"""Loss functions shared by DPED and pix2pix: one value per example, shape `[N]`, float32.

Each per-example form is chosen so that its mean over the batch equals the authors' batch formula
(restated in each docstring). Train steps reduce with `global_mean` (a batch mean that stays correct
under a distribution strategy) or, for the one loss the DPED authors summed over the batch (the texture
cross-entropy), with `global_sum`.

Images are float NHWC RGB in [0, 1]; feature maps come from `common.vgg.build_vgg19_features`.
"""
import dataclasses
import math
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)
"""RGB -> luma weights of the DPED authors (`tf.image.rgb_to_grayscale`)."""

DPED_TEXTURE_EPSILON = 1e-10
"""The DPED authors clip discriminator probabilities to [1e-10, 1] before the log."""


# ----------------------------------------------------------------------------------------- reduction

def global_mean(per_example, global_batch_size=None):
    """Batch mean of a `[N]` loss that gives the same gradient under a distribution strategy as on one device.

    Each replica divides its local sum by the *global* batch size (`tf.nn.compute_average_loss`); the
    optimizer all-reduces gradients with SUM across replicas (Keras 3 TF optimizer), so the summed
    replica gradients are those of the mean over the global batch. `global_batch_size=None` infers it
    as local batch x replicas in sync (exact when every replica gets the same number of examples).
    """
    per_example = tf.cast(per_example, tf.float32)
    return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)


def global_sum(per_example, global_batch_size=None, sum_over=None):
    """Batch sum of a `[N]` loss, for terms the authors summed over the batch (DPED texture cross-entropy).

    `sum_over=None`: each replica returns the sum over its own examples; the optimizer's SUM all-reduce of
    gradients then yields exactly the gradient of the sum over the global batch, as on one device (for
    logging, reduce the replica values with `ReduceOp.SUM`). `global_batch_size` is not needed then.

    `sum_over=B`: the global batch mean times `B`, i.e. the magnitude the authors' sum had with their
    batch of `B` (50 in DPED), kept constant when training with another batch size;
    `global_batch_size` is passed to `global_mean` for that.
    """
    per_example = tf.cast(per_example, tf.float32)
    if sum_over is None:
        return tf.reduce_sum(per_example)
    return global_mean(per_example, global_batch_size) * float(sum_over)


def _mean_over_non_batch(x):
    x = tf.cast(x, tf.float32)
    if x.shape.rank == 1:
        return x
    return tf.reduce_mean(x, axis=tf.range(1, tf.rank(x)))


def _sum_over_non_batch(x):
    x = tf.cast(x, tf.float32)
    if x.shape.rank == 1:
        return x
    return tf.reduce_sum(x, axis=tf.range(1, tf.rank(x)))


# ------------------------------------------------------------------------------------------- colour

def dped_color_kernel(size=21, nsig=3.0):
    """The DPED authors' colour-loss blur kernel, `[size, size]` float32 summing to 1.

    Their construction: bins of width `(2 nsig + 1) / size` give the edges
    `linspace(-nsig - w/2, nsig + w/2, size + 1)`, `k = diff(normal_cdf(edges))`, and the kernel is
    `sqrt(outer(k, k))` normalised to sum 1. For size 21 the edges are `linspace(-3-1/6, 3+1/6, 22)`
    (spacing 19/63 px^-1). The square root widens it: a least-squares Gaussian fit of its profile has
    sigma about 4.7 px, not the sigma 3 the paper states (use `gaussian_kernel(21, 3.0)` for that).
    """
    size = int(size)
    if size < 1:
        raise ValueError(f"kernel size must be positive, got {size}")
    interval = (2.0 * nsig + 1.0) / size
    edges = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, size + 1)
    cdf = np.array([0.5 * (1.0 + math.erf(e / math.sqrt(2.0))) for e in edges])
    k = np.diff(cdf)
    kernel = np.sqrt(np.outer(k, k))
    return (kernel / kernel.sum()).astype(np.float32)


def gaussian_kernel(size, sigma):
    """A plain normalised 2-D Gaussian, `[size, size]` float32, centred (sampled at integer offsets)."""
    size = int(size)
    if size < 1 or sigma <= 0:
        raise ValueError(f"need size >= 1 and sigma > 0, got size={size}, sigma={sigma}")
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(offsets ** 2) / (2.0 * float(sigma) ** 2))
    kernel = np.outer(g, g)
    return (kernel / kernel.sum()).astype(np.float32)


def blur(images, kernel):
    """Depthwise 2-D convolution of `[N,H,W,C]` images with a `[k,k]` kernel, SAME (zero) padding, as the authors."""
    images = tf.cast(images, tf.float32)
    kernel = tf.constant(np.asarray(kernel, dtype=np.float32))
    channels = images.shape[-1]
    if channels is None:
        raise ValueError("blur needs a known channel count")
    filt = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(images, filt, strides=[1, 1, 1, 1], padding="SAME")


def _resolve_color_kernel(kernel):
    if kernel is None:
        return dped_color_kernel(21)
    if isinstance(kernel, (int, float)) and not isinstance(kernel, bool):
        return gaussian_kernel(21, float(kernel))
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2:
        raise ValueError(f"colour kernel must be 2-D, got shape {kernel.shape}")
    return kernel


def color_loss(enhanced, target, kernel=None):
    """DPED colour loss per example: sum of squared differences of the blurred images, / 2.

    Authors: `sum((blur(dslr) - blur(enhanced))^2) / (2 * batch)`, so the batch mean of this equals it.
    `kernel`: None = the authors' 21x21 kernel (`dped_color_kernel`); a number = a plain 21x21
    Gaussian with that sigma (the paper's sigma 3); or an explicit 2-D array.
    """
    k = _resolve_color_kernel(kernel)
    diff = blur(enhanced, k) - blur(target, k)
    return _sum_over_non_batch(tf.square(diff)) / 2.0


# ---------------------------------------------------------------------------------- pixel and VGG

def content_loss(features_a, features_b):
    """DPED content loss per example: mean squared feature difference (over H, W, C).

    Authors: `2 * l2_loss(f_e - f_d) / (H*W*C * batch)` = sum of squares / (H*W*C*batch), i.e. the batch
    mean of this. Lists of feature maps (one per layer) give the sum of the per-layer values.
    """
    if isinstance(features_a, (list, tuple)):
        _check_same_length(features_a, features_b)
        return tf.add_n([content_loss(a, b) for a, b in zip(features_a, features_b)])
    diff = tf.cast(features_a, tf.float32) - tf.cast(features_b, tf.float32)
    return _mean_over_non_batch(tf.square(diff))


def perceptual_loss(features_a, features_b):
    """Perceptual loss of seed 003 (eq. 5) per example: sum over layers of `||phi_i(a) - phi_i(b)||_1 / (W_i H_i)`.

    L1 norm over each whole feature map (all channels), normalised by its spatial size `W_i H_i` as the
    paper's formula writes it; the expectation over examples is the batch mean (`global_mean`).
    Takes lists of feature maps, one per layer (e.g. `common.vgg.PERCEPTUAL_LAYERS_003`).
    """
    if not isinstance(features_a, (list, tuple)):
        features_a, features_b = [features_a], [features_b]
    _check_same_length(features_a, features_b)
    terms = []
    for a, b in zip(features_a, features_b):
        a = tf.cast(a, tf.float32)
        b = tf.cast(b, tf.float32)
        spatial = tf.cast(tf.shape(a)[1] * tf.shape(a)[2], tf.float32)
        terms.append(_sum_over_non_batch(tf.abs(a - b)) / spatial)
    return tf.add_n(terms)


def _check_same_length(a, b):
    if not isinstance(b, (list, tuple)) or len(a) != len(b):
        raise ValueError("feature lists must have the same number of layers")


def tv_loss(images):
    """DPED total-variation loss per example: mean squared vertical + mean squared horizontal difference.

    Authors: `2 * (l2_loss(dx) / size_x + l2_loss(dy) / size_y) / batch` with `l2_loss = sum/2` and
    sizes per example (`(H)(W-1)C`, `(H-1)(W)C`): the 2 cancels the 1/2, leaving the batch mean of this.
    """
    images = tf.cast(images, tf.float32)
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return _mean_over_non_batch(tf.square(dy)) + _mean_over_non_batch(tf.square(dx))


def l1_loss(a, b):
    """Mean absolute difference per example (pix2pix's L1 term, weighted 100; seed 003 weights it 50)."""
    return _mean_over_non_batch(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))


# --------------------------------------------------------------------------------- DPED texture

def rgb_to_gray(images):
    """`[..., 3]` RGB -> `[..., 1]` luma with the authors' weights 0.2989, 0.5870, 0.1140."""
    images = tf.cast(images, tf.float32)
    return tf.reduce_sum(images * tf.constant(GRAY_WEIGHTS, tf.float32), axis=-1, keepdims=True)


def dped_texture_pair(enhanced, dslr, is_dslr):
    """The texture discriminator's input and target, as the authors build them.

    `is_dslr` `[N]` (0/1 or bool) picks per example the gray DSLR patch (1) or the gray enhanced patch
    (0). Returns `(gray [N,H,W,1], target [N,2])` with target one-hot `[is_dslr, is_enhanced]`.
    DPED's generator step uses `is_dslr = 0` everywhere; its discriminator step draws it at random.
    """
    s = tf.cast(tf.reshape(is_dslr, [-1]), tf.float32)
    mix = s[:, None, None, None]
    gray = rgb_to_gray(enhanced) * (1.0 - mix) + rgb_to_gray(dslr) * mix
    target = tf.stack([s, 1.0 - s], axis=-1)
    return gray, target


def _texture_log_probs(predictions, from_logits):
    predictions = tf.cast(predictions, tf.float32)
    if from_logits:
        log_p = tf.nn.log_softmax(predictions, axis=-1)
        return tf.clip_by_value(log_p, math.log(DPED_TEXTURE_EPSILON), 0.0)
    return tf.math.log(tf.clip_by_value(predictions, DPED_TEXTURE_EPSILON, 1.0))


def dped_texture_discriminator_loss(predictions, target_onehot, from_logits=False):
    """Per-example cross-entropy of the two-class texture discriminator: `-sum_c t_c log(clip(p_c, 1e-10, 1))`.

    `predictions` `[N,2]` are softmax probabilities (the authors' discriminator output) or, with
    `from_logits=True`, logits (log-softmax clipped at log 1e-10: the same value, stabler).
    The authors' loss is the **sum** over the batch: reduce with `global_sum`.
    """
    log_p = _texture_log_probs(predictions, from_logits)
    return -tf.reduce_sum(tf.cast(target_onehot, tf.float32) * log_p, axis=-1)


def dped_texture_loss(predictions_on_enhanced, from_logits=False):
    """Generator texture loss per example: minus the discriminator loss on an all-enhanced batch.

    Equals `log(clip(p_enhanced, 1e-10, 1))`; minimising it pushes the discriminator's belief that the
    patch was enhanced towards 0. Summed over the batch by the authors: reduce with `global_sum`.
    """
    n = tf.shape(predictions_on_enhanced)[0]
    target = tf.tile(tf.constant([[0.0, 1.0]]), [n, 1])
    return -dped_texture_discriminator_loss(predictions_on_enhanced, target, from_logits)


# ---------------------------------------------------------------------------------- GAN objectives

@dataclasses.dataclass(frozen=True)
class GANObjective:
    """A GAN objective on discriminator logits (`[N]`, `[N,1]` or PatchGAN maps `[N,h,w,1]`).

    `discriminator_loss(real_logits, fake_logits)` is the **sum** of the real and the fake term per
    example (pix2pix's train step halves it, SPEC); `generator_loss(fake_logits)`. Map outputs are
    averaged per example. `clip_value`: clip discriminator weights to [-c, c] after each D update
    (`clip_weights`); `gradient_penalty_weight`: add that times `gradient_penalty(...)` to the D loss.
    """

    name: str
    discriminator_loss: Callable
    generator_loss: Callable
    clip_value: Optional[float] = None
    gradient_penalty_weight: float = 0.0


def _bce_d(real, fake):
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    return _mean_over_non_batch(tf.nn.softplus(-real)) + _mean_over_non_batch(tf.nn.softplus(fake))


def _bce_g(fake):
    return _mean_over_non_batch(tf.nn.softplus(-tf.cast(fake, tf.float32)))


def _lsgan_d(real, fake):
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    return _mean_over_non_batch(tf.square(real - 1.0)) + _mean_over_non_batch(tf.square(fake))


def _lsgan_g(fake):
    return 0.5 * _mean_over_non_batch(tf.square(tf.cast(fake, tf.float32) - 1.0))


def _wgan_d(real, fake):
    return _mean_over_non_batch(fake) - _mean_over_non_batch(real)


def _wgan_g(fake):
    return -_mean_over_non_batch(fake)


def _hinge_d(real, fake):
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    return _mean_over_non_batch(tf.nn.relu(1.0 - real)) + _mean_over_non_batch(tf.nn.relu(1.0 + fake))


GAN_OBJECTIVES = {
    # Non-saturating cross-entropy from logits: D = -log s(r) - log(1 - s(f)), G = -log s(f).
    "bce": GANObjective("bce", _bce_d, _bce_g),
    # Least squares (Mao et al.; seed 003 eqs. 7-8 with real = 1, fake = 0): D = (r-1)^2 + f^2 (halved by
    # the train step, giving eq. 7's 1/2), G = (f-1)^2 / 2 as eq. 8.
    "lsgan": GANObjective("lsgan", _lsgan_d, _lsgan_g),
    # Wasserstein critic with weight clipping to [-0.01, 0.01] (seed 000).
    "wgan": GANObjective("wgan", _wgan_d, _wgan_g, clip_value=0.01),
    # Wasserstein critic with gradient penalty, lambda 10, on the conditional pair.
    "wgan-gp": GANObjective("wgan-gp", _wgan_d, _wgan_g, gradient_penalty_weight=10.0),
    # Hinge: D = relu(1 - r) + relu(1 + f), G = -f.
    "hinge": GANObjective("hinge", _hinge_d, _wgan_g),
}


def gradient_penalty(discriminator, condition, real, fake, seed=None):
    """WGAN-GP penalty per example, `(||grad D(x_hat)|| - 1)^2`, on interpolates of the conditional pair.

    The critic sees pairs `concat(condition, image)`; `x_hat` lies on the segment between the real pair
    `concat(condition, real)` and the fake pair `concat(condition, fake)` with one `eps ~ U[0, 1]` per
    example. Since both pairs share the condition, only the image part moves, but the gradient is taken
    with respect to the whole pair (the critic's input space), and its norm runs over all non-batch axes.
    For patch critics the critic value is the per-example mean of the map, as in the losses above.
    `seed`: None = stateful `tf.random.uniform`; an int or a `[2]` int pair = stateless draw (e.g.
    `(seed, step)` so a resumed run repeats it). Works inside `tf.function`. Critics with batch norm
    couple examples and make the per-example gradient inexact; use instance/no normalisation.
    """
    condition = tf.cast(condition, tf.float32)
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    n = tf.shape(real)[0]
    eps_shape = tf.concat([[n], tf.ones([tf.rank(real) - 1], tf.int32)], axis=0)
    if seed is None:
        eps = tf.random.uniform(eps_shape, dtype=tf.float32)
    else:
        pair_seed = tf.cast(tf.reshape(seed, [-1]), tf.int64)
        if pair_seed.shape[0] == 1:
            pair_seed = tf.concat([pair_seed, tf.zeros([1], tf.int64)], axis=0)
        eps = tf.random.stateless_uniform(eps_shape, seed=pair_seed, dtype=tf.float32)
    interpolate = tf.concat([condition, eps * real + (1.0 - eps) * fake], axis=-1)
    with tf.GradientTape() as tape:
        tape.watch(interpolate)
        critic = _mean_over_non_batch(discriminator(interpolate, training=True))
        total = tf.reduce_sum(critic)
    grads = tape.gradient(total, interpolate)
    norm = tf.sqrt(_sum_over_non_batch(tf.square(grads)) + 1e-12)
    return tf.square(norm - 1.0)


def clip_weights(model, clip_value):
    """Clip every trainable variable of `model` (kernels, biases, norm scales/shifts) to `[-c, c]` (WGAN).

    As in Arjovsky et al., all critic parameters are clipped; call after each discriminator update.
    """
    c = float(clip_value)
    if c <= 0:
        raise ValueError(f"clip_value must be positive, got {clip_value}")
    for variable in model.trainable_variables:
        variable.assign(tf.clip_by_value(variable, -c, c))
