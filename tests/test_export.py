"""Export commands end to end: TF Serving layout reloaded in a fresh process, LiteRT quantisations and the
ai-challenge preset, ONNX, pix2pix's range wrapper, `--pretrained` from a seeded cache, the parity check
refusing a broken artifact, model cards, and one-line errors that leave nothing behind."""
import dataclasses
import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from common import export_cli
from common.cli import run_cli
from common.export import MOBILE_PRESETS, ExportError, parse_input_size
from common.images import write_image
from common.pretrained import PRETRAINED
from common.runtimes import load_artifact
from dped import export as dped_export
from dped.models import build_generator, load_generator, save_generator

RELOAD = """
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
x8 = np.load(sys.argv[2]); xf = np.load(sys.argv[3])
np.save(sys.argv[4], loaded.signatures["serving_default"](images=tf.constant(x8))["images"].numpy())
np.save(sys.argv[5], loaded.signatures["float32"](images=tf.constant(xf))["images"].numpy())
"""
ENV = {"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny DPED generator file whose output spans [0, 1] (weights larger than the init)."""
    keras.utils.set_random_seed(5)
    model = build_generator(width=8, num_blocks=1)
    model.set_weights([w * 4 if w.ndim == 4 else w for w in model.get_weights()])
    return save_generator(model, tmp_path_factory.mktemp("tiny") / "tiny.keras")


@pytest.fixture(scope="module")
def check_dir(tmp_path_factory):
    """Three small photos for the parity check and int8 calibration."""
    folder = tmp_path_factory.mktemp("check")
    rng = np.random.default_rng(0)
    for i in range(3):
        smooth = rng.random((6, 8, 3)).repeat(6, axis=0).repeat(6, axis=1)
        write_image(folder / f"{i}.png", smooth + 0.05 * rng.random(smooth.shape))
    return folder


def export(argv, check_dir):
    return dped_export.main([*argv, "--check-images", str(check_dir)])


def card_of(path):
    return json.loads((path / "model_card.json" if path.is_dir() else
                       path.with_name(path.stem + ".model_card.json")).read_text())


@pytest.mark.slow
def test_saved_model_in_tf_serving_layout_reloads_in_a_fresh_process(tiny, check_dir, tmp_path):
    root = tmp_path / "served"
    export(["--weights", str(tiny), "--out", str(root)], check_dir)
    export(["--weights", str(tiny), "--out", str(root)], check_dir)
    assert sorted(p.name for p in root.iterdir()) == ["1", "2"]  # each export adds a version
    card = card_of(root / "1")
    assert card["format"] == "saved_model" and card["parity"]["psnr_db_min"] >= 60
    rng = np.random.default_rng(0)
    x8 = rng.integers(0, 256, (2, 13, 21, 3), dtype=np.uint8)
    xf = rng.uniform(0, 1, (1, 17, 9, 3)).astype(np.float32)
    np.save(tmp_path / "x8.npy", x8)
    np.save(tmp_path / "xf.npy", xf)
    subprocess.run([sys.executable, "-c", RELOAD, str(root / "1"), *(str(tmp_path / n) for n in
                    ("x8.npy", "xf.npy", "y8.npy", "yf.npy"))], check=True, capture_output=True, env=ENV)
    y8, yf = np.load(tmp_path / "y8.npy"), np.load(tmp_path / "yf.npy")
    model = load_generator(tiny)
    ref8 = model(x8.astype(np.float32) / 255.0).numpy()
    assert y8.dtype == np.uint8 and y8.shape == x8.shape and len(np.unique(y8)) > 20
    assert np.abs(y8.astype(int) - np.round(np.clip(ref8, 0, 1) * 255).astype(int)).max() <= 1
    np.testing.assert_allclose(yf, model(xf).numpy(), atol=1e-5)


@pytest.mark.parametrize("quantize,min_db", [("none", 60), ("float16", 50), ("dynamic-int8", 35),
                                             ("int8", 25)])
def test_litert_quantisations_pass_their_parity_check(quantize, min_db, tiny, check_dir, tmp_path):
    out = tmp_path / f"{quantize}.tflite"
    extra = ["--calibration-dir", str(check_dir)] if quantize == "int8" else []
    export(["--weights", str(tiny), "--format", "litert", "--quantize", quantize, "--out", str(out), *extra],
           check_dir)
    card = card_of(out)
    assert card["quantize"] == quantize and card["parity"]["psnr_db_min"] >= min_db
    assert out.with_name(f"{quantize}.model_card.md").read_text().startswith(f"# Model card: {quantize}.tflite")
    x = np.random.default_rng(1).random((1, 20, 28, 3), dtype=np.float32)
    reference = load_generator(tiny)(x).numpy()
    assert export_cli.peak_psnr(load_artifact(out)(x), reference) >= min_db


def test_ai_challenge_preset_is_fixed_size_float_0_255(tiny, check_dir, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "phone.tflite"
    export(["--weights", str(tiny), "--mobile", "ai-challenge", "--input-size", "24x32", "--out", str(out)],
           check_dir)
    interpreter = Interpreter(str(out))
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(inp["shape"]) == [1, 24, 32, 3] and list(outp["shape"]) == [1, 24, 32, 3]
    assert inp["dtype"] == np.float32 and outp["dtype"] == np.float32
    x255 = np.random.default_rng(2).uniform(0, 255, (1, 24, 32, 3)).astype(np.float32)
    interpreter.set_tensor(inp["index"], x255)
    interpreter.invoke()
    y255 = interpreter.get_tensor(outp["index"])
    expected = load_generator(tiny)(x255 / 255.0).numpy() * 255.0
    np.testing.assert_allclose(y255, expected, atol=0.01)
    assert y255.mean() > 50  # 0-255 scale, not [0, 1]
    assert card_of(out)["input_convention"] == "[1,24,32,3] float32 0-255 in and out"
    assert MOBILE_PRESETS["ai-challenge"]["input_size"] == (1024, 1536)  # the default without --input-size


def test_onnx_export_matches_keras(tiny, check_dir, tmp_path):
    out = tmp_path / "model.onnx"
    export(["--weights", str(tiny), "--format", "onnx", "--out", str(out)], check_dir)
    x = np.random.default_rng(3).random((2, 15, 22, 3), dtype=np.float32)
    np.testing.assert_allclose(load_artifact(out)(x), load_generator(tiny)(x).numpy(), atol=2e-5)
    assert card_of(out)["parity"]["max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_pix2pix_export_maps_unit_range_like_the_gan(tmp_path, check_dir):
    from pix2pix import export as pix2pix_export
    from pix2pix import serving as pix2pix_serving
    from pix2pix.gan import Pix2Pix
    from pix2pix.models import build_unet

    generator = build_unet(depth=3, base_filters=4, seed=0)
    generator.save(tmp_path / "g.keras")
    out = tmp_path / "deblur.tflite"
    pix2pix_export.main(["--task", "deblur", "--weights", str(tmp_path / "g.keras"), "--format", "litert",
                         "--out", str(out), "--check-images", str(check_dir)])
    x = np.random.default_rng(4).random((1, 13, 19, 3), dtype=np.float32)  # not a multiple of 2^3
    expected = Pix2Pix.for_inference(generator)(x).numpy()
    np.testing.assert_allclose(load_artifact(out)(x), expected, atol=1e-4)
    folder = pix2pix_serving.export_generator(generator, tmp_path / "run" / "saved_model")
    np.testing.assert_allclose(load_artifact(folder)(x), expected, atol=1e-5)
    inputs = keras.Input((None, None, 3))  # a linear "HDR generator": values up to 5 must stay unclipped
    hdr = keras.Model(inputs, keras.layers.ReLU()(keras.layers.Rescaling(5.0)(inputs)))
    folder = pix2pix_serving.export_generator(hdr, tmp_path / "hdr", target_range="linear")
    expected = Pix2Pix.for_inference(hdr, "linear")(x).numpy()
    assert expected.max() > 4.0
    np.testing.assert_allclose(load_artifact(folder)(x), expected, atol=1e-5)


def test_pretrained_export_from_a_seeded_cache_offline(tmp_path, monkeypatch, dped_sample, check_dir):
    from dped.convert_original import load_original_checkpoint

    entry = PRETRAINED["pirm_resnet_8_32"]
    monkeypatch.setitem(PRETRAINED, "pirm_resnet_8_32", dataclasses.replace(entry, base_url="http://127.0.0.1:9/"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "models").mkdir(parents=True)
    for name, _ in entry.files():
        shutil.copy(dped_sample / "pretrained" / name, tmp_path / "keras" / "models" / name)
    out = tmp_path / "pirm.onnx"
    export(["--pretrained", "pirm_resnet_8_32", "--format", "onnx", "--out", str(out)], check_dir)
    card = card_of(out)
    assert "pirm_resnet_8_32" in card["source"] and "width 32, 2 residual blocks" in card["architecture"]
    x = np.random.default_rng(5).random((1, 30, 40, 3), dtype=np.float32)
    reference = load_original_checkpoint(dped_sample / "pretrained" / "dped_resnet_8_32")(x).numpy()
    np.testing.assert_allclose(load_artifact(out)(x), reference, atol=1e-4)


@pytest.mark.slow
def test_parity_check_refuses_a_broken_artifact_and_writes_nothing(tiny, check_dir, tmp_path, monkeypatch,
                                                                   capsys):
    write = export_cli._write_artifact

    def write_wrong_model(model, path, settings, calibration):  # a converter bug: other weights exported
        broken = keras.models.clone_model(model)
        broken.set_weights([w * 0.5 for w in model.get_weights()])
        return write(broken, path, settings, calibration)

    monkeypatch.setattr(export_cli, "_write_artifact", write_wrong_model)
    out = tmp_path / "out" / "model.tflite"
    argv = ["--weights", str(tiny), "--format", "litert", "--out", str(out), "--check-images", str(check_dir)]
    with pytest.raises(SystemExit) as exc:
        run_cli(dped_export.main, argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dB from the Keras model's" in err and "not written" in err
    assert list((tmp_path / "out").iterdir()) == []  # no artifact, no card, no staging folder
    run_cli(dped_export.main, argv + ["--no-check"])
    assert out.is_file() and card_of(out)["parity"] is None


@pytest.mark.parametrize("argv,message", [
    (["--format", "saved_model", "--quantize", "float16"], "applies to --format litert only"),
    (["--format", "litert", "--quantize", "int8"], "needs --calibration-dir"),
    (["--format", "saved_model", "--input-size", "32x32"], "SavedModels take any size"),
    (["--format", "onnx", "--mobile", "ai-challenge"], "LiteRT preset"),
    (["--format", "litert", "--input-size", "32by32"], "HxW"),
])
def test_inconsistent_settings_are_one_line_errors(argv, message, tiny, tmp_path, capsys):
    out = tmp_path / ("m.tflite" if "litert" in argv else "m")
    with pytest.raises(SystemExit) as exc:
        run_cli(dped_export.main, ["--weights", str(tiny), "--out", str(out), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_existing_files_are_never_overwritten(tiny, check_dir, tmp_path):
    taken = tmp_path / "taken.onnx"
    taken.write_bytes(b"user's file")
    with pytest.raises(ExportError, match="exists"):
        export(["--weights", str(tiny), "--format", "onnx", "--out", str(taken)], check_dir)
    assert taken.read_bytes() == b"user's file"
    with pytest.raises(ExportError, match="ending in .tflite"):
        export(["--weights", str(tiny), "--format", "litert", "--out", str(tmp_path / "m.onnx")], check_dir)
    assert parse_input_size("720x1280") == (720, 1280)
