"""Speed of the DPED dataset builder on 12 MP photo pairs: seconds per pair and patches kept per pair.

    python -m benchmarks.build_dped                          # shared DPED photos 0 and 1, upscaled
    python -m benchmarks.build_dped --photos a.jpg b.jpg --pairs 2

Each "DSLR" photo is a 4:3 centre crop of a real photo upscaled to 3000 x 4000 (12 MP); its "phone"
twin is the same photo through a random known homography (rotation up to 3 degrees, shift up to 40 px,
scale 0.9-1.1) plus `common.degradations.phone_degrade`. The timed part is the whole
`datasets.build_dped.build_dataset` call (decoding, alignment, patch search, JPEG writing, publishing),
from an empty output folder, with the default settings (100 px patches, stride 100, threshold 0.9).
Also prints the geometry error of each pair on a grid of its common area, against the known warp, and
the CPU time of the process (a fairer figure than wall time on a busy machine).
"""
import argparse
import pathlib
import tempfile
import time

import numpy as np
from skimage.transform import resize

from common.cli import run_cli
from datasets import alignment, build_dped
from common.images import read_image

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "dped" / "full_size"
SIZE = (3000, 4000)


def twelve_megapixels(photo):
    """The largest 4:3 centre crop of a landscape `photo`, resized to 3000 x 4000 pixels (rows x columns;
    a portrait photo: 3:4 and 4000 x 3000)."""
    h, w = photo.shape[:2]
    size = SIZE if w >= h else SIZE[::-1]
    crop_h = min(h, round(w * size[0] / size[1]))
    crop_w = round(crop_h * size[1] / size[0])
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    crop = photo[top: top + crop_h, left: left + crop_w]
    return np.round(resize(crop, size, order=3) * 255).clip(0, 255).astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", default=[str(SHARED / "0.png"), str(SHARED / "1.png")],
                        help="real photos to upscale (default: the shared DPED full-size photos 0 and 1)")
    parser.add_argument("--pairs", type=int, default=2, help="pairs to build (at least 2: train and test)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    photos = [twelve_megapixels(read_image(args.photos[i % len(args.photos)])) for i in range(args.pairs)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        phone_dir, dslr_dir = build_dped.write_synthetic_pairs(pathlib.Path(tmp) / "photos", photos, seed=args.seed)
        made = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        report = build_dped.build_dataset(phone_dir, dslr_dir, pathlib.Path(tmp) / "out", "bench", progress=False)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        rng = np.random.default_rng(args.seed)
        truths = [alignment.known_warp(p.shape, rng) for p in photos]
    print(f"{args.pairs} pairs of {SIZE[0]}x{SIZE[1]} photos from {', '.join(args.photos)} "
          f"(making them took {made:.0f} s)")
    for photo, truth in zip(report["photos"], truths):
        if photo["status"] != "ok":
            print(f"  pair {photo['key']}: skipped ({photo['reason']})")
            continue
        error = alignment.geometry_rms(np.array(photo["homography"]), truth, photo["common_box"], step=100)
        print(f"  pair {photo['key']}: {photo['inliers']} inliers, geometry error {error:.3f} px RMS, "
              f"kept {photo['kept']} patches, rejected {photo['rejected']}")
    t = report["totals"]
    kept = t["train_patches"] + t["test_patches"]
    print(f"seconds per 12 MP pair: {seconds / args.pairs:.1f} wall, {cpu / args.pairs:.1f} CPU (all threads)  "
          f"(build of {args.pairs} pairs: {seconds:.1f} s)")
    print(f"patches kept per pair: {kept / args.pairs:.0f}  (100x100, stride 100, threshold 0.9)")
    return {"seconds_per_pair": seconds / args.pairs, "cpu_seconds_per_pair": cpu / args.pairs,
            "patches_per_pair": kept / args.pairs}


if __name__ == "__main__":
    run_cli(main)
