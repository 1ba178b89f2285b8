"""Saved generators record their family and task; every loader refuses the wrong kind, naming the file;
old files without the record are recognised by their architecture."""
import subprocess
import sys

import keras
import numpy as np
import pytest

from common.errors import CheckpointError
from common.generators import identify, load_generator, save_generator
from common.layers import InstanceNormalization, legacy_norm_twin
from dped.models import build_generator
from dped.models import load_generator as dped_load
from pix2pix.loading import load_generator as load_for_task
from pix2pix.models import build_unet


@pytest.fixture(scope="module")
def models():
    return {"dped": build_generator(width=4, num_blocks=1),
            "unet": build_unet(depth=3, base_filters=4, max_filters=8),
            "hdr": build_unet(depth=3, base_filters=4, max_filters=8, output_activation="relu")}


def test_round_trip_records_family_and_task(models, tmp_path):
    x = np.random.default_rng(0).random((1, 16, 16, 3), dtype=np.float32)
    path = save_generator(models["dped"], tmp_path / "g.keras", family="dped")
    loaded = load_generator(path, family="dped")
    assert identify(loaded) == ("dped", None)
    np.testing.assert_allclose(loaded(x).numpy(), models["dped"](x).numpy(), atol=1e-6)
    path = save_generator(models["unet"], tmp_path / "u.keras", family="pix2pix", task="deblur")
    assert identify(load_generator(path, family="pix2pix", task="deblur")) == ("pix2pix", "deblur")
    assert [p.name for p in tmp_path.iterdir()] == ["g.keras", "u.keras"]  # no temporary files left


def test_wrong_family_or_task_is_refused_naming_the_file(models, tmp_path):
    dped = save_generator(models["dped"], tmp_path / "dped.keras", family="dped")
    with pytest.raises(CheckpointError, match=r"dped.keras: is a dped generator, not a pix2pix one"):
        load_generator(dped, family="pix2pix", task="deblur")
    deblur = save_generator(models["unet"], tmp_path / "deblur.keras", family="pix2pix", task="deblur")
    with pytest.raises(CheckpointError, match=r"deblur.keras: is a pix2pix generator, not a dped one"):
        load_generator(deblur, family="dped")
    with pytest.raises(CheckpointError, match=r"deblur.keras: is a pix2pix deblur generator, not a ldr2hdr one"):
        load_generator(deblur, family="pix2pix", task="ldr2hdr")
    with pytest.raises(CheckpointError, match="needs its task recorded"):
        save_generator(models["unet"], tmp_path / "x.keras", family="pix2pix")


def test_old_files_are_recognised_by_architecture(models, tmp_path):
    models["dped"].name, models["unet"].name, models["hdr"].name = "dped_generator", "unet_generator", "unet_generator"
    for key in models:
        models[key].save(tmp_path / f"{key}.keras")
    assert identify(load_generator(tmp_path / "dped.keras", family="dped")) == ("dped", None)
    assert identify(load_generator(tmp_path / "unet.keras", family="pix2pix", task="deblur")) == ("pix2pix", None)
    with pytest.raises(CheckpointError, match="unet.keras: is a pix2pix generator, not a dped one"):
        load_generator(tmp_path / "unet.keras", family="dped")
    with pytest.raises(CheckpointError, match=r"hdr.keras: is an HDR \(ReLU output\) generator and cannot serve"):
        load_for_task(tmp_path / "hdr.keras", "deblur")
    with pytest.raises(CheckpointError, match=r"unet.keras: is a \[0, 1\] \(tanh output\) generator"):
        load_for_task(tmp_path / "unet.keras", "ldr2hdr")


