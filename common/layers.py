"""Layers shared by the DPED and pix2pix networks."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="photoenhance")
class InstanceNormalization(keras.layers.Layer):
    """Per-sample, per-channel normalisation over H and W with a learned scale and shift.

    `scale * (x - mean) / sqrt(var + epsilon) + shift`, statistics over the spatial axes of each sample
    (biased variance), as in the DPED authors' code (epsilon 1e-3, scale init 1, shift init 0). pix2pix
    implementations use epsilon 1e-5. Statistics are computed in float32 so mixed precision stays stable.
    """

    def __init__(self, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(name="scale", shape=(channels,), initializer="ones") if self.scale else None
        self.beta = self.add_weight(name="shift", shape=(channels,), initializer="zeros") if self.center else None

    def call(self, x):
        dtype = x.dtype
        x32 = ops.cast(x, "float32")
        mean, var = ops.moments(x32, axes=[1, 2], keepdims=True)
        y = (x32 - mean) / ops.sqrt(var + self.epsilon)
        if self.gamma is not None:
            y = y * ops.cast(self.gamma, "float32")
        if self.beta is not None:
            y = y + ops.cast(self.beta, "float32")
        return ops.cast(y, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
