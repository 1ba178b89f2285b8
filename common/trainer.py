"""The one training application behind `python -m dped.train` and `python -m pix2pix.train`.

A model family is a `Recipe`: its settings dataclass, its data, its GAN (`keras.Model` with a custom
`train_step`) and its export. `run(recipe, argv)` does the rest, the same way for every family:

1. flags generated from the settings dataclass; the settings layered (defaults < preset/demo < flags) and
   checked, so a flag either acts or is refused;
2. the distribution strategy created; the run folder locked (`common.run_folder`), leftovers of a killed
   process removed; on a cluster only the chief writes `--out` (`common.cluster`);
3. on resume, the recorded settings compared with the command's: a setting that cannot change
   (architecture, batch, data, seed) refuses the command, listing each difference; one that may (learning
   rate, loss weights, iterations, cadences) takes effect from the resume step and is recorded in
   config.json and history.jsonl;
4. precision set and the GAN built in the strategy's scope; the checkpoint restored;
5. `fit` driven step-exactly (`common.training.fit_steps`) with the callbacks in the order that keeps a
   killed run exact: NaN guard, logged-mean state, history, TensorBoard, validation (best model), then the
   checkpoint of that step;
6. the end: final validation, last/best generators, export, summary.json.

The GAN gives the driver `generator`, `discriminator`, `g_optimizer`, `d_optimizer`, `metrics`,
`enhance(x)` (for validation) and `state_variables()` (what else a checkpoint holds); the recipe's
`apply_settings(gan, settings)` sets the learning rate and loss weights, also on resume.
"""
import argparse
import shutil
import sys
import time

import keras

from common import cluster, config, training
from common.cli import console_script
from common.errors import PhotoEnhanceError
from common.generators import save_generator
from common.run_folder import RunFolder

STATE_FILES = ("best_generator.keras", "last_generator.keras", "saved_model", "history.jsonl", "tensorboard",
               "checkpoints")


class Recipe:
    """What a model family gives the training application; subclasses fill in every hook."""

    family = None              # "dped" / "pix2pix": recorded in summaries and saved generators
    settings_class = None      # a `common.run_settings.RunSettings` subclass
    progress_keys = None       # losses shown on the progress bar (None: all)

    def parser(self):
        """The command's argparse parser: one flag per setting."""
        raise NotImplementedError

    def settings(self, given, args):
        """The run's settings from the flags the user gave (`given`, a dict; `args`, all parsed flags)."""
        raise NotImplementedError

    def check(self, settings, given):
        """Refuse settings that cannot work or that would be ignored (raise `PhotoEnhanceError`)."""

    def default_out(self, settings):
        raise NotImplementedError

    def open_data(self, settings, run):
        """The run's data (an object the batch hooks understand); may build demo data in the run folder."""
        raise NotImplementedError

    def build(self, settings, notes):
        """The compiled GAN, called inside the strategy scope; `notes` collects what the user must know."""
        raise NotImplementedError

    def apply_settings(self, gan, settings):
        """Set what may change on resume (learning rate, loss weights) from the settings."""
        raise NotImplementedError

    def train_batches(self, data, settings, step):
        """Infinite dataset whose first element is the batch of `step`."""
        raise NotImplementedError

    def validation_set(self, data, settings):
        raise NotImplementedError

    def generator_task(self, settings):
        """The task recorded with saved generators (None: the family has no tasks)."""
        return None

    def save_generator(self, generator, settings, path):
        """Save a generator atomically with its family and task on record (`common.generators`)."""
        save_generator(generator, path, family=self.family, task=self.generator_task(settings))

    def export(self, generator, settings, folder):
        """Write the serving export of `generator` into the new folder `folder`."""
        raise NotImplementedError

    def data_record(self, data):
        """What config.json records about the data besides its description (e.g. counts)."""
        return {}

    def callbacks(self):
        """Extra callbacks of the family (e.g. a step timer)."""
        return []

    def summary(self, gan, settings, data, callbacks):
        """Family-specific entries of summary.json."""
        return {}


