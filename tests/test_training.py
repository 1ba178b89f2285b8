"""common/training.py: atomic checkpoints, exact resume through fit_steps, NaN guard, validation, precision."""
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import training
from common.errors import CheckpointError, TrainingDiverged


class ToyModel(keras.Model):
    """Smallest model with the hooks the callbacks use: a conv `enhance`, one optimizer, a Mean loss."""

    def __init__(self):
        super().__init__()
        self.net = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(3, 3, padding="same")])
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    def compile(self, optimizer):
        super().compile()
        self.opt = optimizer
        training.build_optimizers((optimizer, self.net))

    @property
    def metrics(self):
        return [self.loss_tracker]

    def enhance(self, x):
        return self.net(x)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self.net(x) - y))
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.opt.apply(grads, self.net.trainable_variables)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


def step_keyed(nan_at=None):
    """make_dataset(step): element k is the batch for step start+k; optionally NaN input at one step."""
    def make(start):
        def batch(k):
            x = tf.random.stateless_uniform([2, 16, 16, 3], seed=tf.stack([tf.constant(7, tf.int64), k]))
            if nan_at is not None:
                x = tf.where(tf.equal(k + 1, nan_at), x * np.nan, x)
            return x, x * 0.5
        return tf.data.Dataset.range(start, 1 << 40).map(batch)
    return make


def new_model():
    keras.utils.set_random_seed(3)
    model = ToyModel()
    model.compile(training.make_adam(1e-2))
    return model


class CrashAt(training.StepCallback):
    def __init__(self, step):
        super().__init__()
        self.crash_step = step

    def on_step_end(self, step, logs):
        if step == self.crash_step:
            raise KeyboardInterrupt


def run(run_dir, iterations, make=step_keyed(), steps_per_epoch=5, extra=(), checkpoint_every=3):
    model = new_model()
    ckpt = training.RunCheckpoint(run_dir / "ckpt", keep=2, net=model.net, opt=model.opt)
    start = ckpt.restore() or 0
    callbacks = [*extra, training.NaNGuard(), training.CheckpointCallback(ckpt, checkpoint_every),
                 training.HistoryLogger(run_dir, 1)]
    done = training.fit_steps(model, make, start_step=start, iterations=iterations,
                              steps_per_epoch=steps_per_epoch, callbacks=callbacks)
    return model, done, ckpt


def history(run_dir):
    return [json.loads(line) for line in (run_dir / training.HISTORY_FILE).read_text().splitlines()]


def test_checkpoint_round_trip_keep_and_errors(tmp_path):
    a = keras.Variable(np.arange(6, dtype="float32").reshape(2, 3))
    b = keras.Variable(np.int64(5))
    seed = keras.random.SeedGenerator(11)
    ckpt = training.RunCheckpoint(tmp_path, keep=2, weights=[a, b], rng=seed)
    assert ckpt.restore() is None
    saved_seed = seed.state.numpy().copy()
    for step in (10, 20, 30):
        ckpt.save(step)
    assert [p.name for p in ckpt.paths()] == ["ckpt-00000020.npz", "ckpt-00000030.npz"]
    a.assign(np.zeros((2, 3), "float32"))
    b.assign(0)
    keras.random.uniform([2], seed=seed)
    assert ckpt.restore() == 30
    np.testing.assert_array_equal(a.numpy(), np.arange(6).reshape(2, 3))
    assert int(b.numpy()) == 5
    np.testing.assert_array_equal(seed.state.numpy(), saved_seed)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    other = training.RunCheckpoint(tmp_path, weights=[keras.Variable(np.zeros((3, 2), "float32")), b], rng=seed)
    with pytest.raises(CheckpointError, match=r"shape \(2, 3\)"):
        other.restore()
    (tmp_path / "ckpt-00000030.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="ckpt-00000030.npz: unreadable"):
        ckpt.restore()
    (tmp_path / "ckpt-00000030.npz").unlink()
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.restore()


def test_resume_continues_exactly(tmp_path):
    full, done, _ = run(tmp_path / "full", 12)
    assert done == 12
    _, done, ckpt = run(tmp_path / "short", 7)
    assert done == 7 and ckpt.restore() == 7
    resumed, done, _ = run(tmp_path / "short", 12)
    assert done == 12
    for w_full, w_resumed in zip(full.net.weights, resumed.net.weights):
        np.testing.assert_allclose(w_full.numpy(), w_resumed.numpy(), atol=1e-6, rtol=0)


def test_crash_and_resume_gives_identical_weights_and_history(tmp_path):
    full, _, _ = run(tmp_path / "full", 12, checkpoint_every=5)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", 12, checkpoint_every=5, extra=[CrashAt(8)])
    assert max(r["step"] for r in history(tmp_path / "cut")) == 7
    resumed, done, ckpt = run(tmp_path / "cut", 12, checkpoint_every=5)
    assert done == 12
    for w_full, w_resumed in zip(full.net.weights, resumed.net.weights):
        np.testing.assert_allclose(w_full.numpy(), w_resumed.numpy(), atol=1e-6, rtol=0)
    full_log = {r["step"]: r["loss"] for r in history(tmp_path / "full")}
    cut_log = {r["step"]: r["loss"] for r in history(tmp_path / "cut")}
    assert sorted(cut_log) == list(range(1, 13))
    # resumed on an epoch boundary, so even the per-epoch running means are the same
    for step in range(1, 13):
        assert cut_log[step] == pytest.approx(full_log[step], abs=1e-6)


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"step 5: loss = nan"):
        run(tmp_path, 10, make=step_keyed(nan_at=5))
    ckpt = training.RunCheckpoint(tmp_path / "ckpt", net=new_model().net)
    assert ckpt.latest_path().name == "ckpt-00000003.npz"
    assert [p.name for p in ckpt.paths()] == ["ckpt-00000003.npz"]
    with np.load(ckpt.latest_path()) as data:
        assert all(np.isfinite(data[k]).all() for k in data.files if k != "manifest")
    assert max(r["step"] for r in history(tmp_path) if math.isfinite(r["loss"])) == 4


