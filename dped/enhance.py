"""Enhance phone photos with a DPED generator, at any size, tiling when a photo exceeds a memory budget.

    python -m dped.enhance --weights iphone.keras photos/ extra.png --output-dir enhanced/
    python -m dped.enhance --original-checkpoint models_orig/iphone_orig IMG.jpg --output-dir out/ \
        --resolution orig --phone iphone

The model comes from exactly one of `--weights` (.keras / .weights.h5), `--saved-model` (a folder written
by `dped.export`) or `--original-checkpoint` (the authors' TF1 prefix). `--resolution` reproduces the
authors' full-size test: resize to the phone's full resolution (`orig`), then centre-crop (`high`, `medium`,
`small`, `tiny`); without it photos keep their own size. Outputs are PNG files named after the inputs.
Photos whose estimated activations exceed `--memory-budget-mb` run in tiles; with a Keras model the tiles
share the whole photo's instance-norm statistics, so the result equals whole-photo inference.
"""
import argparse
import pathlib

import numpy as np

from common.cli import quiet_tensorflow, run_cli
from common.images import collect_image_files
from common.errors import PhotoEnhanceError

# Full resolution of each DPED phone (H x W) and the authors' centre crops of it.
PHONE_RESOLUTIONS = {"iphone": (1536, 2048), "blackberry": (1560, 2080), "sony": (1944, 2592)}
CROP_RESOLUTIONS = {"high": (1260, 1680), "medium": (1024, 1366), "small": (768, 1024), "tiny": (600, 800)}
RESOLUTIONS = ("orig",) + tuple(CROP_RESOLUTIONS)
DEFAULT_MEMORY_BUDGET_MB = 2048


def prepare_resolution(image, resolution=None, phone="iphone"):
    """uint8 [H,W,3] -> the authors' test input: resized to the phone's full resolution (bilinear), then
    centre-cropped for `resolution` other than "orig". None keeps the image as it is."""
    if resolution is None:
        return image
    if phone not in PHONE_RESOLUTIONS:
        raise PhotoEnhanceError(f"unknown phone {phone!r}; choose one of {sorted(PHONE_RESOLUTIONS)}")
    if resolution not in RESOLUTIONS:
        raise PhotoEnhanceError(f"unknown resolution {resolution!r}; choose one of {RESOLUTIONS}")
    import tensorflow as tf

    height, width = PHONE_RESOLUTIONS[phone]
    if image.shape[:2] != (height, width):
        resized = tf.image.resize(tf.cast(image, tf.float32), (height, width), method="bilinear", antialias=True)
        image = np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)
    if resolution == "orig":
        return image
    crop_h, crop_w = CROP_RESOLUTIONS[resolution]
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return image[top:top + crop_h, left:left + crop_w]


def make_predictor(model):
    """A numpy function [N,h,w,3] float32 -> float32 for a Keras model (one trace for every size) or for
    any callable (e.g. a SavedModel signature), wrapped to give numpy; a predictor passes through."""
    import keras
    import tensorflow as tf

    if getattr(model, "is_predictor", False):
        return model
    if isinstance(model, keras.Model):
        traced = tf.function(lambda x: model(x, training=False),
                             input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])

        def predictor(x):
            return traced(tf.convert_to_tensor(x, tf.float32)).numpy()
    else:
        def predictor(x):
            return np.asarray(model(np.asarray(x, np.float32)))
    predictor.is_predictor = True
    return predictor


def load_model(weights=None, saved_model=None, original_checkpoint=None):
    """The generator from exactly one source: a .keras/.weights.h5 file, an exported SavedModel folder
    (its `float32` signature) or the authors' TF1 checkpoint prefix."""
    given = [s for s in (weights, saved_model, original_checkpoint) if s]
    if len(given) != 1:
        raise PhotoEnhanceError("give exactly one of --weights, --saved-model, --original-checkpoint")
    if weights:
        from dped.models import load_generator

        return load_generator(weights)
    if saved_model:
        from common.export import load_saved_model_signature

        return load_saved_model_signature(saved_model, "float32")
    from dped.convert_original import load_original_checkpoint

    return load_original_checkpoint(original_checkpoint)


