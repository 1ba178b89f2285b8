"""`overexposure` (seed 003): undo overexposure simulated in linear light.

The input is the clean photo taken to linear light (gamma 2.2), clipped at `--tau` (0.5, or uniform in
[0.5, 1] per image with `--random-tau`) and rescaled. 5-level U-Net (receptive field 126 px; seed 003
found ~140 px best, with a 70 px D), LSGAN, spectral norm in G and D, noise injection, 50 L1 + 100
perceptual (5 VGG-19 layers, each normalised by size). Baseline: the exact inverse with the true tau
(seed 003's "trivial solution"); evaluation adds seed 003's exposure histogram intersections.
"""
import tensorflow as tf

from common.degradations import overexpose, random_tau
from common.errors import PhotoEnhanceError
from pix2pix import baselines
from pix2pix.tasks.base import GAMMA, register_task
from pix2pix.tasks.synthetic import SyntheticTask

RANDOM_TAU = (0.5, 1.0)


@register_task
class Overexposure(SyntheticTask):
    name = "overexposure"
    description = "undo overexposure simulated in linear light (gamma 2.2, clip at tau)"
    reported = "seed 003: reports histogram similarity of luminance/contrast/saturation, not PSNR"
    preset = {"depth": 5, "spectral_norm": True, "noise_injection": True, "gan_loss": "lsgan", "lambda_l1": 50.0,
              "lambda_perceptual": 100.0, "batch_size": 4, "iterations": 100_000}
    options = ("tau", "random_tau", "val_crop", "demo_photos")
    exposure_histograms = True

    def check(self, settings):
        if not 0 < settings.tau <= 1:
            raise PhotoEnhanceError(f"--tau must be in (0, 1], got {settings.tau}")

    def taus(self, settings, n, seed):
        """The clipping thresholds of `n` images drawn with `seed`: `--tau`, or uniform with `--random-tau`."""
        if settings.random_tau:
            return random_tau(n, *RANDOM_TAU, seed=seed)
        return tf.fill([n], tf.constant(settings.tau, tf.float32))

    def degrade(self, settings, clean, seed):
        return overexpose(clean, self.taus(settings, tf.shape(clean)[0], seed), gamma=GAMMA)

    def meta(self, settings, seed):
        return {"tau": float(self.taus(settings, 1, seed)[0])}

    def baseline(self, settings, x, meta):
        return baselines.overexposure_baseline(x, meta["tau"], GAMMA)
