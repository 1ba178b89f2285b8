"""The Pix2Pix train step: every GAN objective, the gradient penalty, n_critic, loss terms, inference modes."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix.gan import Pix2Pix
from pix2pix.models import build_patchgan, build_unet


def _data(n=2, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, size, size, 3), dtype=np.float32), rng.random((n, size, size, 3), dtype=np.float32))


def _gan(gan_loss="bce", n_critic=1, d_norm="instance", lr=2e-4, **kwargs):
    g = build_unet(depth=3, base_filters=4, seed=0)
    d = build_patchgan(n_layers=1, base_filters=4, norm=d_norm)
    gan = Pix2Pix(g, d, gan_loss=gan_loss, n_critic=n_critic, **kwargs)
    gan.compile(keras.optimizers.Adam(lr, beta_1=0.5), keras.optimizers.Adam(lr, beta_1=0.5))
    return gan


def _values(model):
    return [w.numpy().copy() for w in model.trainable_weights]


@pytest.mark.parametrize("gan_loss", ["bce", "lsgan", "wgan", "wgan-gp", "hinge"])
def test_every_objective_updates_both_networks_finitely(gan_loss):
    gan = _gan(gan_loss, lambda_color=1.0)
    g0, d0 = _values(gan.generator), _values(gan.discriminator)
    logs = gan.train_step(_data())
    assert all(np.isfinite(float(v)) for v in logs.values())
    g1, d1 = _values(gan.generator), _values(gan.discriminator)
    assert all(np.all(np.isfinite(w)) for w in g1 + d1)
    assert sum(not np.array_equal(a, b) for a, b in zip(g0, g1)) == len(g0)
    changed = [not np.array_equal(a, b) for a, b in zip(d0, d1)]
    if gan_loss in ("wgan", "wgan-gp", "hinge"):
        # losses linear in the logits (hinge: while |logits| < 1) give the critic's output bias opposite
        # gradients on real and fake that cancel exactly, so it stays put
        assert changed == [True] * (len(d0) - 1) + [False]
    else:
        assert all(changed)
    if gan_loss == "wgan":
        assert max(np.abs(w).max() for w in d1) <= 0.01 + 1e-7
    assert ("gradient_penalty" in logs) == (gan_loss == "wgan-gp")
    assert "g_perceptual" not in logs and float(logs["g_color"]) > 0  # only the terms in use are logged


def test_gradient_penalty_in_the_discriminator_loss():
    """A linear critic mean(conv1x1(pair)) has gradient w/(H*W) per pixel: ||grad|| = ||w|| / sqrt(H*W)."""
    size = 8
    inputs = keras.Input((None, None, 6))
    critic = keras.Model(inputs, keras.layers.Conv2D(1, 1, use_bias=False)(inputs))
    w = np.arange(1, 7, dtype=np.float32).reshape(1, 1, 6, 1) * 0.5
    critic.layers[-1].kernel.assign(w)
    gan = Pix2Pix(build_unet(depth=3, base_filters=4, dropout=0.0, seed=0), critic, gan_loss="wgan-gp",
                  lambda_l1=0.0)
    gan.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))
    x, y = _data(n=2, size=size)
    fake = gan.generator(x * 2 - 1, training=True).numpy()
    logs = gan.train_step((x, y))
    penalty = (np.linalg.norm(w) / size - 1.0) ** 2
    assert float(logs["gradient_penalty"]) == pytest.approx(penalty, rel=1e-4)

    def critic_mean(image):
        return (np.concatenate([x * 2 - 1, image], -1) @ w.reshape(6, 1)).mean(axis=(1, 2, 3))

    wgan = critic_mean(fake) - critic_mean(y * 2 - 1)  # fake - real, per example
    expected = np.mean(0.5 * wgan + 10.0 * penalty)
    assert float(logs["d_loss"]) == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_n_critic_discriminator_steps_per_generator_step():
    gan = _gan("wgan", n_critic=3)
    for _ in range(2):
        gan.train_step(_data())
    assert int(gan.g_optimizer.iterations) == 2
    assert int(gan.d_optimizer.iterations) == 6


def test_loss_terms_and_weights():
    from common.vgg import build_vgg19_features

    vgg = build_vgg19_features(("block1_conv2", "block2_conv2"), weights=None)
    gan = _gan(lambda_l1=100.0, lambda_perceptual=1.0, lambda_color=0.5, lambda_content=2.0, vgg=vgg,
               perceptual_layers=[0, 1], content_layer=1)
    x, y = _data()
    logs = gan.train_step((x, y))
    for key in ("g_adv", "g_l1", "g_perceptual", "g_color", "g_content"):
        assert np.isfinite(float(logs[key])) and float(logs[key]) > 0, key
    total = sum(float(logs[k]) for k in ("g_adv", "g_l1", "g_perceptual", "g_color", "g_content"))
    assert float(logs["g_loss"]) == pytest.approx(total, rel=1e-4)
    gan.set_loss_weights(lambda_l1=0.0)
    assert gan.get_loss_weights()["lambda_l1"] == 0.0
    with pytest.raises(ValueError):
        gan.set_loss_weights(lambda_texture=1.0)
    with pytest.raises(ValueError, match="VGG"):
        Pix2Pix(gan.generator, gan.discriminator, lambda_perceptual=1.0)


def test_l1_is_measured_in_symmetric_units():
    gan = _gan(lambda_l1=1.0, lambda_adv=0.0, lr=0.0)
    gan.generator = build_unet(depth=3, base_filters=4, norm="instance", dropout=0.0, seed=0)
    x, y = _data()
    fake = gan(x).numpy()
    logs = gan.train_step((x, y))
    assert float(logs["g_l1"]) == pytest.approx(2 * np.abs(fake - y).mean(), rel=1e-4)


def test_inference_modes():
    gan = _gan(d_norm="batch")
    gan.generator = build_unet(depth=3, base_filters=4, norm="batch", dropout=0.0, seed=0)
    x, _ = _data(n=2)
    moving = gan(x).numpy()
    np.testing.assert_array_equal(moving, gan(x).numpy())
    assert moving.min() >= 0.0 and moving.max() <= 1.0
    stats = [v.numpy().copy() for v in gan.generator.non_trainable_variables if "moving" in v.path]
    batch_mode = Pix2Pix.for_inference(gan.generator, inference_mode="batch")
    out = batch_mode(x).numpy()
    assert not np.allclose(out, moving, atol=1e-3)
    traced = tf.function(lambda images: batch_mode(images))(x).numpy()  # as validation runs it
    np.testing.assert_allclose(traced, out, atol=1e-5)
    after = [v.numpy() for v in gan.generator.non_trainable_variables if "moving" in v.path]
    for a, b in zip(stats, after):
        np.testing.assert_array_equal(a, b)


def test_linear_target_range_for_hdr():
    g = build_unet(depth=3, base_filters=4, norm="instance", output_activation="relu", seed=0)
    d = build_patchgan(n_layers=1, base_filters=4, norm="instance")
    gan = Pix2Pix(g, d, target_range="linear")
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    x, y = _data()
    logs = gan.train_step((x, y * 4.0))
    assert np.isfinite(float(logs["g_loss"]))
    assert gan(x).numpy().min() >= 0.0
    metrics = gan.test_step((x, y * 4.0))
    assert np.isfinite(float(metrics["psnr"]))


def test_mixed_precision_step_keeps_float32_outputs():
    from common.training import make_adam

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        g = build_unet(depth=3, base_filters=4, spectral_norm=True, noise_injection=True, seed=0)
        d = build_patchgan(n_layers=1, base_filters=4, norm="instance", spectral_norm=True)
        gan = Pix2Pix(g, d, gan_loss="lsgan", lambda_color=1.0)
        gan.compile(make_adam(2e-4, 0.5, mixed=True), make_adam(2e-4, 0.5, mixed=True))
        x, y = _data()
        logs = gan.train_step((x, y))
        assert {k: float(v) for k, v in logs.items() if not np.isfinite(float(v))} == {}
        assert gan(x).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
