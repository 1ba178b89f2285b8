"""pix2pix command lines end to end on tiny offline demo runs: train (and resume), evaluate, export, enhance."""
import json
import subprocess
import sys

import numpy as np
import pytest

from common.cli import run_cli
from pix2pix import enhance as enhance_cli
from pix2pix import evaluate as evaluate_cli
from pix2pix import export as export_cli
from pix2pix import train as train_cli

TINY = ["--iterations", "2", "--eval-every", "2", "--image-size", "32", "--depth", "3", "--base-filters", "4",
        "--batch-size", "2", "--val-limit", "2", "--no-progress"]


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    return tmp_path_factory.mktemp("pix2pix_demo")


def _train(out, task, demo_root, *extra):
    return train_cli.main(["--task", task, "--demo", "--data-dir", str(demo_root / task), "--out", str(out),
                           *TINY, "--no-export", *extra])


@pytest.fixture(scope="module")
def tiny_runs(demo_root):
    """Each task's 2-step demo run, trained once for all the tests of this module."""
    runs = {}

    def get(task):
        if task not in runs:
            out = demo_root / f"run-{task}"
            runs[task] = (out, _train(out, task, demo_root))
        return runs[task]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("task", ["phone2dslr", "deblur", "ldr2hdr", "overexposure"])
def test_tiny_demo_run_per_task(tiny_runs, demo_root, task):
    run, summary = tiny_runs(task)
    assert summary["status"] == "finished" and summary["steps"] == 2
    assert np.isfinite(summary["final_validation"]["val_psnr"])
    for name in ("best_generator.keras", "last_generator.keras", "history.jsonl", "config.json"):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "latest.json").is_file()
    if task in ("phone2dslr", "deblur", "overexposure"):
        # the offline demo has no ImageNet VGG-19: its terms are switched off and that is recorded
        assert "disabled" in (summary["perceptual_loss"], summary["content_loss"])
        assert any("VGG-19" in note for note in summary["notes"])
    if task == "overexposure":  # seed 003's exposure histogram rows, and the exact inverse beats the input
        report = evaluate_cli.main(["--task", task, "--demo", "--demo-dir", str(demo_root / task), "--weights",
                                    str(run / "best_generator.keras"), "--out", str(run / "eval"), "--crop", "64",
                                    "--no-progress"])
        assert {"hist_luminance", "hist_contrast", "hist_saturation"} <= set(report["results"]["model"])
        assert report["results"]["baseline"]["psnr"] > report["results"]["input"]["psnr"]
    saved = json.loads((run / "summary.json").read_text())
    assert saved["task"] == task and saved["step_time_s"] is None or saved["step_time_s"] >= 0


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(tmp_path, demo_root, tiny_runs):
    import shutil

    import keras

    _train(tmp_path / "straight", "deblur", demo_root, "--iterations", "4")
    shutil.copytree(tiny_runs("deblur")[0], tmp_path / "resumed")  # interrupted after 2 of 4 steps
    summary = _train(tmp_path / "resumed", "deblur", demo_root, "--iterations", "4")
    assert summary["resumed_from"] == 2
    a = keras.models.load_model(tmp_path / "straight" / "last_generator.keras", compile=False)
    b = keras.models.load_model(tmp_path / "resumed" / "last_generator.keras", compile=False)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_evaluate_export_enhance(tmp_path, demo_root, tiny_runs):
    weights = tiny_runs("deblur")[0] / "best_generator.keras"
    report = evaluate_cli.main(["--task", "deblur", "--demo", "--demo-dir", str(demo_root / "deblur"),
                                "--weights", str(weights), "--out", str(tmp_path / "eval"), "--crop", "64",
                                "--contrast-stretch", "--no-progress"])
    results = report["results"]
    assert set(results) == {"model", "model + contrast stretch", "input", "baseline"}
    assert results["baseline"]["psnr"] > results["input"]["psnr"]  # Wiener beats the blur
    assert (tmp_path / "eval" / "metrics.md").read_text().count("|") > 10
    assert (tmp_path / "eval" / "examples.png").is_file()

    exported = tmp_path / "saved_model"
    export_cli.main(["--task", "deblur", "--weights", str(weights), "--out", str(exported)])
    image = np.random.default_rng(0).integers(0, 256, (1, 45, 67, 3), dtype=np.uint8)
    np.save(tmp_path / "image.npy", image)
    script = ("import sys, numpy as np, tensorflow as tf; m = tf.saved_model.load(sys.argv[1]); "
              "x = np.load(sys.argv[2]); y = m.signatures['serving_default'](images=tf.constant(x))['images']; "
              "np.save(sys.argv[3], y.numpy())")
    env = {"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", script, str(exported / "1"), str(tmp_path / "image.npy"),
                    str(tmp_path / "out.npy")], check=True, env=env)
    fresh = np.load(tmp_path / "out.npy")
    from pix2pix.gan import Pix2Pix
    from pix2pix.loading import load_generator

    expected = Pix2Pix.for_inference(load_generator(weights, "deblur"))(image.astype(np.float32) / 255.0).numpy()
    assert fresh.dtype == np.uint8 and fresh.shape == image.shape
    assert np.abs(fresh.astype(int) - np.round(np.clip(expected, 0, 1) * 255)).max() <= 1

    from common.images import write_image

    write_image(tmp_path / "photos" / "a.png", image[0])
    written = enhance_cli.main(["a", "--task", "deblur", "--saved-model", str(exported), str(tmp_path / "photos"),
                                "--output-dir", str(tmp_path / "enhanced"), "--no-progress"][1:])
    assert [p.name for p in written] == ["a.png"]


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(train_cli.main, ["--task", "deblur", "--data-dir", str(tmp_path / "nowhere"), "--out",
                                 str(tmp_path / "run")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nowhere" in err and err.count("\n") == 1


def test_malformed_hdr_scene_is_named(tmp_path, capsys):
    for i in range(4):
        (tmp_path / "data" / f"scene{i}").mkdir(parents=True)
    (tmp_path / "data" / "scene1" / "ev0.png").write_bytes(b"")
    with pytest.raises(SystemExit):
        run_cli(train_cli.main, ["--task", "ldr2hdr", "--data-dir", str(tmp_path / "data"), "--out",
                                 str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "scene" in err and "hdr.hdr" in err
