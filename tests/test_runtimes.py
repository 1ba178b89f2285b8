"""`load_artifact`: every format runs like the Keras model on [0,1] batches; fixed-size artifacts tile any
photo; the ai-challenge scale is undone; bad files are one-line errors."""
import keras
import numpy as np
import pytest

from common import export as E
from common.runtimes import ArtifactError, load_artifact, run_in_windows
from dped.models import build_generator


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(7)
    generator = build_generator(width=8, num_blocks=1)
    # Larger weights than the init so that the output spans [0, 1].
    generator.set_weights([w * 4 if w.ndim == 4 else w for w in generator.get_weights()])
    return generator


def pointwise_model():
    """A 1x1-convolution model: windows cannot change its output, so tiling must be exact."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="sigmoid")(inputs))


def photo(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.mark.parametrize("kind", ["saved_model_flat", "saved_model_versioned", "litert", "onnx"])
def test_each_format_reproduces_keras(kind, model, tmp_path):
    writers = {"saved_model_flat": lambda: E.export_saved_model(model, tmp_path / "flat"),
               "saved_model_versioned": lambda: E.export_saved_model(model, tmp_path / "served", version=3).parent,
               "litert": lambda: E.export_litert(model, tmp_path / "m.tflite"),
               "onnx": lambda: E.export_onnx(model, tmp_path / "m.onnx")}
    artifact = load_artifact(writers[kind]())
    assert artifact.input_size is None and artifact.scale == 1.0
    x = photo((1, 19, 27, 3))
    np.testing.assert_allclose(artifact(x), model(x).numpy(), atol=2e-5)
    y = photo((2, 11, 9, 3), seed=1)  # several images per call, other size: all formats take it
    np.testing.assert_allclose(artifact(y), model(y).numpy(), atol=2e-5)


def test_ai_challenge_scale_is_undone(model, tmp_path):
    artifact = load_artifact(E.export_litert(model, tmp_path / "m.tflite", input_size=(16, 24), scale=255.0))
    assert artifact.scale == 255.0 and artifact.input_size == (16, 24)
    x = photo((1, 16, 24, 3))
    np.testing.assert_allclose(artifact(x), model(x).numpy(), atol=2e-5)


@pytest.mark.parametrize("fmt", ["litert", "onnx"])
def test_fixed_size_artifact_tiles_any_photo_exactly_for_a_pointwise_model(fmt, tmp_path):
    model = pointwise_model()
    path = (E.export_litert(model, tmp_path / "p.tflite", input_size=(16, 20)) if fmt == "litert"
            else E.export_onnx(model, tmp_path / "p.onnx", input_size=(16, 20)))
    artifact = load_artifact(path)
    assert artifact.input_size == (16, 20)
    for shape in ((1, 45, 61, 3), (1, 7, 9, 3), (1, 16, 50, 3)):  # larger, smaller, one side equal
        x = photo(shape, seed=shape[1])
        np.testing.assert_allclose(artifact(x), model(x).numpy(), atol=1e-5)


def test_windows_blend_to_the_input_for_identity_and_stay_close_for_instance_norm(model):
    image = photo((40, 57, 3))
    np.testing.assert_allclose(run_in_windows(lambda t: t, image, (16, 16), overlap=6), image, atol=1e-6)
    whole = model(image[None]).numpy()[0]
    tiled = run_in_windows(lambda t: model(t).numpy(), image, (32, 40))
    assert tiled.shape == whole.shape
    assert 0 < np.abs(tiled - whole).mean() < 0.05  # per-window statistics: close, not equal


def test_bad_artifacts_are_one_line_errors(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        load_artifact(tmp_path / "missing.tflite")
    (tmp_path / "model.pt").write_bytes(b"\0")
    with pytest.raises(ArtifactError, match="unknown artifact kind"):
        load_artifact(tmp_path / "model.pt")
    for name in ("broken.tflite", "broken.onnx"):
        (tmp_path / name).write_bytes(b"not a model at all")
        with pytest.raises(ArtifactError, match="cannot be opened") as info:
            load_artifact(tmp_path / name)
        assert "\n" not in str(info.value)
    (tmp_path / "folder").mkdir()
    with pytest.raises(Exception, match="not a SavedModel folder"):
        load_artifact(tmp_path / "folder")
