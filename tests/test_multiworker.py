"""Several machines and TPUs: TF_CONFIG is checked with one-line errors, two worker processes on 127.0.0.1
make one device's update with the same global batch, only the chief writes the run folder, and a killed
worker stops the other with a one-line error instead of a hang."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from common import cluster
from common.errors import PhotoEnhanceError
from dped import train

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--batch-size", "4", "--patch-size", "32", "--width", "8", "--blocks", "1", "--no-progress"]


@pytest.mark.parametrize("value, message", [
    (None, "needs $TF_CONFIG on every machine"),
    ("{not json", "is not a cluster description"),
    ('{"cluster": {"worker": ["a:1"]}}', "is not a cluster description (KeyError"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "must map job names to lists"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "does not train"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}', "task worker 2 is not"),
])
def test_bad_tf_config_is_one_clear_error(value, message):
    environ = {} if value is None else {"TF_CONFIG": value}
    with pytest.raises(cluster.ClusterError) as err:
        cluster.cluster_config(environ)
    assert message in str(err.value)


def test_multiworker_without_tf_config_is_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(PhotoEnhanceError, match=r"--strategy multiworker needs \$TF_CONFIG"):
        train.main(["--strategy", "multiworker", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


def test_tpu_without_a_tpu_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(PhotoEnhanceError, match="--strategy tpu: no TPU found"):
        train.main(["--strategy", "tpu", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")])


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster_envs(tmp_path, n=2):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(n)]
    base = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO),
            "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return [{**base, "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}
            for i in range(n)]


PARITY_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()
    from common import training
    strategy = training.get_strategy(sys.argv[1])  # before any other TensorFlow work
    import keras, numpy as np
    from common.vgg import build_vgg19_features
    from dped import models
    from dped.gan import DPEDGAN

    rng = np.random.default_rng(2)
    batch = lambda: tuple(tf.constant(rng.random((4, 32, 32, 3), dtype=np.float32)) for _ in range(2))
    data = (batch(), batch())
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    keras.utils.set_random_seed(5)
    with strategy.scope():
        vgg = build_vgg19_features(weights=None, same_pooling=True)
        gan = DPEDGAN(models.build_generator(width=8, num_blocks=1),
                      models.build_discriminator(patch_size=32, logits=True), vgg, from_logits=True, seed=3)
        # SGD, as in the mirrored test: Adam turns round-off in near-zero gradients into lr-sized steps.
        gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    variables = gan.generator.weights + gan.discriminator.weights
    initial = [w.numpy() for w in variables]
    logs = gan.fit(tf.data.Dataset.from_tensors(data).repeat().with_options(options), epochs=1, steps_per_epoch=2,
                   verbose=0, shuffle=False).history
    np.savez(sys.argv[2], *[w.numpy() for w in variables], *initial)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "logs": {k: float(np.ravel(v[-1])[0]) for k, v in logs.items()}}))
""")


@pytest.mark.slow
def test_two_workers_make_the_single_device_update(tmp_path):
    script = tmp_path / "parity.py"
    script.write_text(PARITY_SCRIPT)
    envs = _cluster_envs(tmp_path)
    workers = [subprocess.Popen([sys.executable, str(script), "multiworker", str(tmp_path / f"w{i}.npz")], cwd=REPO,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i, env in enumerate(envs)]
    single = subprocess.run([sys.executable, str(script), "default", str(tmp_path / "single.npz")], cwd=REPO,
                            env={**envs[0], "TF_CONFIG": ""}, capture_output=True, text=True, timeout=300)
    outs = [w.communicate(timeout=300) for w in workers]
    for w, (_, err) in zip(workers, outs):
        assert w.returncode == 0, err[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]
    results = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    one = json.loads(single.stdout.strip().splitlines()[-1])
    assert [r["replicas"] for r in results] == [2, 2] and one["replicas"] == 1
    ref = np.load(tmp_path / "single.npz")
    n = len(ref.files) // 2
    update = max(float(np.abs(ref[f"arr_{i}"] - ref[f"arr_{i + n}"]).max()) for i in range(n))
    assert update > 1e-3
    for i in range(2):
        got = np.load(tmp_path / f"w{i}.npz")
        diff = max(float(np.abs(got[f"arr_{k}"] - ref[f"arr_{k}"]).max()) for k in range(n))
        assert diff <= 1e-5, (i, diff)
        for key in ("g_loss", "color", "texture", "tv", "d_loss"):
            assert results[i]["logs"][key] == pytest.approx(one["logs"][key], rel=1e-4), key


def _train_workers(tmp_path, out, extra):
    envs = _cluster_envs(tmp_path)
    args = [sys.executable, "-m", "dped.train", "--strategy", "multiworker", "--demo", "--data-dir",
            str(tmp_path / "demo"), "--out", str(out), *TINY, *extra]
    return [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for env in envs]


@pytest.mark.slow
def test_only_the_chief_writes_and_a_killed_worker_stops_the_other(tmp_path):
    out = tmp_path / "run"
    workers = _train_workers(tmp_path, out, ["--iterations", "4", "--eval-every", "2"])
    outs = [w.communicate(timeout=400) for w in workers]
    for w, (_, err) in zip(workers, outs):
        assert w.returncode == 0, err[-3000:]
    assert "the chief alone writes" in outs[1][1] and "the chief alone writes" not in outs[0][1]
    assert {"checkpoints", "history.jsonl", "last_generator.keras", "best_generator.keras", "saved_model",
            "summary.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "run.lock").exists() and not list((tmp_path / "tmp").iterdir())  # worker folder removed
    records = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_psnr" in r] == [2, 4]  # one writer: no interleaved records

    long_run = tmp_path / "long"
    workers = _train_workers(tmp_path, long_run, ["--iterations", "100000", "--eval-every", "1000",
                                                  "--log-every", "1"])
    deadline = time.time() + 300
    while not (long_run / "history.jsonl").exists() and time.time() < deadline:
        time.sleep(0.5)
    workers[1].send_signal(signal.SIGKILL)
    killed_at = time.time()
    _, err = workers[0].communicate(timeout=180)
    assert workers[0].returncode == 2, err[-3000:]
    assert "a worker of the TF_CONFIG cluster stopped or cannot be reached" in err and "Traceback" not in err
    assert time.time() - killed_at < 120
