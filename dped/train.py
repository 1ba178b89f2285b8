"""Train DPED (Ignatov et al. 2017): `python -m dped.train --phone sony` (paper defaults) or `--demo`.

Defaults are the authors': 20,000 iterations, batch 50, Adam 5e-4, 100x100 patches, validation every
1,000 iterations, the "code" loss weights (10 content, 0.5 color, 1 texture, 2000 tv). The run folder
(`--out`, default runs/dped-<phone>) holds checkpoints/ (resumable: re-run the same command after an
interruption and training continues from the last checkpoint with exactly the batches and random draws
the uninterrupted run would have used), history.jsonl, tensorboard/, best_generator.keras (by validation
PSNR), last_generator.keras, saved_model/ and summary.json. See `common.trainer` for the resume rules.

`--demo` builds a small DPED-layout dataset offline (scikit-image sample photos as one fixed phone camera
renders them) and fine-tunes the authors' model of `--phone` (when cached or downloadable; else from
scratch, with a note) in a short run with demo-sized defaults (`dped.config.DEMO`). Without the ImageNet VGG-19 weights the demo runs with the
content term disabled and says so; a normal run stops at the start instead (unless --content-weight 0).
"""
from common.trainer import entry_points
from dped.recipe import DPEDRecipe

main, cli = entry_points(DPEDRecipe())

if __name__ == "__main__":
    cli()