def test_pix2pix_enhance_refuses_a_dped_generator(models, tmp_path, capsys):
    from PIL import Image

    from common.cli import run_cli
    from pix2pix import enhance

    weights = save_generator(models["dped"], tmp_path / "dped.keras", family="dped")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(enhance.main, [str(tmp_path / "a.png"), "--task", "deblur", "--weights", str(weights),
                               "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "dped.keras: is a dped generator, not a pix2pix one" in err
    assert err.count("\n") == 1


def test_converted_authors_checkpoint_records_dped(dped_sample, tmp_path):
    from dped import convert_original

    out = tmp_path / "iphone.keras"
    convert_original.main(["--checkpoint", str(dped_sample / "pretrained" / "iphone_orig"), "--output", str(out)])
    with pytest.raises(CheckpointError, match="iphone.keras: is a dped generator"):
        load_generator(out, family="pix2pix", task="deblur")
    assert load_generator(out, family="dped").name == "photoenhance.dped"


def _plain_keras_output(path, x, tmp_path):
    """The output for `x` of the model file `path` loaded by `keras.saving.load_model` in a fresh process that
    never imports this project (asserted there)."""
    np.save(tmp_path / "x.npy", x)
    script = ("import sys, numpy as np, keras; m = keras.saving.load_model(sys.argv[1]); "
              "assert not [k for k in sys.modules if k.split('.')[0] in ('common', 'dped', 'pix2pix')]; "
              "np.save(sys.argv[3], m(np.load(sys.argv[2])).numpy())")
    proc = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"),
                           str(tmp_path / "y.npy")], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.load(tmp_path / "y.npy")


def test_dped_generator_loads_with_plain_keras_in_a_fresh_process(models, tmp_path):
    """A saved DPED generator holds only Keras' own layers: `keras.saving.load_model` reads it in a process
    that never imports this project."""
    x = np.random.default_rng(3).random((1, 12, 20, 3), dtype=np.float32)
    path = save_generator(models["dped"], tmp_path / "g.keras", family="dped")
    np.testing.assert_allclose(_plain_keras_output(path, x, tmp_path), models["dped"](x).numpy(), atol=1e-6)


def test_files_saved_with_the_legacy_instance_norm_still_load(tmp_path):
    """Generators written before the networks used Keras' built-in norm hold `InstanceNormalization`: their
    `.weights.h5` (keyed by layer class) and `.keras` files load and compute the same photo."""
    model = build_generator(width=4, num_blocks=1)
    legacy = keras.models.clone_model(model, clone_function=legacy_norm_twin)
    rng = np.random.default_rng(4)
    for weight in legacy.weights:
        weight.assign(rng.normal(0.0, 0.1, weight.shape).astype("float32"))
    legacy.save_weights(tmp_path / "old.weights.h5")
    legacy.save(tmp_path / "old.keras")
    x = rng.random((1, 16, 16, 3), dtype=np.float32)
    from_weights = dped_load(tmp_path / "old.weights.h5", width=4, num_blocks=1)
    np.testing.assert_allclose(from_weights(x).numpy(), legacy(x).numpy(), atol=1e-5)
    assert not any(isinstance(layer, InstanceNormalization) for layer in from_weights.layers)
    np.testing.assert_allclose(dped_load(tmp_path / "old.keras")(x).numpy(), legacy(x).numpy(), atol=1e-6)


def test_pix2pix_generator_saved_by_training_loads_with_plain_keras(tmp_path):
    """Training saves the U-Net between its pad and crop (Keras layers only): plain Keras loads it in a fresh
    process for sizes that are multiples of 2**depth, and the project's loader restores any size exactly."""
    from types import SimpleNamespace

    from pix2pix.recipe import Pix2PixRecipe

    model = build_unet(depth=3, base_filters=4, max_filters=8, norm="instance", spectral_norm=True, residual=True,
                       noise_injection=True, seed=0)  # the overexposure preset's layers, and more
    rng = np.random.default_rng(5)
    for weight in model.weights:
        weight.assign(rng.normal(0.0, 0.2, weight.shape).astype("float32"))
    path = tmp_path / "best_generator.keras"
    Pix2PixRecipe().save_generator(model, SimpleNamespace(task="deblur"), path)
    x = rng.random((1, 16, 24, 3), dtype=np.float32)
    np.testing.assert_allclose(_plain_keras_output(path, x, tmp_path), model(x).numpy(), atol=1e-5)
    loaded = load_for_task(path, "deblur")
    assert identify(loaded) == ("pix2pix", "deblur")
    odd = rng.random((2, 13, 21, 3), dtype=np.float32)
    np.testing.assert_allclose(loaded(odd).numpy(), model(odd).numpy(), atol=1e-5)
