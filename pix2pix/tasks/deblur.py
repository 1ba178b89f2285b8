"""`deblur` (seed 000): remove a Gaussian blur from clean photos.

The input is the clean photo blurred with a Gaussian of sigma `--blur-sigma` (1) on the fly; 256 crops
with colour jitter; 8-level U-Net, BCE cGAN + 100 L1 + 1 perceptual, batch 8, Adam 2e-4 (0.5, 0.99).
Optional seed 000 contrast stretch (10, 240) of the output. Baseline: Wiener deconvolution with the
known kernel.
"""
import numpy as np

from common.degradations import contrast_stretch, gaussian_blur
from common.errors import PhotoEnhanceError
from pix2pix import baselines
from pix2pix.tasks.base import register_task
from pix2pix.tasks.synthetic import SyntheticTask


@register_task
class Deblur(SyntheticTask):
    name = "deblur"
    description = "remove a Gaussian blur (sigma 1) from DSLR photos, 256x256 crops"
    reported = "seed 000: blurred 22.68 dB / SSIM 0.7028 -> generated 20.32 dB / 0.8600"
    preset = {"lambda_perceptual": 1.0, "beta_2": 0.99, "batch_size": 8, "iterations": 100_000,
              "color_augment": True}
    options = ("blur_sigma", "val_crop", "demo_photos", "postprocess")

    def check(self, settings):
        if not settings.blur_sigma > 0:
            raise PhotoEnhanceError(f"--blur-sigma must be positive, got {settings.blur_sigma}")

    def degrade(self, settings, clean, seed):
        return gaussian_blur(clean, settings.blur_sigma)

    def baseline(self, settings, x, meta):
        return baselines.deblur_baseline(x, settings.blur_sigma)

    def postprocess_output(self, settings, image):
        """Seed 000's contrast stretch when `settings.postprocess` asks for it."""
        if settings.postprocess == "contrast_stretch":
            return np.asarray(contrast_stretch(np.asarray(image, np.float32), 10, 240))
        return image