def test_validation_callback_metrics_history_and_best(tmp_path):
    x = tf.fill([3, 16, 16, 3], 0.5)
    y = tf.fill([3, 16, 16, 3], 0.25)
    val = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    saved = []
    cb = training.ValidationCallback(val, 4, run_dir=tmp_path, save_best=lambda: saved.append(cb.step),
                                     progress=False)
    model = new_model()
    model.net.layers[0].kernel.assign(np.zeros(model.net.layers[0].kernel.shape, "float32"))
    model.net.layers[0].bias.assign(np.full(3, 0.5, "float32"))
    model.compile(training.make_adam(0.0))
    training.fit_steps(model, step_keyed(), start_step=0, iterations=4, steps_per_epoch=4, callbacks=[cb])
    expected_psnr = 10 * math.log10(1 / 0.25 ** 2)
    assert cb.last["val_psnr"] == pytest.approx(expected_psnr, abs=1e-3)
    assert cb.last["val_ssim"] < 1.0
    assert saved == [4]
    entries = history(tmp_path)
    assert entries == [{"step": 4, "val_psnr": cb.last["val_psnr"], "val_ssim": cb.last["val_ssim"]}]
    assert json.loads((tmp_path / "best.json").read_text())["step"] == 4


def test_precision_and_optimizers():
    try:
        assert training.configure_precision("on") is True
        assert keras.mixed_precision.dtype_policy().name == "mixed_float16"
        assert isinstance(training.make_adam(1e-3, mixed=True), keras.optimizers.LossScaleOptimizer)
        assert training.configure_precision("auto") is bool(tf.config.list_physical_devices("GPU"))
        assert training.configure_precision("off") is False
        assert keras.mixed_precision.dtype_policy().name == "float32"
        with pytest.raises(ValueError, match="mixed-precision"):
            training.configure_precision("fast")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    opt = training.make_adam(5e-4)
    assert (float(opt.beta_1), float(opt.beta_2), float(opt.epsilon)) == (0.9, 0.999, 1e-8)
    with pytest.raises(ValueError, match="unknown strategy"):
        training.get_strategy("parameter_server")


def test_tensorboard_logger_writes_scalars_and_image_grids(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from common.training import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path / "tb", every_n_steps=2)
    assert logger.enabled
    for step in range(1, 5):
        logger.on_step_end(step, {"g_loss": float(step), "d_loss": 0.5})
    images = np.random.default_rng(0).random((3, 8, 6, 3)).astype("float32")
    logger.log_images(4, images, images, images, max_images=2)
    logger.on_train_end()
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"tensors": 0, "images": 0}).Reload()
    g_loss = [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors("g_loss")]
    assert g_loss == [(2, 2.0), (4, 4.0)]
    image_events = events.Tensors("val/input_output_target")
    assert [e.step for e in image_events] == [4]
    # width, height, then one encoded PNG per example: 2 examples, each input|output|target (3 x 6 px wide)
    assert tf.make_ndarray(image_events[0].tensor_proto)[:2].tolist() == [b"18", b"8"]
    assert len(tf.make_ndarray(image_events[0].tensor_proto)) == 4
