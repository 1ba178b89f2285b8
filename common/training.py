"""Training machinery shared by the DPED and pix2pix GANs (Keras 3 + tf.distribute).

What a GAN trainer gets from here, in the order it uses it:

- `get_strategy(name)`: "default" (one device), "mirrored" (all local GPUs / logical devices),
  "multiworker" (the machines of `$TF_CONFIG`) or "tpu" (`common.cluster`). Create it before any other
  TensorFlow work; build the models, optimizers, metrics and the GAN itself inside `strategy.scope()`.
- `configure_precision(mode)`: "auto" (mixed float16 when a GPU is present), "on"/True, "off"/False. Call
  it before building any model; returns whether mixed precision is on.
- `make_adam(lr, ..., mixed=...)`: Adam, wrapped in `keras.optimizers.LossScaleOptimizer` when mixed.
  In `train_step` use `loss = opt.scale_loss(loss)` before the gradient and `opt.apply(grads, vars)`.
- `build_optimizers((opt, model), ...)`: creates each optimizer's slots on its model's trainable variables
  before `fit`, so checkpoints can be restored into them and MirroredStrategy creates them in scope.
- `global_batch_size(local_batch)`: the per-step global batch inside `train_step` (local batch times the
  replicas), to divide losses by with `common.losses.global_mean` / `tf.nn.compute_average_loss`.
- `RunCheckpoint(directory, keep=3, **groups)`: atomic, resumable checkpoints of named groups of variables
  (models, optimizers with their state, `keras.random.SeedGenerator`s, loose variables such as loss
  weights and step counters). `save(step)` writes `ckpt-<step>.npz` through a temporary file and
  `os.replace`, then moves the `latest.json` pointer the same way, so a crash mid-write leaves the last good
  checkpoint intact. `restore()` returns the restored step (None when there is none) and raises
  `CheckpointError` for an unreadable or mismatched checkpoint.
- Callbacks, all subclasses of `StepCallback`, which counts the global step (starting at the restored
  step) so they work unchanged across resumes and over the several `fit` calls of `fit_steps`:
  `NaNGuard`, `CheckpointCallback`, `HistoryLogger` (RUN_DIR/history.jsonl), `TensorBoardLogger`,
  `ValidationCallback` (PSNR/SSIM with a tqdm bar, best generator), `ProgressBar` (tqdm over all steps).
  Put `NaNGuard` first; `CheckpointCallback` also refuses to save non-finite state on its own.
- `fit_steps(model, make_dataset, start_step=, iterations=, steps_per_epoch=, callbacks=)`: drives
  `model.fit` so that step `start_step` .. `iterations` run exactly once, with epochs aligned on multiples of
  `steps_per_epoch` (so a resumed run logs and validates at the same steps as an uninterrupted one).
  `make_dataset(step)` must return an infinite dataset whose first element is the batch for `step`.
  Raises `TrainingDiverged` when the `NaNGuard` stopped training.

Model hooks the callbacks use: `ValidationCallback` calls `model.enhance(x)` (the generator mapping of a
[0, 1] input batch to a [0, 1] output batch) on each validation pair `(x, target)`.
"""
import importlib.util
import json
import math
import pathlib
import re
import statistics
import time
import warnings
import zipfile

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from common import cluster, metrics
from common.atomic_files import atomic_output
from common.errors import CheckpointError, TrainingDiverged

HISTORY_FILE = "history.jsonl"
BEST_FILE = "best.json"
BEST_GENERATOR = "best_generator.keras"
LAST_GENERATOR = "last_generator.keras"


# ----------------------------------------------------------------------------------------------------------
# Strategy, precision, optimizers
# ----------------------------------------------------------------------------------------------------------
def _mirrored():
    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


STRATEGIES = {"default": tf.distribute.get_strategy, "mirrored": _mirrored,
              "multiworker": cluster.multiworker_strategy, "tpu": cluster.tpu_strategy}
"""Distribution strategies by name: one device; every local GPU (the logical CPU devices without one); the
machines of `$TF_CONFIG`; a TPU (`common.cluster`)."""


