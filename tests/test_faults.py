"""Training runs that keep their word: SIGKILL at any moment then the same command gives the uninterrupted
run's weights, history and best model; one process per run folder; resume rules; NaN recovery; no leaks;
every flag acts or is refused."""
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from common.cli import run_cli
from conftest import write_tiny_dped
from dped import train as dped_train
from pix2pix import train as pix2pix_train

REPO = pathlib.Path(__file__).resolve().parents[1]
RUNNER = REPO / "tests" / "fault_runner.py"
TINY = ["--batch-size", "2", "--patch-size", "32", "--width", "8", "--blocks", "1", "--no-progress",
        "--content-weight", "0", "--iterations", "8", "--eval-every", "4", "--checkpoint-every", "2",
        "--log-every", "1"]
ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A DPED-layout folder with 8 random 40x40 training pairs and 3 32x32 test pairs."""
    root = tmp_path_factory.mktemp("fault_data")
    write_tiny_dped(root / "iphone", n_test=3)
    return root

def launch(out, data_dir, moment="none", step=0, extra=()):
    argv = [sys.executable, str(RUNNER), moment, str(step), "--", "--data-dir", str(data_dir), "--out", str(out),
            *TINY, *extra]
    return subprocess.Popen(argv, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(out, data_dir, moment="none", step=0, extra=()):
    proc = launch(out, data_dir, moment, step, extra)
    stdout, stderr = proc.communicate(timeout=600)
    return proc.returncode, stdout + stderr


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("reference") / "run"
    code, log = run(out, data_dir)
    assert code == 0, log
    return out


def arrays(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files if k != "manifest"}


def keras_weights(path):
    import keras

    import common.layers  # noqa: F401  (the custom layer)

    return [w.numpy() for w in keras.models.load_model(path, compile=False).weights]


def assert_same_run(out, reference):
    """Byte-equal final state, the same history records and the same best model (step and weights)."""
    final = "checkpoints/ckpt-00000008.npz"
    got, want = arrays(out / final), arrays(reference / final)
    assert got.keys() == want.keys()
    for key in want:
        assert np.array_equal(got[key], want[key]), key
    history = lambda run: (run / "history.jsonl").read_text().splitlines()  # noqa: E731
    assert history(out) == history(reference)
    assert json.loads((out / "best.json").read_text()) == json.loads((reference / "best.json").read_text())
    for name in ("best_generator.keras", "last_generator.keras"):
        for a, b in zip(keras_weights(out / name), keras_weights(reference / name)):
            assert np.array_equal(a, b), name
    assert (out / "saved_model" / "saved_model.pb").is_file()
    leftovers = [p.name for p in [*out.iterdir(), *(out / "checkpoints").iterdir()] if ".tmp" in p.name]
    assert leftovers == [] and not (out / "run.lock").exists()


@pytest.mark.slow
@pytest.mark.parametrize("moment,step", [("step", 3), ("checkpoint", 6), ("history", 5), ("validation", 4),
                                         ("best", 4), ("export", 1)])
def test_kill_at_each_moment_then_the_same_command_finishes_exactly(tmp_path, data_dir, reference, moment, step):
    out = tmp_path / "run"
    code, log = run(out, data_dir, moment, step)
    assert code == -signal.SIGKILL, log
    code, log = run(out, data_dir)
    assert code == 0, log
    assert_same_run(out, reference)


@pytest.mark.slow
def test_kills_at_random_moments(tmp_path, data_dir, reference):
    out = tmp_path / "run"
    rng = random.Random(7)
    for _ in range(3):
        proc = launch(out, data_dir)
        time.sleep(rng.uniform(6.0, 14.0))
        proc.kill()
        proc.communicate()
    code, log = run(out, data_dir)
    assert code == 0, log
    assert_same_run(out, reference)


@pytest.mark.slow
def test_a_second_process_on_the_same_folder_is_refused(tmp_path, data_dir):
    out = tmp_path / "run"
    first = launch(out, data_dir, extra=["--iterations", "100000", "--eval-every", "100000"])
    try:
        deadline = time.time() + 120
        while not (out / "run.lock").exists() and time.time() < deadline:
            time.sleep(0.2)
        code, log = run(out, data_dir)
        assert code == 2
        assert f"is in use by process {first.pid}" in log and "Traceback" not in log
    finally:
        first.kill()
        first.communicate()


def test_a_stale_lock_is_taken_over(tmp_path, data_dir, capsys):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.lock").write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "started": "x"}))
    summary = dped_train.main(["--data-dir", str(data_dir), "--out", str(out), *TINY, "--iterations", "1",
                               "--no-export"])
    assert summary["steps"] == 1
    assert f"taking over the lock of process {gone.pid}" in capsys.readouterr().err
    assert not (out / "run.lock").exists()


def test_resume_rules_changed_lr_acts_changed_batch_refuses(tmp_path, data_dir, capsys):
    out = tmp_path / "run"
    base = ["--data-dir", str(data_dir), "--out", str(out), *TINY, "--no-export"]
    dped_train.main([*base, "--iterations", "2"])
    with pytest.raises(SystemExit) as refused:
        run_cli(dped_train.main, [*base, "--iterations", "4", "--batch-size", "4", "--width", "16"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "--batch-size: 2 in the run, 4 now" in err and "--width: 8 in the run, 16 now" in err
    dped_train.main([*base, "--iterations", "4", "--lr", "1e-5"])
    config = json.loads((out / "config.json").read_text())
    assert config["resumes"] == [{"step": 2, "changes": {"iterations": [2, 4], "lr": [0.0005, 1e-05]}}]
    assert config["lr"] == 1e-5
    events = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert {"step": 2, "event": "resume", "changes": {"iterations": [2, 4], "lr": [0.0005, 1e-05]}} in events
    saved = {k: v for k, v in arrays(out / "checkpoints/ckpt-00000004.npz").items()}
    with np.load(out / "checkpoints/ckpt-00000004.npz") as data:
        names = json.loads(str(data["manifest"]))["names"]
    rates = [saved[f"v{i:05d}"] for i, n in enumerate(names) if n.endswith("learning_rate")]
    assert len(rates) == 2 and all(float(r) == pytest.approx(1e-5) for r in rates)


@pytest.mark.slow
def test_nan_recovery(tmp_path, data_dir):
    out = tmp_path / "run"
    code, log = run(out, data_dir, extra=["--lr", "1e30", "--checkpoint-every", "1", "--no-export"])
    assert code == 3 and "training diverged at step" in log and "Traceback" not in log
    code, log = run(out, data_dir, extra=["--lr", "1e-4", "--checkpoint-every", "1", "--no-export"])
    assert code == 0, log
    records = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    losses = [r["g_loss"] for r in records if "g_loss" in r]
    assert len(losses) == 8 and np.all(np.isfinite(losses))


def test_a_folder_without_a_split_is_refused(tmp_path, data_dir, capsys):
    flat = data_dir / "iphone" / "test_data" / "patches"  # holds only iphone/ and canon/
    for main, task in ((dped_train.main, []), (pix2pix_train.main, ["--task", "phone2dslr"])):
        with pytest.raises(SystemExit) as refused:
            run_cli(main, [*task, "--data-dir", str(flat), "--out", str(tmp_path / "run"), "--no-progress"])
        assert refused.value.code == 2
        assert "no train/test split" in capsys.readouterr().err


@pytest.mark.parametrize("flags,message", [
    (["--keep-checkpoints", "0"], "--keep-checkpoints must be at least 1"),
    (["--val-limit", "-3"], "--val-limit must be at least 1"),
    (["--tfds-data-dir", "x"], "--tfds-data-dir applies to --tfds runs only"),
    (["--texture-warmup", "9"], "--texture-warmup 9 must be in 0..7"),
    (["--vgg-weights", "w.h5"], "--vgg-weights has no effect"),
])
def test_dped_flags_that_would_be_ignored_are_refused(tmp_path, data_dir, capsys, flags, message):
    with pytest.raises(SystemExit) as refused:
        run_cli(dped_train.main, ["--data-dir", str(data_dir), "--out", str(tmp_path / "run"), *TINY, *flags])
    assert refused.value.code == 2
    assert message in capsys.readouterr().err


def test_iterations_below_the_checkpointed_step_are_refused(tmp_path, data_dir, capsys):
    base = ["--data-dir", str(data_dir), "--out", str(tmp_path / "run"), *TINY, "--no-export"]
    dped_train.main([*base, "--iterations", "2"])
    with pytest.raises(SystemExit) as refused:
        run_cli(dped_train.main, [*base, "--iterations", "1"])
    assert refused.value.code == 2
    assert "already holds step 2; --iterations 1 would not train" in capsys.readouterr().err


@pytest.mark.parametrize("task,flags,message", [
    ("deblur", ["--tau", "0.7"], "--tau does not apply to task deblur"),
    ("ldr2hdr", ["--phone", "sony"], "--phone does not apply to task ldr2hdr"),
    ("phone2dslr", ["--val-crop", "32"], "--val-crop does not apply to task phone2dslr"),
    ("deblur", ["--demo-photos", "2"], "--demo-photos applies to --demo runs only"),
])
def test_pix2pix_flags_a_task_does_not_read_are_refused(tmp_path, capsys, task, flags, message):
    with pytest.raises(SystemExit) as refused:
        run_cli(pix2pix_train.main, ["--task", task, "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"),
                                     *flags])
    assert refused.value.code == 2
    assert message in capsys.readouterr().err
