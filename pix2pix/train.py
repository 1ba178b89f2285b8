"""Train pix2pix on one task: `python -m pix2pix.train --task deblur --data-dir PHOTOS` (or `--demo`).

Tasks are the presets of `pix2pix.tasks` (phone2dslr, deblur, ldr2hdr, overexposure); every flag left
out keeps the preset's value. The run folder (`--out`, default runs/pix2pix-<task>[-demo]) holds
checkpoints/ (resumable: re-run the same command after an interruption and training continues from the
last checkpoint, optimiser state, loss weights and batches included), history.jsonl, tensorboard/,
best_generator.keras (by validation PSNR), last_generator.keras, saved_model/ (uint8 photos of any size)
and summary.json (with the measured step time).

`--demo` builds the task's small dataset offline from scikit-image's bundled photos and trains a short
CPU-sized run (64x64 crops, 6-level U-Net with 32 base filters, batch 4, 200 iterations) unless the
flags say otherwise, e.g. for a longer deblurring run:
`--demo --task deblur --image-size 256 --depth 8 --base-filters 64 --batch-size 8 --iterations 20000`.
When the ImageNet VGG-19 weights are not available the perceptual and content terms are switched off
in a demo (said at the start and in summary.json); a normal run stops instead.
"""
import argparse
import json
import pathlib
import sys
import time

from common.cli import add_runtime_flags, quiet_tensorflow, run_cli
from common.errors import PhotoEnhanceError

TASK_NAMES = ("phone2dslr", "deblur", "ldr2hdr", "overexposure")
DEFAULTS = {"eval_every": 1000, "log_every": 100}
DEMO_DEFAULTS = {"iterations": 200, "batch_size": 4, "image_size": 64, "depth": 6, "base_filters": 32,
                 "eval_every": 100, "log_every": 10}
DEMO_DATASET = {"n_train": 400, "n_test": 24}
DATA_LAYOUTS = """data layouts (--data-dir):
  phone2dslr    the DPED dataset: dped/<phone>/training_data/{<phone>,canon}/<i>.jpg and
                test_data/patches/{<phone>,canon}/<i>.jpg (test patches: first half validation, second test)
  deblur,       clean photos, in train/ (+ optional val/, test/) or in one flat folder (then split
  overexposure  80/10/10 by a seeded shuffle; --seed picks the split)
  ldr2hdr       one folder per scene: ev-2.jpg ev0.jpg ev+2.jpg hdr.hdr (or hdr.exr); scenes directly in
                the folder (20 of every 176 scenes held out for test) or in train/ and test/
see datasets/README.md and pix2pix/tasks.py for details."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the option help, the data layouts printed as written."""


