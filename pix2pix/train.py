"""Train pix2pix on one task: `python -m pix2pix.train --task deblur --data-dir PHOTOS` (or `--demo`).

Tasks are the registered presets of `pix2pix.tasks`; every flag left out keeps the preset's value. The run
folder (`--out`, default runs/pix2pix-<task>[-demo]) holds checkpoints/ (resumable: re-run the same command
after an interruption and training continues exactly), history.jsonl, tensorboard/, best_generator.keras
(by validation PSNR), last_generator.keras, saved_model/ (uint8 photos of any size) and summary.json (with
the measured step time). See `common.trainer` for the resume rules.

`--demo` builds the task's small dataset offline from scikit-image's bundled photos and trains a short
CPU-sized run (`pix2pix.config.DEMO`) unless the flags say otherwise, e.g. for a longer deblurring run:
`--demo --task deblur --image-size 256 --depth 8 --base-filters 64 --batch-size 8 --iterations 20000`.
When the ImageNet VGG-19 weights are not available the perceptual and content terms are switched off
in a demo (said at the start and in summary.json); a normal run stops instead.
"""
from common.trainer import entry_points
from pix2pix.recipe import Pix2PixRecipe

main, cli = entry_points(Pix2PixRecipe())

if __name__ == "__main__":
    cli()
