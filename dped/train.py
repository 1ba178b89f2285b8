"""Train DPED (Ignatov et al. 2017): `python -m dped.train --phone sony` (paper defaults) or `--demo`.

Defaults are the authors': 20,000 iterations, batch 50, Adam 5e-4, 100x100 patches, validation every
1,000 iterations, the "code" loss weights (10 content, 0.5 color, 1 texture, 2000 tv). The run folder
(`--out`, default runs/dped-<phone>) holds checkpoints/ (resumable: re-run the same command after an
interruption and training continues from the last checkpoint with exactly the batches and random draws
the uninterrupted run would have used), history.jsonl, tensorboard/, best_generator.keras (by validation
PSNR), last_generator.keras, saved_model/ and summary.json.

`--demo` builds a small DPED-layout dataset offline (scikit-image sample photos) and trains a short run
with demo-sized defaults (batch 4, 40x40 patches, 200 iterations, validation every 100) chosen so that it
finishes in a few minutes on two CPU cores. Without the ImageNet VGG-19 weights the demo runs with the
content term disabled and says so; a normal run stops at the start instead (unless --content-weight 0).
"""
import argparse
import json
import os
import pathlib
import shutil
import sys
import time

from common.cli import add_runtime_flags, quiet_tensorflow, run_cli
from common.errors import PhotoEnhanceError

DEFAULTS = {"iterations": 20000, "batch_size": 50, "patch_size": 100, "eval_every": 1000, "log_every": 100}
DEMO_DEFAULTS = {"iterations": 200, "batch_size": 4, "patch_size": 40, "eval_every": 100, "log_every": 10}
DEMO_DATASET = {"n_train": 400, "n_test": 24, "patch_size": 100}
DATA_ENV = "DPED_DIR"


def build_parser():
    p = argparse.ArgumentParser(prog="python -m dped.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--phone", default="iphone", help="iphone, sony or blackberry (the DPED sub-folder)")
    p.add_argument("--data-dir", default=None,
                   help=f"folder holding dped/ (or dped/ itself); default ${DATA_ENV} or ./dped")
    p.add_argument("--demo", action="store_true", help="build and train on a small offline demo dataset")
    p.add_argument("--tfds", action="store_true",
                   help="read DPED through its TFDS builder (datasets/dped.py), prepared from --data-dir as the "
                        "manual dir in array_record format if needed; same batches and exact resume")
    p.add_argument("--tfds-data-dir", default=None, help="TFDS data folder (default: TFDS's own)")
    p.add_argument("--out", default=None, help="run folder (default runs/dped-<phone>[-demo])")
    p.add_argument("--iterations", type=int, default=None, help="total training steps (20000; demo 200)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch (50; demo 4)")
    p.add_argument("--patch-size", type=int, default=None, help="training patch side (100; demo 40)")
    p.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate of both networks")
    p.add_argument("--eval-every", type=int, default=None, help="validate every N steps (1000; demo 100)")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="checkpoint every N steps (default: --eval-every)")
    p.add_argument("--log-every", type=int, default=None,
                   help="history/TensorBoard scalars every N steps (100; demo 10)")
    p.add_argument("--keep-checkpoints", type=int, default=3, help="how many checkpoints to keep")
    p.add_argument("--val-limit", type=int, default=0, help="validate on the first N test patches only (0: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, batches and swaps")
    p.add_argument("--loss-preset", choices=("code", "paper"), default="code",
                   help="loss weights of the authors' code (10/0.5/1/2000) or of the paper (1/0.1/0.4/400)")
    for name in ("content", "color", "texture", "tv"):
        p.add_argument(f"--{name}-weight", type=float, default=None, help=f"override the preset's {name} weight")
    p.add_argument("--texture-warmup", type=int, default=0,
                   help="leave the texture term out of the generator loss for the first N steps (author's tip: 1-2K)")
    p.add_argument("--same-batch", action="store_true",
                   help="update G and D on the same batch (the authors use two separate random batches)")
    p.add_argument("--width", type=int, default=64, help="generator channels")
    p.add_argument("--blocks", type=int, default=4, help="generator residual blocks")
    add_runtime_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    return p


