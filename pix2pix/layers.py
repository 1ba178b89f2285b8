"""Layers specific to the pix2pix variants: spectral normalisation and per-channel noise injection (seed 003).

Spectral normalisation reuses `keras.layers.SpectralNormalization`: in training mode it runs one power
iteration and rewrites the wrapped kernel as `W / sigma(W)` before the convolution (sigma is treated as a
constant by the gradient, a projection step after every update). At inference the stored, already
normalised kernel is used as is, so an exported model needs no power iteration.
"""
import keras
from keras import ops


def spectral(layer, enabled):
    """Wrap `layer` in spectral normalisation when `enabled` (Miyato et al. 2018), else return it unchanged.

    The wrapper runs in float32 even under mixed precision: its power iteration on float16 copies of
    N(0, 0.02) weights underflows and divides by zero; the wrapped convolution still computes in float16.
    """
    if not enabled:
        return layer
    return keras.layers.SpectralNormalization(layer, power_iterations=1, dtype="float32", name=f"{layer.name}_sn")


@keras.saving.register_keras_serializable(package="photoenhance")
class NoiseInjection(keras.layers.Layer):
    """Adds `scale[c] * N(0, 1)` to every channel of a feature map, with a learned per-channel scale (seed 003).

    A fresh noise sample is drawn per call and per pixel; the scale starts at 0 so an untrained network
    behaves as if there were no noise (StyleGAN's initialisation). The noise is active only when the layer
    is called with `training=True`: plain inference is deterministic (the noise's expected value), so an
    exported model gives the same photo for the same input. `Pix2Pix(inference_mode="batch")` runs the
    generator in training mode at test time, as the pix2pix paper does, and then the noise is active too.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="zeros")

    def call(self, x, training=False):
        if not training:
            return x
        noise = keras.random.normal(ops.shape(x), dtype=x.dtype, seed=self.seed_generator)
        return x + noise * ops.cast(self.scale, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
