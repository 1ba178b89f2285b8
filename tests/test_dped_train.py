"""DPED training: DPEDGAN steps, loss weights without retracing, CLI resume, MirroredStrategy parity, demo."""
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import training
from common.cli import run_cli
from common.errors import VGGWeightsUnavailable
from common.vgg import build_vgg19_features
from conftest import write_tiny_dped
from dped import models, train
from dped.gan import LOSS_PRESETS, DPEDGAN

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--batch-size", "2", "--patch-size", "32", "--width", "8", "--blocks", "1", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_dped(tmp_path_factory):
    """A DPED-layout folder (iphone) with 8 random 40x40 training pairs and 2 32x32 test pairs."""
    root = tmp_path_factory.mktemp("dped_data")
    write_tiny_dped(root / "dped" / "iphone")
    return root

def tiny_gan(**kwargs):
    keras.utils.set_random_seed(5)
    vgg = build_vgg19_features(weights=None, same_pooling=True)
    gan = DPEDGAN(models.build_generator(width=8, num_blocks=1),
                  models.build_discriminator(patch_size=32, logits=True), vgg, from_logits=True, **kwargs)
    gan.compile(training.make_adam(5e-4), training.make_adam(5e-4))
    return gan


def tiny_batches():
    rng = np.random.default_rng(1)
    batch = lambda: tuple(tf.constant(rng.random((2, 32, 32, 3), dtype=np.float32)) for _ in range(2))  # noqa: E731
    return tf.data.Dataset.from_tensors((batch(), batch())).repeat()


def one_step_logs(gan):
    history = gan.fit(tiny_batches(), steps_per_epoch=1, verbose=0, shuffle=False).history
    return {k: v[0] for k, v in history.items()}


def test_one_step_updates_generator_and_discriminator():
    gan = tiny_gan()
    before_g = [w.numpy() for w in gan.generator.trainable_weights]
    before_d = [w.numpy() for w in gan.discriminator.trainable_weights]
    logs = gan.fit(tiny_batches(), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False).history
    assert all(np.abs(b - a.numpy()).max() > 0 for b, a in zip(before_g, gan.generator.trainable_weights))
    assert all(np.abs(b - a.numpy()).max() > 0 for b, a in zip(before_d, gan.discriminator.trainable_weights))
    assert int(gan.step.numpy()) == 1
    assert set(logs) == {"g_loss", "content", "color", "texture", "tv", "d_loss", "d_accuracy"}
    w = LOSS_PRESETS["code"]
    expected = sum(w[k] * logs[k][0] for k in ("content", "color", "texture", "tv"))
    assert logs["g_loss"][0] == pytest.approx(expected, rel=1e-5)
    assert logs["texture"][0] < 0 < logs["d_loss"][0]


def test_loss_weights_and_warmup_change_without_retracing():
    traces = []

    class Counting(DPEDGAN):
        def train_step(self, data):
            traces.append(1)
            return super().train_step(data)

    keras.utils.set_random_seed(5)
    gan = Counting(models.build_generator(width=8, num_blocks=1), models.build_discriminator(patch_size=32),
                   build_vgg19_features(weights=None, same_pooling=True), texture_warmup=1)
    gan.compile(training.make_adam(5e-4), training.make_adam(5e-4))
    first = one_step_logs(gan)
    assert first["g_loss"] == pytest.approx(10 * first["content"] + 0.5 * first["color"] + 2000 * first["tv"],
                                            rel=1e-5)  # texture warm-up: no texture term in step 1
    gan.set_loss_weights(content=0.0, color=0.0, texture=0.0, tv=1.0)
    second = one_step_logs(gan)
    assert second["g_loss"] == pytest.approx(second["tv"], rel=1e-6)
    gan.set_loss_weights(texture=2.0, tv=0.0)
    third = one_step_logs(gan)
    assert third["g_loss"] == pytest.approx(2 * third["texture"], rel=1e-5)
    assert len(traces) == 1


def test_missing_dataset_names_the_folders(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train.main, ["--phone", "sony", "--data-dir", str(tmp_path / "nowhere"), "--out",
                             str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nowhere" / "dped" / "sony" / "training_data" / "sony") in err
    assert str(tmp_path / "nowhere" / "dped" / "sony" / "training_data" / "canon") in err
    assert "--demo" in err and "Traceback" not in err


def test_bad_training_file_is_named_before_training(tmp_path, capsys):
    root = tmp_path / "data"
    write_tiny_dped(root / "dped" / "iphone")
    bad = root / "dped" / "iphone" / "training_data" / "iphone" / "3.jpg"
    bad.write_bytes(bad.read_bytes()[:-200])  # cut short: no end-of-image marker
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train.main, ["--data-dir", str(root), "--out", str(tmp_path / "run"), "--content-weight", "0",
                             *TINY])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad}: truncated JPEG" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_normal_run_stops_at_start_without_vgg_weights(tiny_dped, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(VGGWeightsUnavailable, match="missing.h5: VGG-19 weight file not found"):
        train.main(["--data-dir", str(tiny_dped), "--out", str(out), "--vgg-weights", str(tmp_path / "missing.h5"),
                    *TINY])
    assert not (out / "checkpoints").exists()