def resolve_settings(args):
    """Fill mode-dependent defaults (demo or paper) into a plain dict and check them."""
    base = DEMO_DEFAULTS if args.demo else DEFAULTS
    s = {k: (getattr(args, k) if getattr(args, k) is not None else v) for k, v in base.items()}
    s["checkpoint_every"] = args.checkpoint_every or s["eval_every"]
    suffix = "-demo" if args.demo else ""
    s["out"] = pathlib.Path(args.out or f"runs/dped-{args.phone}{suffix}")
    for key in ("iterations", "batch_size", "patch_size", "eval_every", "checkpoint_every", "log_every"):
        if s[key] < 1:
            raise PhotoEnhanceError(f"--{key.replace('_', '-')} must be at least 1, got {s[key]}")
    if s["patch_size"] < 32:
        raise PhotoEnhanceError(f"--patch-size must be at least 32 (the texture discriminator's 4 strided convs), "
                         f"got {s['patch_size']}")
    return s


def _data_dir(args, out):
    from common.demo_data import build_demo_dped

    if args.demo:
        root = pathlib.Path(args.data_dir) if args.data_dir else out / "demo_data"
        return build_demo_dped(root, phone=args.phone, seed=args.seed, **DEMO_DATASET)
    return pathlib.Path(args.data_dir or os.environ.get(DATA_ENV) or "dped")


def _build_vgg(args, weights, notes):
    """The content-loss VGG, or None (content weight 0, or demo without weights: noted)."""
    from common.errors import VGGWeightsUnavailable
    from common.vgg import DPED_CONTENT_LAYERS, build_vgg19_features

    if weights["content"] == 0:
        notes.append("content loss disabled (--content-weight 0)")
        return None
    try:
        return build_vgg19_features(DPED_CONTENT_LAYERS, weights=args.vgg_weights or "imagenet", same_pooling=True)
    except VGGWeightsUnavailable as exc:
        if not args.demo:
            raise
        weights["content"] = 0.0
        notes.append(f"content loss disabled: VGG-19 weights unavailable ({exc})")
        return None


