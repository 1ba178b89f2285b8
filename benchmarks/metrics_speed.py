"""Time each metric of `common.metrics` per image, traced once with `tf.function` (after a warm-up call).

    python benchmarks/metrics_speed.py [--batch 50] [--size 100] [--repeats 5]

Uses random images, so it needs no data; reports milliseconds per image for each metric.
"""
import argparse
import time

import numpy as np
import tensorflow as tf

from common import metrics as M

METRICS = {"psnr": M.psnr, "psnr_per_channel_mean": M.psnr_per_channel_mean, "ssim": M.ssim,
           "ms_ssim": M.ms_ssim, "uqi": M.uqi}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--size", type=int, default=100, help="square image side in pixels")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a = rng.random((args.batch, args.size, args.size, 3), dtype=np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    a, b = tf.constant(a), tf.constant(b)
    print(f"{args.batch} images of {args.size}x{args.size}x3 on {tf.config.list_logical_devices()[-1].name}")
    for name, fn in METRICS.items():
        graph = tf.function(lambda x, y, fn=fn: fn(x, y, max_val=1.0))
        graph(a, b).numpy()
        start = time.perf_counter()
        for _ in range(args.repeats):
            graph(a, b).numpy()
        per_image = (time.perf_counter() - start) / args.repeats / args.batch * 1e3
        print(f"{name:>22}: {per_image:8.3f} ms/image")


if __name__ == "__main__":
    main()