def command(recipe, argv=None):
    """Parse `argv` into settings, lock the run folder and train; returns the summary dict."""
    args = recipe.parser().parse_args(argv)
    given = config.given(args, recipe.settings_class)
    settings = recipe.settings(given, args)
    check_settings(settings, given)
    recipe.check(settings, given)
    out = settings.out or recipe.default_out(settings)
    strategy = training.get_strategy(settings.strategy)  # first: a cluster must start before other TF work
    with cluster.peers_watched():
        if not cluster.is_chief(strategy):
            print(f"note: this worker trains with the cluster; the chief alone writes {out}", file=sys.stderr)
            with cluster.worker_folder(out) as folder:
                return train(recipe, settings, RunFolder(folder), strategy)
        run = RunFolder(out)
        with run.lock():
            return train(recipe, settings, run, strategy)


def entry_points(recipe):
    """`(main, cli)` of a recipe's train command: `main(argv)` returns the summary (tests, notebooks),
    `cli()` runs it as a command (one-line errors, exit codes; the console script)."""
    def main(argv=None):
        return command(recipe, argv)

    return main, console_script(main)


def check_settings(settings, given):
    """The checks every family's settings share."""
    config.require_positive(settings, ("iterations", "batch_size", "eval_every", "checkpoint_every", "log_every",
                                       "keep_checkpoints", "val_limit"))


