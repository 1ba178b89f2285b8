"""DPED generator and discriminator: parameter counts, shapes, the authors' graph, and file round trips."""
import numpy as np
import pytest
import tensorflow as tf

from common.errors import CheckpointError
from dped.models import (GENERATOR_PRESETS, build_discriminator, build_generator, build_generator_preset,
                         load_generator, save_generator, texture_gray)


def reference_generator(x, weights, num_blocks):
    """The authors' generator graph written with raw tf.nn ops from SPEC.md, for parity checks.

    `weights` = {"W1": ..., "b1": ..., "norm0": (shift, scale), ...}."""
    def conv(t, i):
        return tf.nn.conv2d(t, weights[f"W{i}"], 1, "SAME") + weights[f"b{i}"]

    def inorm(t, k):
        shift, scale = weights[f"norm{k}"]
        mean, var = tf.nn.moments(t, [1, 2], keepdims=True)
        return scale * (t - mean) / (var + 1e-3) ** 0.5 + shift

    c = tf.nn.relu(conv(x, 1))
    i, k = 2, 0
    for _ in range(num_blocks):
        a = tf.nn.relu(inorm(conv(c, i), k))
        c = tf.nn.relu(inorm(conv(a, i + 1), k + 1)) + c
        i, k = i + 2, k + 2
    c = tf.nn.relu(conv(c, i))
    c = tf.nn.relu(conv(c, i + 1))
    return tf.nn.tanh(conv(c, i + 2)) * 0.58 + 0.5


def random_reference_weights(width, num_blocks, seed=0):
    rng = np.random.default_rng(seed)
    n = 2 * num_blocks + 4
    w = {}
    for i in range(1, n + 1):
        cin = 3 if i == 1 else width
        cout = 3 if i == n else width
        k = 9 if i in (1, n) else 3
        w[f"W{i}"] = rng.normal(0, 0.1, (k, k, cin, cout)).astype(np.float32)
        w[f"b{i}"] = rng.normal(0, 0.1, (cout,)).astype(np.float32)
    for k in range(2 * num_blocks):
        w[f"norm{k}"] = (rng.normal(0, 0.3, (width,)).astype(np.float32),
                         rng.uniform(0.5, 1.5, (width,)).astype(np.float32))
    return w


def load_reference_weights(model, w, num_blocks):
    for i in range(1, 2 * num_blocks + 5):
        model.get_layer(f"conv{i}").set_weights([w[f"W{i}"], w[f"b{i}"]])
    for k in range(2 * num_blocks):
        shift, scale = w[f"norm{k}"]
        model.get_layer(f"norm{k}").set_weights([scale, shift])


def test_generator_parameter_counts_match_spec():
    model = build_generator()
    assert model.count_params() == 401_475
    counts = {layer.name: layer.count_params() for layer in model.layers if layer.count_params()}
    assert counts["conv1"] == 15_616
    assert [counts[f"conv{i}"] for i in range(2, 12)] == [36_928] * 10
    assert [counts[f"norm{k}"] for k in range(8)] == [128] * 8
    assert counts["conv12"] == 15_555


def test_resnet_8_32_preset_is_two_blocks_of_32_channels():
    assert GENERATOR_PRESETS["resnet_8_32"] == {"width": 32, "num_blocks": 2}
    model = build_generator_preset("resnet_8_32")
    convs = [l for l in model.layers if l.name.startswith("conv")]
    assert len(convs) == 8 and convs[0].filters == 32
    assert model.count_params() == 7_808 + 6 * 9_248 + 4 * 64 + 7_779
    assert build_generator_preset("resnet_12_64").count_params() == 401_475
    with pytest.raises(ValueError, match="unknown generator preset"):
        build_generator_preset("resnet_99")


