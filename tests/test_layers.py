"""common.layers.InstanceNormalization against the DPED authors' formula, and its serialisation."""
import keras
import numpy as np

from common.layers import InstanceNormalization


def test_matches_authors_formula_with_learned_scale_and_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (2, 5, 6, 4)).astype("float32")
    layer = InstanceNormalization(epsilon=1e-3)
    layer.build(x.shape)
    scale = rng.normal(size=4).astype("float32")
    shift = rng.normal(size=4).astype("float32")
    layer.set_weights([scale, shift])
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    expected = scale * (x - mean) / np.sqrt(var + 1e-3) + shift
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-5)


def test_statistics_are_per_sample():
    x = np.stack([np.zeros((3, 3, 1)), np.full((3, 3, 1), 5.0)]).astype("float32")
    x[1, 0, 0, 0] = 7.0
    y = np.asarray(InstanceNormalization()(x))
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
