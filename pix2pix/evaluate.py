"""Score a trained pix2pix generator on a task's test pairs, next to the degraded input and a classical baseline.

    python -m pix2pix.evaluate --task deblur --weights runs/pix2pix-deblur/best_generator.keras \
        --data-dir PHOTOS --out eval/deblur
    python -m pix2pix.evaluate --task deblur --demo --weights ... --out ...   # the demo's test photos

One table (metrics.json + metrics.md) with PSNR, SSIM, UQI, seed 000's mean of per-channel PSNRs and,
for tasks that ask for it (overexposure), seed 003's luminance/contrast/saturation histogram
intersections with the targets, for: the model, the model followed by the task's post-processing
(`--contrast-stretch` for deblur), the degraded input itself, and the task's classical baseline
(`pix2pix.baselines`). Outputs are clipped to [0, 1]; models with a linear (HDR) output are compared
after the tone map `x / (1 + x)`. Also writes `examples.png` (input | output | baseline | target) and
every image under `pairs/{input,output,baseline,target}/<name>.png` (linear outputs also as `.hdr`).
Every file is written whole or not at all (`common.atomic_files`). The task options (`--tau`,
`--phone`, ...) are the training settings of the same name; a task refuses those it does not read.
"""
import argparse
import dataclasses
import json
import pathlib

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from common import plots
from common.atomic_files import write_text
from common.cli import console_script
from common.config import add_flags, given, setting
from common.errors import PhotoEnhanceError
from common.images import write_image
from common.metrics import MetricAccumulator
from pix2pix.config import Pix2PixSettings
from pix2pix.gan import Pix2Pix, tone_map
from pix2pix.loading import load_generator
from pix2pix.hdr import write_radiance
from pix2pix.tasks import TASKS, get_task

ROWS = (("psnr", "PSNR per image, dB"), ("psnr_per_channel_mean", "PSNR mean over channels (seed 000), dB"),
        ("ssim", "SSIM"), ("uqi", "UQI (Wang & Bovik)"))
DEMO_DATASET = {"n_train": 400, "n_test": 24}
SHARED_SETTINGS = ("seed", "inference_mode", "phone", "blur_sigma", "tau", "random_tau")
"""The `Pix2PixSettings` that change what evaluation computes: the split seed, the inference mode and
the task options that shape the evaluation data (each refused for tasks that do not read it)."""


def _copied(field):
    """`field` of `Pix2PixSettings` re-declared for another dataclass: same default, help and choices."""
    meta = field.metadata
    return field.name, field.type, setting(field.default, meta["help"], on_resume=meta["on_resume"],
                                           choices=meta["choices"], kind=meta["kind"])


EvaluationSettings = dataclasses.make_dataclass(
    "EvaluationSettings", [_copied(f) for f in dataclasses.fields(Pix2PixSettings) if f.name in SHARED_SETTINGS],
    frozen=True)
"""`SHARED_SETTINGS` as a dataclass of their own: the same flags, defaults and help as training's."""


