"""VGG-19 extractor: Caffe-BGR preprocessing, SAME pooling, weight files, and the offline error path."""
import h5py
import keras
import numpy as np
import pytest

from common import vgg
from common.errors import PhotoEnhanceError, VGGWeightsUnavailable

RNG = np.random.default_rng(0)
AUTHORS_RGB_MEAN = np.array([123.68, 116.779, 103.939], np.float32)


def _write_keras_legacy_h5(model, path):
    """Write `model` like Keras' `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` (Keras 1 weight names)."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"1.1.0"
        for layer in model.layers:
            group = f.create_group(layer.name)
            values = layer.get_weights()
            names = [f"{layer.name}_W_1:0", f"{layer.name}_b_1:0"][: len(values)]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, value in zip(names, values):
                group.create_dataset(name, data=value)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Keras' own VGG19 (random weights, notop) and its weights in the legacy and the Keras 3 file formats."""
    keras.utils.set_random_seed(7)
    model = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    folder = tmp_path_factory.mktemp("vgg")
    legacy = folder / vgg.WEIGHTS_FILENAME
    _write_keras_legacy_h5(model, legacy)
    modern = folder / "vgg19_notop.weights.h5"
    model.save_weights(modern)
    return model, legacy, modern


def _reference_features(model, images, layer):
    """Keras' documented usage: `vgg19.preprocess_input` on 0-255 RGB, then the Keras model."""
    sub = keras.Model(model.input, model.get_layer(layer).output)
    return sub(keras.applications.vgg19.preprocess_input(images * 255.0)).numpy()


def _unit_images(n=2, size=40):
    return RNG.random((n, size, size, 3)).astype(np.float32)


# ---------------------------------------------------------------------------------- preprocessing

def test_preprocessing_equals_keras_caffe_mode_and_the_authors_means():
    images = _unit_images(2, 9)
    ours = vgg.VGGPreprocess()(images).numpy()
    keras_caffe = keras.applications.vgg19.preprocess_input(images.copy() * 255.0)
    np.testing.assert_allclose(ours, keras_caffe, rtol=1e-6, atol=1e-4)
    # the authors' RGB input (RGB*255 - RGB means) is ours with the channels reversed back
    authors_rgb = images * 255.0 - AUTHORS_RGB_MEAN
    np.testing.assert_allclose(ours[..., ::-1], authors_rgb, rtol=1e-6, atol=1e-4)
    # a pure-red image is large in the *last* channel of the Caffe (BGR) input
    red = np.zeros((1, 2, 2, 3), np.float32)
    red[..., 0] = 1.0
    assert np.argmax(vgg.VGGPreprocess()(red).numpy()[0, 0, 0]) == 2


def test_features_match_the_authors_rgb_network(reference):
    """The authors' MatConvNet VGG is the Caffe one with RGB-ordered first filters fed RGB - RGB means."""
    model, legacy, _ = reference
    images = _unit_images(1, 32)
    ours = vgg.build_vgg19_features(("relu2_2",), weights=legacy)(images)[0].numpy()
    rgb_model = keras.Model(model.input, model.get_layer("block2_conv2").output)
    rgb_model = keras.models.clone_model(rgb_model)
    for layer in rgb_model.layers:
        if layer.weights:
            kernel, bias = model.get_layer(layer.name).get_weights()
            if layer.name == "block1_conv1":
                kernel = kernel[:, :, ::-1, :]  # BGR -> RGB input filters, as MatConvNet stores them
            layer.set_weights([kernel, bias])
    authors = rgb_model(images * 255.0 - AUTHORS_RGB_MEAN).numpy()
    assert np.abs(authors).max() > 0
    np.testing.assert_allclose(ours, authors, rtol=1e-4, atol=1e-3 * np.abs(authors).max())


# ------------------------------------------------------------------------------- graph and names

def test_same_pooling_gives_the_authors_shapes_at_100():
    images = _unit_images(1, 100)
    same = vgg.build_vgg19_features(("block4_conv4", "block5_conv4"), weights=None, same_pooling=True)(images)
    valid = vgg.build_vgg19_features(("block4_conv4", "block5_conv4"), weights=None, same_pooling=False)(images)
    assert [tuple(f.shape) for f in same] == [(1, 13, 13, 512), (1, 7, 7, 512)]
    assert [tuple(f.shape) for f in valid] == [(1, 12, 12, 512), (1, 6, 6, 512)]


def test_single_layer_is_a_list_and_models_are_cached_and_frozen():
    model = vgg.build_vgg19_features("relu1_2", weights=None, input_shape=(None, None, 3))
    out = model(_unit_images(2, 8))
    assert isinstance(out, list) and len(out) == 1 and tuple(out[0].shape) == (2, 8, 8, 64)
    assert out[0].dtype == "float32"
    assert vgg.build_vgg19_features(("block1_conv2",), weights=None) is model
    assert vgg.build_vgg19_features(("block1_conv2",), weights=None, same_pooling=True) is not model
    assert model.trainable_weights == [] and len(model.weights) == 4
    # truncated at the deepest requested layer: nothing after block1_conv2 is built
    assert [layer.name for layer in model.backbone.layers][-1] == "block1_conv2"


def test_layer_names_for_papers_names():
    assert vgg.vgg_layer_names_for("relu5_4") == ("block5_conv4",)
    assert vgg.vgg_layer_names_for(["relu2_2", "relu3_3", "pool3", "block1_conv1"]) == (
        "block2_conv2", "block3_conv3", "block3_pool", "block1_conv1")
    for bad in ("conv5_4", "relu6_1", "relu1_3", "fc7"):
        with pytest.raises(PhotoEnhanceError, match="unknown VGG-19 layer"):
            vgg.vgg_layer_names_for(bad)


