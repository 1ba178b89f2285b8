"""Peak resident memory and speed of the real `dped.enhance` command, each run in a fresh process.

For every photo size and `--memory-budget-mb`, runs `python -m dped.enhance` on one photo (made by resizing
`--photo`, a real phone photo, to 1280x720, 4000x3000 and 6000x4000 and saving it as JPEG 95) and reads
the child's peak resident memory from `os.wait4`; the SavedModel of the same network runs in the same
session for comparison. "photo s" (and seconds per megapixel) leave out the start-up (TensorFlow import,
model load): they are the seconds the command itself reports for the photo. Outputs of the same photo at
different budgets are compared with the largest-budget Keras run (the whole-photo result where it fits):
tiling with whole-photo norm statistics must stay within one uint8 level of it.

    python -m dped.convert_original --checkpoint ../shared/dped/pretrained/iphone_orig --output /tmp/iphone.keras
    python -m dped.export --weights /tmp/iphone.keras --out /tmp/iphone_sm
    python benchmarks/enhance_memory.py --weights /tmp/iphone.keras --saved-model /tmp/iphone_sm \
        --photo ../shared/dped/full_size/0.png

Measured 2026-12-02 on the project's 2 CPU cores while other jobs shared them (load 2-10, so seconds are
comparable only within one run), the authors' iphone network converted as above, photo 0.png:
- 1280x720: 512 MB refused (the command needs 698 MB before any photo); 1024 MB: peak 947 MB, 79.9 s,
  within 1 level of the whole photo; 2048 MB (whole photo): 1,677 MB, 16.1 s; SavedModel: 1,681 MB,
  17.3 s, the same pixels as the Keras whole-photo run.
- 4000x3000 at 1024 MB (`--sizes 12mp --budgets 1024`): peak 881 MB, 1,737 s wall (143 s per MP).
- 6000x4000 at 1024 MB: refused before enhancing (peak 1,020 MB while reading the photo); at 2048 MB:
  peak 1,818 MB, 1,595 s (66 s per MP); SavedModel at 2048 MB (blended tiles, not exact): 2,455 MB
  before blended tiles planned their float buffers, 2,092 MB with 16 B per pixel for them, 956 s.
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

SIZES = {"720p": (1280, 720), "12mp": (4000, 3000), "24mp": (6000, 4000)}
REPO = pathlib.Path(__file__).resolve().parents[1]


def run_enhance(photo, source, out_dir, budget_mb):
    """Run the command once in a fresh process: (exit code, peak RSS in MB, wall seconds, seconds the
    command reports for the photo itself, last stderr line)."""
    cmd = [sys.executable, "-m", "dped.enhance", str(photo), *source, "--output-dir", str(out_dir),
           "--format", "png", "--memory-budget-mb", str(budget_mb), "--no-progress", "--overwrite"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    start = time.time()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.time() - start
        out.seek(0)
        err.seek(0)
        reported = re.search(r" in ([0-9.]+) s;", out.read().decode(errors="replace"))
        lines = err.read().decode(errors="replace").strip().splitlines()
    seconds = float(reported.group(1)) if reported else None
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, wall, seconds, (lines or [""])[-1]


def make_photos(source, folder, sizes):
    """The test photos: `source` resized (Lanczos) to each size, JPEG 95; plus a 64x64 start-up photo."""
    image = Image.open(source).convert("RGB")
    photos = {}
    for name in sizes:
        photos[name] = folder / f"{name}.jpg"
        image.resize(SIZES[name], Image.LANCZOS).save(photos[name], quality=95)
    photos["startup"] = folder / "startup.jpg"
    image.resize((64, 64), Image.LANCZOS).save(photos["startup"], quality=95)
    return photos


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="the paper network as .keras")
    parser.add_argument("--saved-model", help="the same network exported by dped.export (compared at 2048 MB)")
    parser.add_argument("--photo", required=True, help="a real photo to resize, e.g. shared/dped/full_size/0.png")
    parser.add_argument("--sizes", default="720p,12mp,24mp", help=f"comma-separated, from {sorted(SIZES)}")
    parser.add_argument("--budgets", default="512,1024,2048", help="comma-separated --memory-budget-mb values")
    args = parser.parse_args(argv)
    sizes = args.sizes.split(",")
    budgets = [int(b) for b in args.budgets.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        photos = make_photos(args.photo, tmp, sizes)
        _, startup_rss, startup_s, _, _ = run_enhance(photos["startup"], ["--weights", args.weights], tmp / "s",
                                                      2048)
        print(f"start-up and a 64x64 photo: {startup_rss:.0f} MB, {startup_s:.1f} s", flush=True)
        rows = []
        for name in sizes:
            runs = [("keras", ["--weights", args.weights], b) for b in budgets]
            if args.saved_model:
                runs.append(("savedmodel", ["--saved-model", args.saved_model], 2048))
            rows += measure_size(name, photos[name], runs, tmp)
    print("\n| photo | model | budget MB | exit | peak RSS MB | wall s | photo s | s / MP | max diff vs reference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


def measure_size(name, photo, runs, tmp):
    """All runs of one photo; the largest-budget successful Keras run is the reference for the diff."""
    megapixels = SIZES[name][0] * SIZES[name][1] / 1e6
    results = []
    for kind, source, budget in runs:
        out = tmp / f"{name}-{kind}-{budget}"
        code, rss, wall, seconds, last = run_enhance(photo, source, out, budget)
        image = np.asarray(Image.open(out / f"{name}.png"), np.int16) if code == 0 else None
        results.append((kind, budget, code, rss, wall, seconds, last, image))
        print(f"{name} {kind} {budget} MB: exit {code}, {rss:.0f} MB, {wall:.1f} s wall, {seconds} s photo "
              f"{last if code else ''}", flush=True)
    done = [r for r in results if r[0] == "keras" and r[2] == 0]
    reference = max(done, key=lambda r: r[1])[7] if done else None
    rows = []
    for kind, budget, code, rss, wall, seconds, last, image in results:
        diff = "-" if image is None or reference is None else str(int(np.abs(image - reference).max()))
        speed = f"{seconds:.1f} | {seconds / megapixels:.1f}" if code == 0 and seconds else f"- | {last[:90]}"
        rows.append([name, kind, str(budget), str(code), f"{rss:.0f}", f"{wall:.1f}", speed, diff])
    return rows


if __name__ == "__main__":
    main()