def _export(generator, target):
    """SavedModel of `generator` in `target`, replacing an earlier export only once the new one is complete."""
    from common.export import export_saved_model

    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    export_saved_model(generator, tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def train(args):
    """Run (or resume) training as `args` says; returns the run summary dict (also in summary.json)."""
    from common import data, training
    from dped import models
    from dped.gan import DPEDGAN, resolve_loss_weights

    t0 = time.time()
    s = resolve_settings(args)
    out = s["out"]
    weights = resolve_loss_weights(args.loss_preset, content=args.content_weight, color=args.color_weight,
                                   texture=args.texture_weight, tv=args.tv_weight)
    data_dir = _data_dir(args, out)
    if args.tfds:
        from datasets.dped import data_sources

        sources = data_sources(args.phone, data_dir, args.tfds_data_dir)
        train_pairs = len(sources["train"])
    else:
        train_dirs = data.dped_folders(data_dir, args.phone, "train")
        test_dirs = data.dped_folders(data_dir, args.phone, "test")
        files_a, files_b = data.paired_files(*train_dirs)
        data.paired_files(*test_dirs)
        train_pairs = len(files_a)
    out.mkdir(parents=True, exist_ok=True)

    notes = []
    mixed = training.configure_precision(args.mixed_precision)
    strategy = training.get_strategy(args.strategy)
    replicas = strategy.num_replicas_in_sync
    if s["batch_size"] % replicas:
        raise PhotoEnhanceError(f"--batch-size {s['batch_size']} must be divisible by the {replicas} replicas")

    import keras

    keras.utils.set_random_seed(args.seed)
    with strategy.scope():
        vgg = _build_vgg(args, weights, notes)
        generator = models.build_generator(width=args.width, num_blocks=args.blocks)
        discriminator = models.build_discriminator(patch_size=s["patch_size"], logits=True)
        gan = DPEDGAN(generator, discriminator, vgg, loss_weights=weights, texture_warmup=args.texture_warmup,
                      same_batch=args.same_batch, seed=args.seed, from_logits=True)
        gan.compile(training.make_adam(args.lr, mixed=mixed, name="g_adam"),
                    training.make_adam(args.lr, mixed=mixed, name="d_adam"), jit_compile=args.jit_compile)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)

    ckpt = training.RunCheckpoint(out / "checkpoints", keep=args.keep_checkpoints, generator=generator,
                                  discriminator=discriminator, g_optimizer=gan.g_optimizer,
                                  d_optimizer=gan.d_optimizer, state=gan.state_variables())
    start = ckpt.restore() or 0
    gan.set_loss_weights(**weights)
    if start:
        print(f"resuming from step {start} ({ckpt.latest_path()})", file=sys.stderr)

    def make_dataset(step):
        batching = dict(seed=args.seed, start_step=step, patch_size=s["patch_size"],
                        batches_per_step=1 if args.same_batch else 2)
        if args.tfds:
            return data.tfds_pair_batches(sources["train"], s["batch_size"], **batching)
        return data.random_pair_batches(files_a, files_b, s["batch_size"], validate=False, **batching)

    if args.tfds:
        val_ds = data.tfds_pair_dataset(sources["test"], batch_size=min(s["batch_size"], 50))
    else:
        val_ds = data.paired_folder_dataset(*test_dirs, batch_size=min(s["batch_size"], 50))
    if args.val_limit > 0:
        val_ds = val_ds.unbatch().take(args.val_limit).batch(min(s["batch_size"], 50))
    tb = training.TensorBoardLogger(out / "tensorboard", s["log_every"])
    validation = training.ValidationCallback(
        val_ds, s["eval_every"], run_dir=out, tensorboard=tb, progress=not args.no_progress,
        save_best=lambda: training.save_model_atomic(generator, out / "best_generator.keras"))
    callbacks = [training.NaNGuard(), training.CheckpointCallback(ckpt, s["checkpoint_every"]),
                 training.HistoryLogger(out, s["log_every"]), tb, validation]
    if not args.no_progress:
        callbacks.append(training.ProgressBar(desc=f"DPED {args.phone}"))

    config = {"phone": args.phone, "data_dir": str(data_dir), "demo": args.demo, "seed": args.seed,
              "lr": args.lr, "loss_preset": args.loss_preset, "loss_weights": weights,
              "texture_warmup": args.texture_warmup, "same_batch": args.same_batch, "width": args.width,
              "blocks": args.blocks, "strategy": args.strategy, "replicas": replicas, "mixed_precision": mixed,
              "jit_compile": args.jit_compile, "tfds": args.tfds,
              "tfds_data_dir": args.tfds_data_dir, "train_pairs": train_pairs,
              **{k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in s.items()}}
    (out / "config.json").write_text(json.dumps(config, indent=2))

    step = training.fit_steps(gan, make_dataset, start_step=start, iterations=s["iterations"],
                              steps_per_epoch=s["eval_every"], callbacks=callbacks)
    training.finish_run(gan, generator, validation, out, step)
    _export(generator, out / "saved_model")

    best = json.loads((out / "best.json").read_text()) if (out / "best.json").exists() else validation.last
    summary = {"status": "finished", "steps": step, "resumed_from": start or None,
               "final_validation": validation.last, "best_validation": best,
               "content_loss": "enabled" if vgg is not None else "disabled", "notes": notes,
               "seconds_this_session": round(time.time() - t0, 1),
               "files": {k: str(out / k) for k in ("best_generator.keras", "last_generator.keras", "saved_model",
                                                   "history.jsonl", "tensorboard", "checkpoints")},
               "config": config}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    val = validation.last
    print(f"DPED {args.phone}: {step} steps; validation PSNR {val['val_psnr']:.2f} dB, SSIM {val['val_ssim']:.4f} "
          f"(best PSNR {best['val_psnr']:.2f} dB at step {best['step']}); run folder {out}")
    for note in notes:
        print(f"note: {note}")
    return summary


def main(argv=None):
    quiet_tensorflow()
    return train(build_parser().parse_args(argv))


if __name__ == "__main__":
    run_cli(main)
