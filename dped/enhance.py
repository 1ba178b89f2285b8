"""Enhance phone photos with a DPED generator, at any size, within a bound on the command's peak memory.

    python -m dped.enhance --weights iphone.keras photos/ extra.jpg --output-dir enhanced/
    python -m dped.enhance --original-checkpoint models_orig/iphone_orig IMG.jpg --output-dir out/ \
        --resolution orig --phone iphone

The model comes from exactly one of `--weights` (.keras / .weights.h5), `--saved-model` (a folder written
by `dped.export`) or `--original-checkpoint` (the authors' TF1 prefix). `--resolution` reproduces the
authors' full-size test: resize to the phone's full resolution (`orig`), then centre-crop (`high`, `medium`,
`small`, `tiny`); without it photos keep their own size. Output formats, names, metadata and the memory
budget follow `common.enhance_cli`. Photos that do not fit the budget whole run in tiles; with a Keras
model the tiles share the whole photo's instance-norm statistics, so the result equals whole-photo
inference; SavedModels blend overlapping tiles (close, not equal).
"""
import keras
import numpy as np
import tensorflow as tf

from common import enhance_cli, tiling
from common.cli import console_script
from common.errors import PhotoEnhanceError
from common.tiling import enhance_tiled, enhance_tiled_exact, quantize
from dped.loading import SOURCES

# Full resolution of each DPED phone (H x W) and the authors' centre crops of it.
PHONE_RESOLUTIONS = {"iphone": (1536, 2048), "blackberry": (1560, 2080), "sony": (1944, 2592)}
CROP_RESOLUTIONS = {"high": (1260, 1680), "medium": (1024, 1366), "small": (768, 1024), "tiny": (600, 800)}
RESOLUTIONS = ("orig",) + tuple(CROP_RESOLUTIONS)


def prepare_resolution(image, resolution=None, phone="iphone"):
    """uint8/uint16 [H,W,3] -> the authors' test input: resized to the phone's full resolution (bilinear),
    then centre-cropped for `resolution` other than "orig". None keeps the image as it is."""
    if resolution is None:
        return image
    if phone not in PHONE_RESOLUTIONS:
        raise PhotoEnhanceError(f"unknown phone {phone!r}; choose one of {sorted(PHONE_RESOLUTIONS)}")
    if resolution not in RESOLUTIONS:
        raise PhotoEnhanceError(f"unknown resolution {resolution!r}; choose one of {RESOLUTIONS}")

    height, width = PHONE_RESOLUTIONS[phone]
    if image.shape[:2] != (height, width):
        resized = tf.image.resize(tf.cast(image, tf.float32), (height, width), method="bilinear", antialias=True)
        image = np.clip(np.round(resized.numpy()), 0, np.iinfo(image.dtype).max).astype(image.dtype)
    if resolution == "orig":
        return image
    crop_h, crop_w = CROP_RESOLUTIONS[resolution]
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return image[top:top + crop_h, left:left + crop_w]


class DpedEnhancer:
    """A loaded DPED model as the driver uses it: Keras models tile exactly (whole-photo norm statistics),
    other callables (SavedModel signatures) in blended overlapping tiles."""

    def __init__(self, model, resolution=None, phone="iphone", overlap=None):
        self.model, self.resolution, self.phone = model, resolution, phone
        self.is_keras = isinstance(model, keras.Model)
        if self.is_keras:
            self.run = tiling.traced(model)
            self.halo = tiling.receptive_radius(model) if overlap is None else overlap
            self.bytes_per_pixel = tiling.traced_bytes_per_pixel(model)
            self.buffer_bytes_per_pixel = tiling.TILED_BUFFER_BYTES_PER_PIXEL
        else:
            self.run = lambda x: np.asarray(model(np.asarray(x, np.float32)))
            self.halo = tiling.DEFAULT_OVERLAP if overlap is None else overlap
            self.bytes_per_pixel = tiling.PAPER_NETWORK_BYTES_PER_PIXEL
            self.buffer_bytes_per_pixel = tiling.BLENDED_BUFFER_BYTES_PER_PIXEL

    def warm_up(self, side):
        self.run(np.zeros((1, side, side, 3), np.float32))

    def prepare(self, pixels):
        return prepare_resolution(pixels, self.resolution, self.phone)

    def __call__(self, pixels, side, out_dtype):
        if self.is_keras:
            return enhance_tiled_exact(self.model, pixels, halo=self.halo, side=side, out_dtype=out_dtype,
                                       run=self.run), {}
        blended_side = None if side is None else side + 2 * self.halo
        return quantize(enhance_tiled(self.run, pixels, overlap=self.halo, side=blended_side), out_dtype), {}


def enhance_image(model, image, *, resolution=None, phone="iphone", side=None, overlap=None):
    """Enhance one uint8 [H,W,3] photo (whole, or in tiles of `side` px); returns uint8 of the (prepared)
    input's size. `model` is a Keras generator or any callable on [1,h,w,3] float32 batches."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise PhotoEnhanceError(f"enhance_image expects uint8 [H,W,3], got {image.dtype} {image.shape}")
    enhancer = DpedEnhancer(model, resolution, phone, overlap)
    return enhancer(enhancer.prepare(image), side, np.uint8)[0]


def main(argv=None):
    parser = enhance_cli.build_parser("python -m dped.enhance", __doc__.split("\n")[0], SOURCES)
    parser.add_argument("--resolution", choices=RESOLUTIONS,
                        help="resize to the phone's full resolution (orig) and centre-crop; default: keep size")
    parser.add_argument("--phone", choices=sorted(PHONE_RESOLUTIONS),
                        help="phone whose full resolution --resolution refers to (default iphone)")
    args = parser.parse_args(argv)
    if args.phone and not args.resolution:
        raise PhotoEnhanceError("--phone applies with --resolution only (photos otherwise keep their own size)")
    phone = args.phone or "iphone"
    return enhance_cli.run(args, SOURCES, lambda model: DpedEnhancer(model, args.resolution, phone, args.overlap))


cli = console_script(main)


if __name__ == "__main__":
    cli()
