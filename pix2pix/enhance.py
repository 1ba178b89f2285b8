"""Enhance photos with a trained pix2pix generator, at any size, within a bound on the command's peak memory.

    python -m pix2pix.enhance --task deblur --weights runs/pix2pix-deblur/best_generator.keras \
        photos/ extra.jpg --output-dir enhanced/ [--contrast-stretch]
    python -m pix2pix.enhance --task deblur --saved-model runs/pix2pix-deblur/saved_model photos/ --output-dir out/

Output formats, names, metadata and the memory budget follow `common.enhance_cli`; for ldr2hdr also the
linear HDR result as `<name>.hdr` (the photo is its `x / (1 + x)` tone map). A generator of another
family or task is refused (`common.generators`). Large photos are processed in overlapping, blended tiles
(`common.tiling`); with `--inference-mode batch` each tile then uses its own batch statistics.
"""
import keras
import numpy as np
import tensorflow as tf

from common import enhance_cli
from common.cli import console_script
from common.enhance_cli import ModelSource, load_saved_model
from common.tiling import BLENDED_BUFFER_BYTES_PER_PIXEL, DEFAULT_OVERLAP, enhance_tiled, quantize
from pix2pix.config import INFERENCE_MODES
from pix2pix.gan import Pix2Pix, tone_map
from pix2pix.hdr import write_radiance
from pix2pix.loading import load_generator
from pix2pix.tasks import TASKS, get_task

# Measured like common.tiling's DPED figure: peak bytes per input pixel of one traced inference of the
# default 8-level U-Net: 317 B at 768x1280, 200 B at 512x512 (it pads each side to a multiple of 256).
UNET_BYTES_PER_PIXEL = 350.0


def load_weights(path, task):
    """A `.keras` pix2pix generator, checked to be a pix2pix one fit for `task`."""
    return load_generator(path, task)


def sources(task):
    """The model sources of the pix2pix command for `task`."""
    return (ModelSource("--weights", "generator .keras file from a pix2pix run", lambda p: load_weights(p, task)),
            ModelSource("--saved-model", "SavedModel folder written by pix2pix.export / pix2pix.train",
                        load_saved_model))


class Pix2PixEnhancer:
    """A pix2pix generator (Keras, wrapped with its task's output range) or SavedModel as the driver uses it."""

    def __init__(self, model, task_name, contrast_stretch=False, inference_mode="moving", overlap=None):
        self.task = get_task(task_name)
        stretch = {"postprocess": "contrast_stretch"} if contrast_stretch else {}
        self.task.refuse_options(stretch, flags={"postprocess": "--contrast-stretch"})
        self.settings = self.task.settings(stretch)
        self.halo = DEFAULT_OVERLAP if overlap is None else overlap
        self.bytes_per_pixel = UNET_BYTES_PER_PIXEL
        self.buffer_bytes_per_pixel = BLENDED_BUFFER_BYTES_PER_PIXEL
        if isinstance(model, keras.Model):
            wrapped = Pix2Pix.for_inference(model, self.settings.target_range, inference_mode)
            traced = tf.function(lambda x: wrapped(x, training=False),
                                 input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
            self.run = lambda x: traced(tf.convert_to_tensor(x, tf.float32)).numpy()
        else:
            self.run = lambda x: np.asarray(model(np.asarray(x, np.float32)))

    def warm_up(self, side):
        self.run(np.zeros((1, side, side, 3), np.float32))

    def prepare(self, pixels):
        return pixels

    def __call__(self, pixels, side, out_dtype):
        blended_side = None if side is None else side + 2 * self.halo
        output = enhance_tiled(self.run, pixels, overlap=self.halo, side=blended_side)
        extras = {}
        if self.settings.target_range == "linear":
            linear = np.maximum(output, 0.0)
            extras[".hdr"] = lambda path: write_radiance(path, linear)
            output = np.asarray(tone_map(output))
        return quantize(self.task.postprocess_output(self.settings, np.clip(output, 0.0, 1.0)), out_dtype), extras


def main(argv=None):
    parser = enhance_cli.build_parser("python -m pix2pix.enhance", __doc__.split("\n")[0], sources(None))
    parser.add_argument("--task", required=True, choices=tuple(TASKS))
    parser.add_argument("--inference-mode", choices=INFERENCE_MODES, default="moving")
    parser.add_argument("--contrast-stretch", action="store_true", help="seed 000's (10, 240) stretch afterwards")
    args = parser.parse_args(argv)
    extra = (".hdr",) if get_task(args.task).settings().target_range == "linear" else ()
    return enhance_cli.run(args, sources(args.task), lambda model: Pix2PixEnhancer(
        model, args.task, args.contrast_stretch, args.inference_mode, args.overlap), extra)


cli = console_script(main)


if __name__ == "__main__":
    cli()
