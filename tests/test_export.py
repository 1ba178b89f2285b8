"""SavedModel export: a fresh process reproduces the Keras output through both signatures; ranges,
padding and bad arguments."""
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from common.errors import PhotoEnhanceError
from common.export import export_saved_model, load_saved_model_signature
from dped.models import build_generator

RELOAD = """
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
x8 = np.load(sys.argv[2]); xf = np.load(sys.argv[3])
np.save(sys.argv[4], loaded.signatures["serving_default"](images=tf.constant(x8))["images"].numpy())
np.save(sys.argv[5], loaded.signatures["float32"](images=tf.constant(xf))["images"].numpy())
"""


def test_fresh_process_reproduces_keras_output(tmp_path):
    model = build_generator(width=8, num_blocks=1)
    rng = np.random.default_rng(0)
    # Larger weights than the init so that the output spans [0, 1] and rounding is exercised.
    model.set_weights([w * 4 if w.ndim == 4 else w for w in model.get_weights()])
    export_saved_model(model, tmp_path / "sm")
    x8 = rng.integers(0, 256, (2, 13, 21, 3), dtype=np.uint8)
    xf = rng.uniform(0, 1, (1, 17, 9, 3)).astype(np.float32)
    np.save(tmp_path / "x8.npy", x8)
    np.save(tmp_path / "xf.npy", xf)
    subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path / "sm"), str(tmp_path / "x8.npy"),
                    str(tmp_path / "xf.npy"), str(tmp_path / "y8.npy"), str(tmp_path / "yf.npy")],
                   check=True, capture_output=True, env={"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
                                                         "PATH": "/usr/bin:/bin"})
    y8, yf = np.load(tmp_path / "y8.npy"), np.load(tmp_path / "yf.npy")
    ref8 = model(x8.astype(np.float32) / 255.0).numpy()
    assert y8.dtype == np.uint8 and y8.shape == x8.shape
    assert np.abs(y8.astype(int) - np.round(np.clip(ref8, 0, 1) * 255).astype(int)).max() <= 1
    assert len(np.unique(y8)) > 20
    assert yf.dtype == np.float32 and yf.shape == xf.shape
    np.testing.assert_allclose(yf, model(xf).numpy(), atol=1e-5)


def test_symmetric_ranges_and_padding_for_unet_like_models(tmp_path):
    inputs = keras.Input((None, None, 3))
    down = keras.layers.AveragePooling2D(4)(inputs)
    outputs = keras.layers.UpSampling2D(4)(down)  # only exact on multiples of 4, like a U-Net
    model = keras.Model(inputs, outputs)
    export_saved_model(model, tmp_path / "sm", input_range="symmetric", output_range="symmetric", pad_multiple=4)
    fn = load_saved_model_signature(tmp_path / "sm", "float32")
    flat = np.full((1, 10, 7, 3), 0.25, np.float32)
    out = fn(flat).numpy()
    assert out.shape == (1, 10, 7, 3)
    np.testing.assert_allclose(out, 0.25, atol=1e-6)  # [0,1] -> [-1,1] -> model -> [0,1]; edge padding
    u8 = load_saved_model_signature(tmp_path / "sm", "serving_default")(np.full((2, 5, 6, 3), 200, np.uint8))
    assert u8.dtype == tf.uint8 and u8.shape == (2, 5, 6, 3) and int(tf.reduce_max(u8)) == 200


def test_export_argument_errors(tmp_path):
    model = build_generator(width=4, num_blocks=0)
    with pytest.raises(PhotoEnhanceError, match="input_range"):
        export_saved_model(model, tmp_path / "a", input_range="zero_one")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text(json.dumps({}))
    with pytest.raises(PhotoEnhanceError, match="busy: export folder exists"):
        export_saved_model(model, tmp_path / "busy")
    with pytest.raises(PhotoEnhanceError, match="not a SavedModel folder"):
        load_saved_model_signature(tmp_path / "busy")