def train(recipe, settings, run, strategy):
    """Run (or resume) training in the locked `run` folder under `strategy`; returns the summary (also
    summary.json)."""
    t0 = time.time()
    start = training.checkpoint_step(run / "checkpoints")
    record = resume_record(recipe, settings, run, start)
    for name in run.clean_temporaries():
        print(f"note: removed {name}, left by an interrupted process", file=sys.stderr)
    data = recipe.open_data(settings, run)
    notes = []
    mixed = training.configure_precision(settings.mixed_precision)
    replicas = strategy.num_replicas_in_sync
    if settings.batch_size % replicas:
        raise PhotoEnhanceError(f"--batch-size {settings.batch_size} must be divisible by the {replicas} replicas")
    keras.utils.set_random_seed(settings.seed)
    with strategy.scope():
        gan = recipe.build(settings, notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    ckpt = training.RunCheckpoint(run / "checkpoints", keep=settings.keep_checkpoints, generator=gan.generator,
                                  discriminator=gan.discriminator, g_optimizer=gan.g_optimizer,
                                  d_optimizer=gan.d_optimizer, state=gan.state_variables(), metrics=gan.metrics)
    start = ckpt.restore() or 0
    recipe.apply_settings(gan, settings)
    if start:
        print(f"resuming from step {start} ({ckpt.latest_path()})", file=sys.stderr)
    record.update(replicas=replicas, mixed_precision_on=mixed, data=describe(data), **recipe.data_record(data))
    run.write_config(record)
    validation, callbacks = make_callbacks(recipe, settings, run, gan, ckpt, data)
    step = training.fit_steps(gan, lambda s: recipe.train_batches(data, settings, s), start_step=start,
                              iterations=settings.iterations, steps_per_epoch=settings.eval_every,
                              callbacks=callbacks)
    training.finish_run(gan, gan.generator, validation, run.path, step,
                        save_generator=lambda g, path: recipe.save_generator(g, settings, path))
    if settings.export:
        export_atomic(recipe, gan.generator, settings, run / "saved_model")
    return write_summary(recipe, gan, settings, data, run, callbacks, dict(
        step=step, start=start, validation=validation, notes=notes, seconds=time.time() - t0, record=record))


def describe(data):
    return data.describe() if hasattr(data, "describe") else str(data)


def resume_record(recipe, settings, run, start):
    """config.json's record for this command: refuse settings that may not change since the checkpoint,
    record (and log in history.jsonl) those that may."""
    record = {"family": recipe.family, **config.as_dict(settings), "resumes": []}
    old = run.read_config()
    if not start or old is None:
        return record
    if start > settings.iterations:
        raise PhotoEnhanceError(f"{run.path} already holds step {start}; --iterations {settings.iterations} would "
                                f"not train (give more iterations, or another --out for a new run)")
    diff = config.differences(recipe.settings_class, old, settings)
    if diff["fixed"]:
        lines = "; ".join(f"{config.flag_name(n)}: {a!r} in the run, {b!r} now" for n, a, b in diff["fixed"])
        raise PhotoEnhanceError(f"{run.path}: cannot resume with other settings of what the checkpoint holds "
                                f"({lines}); use the run's values or another --out")
    record["resumes"] = old.get("resumes", [])
    if diff["change"]:
        changes = {n: [a, b] for n, a, b in diff["change"]}
        record["resumes"].append({"step": start, "changes": changes})
        training.append_jsonl(run / training.HISTORY_FILE, {"step": start, "event": "resume", "changes": changes})
        print(f"note: resuming at step {start} with " + ", ".join(
            f"{config.flag_name(n)} {a} -> {b}" for n, (a, b) in changes.items()), file=sys.stderr)
    return record


def make_callbacks(recipe, settings, run, gan, ckpt, data):
    """(validation callback, all callbacks in the order that keeps a killed run exact)."""
    tb = training.TensorBoardLogger(run / "tensorboard", settings.log_every)
    validation = training.ValidationCallback(
        recipe.validation_set(data, settings), settings.eval_every, run_dir=run.path, tensorboard=tb,
        progress=settings.progress,
        save_best=lambda: recipe.save_generator(gan.generator, settings, run / training.BEST_GENERATOR))
    callbacks = [*recipe.callbacks(), training.NaNGuard(ckpt), training.MetricState(gan.metrics, settings.eval_every),
                 training.HistoryLogger(run.path, settings.log_every), tb, validation,
                 training.CheckpointCallback(ckpt, settings.checkpoint_cadence)]
    if settings.progress:
        callbacks.append(training.ProgressBar(keys=recipe.progress_keys, desc=f"{recipe.family} {run.path.name}"))
    return validation, callbacks


def export_atomic(recipe, generator, settings, target):
    """The export written beside `target`, then swapped in: a kill never leaves half an export."""
    tmp = target.with_name(f".{target.name}.tmp")
    old = target.with_name(f".{target.name}.old.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    recipe.export(generator, settings, tmp)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_summary(recipe, gan, settings, data, run, callbacks, done):
    """summary.json and the closing lines on stdout."""
    validation = done["validation"]
    best_file = run / training.BEST_FILE
    best = training.read_json(best_file) if best_file.exists() else validation.last
    summary = {"status": "finished", "family": recipe.family, "steps": done["step"],
               "resumed_from": done["start"] or None, "final_validation": validation.last,
               "best_validation": best, "notes": done["notes"], "data": describe(data),
               "seconds_this_session": round(done["seconds"], 1),
               "files": {k: str(run / k) for k in STATE_FILES if k != "saved_model" or settings.export},
               **recipe.summary(gan, settings, data, callbacks), "config": done["record"]}
    run.write_json("summary.json", summary)
    val = validation.last
    print(f"{recipe.family} {run.path.name}: {done['step']} steps; validation PSNR {val['val_psnr']:.2f} dB, "
          f"SSIM {val['val_ssim']:.4f} (best PSNR {best['val_psnr']:.2f} dB at step {best['step']}); "
          f"run folder {run.path}")
    for note in done["notes"]:
        print(f"note: {note}")
    return summary


def help_formatter():
    """Option help as written (defaults are in the text) and the epilog's layout kept."""
    return argparse.RawDescriptionHelpFormatter