# ------------------------------------------------------------------------------------ weight files

def test_handmade_file_is_keras_format(reference):
    """Keras' own loader accepts the file the fixture writes, so it is the format users download."""
    model, legacy, _ = reference
    loaded = keras.applications.VGG19(include_top=False, weights=str(legacy), input_shape=(None, None, 3))
    np.testing.assert_array_equal(loaded.get_layer("block5_conv4").get_weights()[0],
                                  model.get_layer("block5_conv4").get_weights()[0])


def test_load_from_path_matches_keras_reference(reference):
    model, legacy, _ = reference
    images = _unit_images(2, 40)
    features = vgg.build_vgg19_features(("block2_conv2", "block5_conv4"), weights=legacy)(images)
    for layer, got in zip(("block2_conv2", "block5_conv4"), features):
        want = _reference_features(model, images, layer)
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_same_pooling_model_loads_the_same_file(reference):
    model, legacy, _ = reference
    images = _unit_images(1, 40)  # 40 -> 20, 10, 5: pool4 gives 3 (SAME) or 2 (VALID)
    b4, b5 = vgg.build_vgg19_features(("block4_conv4", "block5_conv4"), weights=legacy, same_pooling=True)(images)
    want = _reference_features(model, images, "block4_conv4")
    np.testing.assert_allclose(b4.numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert tuple(b5.shape) == (1, 3, 3, 512)


def test_env_var_supplies_imagenet_weights(reference, monkeypatch):
    model, legacy, _ = reference
    monkeypatch.setenv(vgg.DEFAULT_WEIGHTS_ENV, str(legacy))
    monkeypatch.setattr(vgg, "_download_imagenet_weights", _no_download)
    images = _unit_images(1, 32)
    got = vgg.build_vgg19_features(("block3_conv4",), weights="imagenet")(images)[0].numpy()
    by_path = vgg.build_vgg19_features(("block3_conv4",), weights=str(legacy))(images)[0].numpy()
    np.testing.assert_array_equal(got, by_path)
    want = _reference_features(model, images, "block3_conv4")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_keras3_weights_file_loads(reference):
    model, _, modern = reference
    images = _unit_images(1, 32)
    got = vgg.build_vgg19_features(("block3_conv1",), weights=modern)(images)[0].numpy()
    want = _reference_features(model, images, "block3_conv1")
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_keras_cache_is_used_without_download(reference, tmp_path, monkeypatch):
    _, legacy, _ = reference
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / vgg.WEIGHTS_FILENAME).symlink_to(legacy)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(vgg.DEFAULT_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(vgg, "_download_imagenet_weights", _no_download)
    model = vgg.build_vgg19_features(("block1_conv1",), weights="imagenet")
    np.testing.assert_array_equal(model.backbone.get_layer("block1_conv1").get_weights()[0],
                                  reference[0].get_layer("block1_conv1").get_weights()[0])


def _no_download():
    raise AssertionError("must not download")


# ------------------------------------------------------------------------------------------ errors

def test_offline_without_file_raises_a_helpful_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(vgg.DEFAULT_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(vgg, "_check_reachable", lambda timeout=5.0: None)

    def offline_get_file(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- no network")

    monkeypatch.setattr(keras.utils, "get_file", offline_get_file)
    with pytest.raises(VGGWeightsUnavailable) as err:
        vgg.build_vgg19_features(("block1_conv1",), weights="imagenet")
    message = str(err.value)
    assert "URL fetch failure" in message
    assert "weights=<path>" in message and "VGG19_WEIGHTS" in message
    assert str(tmp_path / "models" / vgg.WEIGHTS_FILENAME) in message
    assert vgg.WEIGHTS_URL in message


def test_unreachable_host_fails_before_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(vgg.DEFAULT_WEIGHTS_ENV, raising=False)
    calls = []

    def unreachable(timeout=5.0):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(vgg, "_check_reachable", unreachable)
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: calls.append(a))
    with pytest.raises(VGGWeightsUnavailable, match="Network is unreachable"):
        vgg.build_vgg19_features(("block1_conv1",), weights="imagenet")
    assert calls == []


def test_missing_or_bad_files_name_the_file(tmp_path, monkeypatch):
    missing = tmp_path / "nope.h5"
    with pytest.raises(VGGWeightsUnavailable, match="nope.h5: VGG-19 weight file not found"):
        vgg.build_vgg19_features(weights=missing)
    monkeypatch.setenv(vgg.DEFAULT_WEIGHTS_ENV, str(missing))
    with pytest.raises(VGGWeightsUnavailable, match=r"\$VGG19_WEIGHTS"):
        vgg.build_vgg19_features(weights="imagenet")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file")
    with pytest.raises(VGGWeightsUnavailable, match="garbage.h5: cannot read"):
        vgg.build_vgg19_features(("block1_conv1",), weights=garbage)
    partial = tmp_path / "partial.h5"
    small = keras.Sequential([keras.Input((None, None, 3)),
                              keras.layers.Conv2D(64, 3, padding="same", name="block1_conv1")])
    _write_keras_legacy_h5(small, partial)
    with pytest.raises(VGGWeightsUnavailable, match="partial.h5: no layer 'block1_conv2'"):
        vgg.build_vgg19_features(("block1_conv2",), weights=partial)


def test_offline_env_fails_without_trying_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("PHOTOENHANCE_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(vgg.DEFAULT_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(vgg, "_check_reachable", lambda timeout=5.0: pytest.fail("must not touch the network"))
    with pytest.raises(VGGWeightsUnavailable, match="PHOTOENHANCE_OFFLINE forbids downloads"):
        vgg.build_vgg19_features(("block1_conv1",), weights="imagenet")
