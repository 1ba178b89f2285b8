"""Throughput of the DPED patch pipeline: pairs per second of `random_pair_batches` at batch 50.

    python -m benchmarks.data_pipeline                       # generated folder of 100x100 JPEG pairs
    python -m benchmarks.data_pipeline --data ../shared/dped/patches --phone iphone --split test

Also prints the cost of decoding one 100x100 JPEG (the per-element work) measured in a tight loop.
DPED's training step on a T4 consumes about 50 pairs per ~0.1-0.2 s, so the pipeline must deliver
several hundred pairs per second to keep the GPU busy.
"""
import argparse
import pathlib
import tempfile
import time

from common.cli import run_cli


def make_folder(root, n, size=100, seed=0):
    """`n` pairs of random-texture size x size JPEGs in `<root>/{phone,canon}/<i>.jpg` (reused if present)."""
    import numpy as np

    from common.images import write_image

    root = pathlib.Path(root)
    if len(list((root / "canon").glob("*.jpg"))) == n:
        return root
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size * 4, size * 4, 3), dtype=np.uint8)
    for i in range(n):
        top, left = rng.integers(0, 3 * size, 2)
        patch = base[top: top + size, left: left + size]
        write_image(root / "canon" / f"{i}.jpg", patch)
        write_image(root / "phone" / f"{i}.jpg", (patch * 0.8).astype(np.uint8))
    return root


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="DPED data dir (any layout dped_folders accepts); default: generate")
    parser.add_argument("--phone", default="iphone")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--pairs", type=int, default=3000, help="pairs to generate when --data is not given")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--batches", type=int, default=60, help="batches to time (after 5 warm-up batches)")
    args = parser.parse_args(argv)
    import tensorflow as tf

    from common import data

    if args.data:
        files_a, files_b = data.paired_files(*data.dped_folders(args.data, args.phone, args.split))
        source = args.data
    else:
        root = make_folder(pathlib.Path(tempfile.gettempdir()) / f"dped_bench_{args.pairs}", args.pairs)
        files_a, files_b = data.paired_files(root / "phone", root / "canon")
        source = f"{root} (generated)"
    t0 = time.perf_counter()
    ds = data.random_pair_batches(files_a, files_b, args.batch_size, seed=0, batches_per_step=1)
    setup = time.perf_counter() - t0
    it = iter(ds)
    for _ in range(5):
        next(it)
    t0 = time.perf_counter()
    for _ in range(args.batches):
        next(it)
    elapsed = time.perf_counter() - t0
    pairs_per_s = args.batches * args.batch_size / elapsed

    decode = tf.function(data.decode_image)
    decode(tf.constant(files_a[0]))
    n = min(500, len(files_a))
    t0 = time.perf_counter()
    for f in files_a[:n]:
        decode(tf.constant(f))
    per_decode = (time.perf_counter() - t0) / n

    print(f"data: {source}, {len(files_a)} pairs; header check + setup {setup:.2f} s")
    print(f"random_pair_batches, batch {args.batch_size}: {pairs_per_s:.0f} pairs/s "
          f"({elapsed / args.batches * 1000:.1f} ms per batch)")
    print(f"decode one image (read + JPEG decode, called one at a time): {per_decode * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    run_cli(main)
