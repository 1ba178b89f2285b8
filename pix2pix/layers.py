"""Layers specific to the pix2pix variants: spectral normalisation and per-channel noise injection (seed 003).

Both are composed of Keras' own layers, so a saved generator loads without this project. `NoiseInjection`,
the custom layer generators held before, stays registered so that their files still load.

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


def inject_noise(x, seed, name):
    """`x + scale[c] * N(0, 1)` with a learned per-channel scale (seed 003), from Keras layers only.

    `GaussianNoise(1)` draws the sample (active only when called with `training=True`, a fresh one per call
    and per pixel), `Subtract` takes it back out of `x + noise`, a 1x1 `DepthwiseConv2D` without bias is
    the per-channel scale (zeros at first, StyleGAN's initialisation), and `Add` puts it on `x`. At
    inference the sample is exactly 0, so an exported model is deterministic; `Pix2Pix(inference_mode=
    "batch")` runs the generator in training mode at test time, as the pix2pix paper does, noise included.
    """
    noisy = keras.layers.GaussianNoise(1.0, seed=seed, name=f"{name}_draw")(x)
    sample = keras.layers.Subtract(name=f"{name}_sample")([noisy, x])
    scaled = keras.layers.DepthwiseConv2D(1, use_bias=False, depthwise_initializer="zeros",
                                          name=f"{name}_scale")(sample)
    return keras.layers.Add(name=name)([x, scaled])


@keras.saving.register_keras_serializable(package="photoenhance")
class NoiseInjection(keras.layers.Layer):
    """Legacy (files saved before `inject_noise`): adds `scale[c] * N(0, 1)` to every channel of a feature map.

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