def build_parser():
    p = argparse.ArgumentParser(prog="python -m pix2pix.train", description=__doc__.split("\n\n")[0],
                                epilog=DATA_LAYOUTS, formatter_class=_HelpFormatter)
    p.add_argument("--task", required=True, choices=TASK_NAMES, help="the preset (see pix2pix.tasks)")
    p.add_argument("--data-dir", default=None, help="the task's data folder (layouts: pix2pix.tasks docstring)")
    p.add_argument("--demo", action="store_true", help="build and train on a small offline demo dataset")
    p.add_argument("--demo-photos", type=int, default=None,
                   help="demo of a synthetic task: train on the first N bundled training photos only")
    p.add_argument("--phone", default="iphone", help="phone2dslr: the DPED phone sub-folder")
    p.add_argument("--out", default=None, help="run folder (default runs/pix2pix-<task>[-demo])")
    p.add_argument("--iterations", type=int, default=None, help="training steps (preset; demo 200)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch (preset; demo 4)")
    p.add_argument("--image-size", type=int, default=None, help="training crop / resize side (preset; demo 64)")
    p.add_argument("--depth", type=int, default=None, help="U-Net levels (preset; demo 6)")
    p.add_argument("--base-filters", type=int, default=None, help="first-level filters of G and D (64; demo 32)")
    p.add_argument("--residual", action="store_true",
                   help="generator returns input + tanh(correction) (not in the papers; helps restoration tasks)")
    p.add_argument("--gan-loss", choices=("bce", "lsgan", "wgan", "wgan-gp", "hinge"), default=None)
    p.add_argument("--n-critic", type=int, default=None, help="discriminator updates per generator update")
    for name in ("adv", "l1", "perceptual", "color", "content"):
        p.add_argument(f"--lambda-{name}", type=float, default=None, help=f"weight of the {name} term (preset)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate of both networks (2e-4)")
    p.add_argument("--beta1", type=float, default=None, help="Adam beta_1 (0.5)")
    p.add_argument("--beta2", type=float, default=None, help="Adam beta_2 (preset: 0.999 or 0.99)")
    p.add_argument("--tau", type=float, default=None, help="overexposure: clipping threshold (0.5)")
    p.add_argument("--random-tau", action="store_true", help="overexposure: tau uniform in [0.5, 1] per image")
    p.add_argument("--inference-mode", choices=("moving", "batch"), default=None,
                   help="validation with moving statistics (deterministic) or test-batch statistics + dropout")
    p.add_argument("--eval-every", type=int, default=None, help="validate every N steps (1000; demo 100)")
    p.add_argument("--checkpoint-every", type=int, default=None, help="checkpoint every N steps (--eval-every)")
    p.add_argument("--log-every", type=int, default=None, help="history/TensorBoard every N steps (100; demo 10)")
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument("--val-limit", type=int, default=0, help="validate on the first N pairs only (0: all)")
    p.add_argument("--val-crop", type=int, default=None,
                   help="deblur/overexposure: centre crop of the validation photos (default: --image-size)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, batches and random draws")
    add_runtime_flags(p)
    p.add_argument("--no-export", action="store_true", help="skip the SavedModel export at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    return p


def resolve_task(args):
    """The task preset with the command line's overrides (demo-sized defaults under --demo)."""
    from pix2pix.tasks import get_task

    demo = DEMO_DEFAULTS if args.demo else {}
    pick = lambda key: getattr(args, key) if getattr(args, key) is not None else demo.get(key)  # noqa: E731
    overrides = dict(iterations=pick("iterations"), batch_size=pick("batch_size"), image_size=pick("image_size"),
                     depth=pick("depth"), base_filters=pick("base_filters"), gan_loss=args.gan_loss,
                     n_critic=args.n_critic, learning_rate=args.lr, beta_1=args.beta1, beta_2=args.beta2,
                     tau=args.tau, random_tau=True if args.random_tau else None,
                     residual=True if args.residual else None, inference_mode=args.inference_mode,
                     **{f"lambda_{n}": getattr(args, f"lambda_{n}") for n in ("adv", "l1", "perceptual", "color",
                                                                               "content")})
    task = get_task(args.task, **overrides)
    for key in ("iterations", "batch_size", "image_size", "depth", "base_filters", "n_critic"):
        if getattr(task, key) < 1:
            raise PhotoEnhanceError(f"--{key.replace('_', '-')} must be at least 1, got {getattr(task, key)}")
    if task.depth < 2:
        raise PhotoEnhanceError(f"--depth must be at least 2, got {task.depth}")
    if task.image_size < 2 ** min(task.depth, 5):
        raise PhotoEnhanceError(f"--image-size {task.image_size} is too small for a useful {task.depth}-level "
                                f"U-Net (use at least {2 ** min(task.depth, 5)})")
    if not 0 < task.tau <= 1:
        raise PhotoEnhanceError(f"--tau must be in (0, 1], got {task.tau}")
    return task


def _data(args, task, out):
    from pix2pix.tasks import TaskData, prepare_demo

    if args.demo:
        root = pathlib.Path(args.data_dir) if args.data_dir else out / "demo_data"
        data_dir = prepare_demo(task, root, **DEMO_DATASET)
    elif args.data_dir:
        data_dir = pathlib.Path(args.data_dir)
    else:
        raise PhotoEnhanceError("give --data-dir DIR (see `python -m pix2pix.train --help` for the layouts) or --demo")
    td = TaskData(task, data_dir, phone=args.phone, split_seed=args.seed)
    if args.demo_photos is not None:
        if task.name not in ("deblur", "overexposure") or not args.demo:
            raise PhotoEnhanceError("--demo-photos applies to --demo runs of deblur and overexposure only")
        if not 1 <= args.demo_photos <= len(td.splits["train"]):
            raise PhotoEnhanceError(f"--demo-photos must be in 1..{len(td.splits['train'])}, got {args.demo_photos}")
        td.splits["train"] = td.splits["train"][:args.demo_photos]
    return td


def build_vgg(task, weights_arg, demo, notes):
    """The VGG-19 feature model for the perceptual/content terms, or None (their weights are then 0)."""
    from common.errors import VGGWeightsUnavailable
    from common.vgg import build_vgg19_features
    from pix2pix.tasks import PERCEPTUAL_LAYERS

    if not (task.lambda_perceptual or task.lambda_content):
        return None, task
    try:
        return build_vgg19_features(PERCEPTUAL_LAYERS, weights=weights_arg or "imagenet"), task
    except VGGWeightsUnavailable as exc:
        if not demo:
            raise
        import dataclasses

        notes.append(f"perceptual and content losses disabled: VGG-19 weights unavailable ({exc})")
        return None, dataclasses.replace(task, lambda_perceptual=0.0, lambda_content=0.0)


def build_gan(task, vgg, seed, mixed=False, jit_compile=False, global_batch_size=None):
    """Generator, discriminator and the compiled `Pix2Pix` for a task preset."""
    from common import training
    from pix2pix.gan import Pix2Pix
    from pix2pix.tasks import PERCEPTUAL_LAYERS

    generator = task.build_generator(seed=seed)
    discriminator = task.build_discriminator()
    gan = Pix2Pix(generator, discriminator, gan_loss=task.gan_loss, n_critic=task.n_critic,
                  lambda_adv=task.lambda_adv, lambda_l1=task.lambda_l1, lambda_perceptual=task.lambda_perceptual,
                  lambda_color=task.lambda_color, lambda_content=task.lambda_content, vgg=vgg,
                  perceptual_layers=list(range(len(PERCEPTUAL_LAYERS))), content_layer=len(PERCEPTUAL_LAYERS) - 1,
                  target_range=task.target_range, inference_mode=task.inference_mode, seed=seed,
                  global_batch_size=global_batch_size)
    g_opt = training.make_adam(task.learning_rate, task.beta_1, task.beta_2, mixed=mixed, name="g_adam")
    d_opt = training.make_adam(task.learning_rate, task.beta_1, task.beta_2, mixed=mixed, name="d_adam")
    gan.compile(g_opt, d_opt, jit_compile=jit_compile)
    training.build_optimizers((g_opt, generator), (d_opt, discriminator))
    return gan


def export_generator(generator, task, out_dir):
    """uint8/float32 SavedModel of the generator: [0, 1] photos of any size in, [0, 1] (or linear HDR) out."""
    from common.export import export_saved_model

    return export_saved_model(generator, out_dir, input_range="symmetric",
                              output_range="symmetric" if task.target_range == "symmetric" else "unit")


def train(args):
    """Run (or resume) training as `args` says; returns the run summary (also written to summary.json)."""
    import dataclasses

    from common import training

    t0 = time.time()
    task = resolve_task(args)
    out = pathlib.Path(args.out or f"runs/pix2pix-{task.name}{'-demo' if args.demo else ''}")
    every = {k: getattr(args, k) or (DEMO_DEFAULTS if args.demo else DEFAULTS)[k] for k in ("eval_every", "log_every")}
    checkpoint_every = args.checkpoint_every or every["eval_every"]
    if min(*every.values(), checkpoint_every) < 1:
        raise PhotoEnhanceError("--eval-every, --log-every and --checkpoint-every must be at least 1")
    td = _data(args, task, out)
    if args.val_crop is not None and (args.val_crop < 1 or task.name not in ("deblur", "overexposure")):
        raise PhotoEnhanceError("--val-crop must be a positive size, and applies to deblur and overexposure only")
    val_crop = (args.val_crop or task.image_size) if task.name in ("deblur", "overexposure") else None
    val_pairs = td.pairs("val", image_size=val_crop, limit=args.val_limit or None)
    out.mkdir(parents=True, exist_ok=True)

    notes = []
    mixed = training.configure_precision(args.mixed_precision)
    strategy = training.get_strategy(args.strategy)
    replicas = strategy.num_replicas_in_sync
    if task.batch_size % replicas:
        raise PhotoEnhanceError(f"--batch-size {task.batch_size} must be divisible by the {replicas} replicas")

    import keras
    import tensorflow as tf

    from pix2pix.gan import tone_map
    from pix2pix.tasks import pairs_dataset

    keras.utils.set_random_seed(args.seed)
    with strategy.scope():
        vgg, task = build_vgg(task, args.vgg_weights, args.demo, notes)
        gan = build_gan(task, vgg, args.seed, mixed=mixed, jit_compile=args.jit_compile,
                        global_batch_size=task.batch_size)
    print(f"pix2pix {task.name}: {td.describe()}", file=sys.stderr)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)

    generator, discriminator = gan.generator, gan.discriminator
    ckpt = training.RunCheckpoint(out / "checkpoints", keep=args.keep_checkpoints, generator=generator,
                                  discriminator=discriminator, g_optimizer=gan.g_optimizer,
                                  d_optimizer=gan.d_optimizer,
                                  state=[getattr(gan, name) for name in gan.get_loss_weights()])
    start = ckpt.restore() or 0
    if start:
        print(f"resuming from step {start} ({ckpt.latest_path()})", file=sys.stderr)

    def make_dataset(step):
        return td.train_batches(task.batch_size, seed=args.seed, start_step=step)

    val_ds = pairs_dataset(val_pairs, batch_size=min(task.batch_size, 16))
    if task.target_range == "linear":
        val_ds = val_ds.map(lambda x, y: (x, tone_map(y)))
    tb = training.TensorBoardLogger(out / "tensorboard", every["log_every"])
    validation = training.ValidationCallback(
        val_ds, every["eval_every"], run_dir=out, tensorboard=tb, progress=not args.no_progress,
        save_best=lambda: training.save_model_atomic(generator, out / "best_generator.keras"))
    timer = _make_step_timer()
    callbacks = [timer, training.NaNGuard(), training.CheckpointCallback(ckpt, checkpoint_every),
                 training.HistoryLogger(out, every["log_every"]), tb, validation]
    if not args.no_progress:
        callbacks.append(training.ProgressBar(keys=("d_loss", "g_loss", "g_l1"), desc=f"pix2pix {task.name}"))

    n_params = {"generator": int(sum(int(tf.size(w)) for w in generator.trainable_weights)),
                "discriminator": int(sum(int(tf.size(w)) for w in discriminator.trainable_weights))}
    config = {"task": dataclasses.asdict(task), "data_dir": str(td.data_dir), "demo": args.demo,
              "data": td.describe(), "seed": args.seed, "strategy": args.strategy, "replicas": replicas,
              "mixed_precision": mixed, "jit_compile": args.jit_compile, "trainable_parameters": n_params,
              "eval_every": every["eval_every"], "checkpoint_every": checkpoint_every, "val_crop": val_crop,
              "val_pairs": len(val_pairs)}
    (out / "config.json").write_text(json.dumps(config, indent=2))

    step = training.fit_steps(gan, make_dataset, start_step=start, iterations=task.iterations,
                              steps_per_epoch=every["eval_every"], callbacks=callbacks)
    training.finish_run(gan, generator, validation, out, step)
    exported = None
    if not args.no_export:
        import shutil

        if (out / "saved_model").exists():
            shutil.rmtree(out / "saved_model")
        exported = str(export_generator(generator, task, out / "saved_model"))

    best = json.loads((out / "best.json").read_text()) if (out / "best.json").exists() else validation.last
    summary = {"status": "finished", "task": task.name, "steps": step, "resumed_from": start or None,
               "final_validation": validation.last, "best_validation": best,
               "perceptual_loss": "enabled" if task.lambda_perceptual else "disabled",
               "content_loss": "enabled" if task.lambda_content else "disabled",
               "loss_weights": gan.get_loss_weights(), "notes": notes,
               "step_time_s": timer.seconds_per_step(), "seconds_this_session": round(time.time() - t0, 1),
               "files": {k: str(out / k) for k in ("best_generator.keras", "last_generator.keras",
                                                   "history.jsonl", "tensorboard", "checkpoints")}
               | {"saved_model": exported}, "config": config}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    val = validation.last
    print(f"pix2pix {task.name}: {step} steps; validation PSNR {val['val_psnr']:.2f} dB, SSIM {val['val_ssim']:.4f} "
          f"(best PSNR {best['val_psnr']:.2f} dB at step {best['step']}); run folder {out}")
    for note in notes:
        print(f"note: {note}")
    return summary


def _make_step_timer():
    """A callback measuring the median wall time of a training step (the first two of each fit call,
    which include tracing, are left out); keras is imported here so the CLI can quiet TensorFlow first."""
    import statistics

    import keras

    class StepTimer(keras.callbacks.Callback):
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

    return StepTimer()


def main(argv=None):
    quiet_tensorflow()
    return train(build_parser().parse_args(argv))


if __name__ == "__main__":
    run_cli(main)