def test_generator_matches_authors_graph_on_any_size():
    w = random_reference_weights(width=8, num_blocks=2)
    model = build_generator(width=8, num_blocks=2)
    load_reference_weights(model, w, 2)
    x = np.random.default_rng(1).uniform(0, 1, (2, 13, 21, 3)).astype(np.float32)
    expected = reference_generator(tf.constant(x), w, 2).numpy()
    got = model(x).numpy()
    assert got.shape == (2, 13, 21, 3)
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_generator_output_is_scaled_tanh_and_not_clipped():
    model = build_generator(width=4, num_blocks=1)
    last = model.get_layer("conv6")
    last.set_weights([np.zeros_like(last.kernel.numpy()), np.array([5.0, -5.0, 0.0], np.float32)])
    y = model(np.zeros((1, 5, 7, 3), np.float32)).numpy()
    np.testing.assert_allclose(y[0, 0, 0], np.tanh([5.0, -5.0, 0.0]) * 0.58 + 0.5, atol=1e-6)
    assert y.max() > 1.0 and y.min() < 0.0


def test_generator_initialisation_follows_authors():
    model = build_generator()
    kernel = model.get_layer("conv2").kernel.numpy()
    assert abs(kernel.std() - 0.0088) < 0.001  # truncated at 2 stddev: std ~0.88 * 0.01
    assert np.abs(kernel).max() <= 0.02 + 1e-7
    np.testing.assert_allclose(model.get_layer("conv12").bias.numpy(), 0.01)
    np.testing.assert_allclose(model.get_layer("norm3").gamma.numpy(), 1.0)


def test_discriminator_counts_shapes_and_softmax():
    d = build_discriminator()
    assert d.count_params() == 7_361_122
    assert d.get_layer("flatten").output.shape[-1] == 7 * 7 * 128
    assert "norm1" not in [l.name for l in d.layers]  # no instance norm after conv1
    x = np.random.default_rng(0).uniform(0, 1, (3, 100, 100, 1)).astype(np.float32)
    p = d(x).numpy()
    assert p.shape == (3, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    logits_model = build_discriminator(logits=True)
    logits_model.set_weights(d.get_weights())
    np.testing.assert_allclose(tf.nn.softmax(logits_model(x)).numpy(), p, atol=1e-6)


def test_discriminator_flatten_follows_patch_size():
    d = build_discriminator(patch_size=64)
    assert d.get_layer("flatten").output.shape[-1] == 4 * 4 * 128
    assert d(np.zeros((1, 64, 64, 1), np.float32)).shape == (1, 2)


def test_texture_gray_uses_authors_weights():
    rgb = np.array([[[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]]], np.float32)
    np.testing.assert_allclose(texture_gray(tf.constant(rgb)).numpy()[0, 0, :, 0], [0.2989, 0.5870, 0.1140],
                               atol=1e-7)


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_save_load_round_trip(tmp_path, suffix):
    model = build_generator() if suffix == ".weights.h5" else build_generator(width=8, num_blocks=1)
    x = np.random.default_rng(2).uniform(0, 1, (1, 16, 12, 3)).astype(np.float32)
    path = save_generator(model, tmp_path / f"g{suffix}")
    loaded = load_generator(path)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")  # the mismatched file, on purpose
def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="missing.keras: generator file not found"):
        load_generator(tmp_path / "missing.keras")
    small = save_generator(build_generator(width=8, num_blocks=1), tmp_path / "small.weights.h5")
    with pytest.raises(CheckpointError, match="small.weights.h5: cannot be loaded"):
        load_generator(small)
    fewer_blocks = save_generator(build_generator(width=8, num_blocks=1), tmp_path / "fewer.weights.h5")
    with pytest.raises(CheckpointError, match="fewer.weights.h5: cannot be loaded"):
        load_generator(fewer_blocks, width=8, num_blocks=2)
    assert load_generator(fewer_blocks, width=8, num_blocks=1).count_params() > 0
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.keras"):
        load_generator(tmp_path / "junk.keras")
    with pytest.raises(CheckpointError, match="must end in"):
        save_generator(build_generator(width=4, num_blocks=0), tmp_path / "g.h5")
