"""pix2pix speed: `python -m benchmarks.pix2pix_benchmark [--task deblur --image-size 256 --batch-size 8]`.

Prints one JSON object for this machine:
- parameter counts of the task's generator and discriminator (for the default 256 U-Net: 54,413,955
  trainable, 54,423,811 in all, i.e. the TF tutorial's 54,425,859 minus its bottleneck norm's 2,048);
- training: median seconds per `Pix2Pix.train_step` (one D update + one G update, `n_critic` D updates)
  at the given batch and crop, on random data, with a randomly initialised VGG-19 when the task has a
  perceptual/content term (the same cost as ImageNet weights), after `--warmup` traced steps;
- inference: median seconds for the generator on one `--photo` sized image (default 720x1280).
"""
import argparse
import json
import statistics
import time

import numpy as np
import tensorflow as tf

from common import training
from common.cli import run_cli
from common.vgg import PERCEPTUAL_LAYERS_003, build_vgg19_features
from pix2pix.recipe import VGG_TERMS, build_gan
from pix2pix.tasks import TASKS, get_task


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="deblur", choices=tuple(TASKS))
    p.add_argument("--image-size", type=int, default=None, help="training crop (task preset)")
    p.add_argument("--batch-size", type=int, default=None, help="training batch (task preset)")
    p.add_argument("--depth", type=int, default=None)
    p.add_argument("--base-filters", type=int, default=None)
    p.add_argument("--steps", type=int, default=10, help="timed training steps")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--photo", default="720x1280", help="HxW of the inference timing")
    p.add_argument("--mixed-precision", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--jit-compile", action="store_true")
    args = p.parse_args(argv)
    mixed = training.configure_precision(args.mixed_precision)
    overrides = {"image_size": args.image_size, "batch_size": args.batch_size, "depth": args.depth,
                 "base_filters": args.base_filters}
    task = get_task(args.task).settings({k: v for k, v in overrides.items() if v is not None})
    vgg = build_vgg19_features(PERCEPTUAL_LAYERS_003, weights=None) \
        if any(getattr(task, n) for n in VGG_TERMS) else None
    gan = build_gan(task, vgg)
    rng = np.random.default_rng(0)
    shape = (task.batch_size, task.image_size, task.image_size, 3)
    batch = (tf.constant(rng.random(shape, dtype=np.float32)), tf.constant(rng.random(shape, dtype=np.float32)))
    step = tf.function(gan.train_step, jit_compile=args.jit_compile)
    for _ in range(args.warmup):
        step(batch)
    train_s = _median_seconds(lambda: [float(v) for v in step(batch).values()], args.steps)

    h, w = (int(v) for v in args.photo.lower().split("x"))
    photo = tf.constant(rng.random((1, h, w, 3), dtype=np.float32))
    infer = tf.function(lambda x: gan(x, training=False))
    infer(photo)
    infer_s = _median_seconds(lambda: infer(photo).numpy(), 3)

    count = lambda ws: int(sum(int(np.prod(v.shape)) for v in ws))  # noqa: E731
    report = {
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "task": task.task, "batch_size": task.batch_size, "image_size": task.image_size, "depth": task.depth,
        "base_filters": task.base_filters, "gan_loss": task.gan_loss, "n_critic": task.n_critic,
        "perceptual_vgg": vgg is not None, "mixed_precision": mixed, "jit_compile": args.jit_compile,
        "generator_params": {"trainable": count(gan.generator.trainable_weights), "all": count(gan.generator.weights)},
        "discriminator_params": {"trainable": count(gan.discriminator.trainable_weights),
                                 "all": count(gan.discriminator.weights)},
        "train_step_s": round(train_s, 4), "train_images_per_s": round(task.batch_size / train_s, 2),
        "inference_s": round(infer_s, 4), "inference_photo": f"{h}x{w}",
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    run_cli(main)
