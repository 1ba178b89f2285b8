"""Layers shared by the DPED and pix2pix networks.

Networks are built from Keras' own layers wherever one computes what the papers ask, so that a saved
`.keras` generator loads with plain `keras.saving.load_model`, without importing this project first
(Keras only imports classes from its own packages when it reads a file).
"""
import keras
from keras import ops


def instance_norm(epsilon=1e-3, name=None):
    """Instance normalisation as a Keras built-in layer.

    `keras.layers.GroupNormalization` with one group per channel (`groups=-1`) computes
    `gamma * (x - mean) / sqrt(var + epsilon) + beta` with each sample's per-channel mean and biased variance
    over H and W, in float32 even under mixed precision: the DPED authors' instance norm (epsilon 1e-3,
    scale init 1, shift init 0; pix2pix implementations use 1e-5).
    """
    return keras.layers.GroupNormalization(groups=-1, epsilon=epsilon, name=name)


def is_instance_norm(layer):
    """Whether `layer` (built) normalises each channel of each sample over H and W with a learned scale and
    shift: a one-group-per-channel `GroupNormalization` or a legacy `InstanceNormalization`."""
    if isinstance(layer, InstanceNormalization):
        return True
    return isinstance(layer, keras.layers.GroupNormalization) and layer.axis in (-1, 3) and \
        layer.groups == layer.input.shape[-1]


def load_weights_of_either_norm(model, path):
    """`model.load_weights(path)`, also for a `.weights.h5` file written when the network held legacy
    `InstanceNormalization` layers (Keras keys weight files by layer class, so those files do not match the
    built-in layers): the file is then read into a legacy twin of `model` and its weights copied across."""
    try:
        model.load_weights(path)
        return
    except Exception:  # Keras raises ValueError or KeyError for a file of another architecture.
        if not any(is_instance_norm(layer) for layer in model.layers):
            raise
    twin = keras.models.clone_model(model, clone_function=legacy_norm_twin)
    twin.load_weights(path)
    model.set_weights(twin.get_weights())


def legacy_norm_twin(layer):
    if isinstance(layer, keras.layers.GroupNormalization) and is_instance_norm(layer):
        return InstanceNormalization(epsilon=layer.epsilon, center=layer.center, scale=layer.scale,
                                     name=layer.name)
    return layer.__class__.from_config(layer.get_config())


@keras.saving.register_keras_serializable(package="photoenhance")
class InstanceNormalization(keras.layers.Layer):
    """Per-sample, per-channel normalisation over H and W with a learned scale and shift (legacy).

    The networks now use `instance_norm` (a Keras built-in); this class stays registered so that generators
    saved by earlier versions of the project still load (after importing `common`).

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
