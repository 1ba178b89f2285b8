"""Score a trained pix2pix generator on a task's test pairs, next to the degraded input and a classical baseline.

    python -m pix2pix.evaluate --task deblur --weights runs/pix2pix-deblur/best_generator.keras \
        --data-dir PHOTOS --out eval/deblur
    python -m pix2pix.evaluate --task deblur --demo --weights ... --out ...   # the demo's test photos

One table (metrics.json + metrics.md) with PSNR, SSIM, UQI, seed 000's mean of per-channel PSNRs and, for
overexposure, seed 003's luminance/contrast/saturation histogram intersections with the targets, for:
the model, the model followed by the contrast stretch (deblur, `--contrast-stretch`), the degraded input
itself, and the classical baseline (`pix2pix.baselines`). Outputs are clipped to [0, 1]; for LDR->HDR
everything is compared after the tone map `x / (1 + x)` (see `pix2pix.tasks`). Also writes
`examples.png` (input | output | baseline | target) and every image under `pairs/{input,output,baseline,
target}/<name>.png` (HDR outputs also as `.hdr`).
"""
import argparse
import json
import pathlib

import numpy as np

from common.cli import quiet_tensorflow, run_cli

ROWS = (("psnr", "PSNR per image, dB"), ("psnr_per_channel_mean", "PSNR mean over channels (seed 000), dB"),
        ("ssim", "SSIM"), ("uqi", "UQI (Wang & Bovik)"))


def build_parser():
    p = argparse.ArgumentParser(prog="python -m pix2pix.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--task", required=True, choices=("phone2dslr", "deblur", "ldr2hdr", "overexposure"))
    p.add_argument("--weights", required=True, help="generator .keras file from a pix2pix run")
    p.add_argument("--data-dir", default=None, help="the task's data folder (as for training)")
    p.add_argument("--demo", action="store_true", help="use the offline demo data (built if missing)")
    p.add_argument("--demo-dir", default=None, help="where the demo data lives (default OUT/demo_data)")
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--phone", default="iphone", help="phone2dslr: the DPED phone sub-folder")
    p.add_argument("--limit", type=int, default=0, help="score the first N pairs only (0: all)")
    p.add_argument("--crop", type=int, default=0, help="deblur/overexposure: centre crop of this side (0: whole)")
    p.add_argument("--tau", type=float, default=None, help="overexposure: clipping threshold (0.5)")
    p.add_argument("--random-tau", action="store_true", help="overexposure: tau uniform in [0.5, 1] per image")
    p.add_argument("--contrast-stretch", action="store_true", help="also score the model + contrast stretch")
    p.add_argument("--inference-mode", choices=("moving", "batch"), default="moving",
                   help="moving statistics (deterministic) or test-batch statistics with dropout (pix2pix paper)")
    p.add_argument("--examples", type=int, default=4, help="rows in examples.png")
    p.add_argument("--seed", type=int, default=0, help="the training run's seed (it chose the data split)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true")
    return p


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


def evaluate(model, task, pairs, *, contrast_stretch=False, progress=True):
    """Metrics of model / input / baseline over `pairs` [(input, target, meta)]; returns (results, images)."""
    import tensorflow as tf
    from tqdm.auto import tqdm

    from common.metrics import MetricAccumulator
    from pix2pix.gan import tone_map

    view = (lambda x: np.asarray(tone_map(tf.constant(x)))) if task.target_range == "linear" \
        else (lambda x: np.clip(x, 0.0, 1.0))
    rows = ["model"] + (["model + contrast stretch"] if contrast_stretch else []) + ["input", "baseline"]
    acc = {name: MetricAccumulator(max_val=1.0, metrics=("psnr", "ssim", "uqi")) for name in rows}
    run = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    images, exposure = [], {}
    for x, y, meta in tqdm(pairs, desc=f"evaluating {task.name}", disable=not progress):
        output = np.asarray(run(tf.constant(x[None])))[0]
        candidates = {"model": output, "input": x, "baseline": task.baseline(x, meta)}
        if contrast_stretch:
            candidates["model + contrast stretch"] = task.postprocess_output(np.clip(output, 0, 1)) \
                if task.postprocess == "contrast_stretch" else output
        target = view(y)
        for name in rows:
            acc[name].update(view(candidates[name]), target)
        images.append((meta["name"], x, output, candidates["baseline"], y))
        if task.name == "overexposure":
            exposure.setdefault("target", []).append(target)
            for name in rows:
                exposure.setdefault(name, []).append(view(candidates[name]))
    results = {}
    for name in rows:
        r = acc[name].result()
        results[name] = {"psnr": r.get("psnr_per_image"), "psnr_per_channel_mean": r.get("psnr_per_channel_mean"),
                         "ssim": r.get("ssim"), "uqi": r.get("uqi"), "n_images": r["n_images"]}
    if exposure:
        from common.plots import exposure_similarity

        similarity = exposure_similarity(exposure, reference="target")
        for name in rows:
            results[name].update({f"hist_{feature}": value for feature, value in similarity[name].items()})
    return results, images