def build_parser():
    p = argparse.ArgumentParser(prog="python -m pix2pix.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, choices=list(TASKS))
    p.add_argument("--weights", required=True, help="generator .keras file from a pix2pix run")
    p.add_argument("--data-dir", default=None, help="the task's data folder (as for training)")
    p.add_argument("--demo", action="store_true", help="use the offline demo data (built if missing)")
    p.add_argument("--demo-dir", default=None, help="where the demo data lives (default: OUT/demo_data)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="the split to score (default: test)")
    p.add_argument("--limit", type=int, default=0, help="score the first N pairs only (default 0: all)")
    p.add_argument("--crop", type=int, default=0,
                   help="evaluation size: centre crop side for photo tasks, resize side for fixed-size tasks "
                        "(default 0: whole photos / the task's size)")
    p.add_argument("--contrast-stretch", action="store_true",
                   help="deblur: also score the model + seed 000's contrast stretch")
    p.add_argument("--examples", type=int, default=4, help="rows in examples.png (default: 4)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return add_flags(p, EvaluationSettings)


def _markdown(results, n):
    names = list(results)
    lines = [f"| metric ({n} pairs) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    rows = list(ROWS) + [(k, f"{k[5:]} histogram intersection with the targets (seed 003)")
                         for k in results[names[0]] if k.startswith("hist_")]
    for key, label in rows:
        cells = []
        for name in names:
            value = results[name].get(key)
            cells.append("n/a" if value is None else f"{value:.2f}" if key.startswith("psnr") else f"{value:.4f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _view(settings):
    """How outputs and targets are compared: tone-mapped linear values, or photos clipped to [0, 1]."""
    if settings.target_range == "linear":
        return lambda x: np.asarray(tone_map(tf.constant(x, tf.float32)))
    return lambda x: np.clip(x, 0.0, 1.0)


def evaluate(model, task, settings, pairs, *, progress=True):
    """Metrics of model / input / baseline over `pairs` [(input, target, meta)]; returns (results, images)."""
    view = _view(settings)
    postprocessed = f"model + {settings.postprocess.replace('_', ' ')}" if settings.postprocess != "none" else None
    rows = ["model"] + ([postprocessed] if postprocessed else []) + ["input", "baseline"]
    acc = {name: MetricAccumulator(max_val=1.0, metrics=("psnr", "ssim", "uqi")) for name in rows}
    run = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    images, viewed = [], {name: [] for name in ["target", *rows]}
    for x, y, meta in tqdm(pairs, desc=f"evaluating {task.name}", disable=not progress):
        output = np.asarray(run(tf.constant(x[None])))[0]
        candidates = {"model": output, "input": x, "baseline": task.baseline(settings, x, meta)}
        if postprocessed:
            candidates[postprocessed] = task.postprocess_output(settings, np.clip(output, 0.0, 1.0))
        target = view(y)
        for name in rows:
            acc[name].update(view(candidates[name]), target)
        images.append((meta["name"], x, output, candidates["baseline"], y))
        if task.exposure_histograms:
            viewed["target"].append(target)
            for name in rows:
                viewed[name].append(view(candidates[name]))
    results = {}
    for name in rows:
        r = acc[name].result()
        results[name] = {"psnr": r.get("psnr_per_image"), "psnr_per_channel_mean": r.get("psnr_per_channel_mean"),
                         "ssim": r.get("ssim"), "uqi": r.get("uqi"), "n_images": r["n_images"]}
    if task.exposure_histograms:
        similarity = plots.exposure_similarity(viewed, reference="target")
        for name in rows:
            results[name].update({f"hist_{feature}": value for feature, value in similarity[name].items()})
    return results, images


def _write_images(out, settings, images, n_examples):
    """Every scored image under `pairs/<role>/<name>.png` (and `.hdr` for linear outputs), and the figure."""
    linear = settings.target_range == "linear"
    show = _view(settings)
    for name, x, output, baseline, y in images:
        write_image(out / "pairs" / "input" / f"{name}.png", x)
        for folder, image in (("output", output), ("baseline", baseline), ("target", y)):
            write_image(out / "pairs" / folder / f"{name}.png", show(image))
            if linear:
                write_radiance(out / "pairs" / folder / f"{name}.hdr", np.maximum(image, 0.0))
    rows = [(x, show(output), show(baseline), show(y)) for _, x, output, baseline, y in images[:n_examples]]
    if rows:
        plots.image_grid(rows, titles=("input", "output", "baseline", "target"), save_to=out / "examples.png")


def _settings(args, task):
    """The run's settings: the task preset < the options typed (refused when the task does not read them)."""
    options = given(args, EvaluationSettings)
    if args.contrast_stretch:
        options["postprocess"] = "contrast_stretch"
    task.refuse_options(options, flags={"postprocess": "--contrast-stretch"})
    return task.settings(options)


def _data_dir(args, task, out):
    if args.demo:
        return task.prepare_demo(pathlib.Path(args.demo_dir) if args.demo_dir else out / "demo_data", **DEMO_DATASET)
    if args.data_dir:
        return pathlib.Path(args.data_dir)
    raise PhotoEnhanceError("give --data-dir DIR (the task's data, as for training) or --demo")


def main(argv=None):
    tf.get_logger().setLevel("ERROR")  # retracing notes for differently sized test photos are expected
    args = build_parser().parse_args(argv)
    task = get_task(args.task)
    settings = _settings(args, task)
    out = pathlib.Path(args.out)
    data = task.open(settings, _data_dir(args, task, out))
    pairs = data.pairs(args.split, image_size=args.crop or None, limit=args.limit or None)
    if not pairs:
        raise PhotoEnhanceError(f"{data.data_dir}: no {args.split} pairs for task {task.name}")
    model = Pix2Pix.for_inference(load_generator(args.weights, task.name), settings.target_range,
                                  settings.inference_mode)
    results, images = evaluate(model, task, settings, pairs, progress=not args.no_progress)
    report = {"task": task.name, "weights": str(args.weights), "data": data.describe(), "split": args.split,
              "n_pairs": len(pairs), "inference_mode": settings.inference_mode,
              "metric_space": "tone map x/(1+x)" if settings.target_range == "linear" else "clipped [0, 1]",
              "results": results, "reported_by_seed": task.reported}
    table = _markdown(results, len(pairs))
    write_text(out / "metrics.json", json.dumps(report, indent=2))
    write_text(out / "metrics.md", table)
    _write_images(out, settings, images, args.examples)
    print(table)
    return report


cli = console_script(main)


if __name__ == "__main__":
    cli()
