"""Per-example losses against independent NumPy versions of the authors' batch formulas."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.optimize
import scipy.signal
import scipy.stats
import tensorflow as tf

from common import losses

RNG = np.random.default_rng(0)


def _images(n=3, h=24, w=20, c=3):
    return RNG.random((n, h, w, c)).astype(np.float32)


def _l2_loss(x):
    """tf.nn.l2_loss as the authors used it: sum(x^2) / 2."""
    return np.sum(np.square(x, dtype=np.float64)) / 2.0


def _authors_kernel(kernlen=21, nsig=3):
    interval = (2 * nsig + 1.0) / kernlen
    x = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, kernlen + 1)
    kern1d = np.diff(scipy.stats.norm.cdf(x))
    raw = np.sqrt(np.outer(kern1d, kern1d))
    return raw / raw.sum()


def _fitted_sigma(kernel):
    profile = kernel.sum(axis=0)
    offsets = np.arange(len(profile)) - (len(profile) - 1) / 2.0
    (_, sigma), _ = scipy.optimize.curve_fit(
        lambda x, a, s: a * np.exp(-x ** 2 / (2 * s ** 2)), offsets, profile, p0=[profile.max(), 3.0])
    return abs(sigma)


def _np_blur(images, kernel):
    out = np.empty_like(images, dtype=np.float64)
    for n in range(images.shape[0]):
        for c in range(images.shape[-1]):
            out[n, :, :, c] = scipy.signal.correlate2d(images[n, :, :, c], kernel, mode="same", boundary="fill")
    return out


# --------------------------------------------------------------------------------- colour kernel

def test_color_kernel_is_the_authors_construction():
    kernel = losses.dped_color_kernel()
    assert kernel.shape == (21, 21) and kernel.dtype == np.float32
    np.testing.assert_allclose(kernel, _authors_kernel(), rtol=1e-5, atol=1e-9)
    edges = np.linspace(-3 - 1 / 6, 3 + 1 / 6, 22)  # SPEC's literal form for size 21
    k = np.diff(scipy.stats.norm.cdf(edges))
    literal = np.sqrt(np.outer(k, k))
    np.testing.assert_allclose(kernel, literal / literal.sum(), rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(losses.dped_color_kernel(15), _authors_kernel(15), rtol=1e-5, atol=1e-9)


def test_color_kernel_effective_sigma_is_about_4_7():
    sigma = _fitted_sigma(losses.dped_color_kernel())
    assert 4.6 < sigma < 4.8, sigma  # measured 4.707; the paper's "sigma 3" is not what the code does
    assert abs(_fitted_sigma(losses.gaussian_kernel(21, 3.0)) - 3.0) < 1e-3


def test_gaussian_kernel_normalised_and_centred():
    k = losses.gaussian_kernel(7, 1.5)
    assert k.shape == (7, 7) and abs(k.sum() - 1) < 1e-6
    assert np.unravel_index(np.argmax(k), k.shape) == (3, 3)
    np.testing.assert_allclose(k, k.T)


def test_blur_matches_zero_padded_same_correlation():
    images = _images(2, 16, 12)
    kernel = RNG.random((5, 5)).astype(np.float32)  # asymmetric: catches flipped kernels
    got = losses.blur(images, kernel).numpy()
    np.testing.assert_allclose(got, _np_blur(images, kernel), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------ DPED losses

def test_color_loss_batch_mean_equals_authors_formula():
    enhanced, dslr = _images(), _images()
    per_example = losses.color_loss(enhanced, dslr).numpy()
    assert per_example.shape == (3,) and per_example.dtype == np.float32
    k = _authors_kernel()
    authors = np.sum((_np_blur(dslr, k) - _np_blur(enhanced, k)) ** 2) / (2 * 3)
    np.testing.assert_allclose(per_example.mean(), authors, rtol=1e-4)
    single = np.sum((_np_blur(dslr[:1], k) - _np_blur(enhanced[:1], k)) ** 2) / 2
    np.testing.assert_allclose(per_example[0], single, rtol=1e-4)


def test_color_loss_sigma_option_uses_plain_gaussian():
    enhanced, dslr = _images(2), _images(2)
    got = losses.color_loss(enhanced, dslr, kernel=3.0).numpy()
    k = losses.gaussian_kernel(21, 3.0)
    want = np.sum((_np_blur(enhanced, k) - _np_blur(dslr, k)) ** 2, axis=(1, 2, 3)) / 2
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert not np.allclose(got, losses.color_loss(enhanced, dslr).numpy(), rtol=1e-3)


def test_content_loss_batch_mean_equals_authors_formula():
    fa = RNG.normal(size=(4, 7, 7, 16)).astype(np.float32) * 30
    fb = RNG.normal(size=(4, 7, 7, 16)).astype(np.float32) * 30
    per_example = losses.content_loss(fa, fb).numpy()
    assert per_example.shape == (4,)
    content_size = 7 * 7 * 16 * 4  # _tensor_size(dslr_vgg) * batch_size
    authors = 2 * _l2_loss(fa - fb) / content_size
    np.testing.assert_allclose(per_example.mean(), authors, rtol=1e-5)
    np.testing.assert_allclose(per_example, np.mean((fa - fb) ** 2, axis=(1, 2, 3)), rtol=1e-5)
    # a one-element list (what the extractor returns) gives the same
    np.testing.assert_allclose(losses.content_loss([fa], [fb]).numpy(), per_example, rtol=1e-6)


def test_tv_loss_batch_mean_equals_authors_formula():
    images = _images(3, 10, 14)
    per_example = losses.tv_loss(images).numpy()
    n, h, w, c = images.shape
    tv_y_size = (h - 1) * w * c  # _tensor_size(enhanced[:, 1:, :, :])
    tv_x_size = h * (w - 1) * c
    y_tv = _l2_loss(images[:, 1:, :, :] - images[:, :h - 1, :, :])
    x_tv = _l2_loss(images[:, :, 1:, :] - images[:, :, :w - 1, :])
    authors = 2 * (x_tv / tv_x_size + y_tv / tv_y_size) / n
    np.testing.assert_allclose(per_example.mean(), authors, rtol=1e-5)
    assert per_example.shape == (3,)
    assert losses.tv_loss(np.ones((2, 5, 5, 3), np.float32)).numpy().tolist() == [0.0, 0.0]


def test_perceptual_loss_is_paper_003_eq5():
    shapes = [(2, 16, 16, 4), (2, 8, 8, 8), (2, 4, 4, 16), (2, 2, 2, 16), (2, 1, 1, 16)]
    fa = [RNG.normal(size=s).astype(np.float32) for s in shapes]
    fb = [RNG.normal(size=s).astype(np.float32) for s in shapes]
    per_example = losses.perceptual_loss(fa, fb).numpy()
    want = sum(np.abs(a - b).sum(axis=(1, 2, 3)) / (a.shape[1] * a.shape[2]) for a, b in zip(fa, fb))
    np.testing.assert_allclose(per_example, want, rtol=1e-5)
    with pytest.raises(ValueError):
        losses.perceptual_loss(fa, fb[:3])


def test_l1_loss_mean_absolute_per_example():
    a, b = _images(2), _images(2)
    np.testing.assert_allclose(losses.l1_loss(a, b).numpy(), np.abs(a - b).mean(axis=(1, 2, 3)), rtol=1e-6)


def test_rgb_to_gray_authors_weights():
    images = _images(2, 5, 6)
    got = losses.rgb_to_gray(images).numpy()
    want = images @ np.array([0.2989, 0.5870, 0.1140], np.float32)
    np.testing.assert_allclose(got[..., 0], want, rtol=1e-6)
    np.testing.assert_allclose(got, tf.image.rgb_to_grayscale(images).numpy(), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------ DPED texture

def test_texture_pair_mixes_gray_patches_and_targets():
    enhanced, dslr = _images(4, 6, 6), _images(4, 6, 6)
    is_dslr = np.array([1, 0, 0, 1], np.float32)
    gray, target = losses.dped_texture_pair(enhanced, dslr, is_dslr)
    w = np.array([0.2989, 0.5870, 0.1140], np.float32)
    for i, s in enumerate(is_dslr):
        np.testing.assert_allclose(gray[i, ..., 0], (dslr[i] if s else enhanced[i]) @ w, rtol=1e-6)
    np.testing.assert_array_equal(target.numpy(), np.stack([is_dslr, 1 - is_dslr], -1))


def test_texture_losses_match_authors_batch_sums():
    logits = RNG.normal(size=(5, 2)).astype(np.float32) * 3
    logits[0] = [40.0, -40.0]  # p_enhanced underflows: the 1e-10 clip matters
    probs = tf.nn.softmax(logits).numpy()
    adv = np.array([1, 0, 1, 0, 0], np.float32)
    target = np.stack([adv, 1 - adv], -1)
    d_per_example = losses.dped_texture_discriminator_loss(probs, target).numpy()
    authors_d = -np.sum(target * np.log(np.clip(probs, 1e-10, 1.0)))
    np.testing.assert_allclose(d_per_example.sum(), authors_d, rtol=1e-5)
    np.testing.assert_allclose(losses.global_sum(d_per_example).numpy(), authors_d, rtol=1e-5)
    from_logits = losses.dped_texture_discriminator_loss(logits, target, from_logits=True).numpy()
    np.testing.assert_allclose(from_logits, d_per_example, rtol=1e-4, atol=1e-5)

    # generator step: adv_ = 0 everywhere, texture = -loss_discrim
    enhanced_target = np.tile([[0.0, 1.0]], (5, 1))
    authors_texture = np.sum(enhanced_target * np.log(np.clip(probs, 1e-10, 1.0)))
    texture = losses.dped_texture_loss(probs).numpy()
    np.testing.assert_allclose(texture.sum(), authors_texture, rtol=1e-5)
    assert texture[0] == pytest.approx(np.log(1e-10), rel=1e-5)
    np.testing.assert_allclose(losses.dped_texture_loss(logits, from_logits=True).numpy(), texture,
                               rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------- reduction

def test_global_mean_and_sum_without_strategy():
    values = np.array([1.0, 2.0, 6.0], np.float32)
    assert losses.global_mean(values).numpy() == pytest.approx(3.0)
    assert losses.global_mean(values, global_batch_size=6).numpy() == pytest.approx(1.5)
    assert losses.global_sum(values).numpy() == pytest.approx(9.0)
    assert losses.global_sum(values, sum_over=50).numpy() == pytest.approx(150.0)


@pytest.mark.slow
def test_global_reductions_under_mirrored_strategy():
    """Two CPU replicas: summed replica values equal the single-device mean and sum."""
    script = textwrap.dedent("""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from common import losses
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        values = tf.constant([1.0, 2.0, 3.0, 10.0])
        dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(values).batch(4))
        batch = next(iter(dist))
        mean = strategy.run(lambda v: losses.global_mean(v), args=(batch,))
        total = strategy.run(lambda v: losses.global_sum(v), args=(batch,))
        scaled = strategy.run(lambda v: losses.global_sum(v, sum_over=50), args=(batch,))
        r = lambda x: float(strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None))
        print(strategy.num_replicas_in_sync, r(mean), r(total), r(scaled))
    """)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    replicas, mean, total, scaled = map(float, out.stdout.split()[-4:])
    assert replicas == 2
    assert mean == pytest.approx(4.0) and total == pytest.approx(16.0) and scaled == pytest.approx(200.0)


# ---------------------------------------------------------------------------------- GAN objectives

REAL = np.array([[[[2.0], [-1.0]], [[0.5], [0.0]]], [[[-3.0], [1.0]], [[4.0], [0.0]]]], np.float32)  # [2,2,2,1]
FAKE = np.array([[[[-2.0], [0.0]], [[1.5], [-0.5]]], [[[3.0], [-1.0]], [[0.0], [0.5]]]], np.float32)


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _per_example_mean(x):
    return x.reshape(x.shape[0], -1).mean(axis=1)


EXPECTED = {
    "bce": (lambda r, f: _per_example_mean(-np.log(_sig(r))) + _per_example_mean(-np.log(1 - _sig(f))),
            lambda f: _per_example_mean(-np.log(_sig(f)))),
    "lsgan": (lambda r, f: _per_example_mean((r - 1) ** 2) + _per_example_mean(f ** 2),
              lambda f: _per_example_mean(0.5 * (f - 1) ** 2)),
    "wgan": (lambda r, f: _per_example_mean(f) - _per_example_mean(r), lambda f: -_per_example_mean(f)),
    "wgan-gp": (lambda r, f: _per_example_mean(f) - _per_example_mean(r), lambda f: -_per_example_mean(f)),
    "hinge": (lambda r, f: _per_example_mean(np.maximum(0, 1 - r)) + _per_example_mean(np.maximum(0, 1 + f)),
              lambda f: -_per_example_mean(f)),
}


def test_registry_names_and_constraints():
    assert set(losses.GAN_OBJECTIVES) == {"bce", "lsgan", "wgan", "wgan-gp", "hinge"}
    assert losses.GAN_OBJECTIVES["wgan"].clip_value == 0.01
    assert losses.GAN_OBJECTIVES["wgan-gp"].gradient_penalty_weight == 10.0
    assert losses.GAN_OBJECTIVES["wgan-gp"].clip_value is None
    assert losses.GAN_OBJECTIVES["bce"].gradient_penalty_weight == 0.0
    with pytest.raises(Exception):
        losses.GAN_OBJECTIVES["bce"].clip_value = 1.0  # frozen


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gan_objective_values_on_patch_maps(name):
    objective = losses.GAN_OBJECTIVES[name]
    d_want, g_want = EXPECTED[name]
    d = objective.discriminator_loss(REAL, FAKE).numpy()
    g = objective.generator_loss(FAKE).numpy()
    assert d.shape == (2,) and g.shape == (2,) and d.dtype == np.float32
    np.testing.assert_allclose(d, d_want(REAL, FAKE), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, g_want(FAKE), rtol=1e-5, atol=1e-6)
    # plain [N] logits are per-example already
    np.testing.assert_allclose(objective.generator_loss(FAKE[:, 0, 0, 0]).numpy(), g_want(FAKE[:, :1, :1]),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gan_objective_gradients_finite_at_extreme_logits(name):
    objective = losses.GAN_OBJECTIVES[name]
    real = tf.Variable(np.array([[200.0], [-200.0], [0.0]], np.float32))
    fake = tf.Variable(np.array([[-200.0], [200.0], [0.0]], np.float32))
    with tf.GradientTape(persistent=True) as tape:
        d_loss = tf.reduce_sum(objective.discriminator_loss(real, fake))
        g_loss = tf.reduce_sum(objective.generator_loss(fake))
    d_grads = tape.gradient(d_loss, [real, fake])
    g_grad = tape.gradient(g_loss, fake)
    assert np.isfinite(d_loss.numpy()) and np.isfinite(g_loss.numpy())
    for g in d_grads + [g_grad]:
        assert np.all(np.isfinite(g.numpy()))
    assert np.any(d_grads[0].numpy() != 0) and np.any(d_grads[1].numpy() != 0)
    assert np.any(g_grad.numpy() != 0)


# --------------------------------------------------------------------------------- gradient penalty

class _LinearCritic:
    """D(x) = sum(w * x): its gradient is w everywhere, whatever the interpolate."""

    def __init__(self, w):
        self.w = tf.constant(w)

    def __call__(self, x, training=False):
        return tf.reduce_sum(x * self.w, axis=[1, 2, 3])


class _QuadraticPatchCritic:
    """Patch map D(x)[h, w] = 0.5 * sum_c w_c x[h, w, c]^2; per-example critic = mean over the map."""

    def __init__(self, w):
        self.w = tf.constant(w)

    def __call__(self, x, training=False):
        return 0.5 * tf.reduce_sum(self.w * tf.square(x), axis=-1, keepdims=True)


def test_gradient_penalty_linear_critic_uses_whole_pair_gradient():
    n, h, w = 3, 4, 5
    weights = RNG.normal(size=(1, h, w, 6)).astype(np.float32) * 0.2
    condition, real, fake = _images(n, h, w), _images(n, h, w), _images(n, h, w)
    gp = losses.gradient_penalty(_LinearCritic(weights), condition, real, fake, seed=7).numpy()
    full = (np.linalg.norm(weights) - 1.0) ** 2
    image_only = (np.linalg.norm(weights[..., 3:]) - 1.0) ** 2
    assert gp.shape == (n,)
    np.testing.assert_allclose(gp, np.full(n, full), rtol=1e-5)
    assert abs(full - image_only) > 1e-2  # the test distinguishes the two readings


def test_gradient_penalty_at_a_known_point_and_patch_mean():
    n, h, w = 2, 3, 3
    cw = RNG.random(6).astype(np.float32)
    condition, real = _images(n, h, w), _images(n, h, w)
    gp = losses.gradient_penalty(_QuadraticPatchCritic(cw), condition, real, real).numpy()
    pair = np.concatenate([condition, real], -1)
    grad = cw * pair / (h * w)  # d/dx of the map mean
    want = (np.sqrt((grad.reshape(n, -1) ** 2).sum(1)) - 1.0) ** 2
    np.testing.assert_allclose(gp, want, rtol=1e-5)


def test_gradient_penalty_seeded_and_in_tf_function_with_a_keras_critic():
    import keras

    critic = keras.Sequential([keras.Input((8, 8, 6)), keras.layers.Conv2D(4, 3, strides=2, activation="tanh"),
                               keras.layers.Conv2D(1, 3)])
    condition, real, fake = _images(2, 8, 8), _images(2, 8, 8), _images(2, 8, 8)

    @tf.function
    def step(seed):
        with tf.GradientTape() as tape:
            gp = losses.gradient_penalty(critic, condition, real, fake, seed=seed)
            total = tf.reduce_mean(gp)
        return gp, tape.gradient(total, critic.trainable_variables)

    gp1, grads = step(tf.constant([3, 1]))
    gp2, _ = step(tf.constant([3, 1]))
    gp3, _ = step(tf.constant([4, 1]))
    np.testing.assert_array_equal(gp1.numpy(), gp2.numpy())
    assert not np.allclose(gp1.numpy(), gp3.numpy())
    # the penalty reaches every kernel and hidden bias (the output bias cannot change an input gradient)
    assert grads[-1] is None
    assert all(np.all(np.isfinite(g.numpy())) and np.any(g.numpy() != 0) for g in grads[:-1])


def test_clip_weights_clips_every_trainable_variable():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    values = [np.array(RNG.normal(size=v.shape) * 0.05, np.float32) for v in model.trainable_variables]
    values[0].flat[0] = 0.004
    for v, x in zip(model.trainable_variables, values):
        v.assign(x)
    losses.clip_weights(model, 0.01)
    for v, x in zip(model.trainable_variables, values):
        np.testing.assert_allclose(v.numpy(), np.clip(x, -0.01, 0.01))
    assert model.trainable_variables[0].numpy().flat[0] == pytest.approx(0.004)
    with pytest.raises(ValueError):
        losses.clip_weights(model, 0.0)