def get_strategy(name="default"):
    """The tf.distribute strategy called `name` in `STRATEGIES`."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()


class PrebuiltGAN(keras.Model):
    """Base of the project's GANs, which build every network, optimizer and metric before `fit`.

    `fit` therefore skips Keras' symbolic build, which infers shapes from a first batch reduced across the
    replicas and fails under MultiWorkerMirroredStrategy (keras-team/keras#20585). Without a strategy scope
    Keras skips it too, so one device, mirrored and multi-worker runs all train the same built model.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        return None

    @staticmethod
    def step_logs(trackers):
        """`train_step`'s return value: each tracker's result; shape [1] on a cluster of several workers,
        where Keras reduces the logs along axis 0 and a scalar fails (the same Keras issue)."""
        logs = {name: tracker.result() for name, tracker in trackers.items()}
        if cluster.worker_count(tf.distribute.get_strategy()) > 1:
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs


def configure_precision(mode="auto"):
    """Set the global Keras dtype policy and return True when mixed precision (float16 compute) is on.

    "auto" turns it on only when a GPU is visible (it slows CPUs down); models must keep float32 outputs.
    """
    if isinstance(mode, str):
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"unknown mixed-precision mode {mode!r}: use auto, on or off")
        mixed = bool(tf.config.list_physical_devices("GPU")) if mode == "auto" else mode == "on"
    else:
        mixed = bool(mode)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    return mixed


def make_adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8, mixed=False, name=None):
    """Adam with the given settings; wrapped in a dynamic LossScaleOptimizer when `mixed`."""
    opt = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name)
    return keras.optimizers.LossScaleOptimizer(opt) if mixed else opt


def mixed_precision_on():
    """Whether `configure_precision` turned mixed float16 on."""
    return keras.mixed_precision.dtype_policy().name == "mixed_float16"


def set_learning_rate(optimizers, learning_rate):
    """Set the learning rate of each optimizer (also through a LossScaleOptimizer) in place."""
    for optimizer in optimizers:
        optimizer.learning_rate.assign(float(learning_rate))


def build_optimizers(*pairs):
    """Build each `(optimizer, model)` pair's slot variables on the model's trainable variables."""
    for optimizer, model in pairs:
        optimizer.build(model.trainable_variables)