@pytest.mark.slow
def test_cli_crash_and_resume_equals_uninterrupted(tiny_dped, tmp_path, monkeypatch):
    def argv(out):
        return ["--data-dir", str(tiny_dped), "--out", str(out), "--iterations", "6", "--eval-every", "2",
                "--log-every", "1", "--content-weight", "0", *TINY]

    train.main(argv(tmp_path / "full"))

    original = training.NaNGuard.on_step_end

    def crash_at_3(self, step, logs):
        if step == 3:
            raise KeyboardInterrupt
        original(self, step, logs)

    monkeypatch.setattr(training.NaNGuard, "on_step_end", crash_at_3)
    with pytest.raises(KeyboardInterrupt):
        train.main(argv(tmp_path / "cut"))
    monkeypatch.setattr(training.NaNGuard, "on_step_end", original)
    summary = train.main(argv(tmp_path / "cut"))
    assert summary["resumed_from"] == 2 and summary["steps"] == 6

    with np.load(tmp_path / "full/checkpoints/ckpt-00000006.npz") as full, \
            np.load(tmp_path / "cut/checkpoints/ckpt-00000006.npz") as cut:
        names = json.loads(str(full["manifest"]))["names"]
        assert any(n.startswith("d_optimizer/") for n in names) and any(n.startswith("state/") for n in names)
        for key in full.files:
            if key != "manifest":
                np.testing.assert_allclose(cut[key], full[key], atol=1e-6, rtol=0)

    def history(out):
        return [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]

    full_h, cut_h = history(tmp_path / "full"), history(tmp_path / "cut")
    assert [r["step"] for r in cut_h] == [r["step"] for r in full_h]
    for a, b in zip(full_h, cut_h):
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6)


MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.config.experimental.enable_op_determinism()  # the same kernels whatever else runs on the machine
    import keras, numpy as np
    from common import training
    from common.vgg import build_vgg19_features
    from dped import models
    from dped.gan import DPEDGAN

    rng = np.random.default_rng(2)
    batch = lambda: tuple(tf.constant(rng.random((4, 32, 32, 3), dtype=np.float32)) for _ in range(2))
    data = (batch(), batch())

    vgg = build_vgg19_features(weights=None, same_pooling=True)

    def one_step(name):
        keras.utils.set_random_seed(5)
        strategy = training.get_strategy(name)
        with strategy.scope():
            gan = DPEDGAN(models.build_generator(width=8, num_blocks=1),
                          models.build_discriminator(patch_size=32, logits=True), vgg, from_logits=True, seed=3)
            # SGD, not Adam: Adam's first step is scale-invariant (it would hide a mean-vs-sum gradient
            # aggregation bug) and turns round-off in near-zero gradients into lr-sized differences.
            gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
        variables = gan.generator.weights + gan.discriminator.weights
        initial = [w.numpy() for w in variables]
        logs = gan.fit(tf.data.Dataset.from_tensors(data).repeat(), steps_per_epoch=1, verbose=0,
                       shuffle=False).history
        weights = [w.numpy() for w in variables]
        update = max(float(np.abs(a - b).max()) for a, b in zip(initial, weights))
        return strategy.num_replicas_in_sync, weights, {k: v[0] for k, v in logs.items()}, update

    n1, w1, l1, update = one_step("default")
    n2, w2, l2, _ = one_step("mirrored")
    print(json.dumps({"replicas": [n1, n2], "diff": max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)),
                      "update": update, "logs": [l1, l2]}))
""")


@pytest.mark.slow
def test_mirrored_two_cpus_matches_default_strategy(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["replicas"] == [1, 2]
    assert result["update"] > 1e-3 and result["diff"] < 1e-5
    single, mirrored = result["logs"]
    for key in ("g_loss", "content", "color", "texture", "tv", "d_loss"):
        assert mirrored[key] == pytest.approx(single[key], rel=1e-4), key


@pytest.mark.slow
def test_demo_end_to_end_without_vgg_weights(tmp_path, capsys):
    """The demo has no content term; asked for one without the VGG-19 weights, it says so and goes on."""
    out = tmp_path / "run"
    summary = train.main(["--demo", "--data-dir", str(tmp_path / "demo"), "--out", str(out), "--iterations", "2",
                          "--eval-every", "2", "--content-weight", "10", "--vgg-weights", str(tmp_path / "missing.h5"),
                          *TINY])
    printed = capsys.readouterr().out
    assert summary["steps"] == 2 and summary["content_loss"] == "disabled"
    assert "VGG-19 weights unavailable" in summary["notes"][0] and "content loss disabled" in printed
    saved = json.loads((out / "summary.json").read_text())
    assert saved["final_validation"]["step"] == 2 and np.isfinite(saved["final_validation"]["val_psnr"])
    assert (tmp_path / "demo" / "iphone" / "training_data" / "canon").is_dir()
    photo = tf.random.uniform([1, 40, 48, 3])
    last = models.load_generator(out / "last_generator.keras")
    best = models.load_generator(out / "best_generator.keras")
    reloaded = tf.saved_model.load(str(out / "saved_model")).signatures["float32"]
    out_saved = next(iter(reloaded(images=photo).values()))
    np.testing.assert_allclose(out_saved.numpy(), last(photo).numpy(), atol=1e-5)
    assert best(photo).shape == (1, 40, 48, 3)
