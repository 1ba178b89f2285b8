"""Enhance photos with a trained pix2pix generator, at any size, tiling above a memory budget.

    python -m pix2pix.enhance --task deblur --weights runs/pix2pix-deblur/best_generator.keras \
        photos/ extra.jpg --output-dir enhanced/ [--contrast-stretch]
    python -m pix2pix.enhance --task deblur --saved-model runs/pix2pix-deblur/saved_model photos/ --output-dir out/

Outputs are PNGs named after the inputs; for ldr2hdr also the linear HDR result as `<name>.hdr` (the PNG
is its `x / (1 + x)` tone map). Large photos are processed in overlapping, blended tiles
(`common.tiling`); with `--inference-mode batch` each tile then uses its own batch statistics.
"""
import argparse
import pathlib

import numpy as np

from common.cli import quiet_tensorflow, run_cli
from common.images import collect_image_files
from common.errors import PhotoEnhanceError

DEFAULT_MEMORY_BUDGET_MB = 2048



def make_predictor(task, weights=None, saved_model=None, inference_mode="moving"):
    """`fn([1,h,w,3] float32 in [0,1]) -> [1,h,w,3]` output (linear values for HDR) from exactly one source."""
    import tensorflow as tf

    if bool(weights) == bool(saved_model):
        raise PhotoEnhanceError("give exactly one of --weights and --saved-model")
    if saved_model:
        from common.export import load_saved_model_signature

        fn = load_saved_model_signature(saved_model, "float32")
        return lambda x: np.asarray(fn(np.asarray(x, np.float32)))
    from pix2pix.gan import Pix2Pix, load_generator

    model = Pix2Pix.for_inference(load_generator(weights), task.target_range, inference_mode)
    traced = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: np.asarray(traced(tf.convert_to_tensor(x, tf.float32)))


def enhance_image(predictor, image_uint8, *, memory_budget_bytes=None, tile=None, overlap=None):
    """One uint8 [H,W,3] photo -> float32 [H,W,3] output (unclipped: HDR values survive)."""
    from common.images import to_float
    from common.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, enhance_tiled

    return enhance_tiled(predictor, to_float(image_uint8), tile=tile or DEFAULT_TILE,
                         overlap=DEFAULT_OVERLAP if overlap is None else overlap,
                         memory_budget_bytes=memory_budget_bytes)


def main(argv=None):
    quiet_tensorflow()
    p = argparse.ArgumentParser(prog="python -m pix2pix.enhance", description=__doc__.split("\n")[0])
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--task", required=True, choices=("phone2dslr", "deblur", "ldr2hdr", "overexposure"))
    p.add_argument("--output-dir", required=True)
    p.add_argument("--weights", help="generator .keras file from a pix2pix run")
    p.add_argument("--saved-model", help="SavedModel folder written by pix2pix.export / pix2pix.train")
    p.add_argument("--inference-mode", choices=("moving", "batch"), default="moving")
    p.add_argument("--contrast-stretch", action="store_true", help="seed 000's (10, 240) stretch afterwards")
    p.add_argument("--memory-budget-mb", type=float, default=DEFAULT_MEMORY_BUDGET_MB)
    p.add_argument("--tile", type=int, default=None)
    p.add_argument("--overlap", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from tqdm.auto import tqdm

    from common.images import read_image, write_image
    from pix2pix.gan import tone_map
    from pix2pix.hdr import write_radiance
    from pix2pix.tasks import get_task

    task = get_task(args.task, postprocess="contrast_stretch" if args.contrast_stretch else None)
    files = collect_image_files(args.inputs)
    predictor = make_predictor(task, args.weights, args.saved_model, args.inference_mode)
    out_dir = pathlib.Path(args.output_dir)
    written = []
    for path in tqdm(files, desc="enhancing", disable=args.no_progress):
        output = enhance_image(predictor, read_image(path), memory_budget_bytes=args.memory_budget_mb * 2 ** 20,
                               tile=args.tile, overlap=args.overlap)
        if task.target_range == "linear":
            write_radiance(out_dir / f"{path.stem}.hdr", np.maximum(output, 0.0))
            output = np.asarray(tone_map(output))
        output = task.postprocess_output(np.clip(output, 0.0, 1.0))
        written.append(write_image(out_dir / f"{path.stem}.png", output))
    print(f"wrote {len(written)} image(s) to {out_dir}")
    return written


if __name__ == "__main__":
    run_cli(main)
