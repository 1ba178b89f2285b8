"""pix2pix networks: any-size U-Net, the bottleneck-norm fix, parameter counts, PatchGAN receptive fields,
spectral normalisation and noise injection."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2pix.layers import NoiseInjection, inject_noise
from pix2pix.models import (CropToReference, ReflectPadToMultiple, build_patchgan, build_unet,
                            patchgan_receptive_field)


def _count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("shape", [(2, 33, 51), (1, 5, 7), (1, 16, 16)])
def test_unet_any_size(shape):
    g = build_unet(depth=4, base_filters=8, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, shape + (3,)).astype("float32")
    y = g(x, training=False).numpy()
    assert y.shape == x.shape
    assert np.all(np.abs(y) <= 1.0)


def test_reflect_padding_matches_numpy_and_crops_back():
    x = np.arange(2 * 5 * 7 * 1, dtype="float32").reshape(2, 5, 7, 1)
    padded = ReflectPadToMultiple(8)(x).numpy()
    assert padded.shape == (2, 8, 8, 1)
    np.testing.assert_array_equal(padded, np.pad(x, ((0, 0), (1, 2), (0, 1), (0, 0)), mode="reflect"))
    np.testing.assert_array_equal(CropToReference(8)([padded, x]).numpy(), x)
    # padding larger than the image folds back and forth (reflect applied repeatedly)
    big = ReflectPadToMultiple(16)(x[:, :2, :2]).numpy()
    assert big.shape == (2, 16, 16, 1)
    assert set(np.unique(big)) == set(np.unique(x[:, :2, :2]))


def test_bottleneck_depends_on_input_at_batch_one():
    """A norm on the 1x1 bottleneck at batch 1 would output its shift for every input (TF tutorial bug)."""
    g = build_unet(depth=4, base_filters=8, norm="batch", seed=0)
    inner = keras.Model(g.input, g.get_layer("down4_lrelu").output)
    rng = np.random.default_rng(1)
    a = inner(rng.uniform(-1, 1, (1, 16, 16, 3)).astype("float32"), training=True).numpy()
    b = inner(rng.uniform(-1, 1, (1, 16, 16, 3)).astype("float32"), training=True).numpy()
    assert a.shape == (1, 1, 1, 64)
    assert np.abs(a - b).max() > 1e-3
    # the bug being avoided: batch norm over a 1x1 map at batch 1 is constant
    bn = keras.layers.BatchNormalization()
    np.testing.assert_allclose(bn(a, training=True).numpy(), bn(b, training=True).numpy(), atol=1e-6)


@pytest.mark.slow
def test_default_parameter_counts_match_the_references():
    g = build_unet()
    d = build_patchgan()
    # PyTorch reference U-Net-256: 54,413,955 trainable; TF tutorial 54,425,859 incl. BN statistics,
    # of which 2,048 (512 x gamma, beta, moving mean, moving variance) are its bottleneck norm.
    assert _count(g.trainable_weights) == 54_413_955
    assert _count(g.weights) == 54_425_859 - 4 * 512
    assert _count(d.trainable_weights) == 2_768_705
    assert d(np.zeros((1, 256, 256, 6), "float32")).shape == (1, 30, 30, 1)


def test_phone2dslr_six_level_unet():
    g = build_unet(depth=6, base_filters=8, dropout_blocks=1)
    assert g(np.zeros((2, 64, 64, 3), "float32")).shape == (2, 64, 64, 3)
    inner = keras.Model(g.input, g.get_layer("down6_lrelu").output)
    assert inner(np.zeros((1, 64, 64, 3), "float32")).shape == (1, 1, 1, 256)
    assert [l.name for l in g.layers if isinstance(l, keras.layers.Dropout)] == ["up1_dropout"]


@pytest.mark.parametrize("n_layers,expected", [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field(n_layers, expected):
    assert patchgan_receptive_field(n_layers) == expected
    size = 96 if n_layers < 3 else 160
    d = build_patchgan(n_layers=n_layers, base_filters=4, norm="none")
    x = tf.constant(np.random.default_rng(0).normal(size=(1, size, size, 6)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = d(x)
        h, w = logits.shape[1] // 2, logits.shape[2] // 2
        centre = logits[0, h, w, 0]
    grad = tape.gradient(centre, x).numpy()
    rows = np.nonzero(np.abs(grad).sum(axis=(0, 2, 3)))[0]
    cols = np.nonzero(np.abs(grad).sum(axis=(0, 1, 3)))[0]
    assert rows.max() - rows.min() + 1 == expected
    assert cols.max() - cols.min() + 1 == expected
    assert patchgan_receptive_field(4) == 142


@pytest.mark.parametrize("depth", [3, 4])
def test_unet_receptive_field(depth):
    from pix2pix.models import unet_receptive_field

    g = build_unet(depth=depth, base_filters=4, max_filters=8, norm="none", dropout=0.0)
    x = tf.constant(np.random.default_rng(0).normal(size=(1, 128, 128, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        centre = g(x)[0, 64, 64, 0]
    rows = np.nonzero(np.abs(tape.gradient(centre, x).numpy()).sum(axis=(0, 2, 3)))[0]
    assert rows.max() - rows.min() + 1 == unet_receptive_field(depth)
    assert unet_receptive_field(5) == 126  # the overexposure preset (seed 003: about 140 px)


def test_spectral_norm_bounds_the_largest_singular_value():
    d = build_patchgan(n_layers=1, base_filters=4, norm="none", spectral_norm=True)
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 6)).astype("float32")
    for _ in range(30):
        d(x, training=True)
    for layer in d.layers:
        if isinstance(layer, keras.layers.SpectralNormalization):
            kernel = layer.layer.kernel.numpy()
            sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
            assert sigma == pytest.approx(1.0, rel=0.05)


def test_legacy_noise_injection_layer_training_only_and_per_channel():
    layer = NoiseInjection(seed=3)
    x = np.zeros((2, 8, 8, 4), "float32")
    np.testing.assert_array_equal(layer(x, training=True).numpy(), x)  # scale starts at 0
    layer.scale.assign([0.0, 1.0, 2.0, 0.0])
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    noisy = layer(x, training=True).numpy()
    assert np.all(noisy[..., 0] == 0) and np.all(noisy[..., 3] == 0)
    assert noisy[..., 2].std() == pytest.approx(2 * noisy[..., 1].std(), rel=0.5)
    assert not np.array_equal(noisy, layer(x, training=True).numpy())  # fresh noise every call


def test_inject_noise_is_keras_layers_training_only_and_per_channel():
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, inject_noise(inputs, seed=3, name="noise"))
    assert all(type(layer).__module__.startswith("keras.") for layer in model.layers)
    x = np.zeros((2, 8, 8, 4), "float32")
    np.testing.assert_array_equal(model(x, training=True).numpy(), x)  # scale starts at 0
    model.get_layer("noise_scale").set_weights([np.array([0.0, 1.0, 2.0, 0.0], "float32").reshape(1, 1, 4, 1)])
    y = np.random.default_rng(0).normal(size=x.shape).astype("float32")
    np.testing.assert_array_equal(model(y, training=False).numpy(), y)
    noisy = model(x, training=True).numpy()
    assert np.all(noisy[..., 0] == 0) and np.all(noisy[..., 3] == 0)
    assert noisy[..., 1].std() == pytest.approx(1.0, rel=0.3)
    assert noisy[..., 2].std() == pytest.approx(2 * noisy[..., 1].std(), rel=0.3)
    assert not np.array_equal(noisy, model(x, training=True).numpy())  # fresh noise every call


def test_noise_injection_unet_is_deterministic_at_inference():
    g = build_unet(depth=3, base_filters=4, noise_injection=True, spectral_norm=True, seed=0)
    scales = [layer for layer in g.layers if layer.name.endswith("_noise_scale")]
    assert len(scales) == 2 * 3 - 1
    for layer in scales:
        layer.set_weights([np.ones_like(w) for w in layer.get_weights()])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(g(x, training=False).numpy(), g(x, training=False).numpy())
    assert not np.allclose(g(x, training=True).numpy(), g(x, training=False).numpy())


def test_residual_unet_starts_from_its_input_and_round_trips(tmp_path):
    model = build_unet(depth=3, base_filters=4, norm="instance", residual=True, seed=0)
    assert model.count_params() == build_unet(depth=3, base_filters=4, norm="instance", seed=0).count_params()
    out_conv = model.get_layer("output_conv")
    out_conv.set_weights([np.zeros_like(w) for w in out_conv.get_weights()])
    x = np.random.default_rng(0).uniform(-1, 1, (2, 13, 19, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x, training=False)), x, atol=1e-6)
    path = tmp_path / "residual.keras"
    model.save(path)
    np.testing.assert_allclose(np.asarray(keras.models.load_model(path)(x, training=False)), x, atol=1e-6)
    with pytest.raises(ValueError, match="input_channels == output_channels"):
        build_unet(depth=3, base_filters=4, residual=True, input_channels=3, output_channels=1)