def enhance_image(model, image_uint8, *, resolution=None, phone="iphone", memory_budget_bytes=None,
                  tile=None, overlap=None):
    """Enhance one uint8 [H,W,3] photo; returns uint8 of the (prepared) input's size.

    `model` is a Keras generator or any callable on [1,h,w,3] float32 batches (e.g. a SavedModel
    signature, or a predictor from `make_predictor`). Above `memory_budget_bytes` the photo is processed in
    tiles: for a Keras model with the whole image's instance-norm statistics (`enhance_tiled_exact`, equal
    to whole-image inference; `overlap` is then the halo, by default the receptive-field radius), for
    other callables in overlapping tiles blended with smooth weights (close to, not equal to, whole).
    """
    import keras

    from common.images import to_float, to_uint8
    from common.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, enhance_tiled, enhance_tiled_exact, plan_tile

    image = np.asarray(image_uint8)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise PhotoEnhanceError(f"enhance_image expects uint8 [H,W,3], got {image.dtype} {image.shape}")
    x = to_float(prepare_resolution(image, resolution, phone))
    tile = tile or DEFAULT_TILE
    if isinstance(model, keras.Model):
        if plan_tile(x.shape[0], x.shape[1], memory_budget_bytes, tile, 0) is None:
            return to_uint8(np.asarray(model(x[None], training=False))[0])
        return to_uint8(enhance_tiled_exact(model, x, halo=overlap, tile=tile,
                                            memory_budget_bytes=memory_budget_bytes))
    overlap = DEFAULT_OVERLAP if overlap is None else overlap
    out = enhance_tiled(make_predictor(model), x, tile=tile, overlap=overlap, memory_budget_bytes=memory_budget_bytes)
    return to_uint8(out)



def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dped.enhance", description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    parser.add_argument("--output-dir", required=True, help="folder for the enhanced PNGs")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="generator file (.keras or .weights.h5)")
    source.add_argument("--saved-model", help="SavedModel folder written by dped.export")
    source.add_argument("--original-checkpoint", help="the authors' TF1 checkpoint prefix, e.g. iphone_orig")
    parser.add_argument("--resolution", choices=RESOLUTIONS,
                        help="resize to the phone's full resolution (orig) and centre-crop; default: keep size")
    parser.add_argument("--phone", default="iphone", choices=sorted(PHONE_RESOLUTIONS),
                        help="phone whose full resolution --resolution refers to")
    parser.add_argument("--memory-budget-mb", type=float, default=DEFAULT_MEMORY_BUDGET_MB,
                        help="process photos whose estimated activations exceed this in overlapping tiles")
    parser.add_argument("--tile", type=int, help="largest tile side in px (default: common.tiling's)")
    parser.add_argument("--overlap", type=int,
                        help="Keras models: context halo per tile (default: receptive-field radius, exact); "
                             "SavedModels: blending overlap (default: common.tiling's)")
    args = parser.parse_args(argv)
    quiet_tensorflow()
    from tqdm import tqdm

    from common.images import read_image, write_image

    files = collect_image_files(args.inputs)
    model = load_model(args.weights, args.saved_model, args.original_checkpoint)
    out_dir = pathlib.Path(args.output_dir)
    for path in tqdm(files, desc="enhancing", unit="photo"):
        image = read_image(path)
        enhanced = enhance_image(model, image, resolution=args.resolution, phone=args.phone,
                                 memory_budget_bytes=int(args.memory_budget_mb * 2**20), tile=args.tile,
                                 overlap=args.overlap)
        write_image(out_dir / f"{path.stem}.png", enhanced)
    print(f"wrote {len(files)} enhanced photo(s) to {out_dir}")
    return 0


if __name__ == "__main__":
    run_cli(main)
