"""Instance norm (the built-in `instance_norm` and the legacy `InstanceNormalization`) against the DPED
authors' formula, and its serialisation."""
import keras
import numpy as np
import pytest

from common.layers import InstanceNormalization, instance_norm, is_instance_norm


@pytest.mark.parametrize("make", [instance_norm, InstanceNormalization], ids=["builtin", "legacy"])
def test_matches_authors_formula_with_learned_scale_and_shift(make):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (2, 5, 6, 4)).astype("float32")
    layer = make(epsilon=1e-3)
    layer.build(x.shape)
    scale = rng.normal(size=4).astype("float32")
    shift = rng.normal(size=4).astype("float32")
    layer.set_weights([scale, shift])
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    expected = scale * (x - mean) / np.sqrt(var + 1e-3) + shift
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-5)


@pytest.mark.parametrize("make", [instance_norm, InstanceNormalization], ids=["builtin", "legacy"])
def test_statistics_are_per_sample(make):
    x = np.stack([np.zeros((3, 3, 1)), np.full((3, 3, 1), 5.0)]).astype("float32")
    x[1, 0, 0, 0] = 7.0
    y = np.asarray(make()(x))
    np.testing.assert_allclose(y[0], 0.0, atol=1e-6)
    assert abs(y[1].mean()) < 1e-5 and y[1, 0, 0, 0] > 2.0


def test_round_trips_through_keras_file(tmp_path):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, InstanceNormalization(epsilon=1e-5)(keras.layers.Conv2D(3, 3)(inputs)))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(1).random((1, 9, 11, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    assert loaded.layers[-1].epsilon == 1e-5


def test_builtin_computes_in_float32_under_mixed_precision():
    x = np.random.default_rng(2).normal(0.0, 300.0, (1, 64, 64, 2)).astype("float16")
    layer = instance_norm(epsilon=1e-3, name="n")
    layer.dtype_policy = keras.DTypePolicy("mixed_float16")
    y = np.asarray(layer(x)).astype("float32")
    x32 = x.astype("float32")
    expected = (x32 - x32.mean(axis=(1, 2))) / np.sqrt(x32.var(axis=(1, 2)) + 1e-3)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, expected, atol=5e-3)


def test_is_instance_norm_tells_instance_from_group_norm():
    inputs = keras.Input((None, None, 4))
    norms = [instance_norm(name="inorm"), keras.layers.GroupNormalization(groups=2, name="gnorm"),
             InstanceNormalization(name="legacy"), keras.layers.BatchNormalization(name="bn")]
    keras.Model(inputs, [norm(inputs) for norm in norms])
    assert [is_instance_norm(norm) for norm in norms] == [True, False, True, False]