def global_batch_size(local_batch):
    """Global batch (int64) of the current step inside `train_step`: the replica's batch times the replicas."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return tf.cast(local_batch, tf.int64) * replicas


def replica_slice(values, local_batch):
    """This replica's contiguous share of a tensor drawn for the whole global batch.

    Random numbers drawn for the global batch and sliced per replica make MirroredStrategy match one
    device exactly (the distributed dataset gives replica r the r-th contiguous part of each batch).
    """
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    start = tf.cast(replica, tf.int32) * local_batch
    return values[start:start + local_batch]


# ----------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------
def _variables_of(obj):
    """The variables of a model, optimizer, SeedGenerator, variable or (nested) list of them, in order."""
    if isinstance(obj, (list, tuple)):
        return [v for item in obj for v in _variables_of(item)]
    if isinstance(obj, keras.random.SeedGenerator):
        return [obj.state]
    if isinstance(obj, (keras.Variable, tf.Variable)):
        return [obj]
    if hasattr(obj, "variables"):
        return list(obj.variables)
    raise TypeError(f"cannot checkpoint {type(obj).__name__}: pass a model, optimizer, seed generator or variables")


def _variable_value(v):
    return np.asarray(v.numpy() if hasattr(v, "numpy") else keras.ops.convert_to_numpy(v))


def _atomic_write(path, write):
    """Call `write(file_object)` on a temporary file beside `path`, fsync it and rename it over `path`."""
    with atomic_output(path, fsync=True) as tmp, open(tmp, "wb") as handle:
        write(handle)


def read_json(path):
    return json.loads(pathlib.Path(path).read_text())


def checkpoint_step(directory):
    """The step of the latest checkpoint in `directory` (its latest.json), 0 when there is none."""
    pointer = pathlib.Path(directory) / "latest.json"
    try:
        return int(read_json(pointer)["step"]) if pointer.exists() else 0
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{pointer}: unreadable checkpoint pointer ({exc})") from None


class RunCheckpoint:
    """Atomic, resumable checkpoints of named variable groups in `directory`.

    Example: `RunCheckpoint(run_dir / "checkpoints", keep=3, generator=g, discriminator=d,
    g_optimizer=g_opt, d_optimizer=d_opt, state=[gan.step, *gan.loss_weights.values()])`.
    Each group's variables are read at save/restore time, so optimizers must be built first
    (`build_optimizers`). The newest `keep` checkpoints are kept.
    """

    _NAME = re.compile(r"ckpt-(\d+)\.npz$")

    def __init__(self, directory, keep=3, **groups):
        if not groups:
            raise ValueError("RunCheckpoint needs at least one named group of variables")
        self.directory = pathlib.Path(directory)
        self.keep = max(1, int(keep))
        self.groups = groups

    @property
    def pointer(self):
        return self.directory / "latest.json"

    def _flat(self):
        out = []
        for group, obj in self.groups.items():
            for i, v in enumerate(_variables_of(obj)):
                out.append((f"{group}/{i}:{getattr(v, 'path', None) or getattr(v, 'name', '')}", v))
        return out

    def paths(self):
        """Existing checkpoint files, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := self._NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest_path(self):
        """The checkpoint `latest.json` points at, or None when this directory holds none."""
        if not self.pointer.exists():
            return None
        try:
            info = json.loads(self.pointer.read_text())
            path = self.directory / info["file"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{self.pointer}: unreadable checkpoint pointer ({exc})") from None
        if not path.exists():
            raise CheckpointError(f"{self.pointer}: points at {path.name}, which does not exist")
        return path

    def save(self, step):
        """Write the checkpoint for `step` (completed training steps) and return its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        flat = self._flat()
        arrays = {f"v{i:05d}": _variable_value(v) for i, (_, v) in enumerate(flat)}
        manifest = {"step": int(step), "names": [n for n, _ in flat],
                    "shapes": [list(a.shape) for a in arrays.values()]}
        arrays["manifest"] = np.array(json.dumps(manifest))
        path = self.directory / f"ckpt-{int(step):08d}.npz"
        _atomic_write(path, lambda f: np.savez(f, **arrays))
        _atomic_write(self.pointer, lambda f: f.write(json.dumps({"step": int(step), "file": path.name}).encode()))
        for old in self.paths()[:-self.keep]:
            if old != path:
                old.unlink()
        return path

    def discard_from(self, step):
        """Delete the checkpoints of `step` and later (their weights made training diverge) and point
        `latest.json` at the newest one left; returns that one's step, or None when none is left."""
        kept = []
        for path in self.paths():
            if int(self._NAME.match(path.name).group(1)) >= step:
                path.unlink()
            else:
                kept.append(path)
        if not kept:
            self.pointer.unlink(missing_ok=True)
            return None
        last = int(self._NAME.match(kept[-1].name).group(1))
        _atomic_write(self.pointer, lambda f: f.write(json.dumps({"step": last, "file": kept[-1].name}).encode()))
        return last

    def restore(self, path=None):
        """Load `path` (default: the latest checkpoint) into the variables; return its step, or None if
        there is no checkpoint. Raises `CheckpointError` when the file is unreadable or does not match."""
        path = pathlib.Path(path) if path else self.latest_path()
        if path is None:
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                manifest = json.loads(str(data["manifest"]))
                arrays = [data[f"v{i:05d}"] for i in range(len(manifest["names"]))]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise CheckpointError(f"{path}: unreadable or incomplete checkpoint ({exc})") from None
        flat = self._flat()
        if len(flat) != len(arrays):
            raise CheckpointError(
                f"{path}: holds {len(arrays)} variables but this model has {len(flat)}; it was written by a "
                "different model configuration (use another output folder or the same settings)")
        for (name, var), saved_name, value in zip(flat, manifest["names"], arrays):
            if tuple(var.shape) != value.shape:
                raise CheckpointError(
                    f"{path}: variable {saved_name} has shape {value.shape} but this model's {name} has "
                    f"{tuple(var.shape)}; the checkpoint belongs to a different model configuration")
        for (_, var), value in zip(flat, arrays):
            var.assign(value)
        return int(manifest["step"])


# ----------------------------------------------------------------------------------------------------------
# Callbacks
# ----------------------------------------------------------------------------------------------------------
def _scalars(logs):
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(np.asarray(value))
        except (TypeError, ValueError):
            continue
    return out


def read_history(path):
    """The records of a history.jsonl file; a line cut short by a killed process is left out."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def append_jsonl(path, record):
    """Append one JSON object as a line to `path`."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


class StepCallback(keras.callbacks.Callback):
    """A callback that knows the global training step: `self.step` is the number of completed steps.

    `fit_steps` calls `start(start_step, total_steps)` once before training; each finished batch adds one.
    """

    def __init__(self):
        super().__init__()
        self.step = 0
        self.total_steps = None

    def start(self, start_step, total_steps):
        self.step = int(start_step)
        self.total_steps = int(total_steps)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.on_step_end(self.step, _scalars(logs))

    def on_step_end(self, step, logs):
        """Called after each training step with the global step and the logs as floats."""


class NaNGuard(StepCallback):
    """Stop training at the first non-finite logged loss; `fit_steps` then raises `TrainingDiverged`.

    The loss of step k is the first evaluation of the weights saved at step k - 1, so with a `checkpoint`
    the guard also deletes the checkpoints of steps k - 1 and later: resuming (with a lower learning rate)
    then starts from weights that still gave finite losses, or from scratch when none is left.
    """

    def __init__(self, checkpoint=None):
        super().__init__()
        self.checkpoint = checkpoint
        self.error = None

    def start(self, start_step, total_steps):
        super().start(start_step, total_steps)
        self.error = None

    def on_step_end(self, step, logs):
        bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
        if bad and self.error is None:
            name, value = next(iter(bad.items()))
            kept = "the last good checkpoint is kept"
            if self.checkpoint is not None:
                last = self.checkpoint.discard_from(step - 1)
                kept = (f"checkpoints from step {step - 1} on were deleted (their weights give it); the run resumes "
                        f"from step {last}" if last is not None else "no earlier checkpoint is left, so the run "
                        "restarts from step 0")
            self.error = TrainingDiverged(
                f"training diverged at step {step}: {name} = {value}; the state of that step was not saved, "
                f"{kept} (lower the learning rate or loss weights and run the command again)")
            self.error.step = step
            self.model.stop_training = True


class CheckpointCallback(StepCallback):
    """Save `checkpoint` every `every_n_steps` steps and at the end of training, only while logs are finite."""

    def __init__(self, checkpoint, every_n_steps):
        super().__init__()
        self.checkpoint = checkpoint
        self.every_n_steps = max(1, int(every_n_steps))
        self._healthy = True
        self._saved_step = None

    def on_step_end(self, step, logs):
        self._healthy = self._healthy and all(math.isfinite(v) for v in logs.values())
        if self._healthy and step % self.every_n_steps == 0:
            self._save(step)

    def on_train_end(self, logs=None):
        if self._healthy and self._saved_step != self.step:
            self._save(self.step)

    def _save(self, step):
        self.checkpoint.save(step)
        self._saved_step = step


class HistoryLogger(StepCallback):
    """Append `{"step": N, <every loss/metric>}` to RUN_DIR/history.jsonl every `every_n_steps` steps.

    On (re)start, lines for steps after the restored step (logged before a crash, then lost) are dropped,
    so the file describes exactly one run.
    """

    def __init__(self, run_dir, every_n_steps=10):
        super().__init__()
        self.path = pathlib.Path(run_dir) / HISTORY_FILE
        self.every_n_steps = max(1, int(every_n_steps))

    def start(self, start_step, total_steps):
        super().start(start_step, total_steps)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [json.dumps(r) for r in read_history(self.path) if r.get("step", 0) <= start_step]
        if self.path.exists():
            _atomic_write(self.path, lambda f: f.write("".join(k + "\n" for k in kept).encode()))

    def on_step_end(self, step, logs):
        if step % self.every_n_steps == 0 or step == self.total_steps:
            append_jsonl(self.path, {"step": step, **logs})


class TensorBoardLogger(StepCallback):
    """Scalars every `every_n_steps` steps; `log_images` writes input|output|target grids (validation).

    TensorFlow 2.21 no longer installs TensorBoard: without it this logger warns once and does nothing.
    """

    def __init__(self, log_dir, every_n_steps=10):
        super().__init__()
        self.log_dir = str(log_dir)
        self.every_n_steps = max(1, int(every_n_steps))
        self._writer = None
        self.enabled = importlib.util.find_spec("tensorboard") is not None
        if not self.enabled:
            warnings.warn("TensorBoard is not installed (pip install tensorboard): no TensorBoard logs are "
                          "written; history.jsonl still holds every logged value", stacklevel=2)

    @property
    def writer(self):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_step_end(self, step, logs):
        if step % self.every_n_steps == 0:
            self.log_scalars(step, logs)

    def log_scalars(self, step, scalars):
        if not self.enabled:
            return
        with self.writer.as_default():
            for key, value in scalars.items():
                tf.summary.scalar(key, value, step=step)
        self.writer.flush()

    def log_images(self, step, inputs, outputs, targets, max_images=4, name="val/input_output_target"):
        """Write one image per example: input, output and target side by side, all in [0, 1]."""
        if not self.enabled:
            return
        n = min(max_images, len(inputs))
        grid = np.concatenate([np.clip(np.asarray(a[:n], np.float32), 0, 1) for a in (inputs, outputs, targets)],
                              axis=2)
        with self.writer.as_default():
            tf.summary.image(name, grid, step=step, max_outputs=n)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


def _metric_functions(names):
    table = {"psnr": metrics.psnr, "ssim": metrics.ssim}
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown validation metrics {unknown}: choose from {sorted(table)}")
    return {n: table[n] for n in names}


def evaluate_pairs(enhance, dataset, metrics=("psnr", "ssim"), desc="validation", progress=True):
    """Mean of each metric over all `(input, target)` pairs of `dataset`, output clipped to [0, 1].

    Returns `(means, first_batch)` where `first_batch` is `(input, output, target)` numpy arrays (for image
    grids). `enhance` maps a [0, 1] batch to a [0, 1] batch.
    """
    funcs = _metric_functions(metrics)
    sums = {n: 0.0 for n in funcs}
    count = 0
    first = None
    try:
        total = int(dataset.cardinality())
    except (TypeError, ValueError, AttributeError):
        total = None
    for x, y in tqdm(dataset, desc=desc, total=total if total and total > 0 else None, leave=False,
                     disable=not progress):
        out = tf.clip_by_value(tf.cast(enhance(x), tf.float32), 0.0, 1.0)
        y = tf.cast(y, tf.float32)
        for n, fn in funcs.items():
            sums[n] += float(tf.reduce_sum(fn(out, y, max_val=1.0)))
        count += int(out.shape[0])
        if first is None:
            first = (np.asarray(x), np.asarray(out), np.asarray(y))
    if count == 0:
        raise ValueError("the validation dataset is empty")
    return {n: s / count for n, s in sums.items()}, first


class ValidationCallback(StepCallback):
    """Every `every_n_steps` steps (and at the end): PSNR/SSIM of `model.enhance` over `val_dataset`.

    Adds `val_<metric>` to the logs, appends `{"step", "val_psnr", "val_ssim"}` to RUN_DIR/history.jsonl,
    writes image grids to `tensorboard` (a TensorBoardLogger) and, when `save_best` is given, calls
    `save_best()` whenever `val_<monitor>` improves (best value kept in RUN_DIR/best.json across resumes).
    `self.last` holds the latest results.
    """

    def __init__(self, val_dataset, every_n_steps, metrics=("psnr", "ssim"), run_dir=None, tensorboard=None,
                 save_best=None, monitor="psnr", progress=True):
        super().__init__()
        self.val_dataset = val_dataset
        self.every_n_steps = max(1, int(every_n_steps))
        self.metrics = tuple(metrics)
        _metric_functions(self.metrics)
        self.run_dir = pathlib.Path(run_dir) if run_dir else None
        self.tensorboard = tensorboard
        self.save_best = save_best
        self.monitor = monitor
        self.progress = progress
        self.last = None
        self.best = -math.inf
        self._validated_step = None
        self._enhance = None

    def start(self, start_step, total_steps):
        """Resume the best score from the validations on record up to `start_step`. A best model saved
        after that step (by a process killed before its next checkpoint, or one that diverged) is not this
        run's: it is removed, and a later validation that beats the earlier ones replaces it."""
        super().start(start_step, total_steps)
        self.best, self.last = -math.inf, None
        if not self.run_dir:
            return
        key = f"val_{self.monitor}"
        done = [r for r in read_history(self.run_dir / HISTORY_FILE)
                if key in r and r["step"] <= start_step and start_step > 0]
        if done:
            self.best = max(r[key] for r in done)
            self.last = done[-1]
        best_file = self.run_dir / BEST_FILE
        if best_file.exists() and json.loads(best_file.read_text()).get("step", 0) > start_step:
            best_file.unlink()
            (self.run_dir / BEST_GENERATOR).unlink(missing_ok=True)

    def on_step_end(self, step, logs):
        if step % self.every_n_steps == 0:
            self.validate(step)

    def on_train_end(self, logs=None):
        if self._validated_step != self.step and not self.model.stop_training:
            self.validate(self.step)

    def validate(self, step):
        """Run validation now for `step`; returns the `{"val_<metric>": value}` dict."""
        if self._enhance is None:
            self._enhance = tf.function(self.model.enhance, reduce_retracing=True)
        means, first = evaluate_pairs(self._enhance, self.val_dataset, self.metrics,
                                      desc=f"validation @ {step}", progress=self.progress)
        results = {f"val_{k}": v for k, v in means.items()}
        self.last = {"step": step, **results}
        self._validated_step = step
        if self.run_dir:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            append_jsonl(self.run_dir / HISTORY_FILE, self.last)
        if self.tensorboard is not None:
            self.tensorboard.log_scalars(step, results)
            self.tensorboard.log_images(step, *first)
        value = results.get(f"val_{self.monitor}")
        if self.save_best is not None and value is not None and value > self.best:
            self.best = value
            self.save_best()
            if self.run_dir:
                _atomic_write(self.run_dir / BEST_FILE, lambda f: f.write(json.dumps(self.last).encode()))
        return results


class MetricState(StepCallback):
    """Carry a model's running-mean metrics (the logged losses) across a resume in mid-epoch.

    `fit` resets the metrics at every epoch start, and the logs are the epoch's running means. A run
    resumed at step s in mid-epoch restores the means' totals saved in the checkpoint right after that
    reset, so its records equal the uninterrupted run's. (A resume on an epoch boundary starts afresh, as
    the uninterrupted run does.) The metrics' variables must be in the checkpoint.
    """

    def __init__(self, metrics, steps_per_epoch):
        super().__init__()
        self.variables = [v for m in metrics for v in m.variables]
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self._pending = None

    def start(self, start_step, total_steps):
        super().start(start_step, total_steps)
        mid_epoch = start_step % self.steps_per_epoch != 0
        self._pending = [_variable_value(v) for v in self.variables] if mid_epoch else None

    def on_epoch_begin(self, epoch, logs=None):
        if self._pending is not None:
            for variable, value in zip(self.variables, self._pending):
                variable.assign(value)
            self._pending = None


class StepTimer(keras.callbacks.Callback):
    """The median wall time of a training step; the first two steps of each `fit` call (tracing) are left out."""

    def __init__(self):
        super().__init__()
        self.times, self._t, self._seen = [], None, 0

    def on_train_begin(self, logs=None):
        self._seen = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._t = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._seen += 1
        if self._seen > 2 and self._t is not None:
            self.times.append(time.perf_counter() - self._t)

    def seconds_per_step(self):
        return round(statistics.median(self.times), 5) if self.times else None


def count_trainable(model):
    """The number of trainable parameters of `model`."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


class ProgressBar(StepCallback):
    """One tqdm bar over all training steps ("step N/total") with the live losses."""

    def __init__(self, keys=None, desc="training"):
        super().__init__()
        self.keys = keys
        self.desc = desc
        self.bar = None

    def start(self, start_step, total_steps):
        super().start(start_step, total_steps)
        self.bar = tqdm(total=total_steps, initial=start_step, desc=self.desc, unit="step", dynamic_ncols=True)

    def on_step_end(self, step, logs):
        shown = {k: v for k, v in logs.items() if self.keys is None or k in self.keys}
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
        self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ----------------------------------------------------------------------------------------------------------
# Driving fit
# ----------------------------------------------------------------------------------------------------------
def _by_batch_slices():
    """tf.data options that give each worker of a cluster its slice of every global batch (the batches are
    keyed on the step, not read from files, so sharding by file cannot apply)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def fit_steps(model, make_dataset, *, start_step, iterations, steps_per_epoch, callbacks=(), verbose=0):
    """Train steps `start_step` .. `iterations` with `model.fit`; return the number of completed steps.

    Epoch boundaries sit on multiples of `steps_per_epoch` whatever the start step (a resumed run first
    finishes its partial epoch), so logging and validation fall on the same steps as in an uninterrupted
    run. Weights, optimizer state and batches continue exactly from any step; the per-epoch running means
    in the logs restart at the resume step, so they match the uninterrupted run's when it resumes on an
    epoch boundary (checkpoints every `steps_per_epoch` steps or a divisor of it, `dped.train`'s default).
    `make_dataset(step)` builds the infinite, step-keyed dataset whose first element is the batch for `step`.
    Raises `TrainingDiverged` if a `NaNGuard` stopped training.
    """
    callbacks = list(callbacks)
    steps_per_epoch = max(1, int(steps_per_epoch))
    for cb in callbacks:
        if isinstance(cb, StepCallback):
            cb.start(start_step, iterations)
    step = int(start_step)
    try:
        while step < iterations:
            head = (-step) % steps_per_epoch
            if head:
                chunk_epochs, spe = 1, min(head, iterations - step)
            else:
                whole = (iterations - step) // steps_per_epoch
                chunk_epochs, spe = (whole, steps_per_epoch) if whole else (1, iterations - step)
            initial_epoch = step // steps_per_epoch
            model.fit(make_dataset(step).with_options(_by_batch_slices()), epochs=initial_epoch + chunk_epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=spe, callbacks=callbacks, verbose=verbose, shuffle=False)
            for cb in callbacks:
                if isinstance(cb, NaNGuard) and cb.error is not None:
                    raise cb.error
            done = next((cb.step for cb in callbacks if isinstance(cb, StepCallback)), step + chunk_epochs * spe)
            if model.stop_training or done <= step:
                return done
            step = done
    finally:
        for cb in callbacks:
            if isinstance(cb, ProgressBar):
                cb.close()
    return step


def finish_run(model, generator, validation, run_dir, step, save_generator):
    """End of a run: validate the final step (unless that is on record) and save the generators.

    `last_generator.keras` is always the final weights; `best_generator.keras` is written by the validation
    callback when the score improves, and falls back to the final weights if it never was.
    `save_generator(model, path)` writes one file atomically.
    """
    run_dir = pathlib.Path(run_dir)
    if validation.last is None or validation.last["step"] != step:
        validation.set_model(model)
        validation.validate(step)
    save_generator(generator, run_dir / LAST_GENERATOR)
    if not (run_dir / BEST_GENERATOR).exists():
        save_generator(generator, run_dir / BEST_GENERATOR)
