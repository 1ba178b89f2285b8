"""Export a trained pix2pix generator as a SavedModel for serving: uint8 photos of any size in and out.

    python -m pix2pix.export --task deblur --weights runs/pix2pix-deblur/best_generator.keras --out exported/

Signatures (`common.export`): `serving_default` uint8 `[N,H,W,3]` -> uint8, and `float32` [0, 1] -> [0, 1]
(for ldr2hdr: linear HDR values, unclipped). The U-Net pads every input to a multiple of 2^depth itself.
The export runs the generator with its moving statistics and without dropout/noise (deterministic);
after writing, the command reloads the folder and checks it reproduces the Keras model on an odd-sized
random photo.
"""
import argparse
import pathlib

import numpy as np

from common.cli import quiet_tensorflow, run_cli
from common.errors import PhotoEnhanceError

PARITY_TOLERANCE = 1e-4


def export(task, generator, out_dir, check=True):
    """Write the SavedModel; with `check`, reload it and return the max |difference| to the Keras model."""
    from common.export import load_saved_model_signature
    from pix2pix.gan import Pix2Pix
    from pix2pix.train import export_generator

    out_dir = export_generator(generator, task, out_dir)
    if not check:
        return out_dir, None
    x = np.random.default_rng(0).random((1, 37, 53, 3), dtype=np.float32)
    expected = np.asarray(Pix2Pix.for_inference(generator, task.target_range)(x))
    got = np.asarray(load_saved_model_signature(out_dir, "float32")(x))
    diff = float(np.max(np.abs(expected - got)))
    if not diff <= PARITY_TOLERANCE:
        raise PhotoEnhanceError(f"{out_dir}: the reloaded SavedModel differs from the Keras model by {diff:.3g}")
    return out_dir, diff


def main(argv=None):
    quiet_tensorflow()
    p = argparse.ArgumentParser(prog="python -m pix2pix.export", description=__doc__.split("\n")[0])
    p.add_argument("--task", required=True, choices=("phone2dslr", "deblur", "ldr2hdr", "overexposure"))
    p.add_argument("--weights", required=True, help="generator .keras file from a pix2pix run")
    p.add_argument("--out", required=True, help="new (or empty) folder for the SavedModel")
    args = p.parse_args(argv)
    from pix2pix.gan import load_generator
    from pix2pix.tasks import get_task

    out_dir, diff = export(get_task(args.task), load_generator(args.weights), pathlib.Path(args.out))
    print(f"SavedModel written to {out_dir} (reload parity: max |diff| {diff:.2e})")
    return out_dir


if __name__ == "__main__":
    run_cli(main)
