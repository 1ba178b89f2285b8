"""Score a DPED generator on paired test patches against the DSLR photos, next to the unprocessed phone photos.

    python -m dped.evaluate --phone iphone --weights iphone.keras --test-dir dped/ --out eval/
    python -m dped.evaluate --phone iphone --original-checkpoint models_orig/iphone_orig \
        --test-dir test_patches/ --out eval/

`--test-dir` is the DPED root (`dped/<phone>/test_data/patches/{<phone>,canon}`) or any folder holding
`<phone>/` and `canon/` with same-named patches. Two PSNR conventions are reported under their names
(SPEC "DPED evaluation conventions"; they differ by more than 2 dB):
- `psnr_per_image`: challenge style, per-image PSNR of the output clipped to [0,1], averaged;
- `psnr_batch_mse`: training-script style, PSNR of the mean MSE of the *unclipped* output over
  consecutive batches of 50, averaged over batches.
SSIM, MS-SSIM (the authors' 100x100-capable variant) and UQI use the clipped output. Writes
`metrics.json`, `metrics.md` and `examples.png` (phone | enhanced | DSLR) to `--out`.
"""
import argparse
import json
import pathlib

import numpy as np
from tqdm import tqdm

from common.atomic_files import write_text
from common.cli import console_script
from common.data import dped_folders, paired_files
from common.enhance_cli import add_source_flags, chosen_source, quiet_native_logs
from common.errors import DataLayoutError
from common.images import read_image, to_float
from common.metrics import MetricAccumulator
from common.plots import image_grid
from dped.loading import SOURCES, make_predictor

MSE_BATCH = 50
ROWS = (("psnr_per_image", "PSNR per image, clipped (challenge), dB"),
        ("psnr_batch_mse", "PSNR of batch-mean MSE, unclipped (training script), dB"),
        ("psnr_per_channel_mean", "PSNR mean over channels, clipped, dB"),
        ("ssim", "SSIM"), ("ms_ssim", "MS-SSIM (authors' method)"), ("uqi", "UQI (Wang & Bovik)"))


def test_pairs(test_dir, phone):
    """(phone files, DSLR files) paired by name, from the DPED root or a `<phone>/` + `canon/` folder."""
    phone_dir, dslr_dir = dped_folders(test_dir, phone, split="test")
    return paired_files(phone_dir, dslr_dir)


def _batches(files_a, files_b, size):
    for start in range(0, len(files_a), size):
        a = [read_image(f) for f in files_a[start:start + size]]
        b = [read_image(f) for f in files_b[start:start + size]]
        for fa, fb, x, y in zip(files_a[start:], files_b[start:], a, b):
            if x.shape != y.shape:
                raise DataLayoutError(f"{fa} is {x.shape[1]}x{x.shape[0]} but its DSLR partner {fb} is "
                                      f"{y.shape[1]}x{y.shape[0]}")
        yield a, b, [to_float(x) for x in a], [to_float(y) for y in b]


def _run(predictor, images):
    """Enhance a list of float images: one batch when they share a size, else one by one."""
    if len({x.shape for x in images}) == 1:
        return list(predictor(np.stack(images)))
    return [predictor(x[None])[0] for x in images]


def evaluate(predictor, phone_files, dslr_files, *, batch_size=MSE_BATCH, num_examples=4, progress=True):
    """Metrics of the enhanced output and of the phone photos vs the DSLR photos, and example triplets."""
    enhanced = MetricAccumulator(max_val=1.0, mse_batch_size=MSE_BATCH)
    unclipped = MetricAccumulator(max_val=1.0, metrics=("psnr",), mse_batch_size=MSE_BATCH)
    phone = MetricAccumulator(max_val=1.0, mse_batch_size=MSE_BATCH)
    examples = []
    bar = tqdm(total=len(phone_files), desc="evaluating", unit="patch", disable=not progress)
    for raw_phone, raw_dslr, x, y in _batches(phone_files, dslr_files, batch_size):
        out = _run(predictor, x)
        groups = [(np.stack(x), np.stack(y), np.stack(out))] if len({a.shape for a in x}) == 1 else [
            (xi[None], yi[None], oi[None]) for xi, yi, oi in zip(x, y, out)]
        for xs, ys, outs in groups:
            enhanced.update(np.clip(outs, 0.0, 1.0), ys)
            unclipped.update(outs, ys)
            phone.update(xs, ys)
        for i in range(min(len(x), num_examples - len(examples))):
            examples.append((raw_phone[i], np.clip(out[i], 0.0, 1.0), raw_dslr[i]))
        bar.update(len(x))
    bar.close()
    result = {"enhanced": enhanced.result(), "phone": phone.result()}
    result["enhanced"]["psnr_batch_mse"] = unclipped.result()["psnr_batch_mse"]
    per_image = {"enhanced": enhanced.per_image(), "phone": phone.per_image()}
    return result, per_image, examples


def _fmt(value):
    return "n/a" if value is None else f"{value:.4f}"


def write_report(out_dir, result, per_image, examples, meta):
    """metrics.json (means, per-image values, settings), metrics.md (a table) and examples.png, each
    written whole or not at all."""
    out_dir = pathlib.Path(out_dir)
    payload = {**meta, "conventions": {k: label for k, label in ROWS}, **result, "per_image": per_image}
    write_text(out_dir / "metrics.json", json.dumps(payload, indent=2))
    lines = [f"# DPED evaluation: {meta['phone']} vs DSLR ({result['enhanced']['n_images']} pairs)", "",
             f"Model: `{meta['model']}`. Test data: `{meta['test_dir']}`. "
             f"Identical phone/DSLR pairs (PSNR = inf, left out of PSNR means): {result['phone']['n_identical']}.",
             "", "| metric | phone photo | enhanced |", "|---|---|---|"]
    for key, label in ROWS:
        lines.append(f"| {label} | {_fmt(result['phone'].get(key))} | {_fmt(result['enhanced'].get(key))} |")
    write_text(out_dir / "metrics.md", "\n".join(lines) + "\n")
    if examples:
        import matplotlib

        matplotlib.use("Agg")
        fig = image_grid(examples, titles=("phone", "enhanced", "DSLR"), save_to=out_dir / "examples.png")
        import matplotlib.pyplot as plt

        plt.close(fig)
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dped.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--phone", default="iphone", help="phone folder name: iphone, sony or blackberry")
    parser.add_argument("--test-dir", required=True, help="DPED root, or a folder with <phone>/ and canon/")
    parser.add_argument("--out", required=True, help="folder for metrics.json, metrics.md, examples.png")
    add_source_flags(parser, SOURCES)
    parser.add_argument("--examples", type=int, default=4, help="rows in examples.png (0: no figure)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    args = parser.parse_args(argv)
    with quiet_native_logs(args.verbose):
        phone_files, dslr_files = test_pairs(args.test_dir, args.phone)
        source, value = chosen_source(args, SOURCES)
        predictor = make_predictor(source.load(value))
        result, per_image, examples = evaluate(predictor, phone_files, dslr_files, num_examples=args.examples)
    meta = {"phone": args.phone, "test_dir": str(args.test_dir),
            "model": value,
            "files": [pathlib.Path(f).name for f in phone_files]}
    out = write_report(args.out, result, per_image, examples, meta)
    print((out / "metrics.md").read_text())
    return 0


cli = console_script(main)


if __name__ == "__main__":
    cli()