def _write_images(out, task, images, n_examples):
    from pix2pix.gan import tone_map
    from common import plots
    from common.images import write_image
    from pix2pix.hdr import write_radiance

    linear = task.target_range == "linear"
    show = (lambda z: np.asarray(tone_map(z))) if linear else (lambda z: np.clip(z, 0.0, 1.0))
    for name, x, output, baseline, y in images:
        write_image(out / "pairs" / "input" / f"{name}.png", x)
        for folder, image in (("output", output), ("baseline", baseline), ("target", y)):
            write_image(out / "pairs" / folder / f"{name}.png", show(image))
            if linear:
                write_radiance(out / "pairs" / folder / f"{name}.hdr", image)
    rows = [(x, show(output), show(baseline), show(y)) for _, x, output, baseline, y in images[:n_examples]]
    if rows:
        plots.image_grid(rows, titles=("input", "output", "baseline", "target"), save_to=out / "examples.png")


def main(argv=None):
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notes for differently sized test photos are expected
    from common.errors import PhotoEnhanceError
    from pix2pix.gan import Pix2Pix, load_generator
    from pix2pix.tasks import TaskData, get_task, prepare_demo

    out = pathlib.Path(args.out)
    task = get_task(args.task, tau=args.tau, random_tau=True if args.random_tau else None,
                    postprocess="contrast_stretch" if args.contrast_stretch else None,
                    inference_mode=args.inference_mode)
    if args.contrast_stretch and task.name != "deblur":
        raise PhotoEnhanceError("--contrast-stretch is seed 000's deblurring post-processing (--task deblur)")
    if args.demo:
        data_dir = prepare_demo(task, pathlib.Path(args.demo_dir) if args.demo_dir else out / "demo_data",
                                n_train=400, n_test=24)
    elif args.data_dir:
        data_dir = pathlib.Path(args.data_dir)
    else:
        raise PhotoEnhanceError("give --data-dir DIR (the task's data, as for training) or --demo")
    generator = load_generator(args.weights)
    td = TaskData(task, data_dir, phone=args.phone, split_seed=args.seed)
    pairs = td.pairs(args.split, image_size=args.crop or None, limit=args.limit or None)
    if not pairs:
        raise PhotoEnhanceError(f"{data_dir}: no {args.split} pairs for task {task.name}")
    model = Pix2Pix.for_inference(generator, task.target_range, args.inference_mode)
    results, images = evaluate(model, task, pairs, contrast_stretch=args.contrast_stretch,
                               progress=not args.no_progress)
    out.mkdir(parents=True, exist_ok=True)
    report = {"task": task.name, "weights": str(args.weights), "data": td.describe(), "split": args.split,
              "n_pairs": len(pairs), "inference_mode": args.inference_mode,
              "metric_space": "tone map x/(1+x)" if task.target_range == "linear" else "clipped [0, 1]",
              "results": results, "reported_by_seed": task.reported}
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    table = _markdown(results, len(pairs))
    (out / "metrics.md").write_text(table)
    _write_images(out, task, images, args.examples)
    print(table)
    return report


if __name__ == "__main__":
    run_cli(main)
