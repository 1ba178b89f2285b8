"""DPED networks (Ignatov et al. 2017), as in the authors' code that produced the published checkpoints.

Generator: a fully convolutional residual enhancer that maps a [0,1] RGB photo of any size to an enhanced
photo of the same size. Texture discriminator: a small CNN that tells enhanced from DSLR 100x100 gray patches.
Layer names follow the authors' variable numbering (conv1..convN = W1..WN, norm0..normK) so that
`dped.convert_original` can map their TF1 checkpoints one to one.
"""
import pathlib

import keras

from common import generators
from common.errors import CheckpointError
from common.layers import instance_norm, load_weights_of_either_norm
from common.atomic_files import atomic_output

DPED_EPSILON = 1e-3
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)

# Named shapes. `resnet_12_64` is the DPED paper's network (12 conv layers, 64 channels, 4 residual blocks);
# `resnet_8_32` is the smaller PIRM 2018 challenge baseline (8 conv layers: 2 residual blocks, 32 channels).
GENERATOR_PRESETS = {
    "resnet_12_64": {"width": 64, "num_blocks": 4},
    "resnet_8_32": {"width": 32, "num_blocks": 2},
}


def _conv(filters, kernel, name, strides=1):
    """Conv with the authors' init: weights truncated normal (stddev 0.01), biases 0.01, SAME padding."""
    return keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=True,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.01),
        bias_initializer=keras.initializers.Constant(0.01), name=name)


def build_generator(width=64, num_blocks=4, name="dped_generator"):
    """DPED residual generator: [N,H,W,3] in [0,1] -> [N,H,W,3], any H and W.

    conv9x9 3->width + ReLU; `num_blocks` residual blocks of
    `relu(IN(conv3x3))` then `relu(IN(conv3x3)) + x` (skip added after the ReLU; IN = instance norm,
    epsilon 1e-3); two conv3x3 + ReLU without norm; conv9x9 width->3; `tanh(.) * 0.58 + 0.5`, deliberately
    not clipped (the authors clip only when saving). Defaults give 401,475 parameters.
    """
    if int(width) < 1 or int(num_blocks) < 0:
        raise ValueError(f"width must be >= 1 and num_blocks >= 0, got width={width}, num_blocks={num_blocks}")
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = keras.layers.ReLU(name="relu1")(_conv(width, 9, "conv1")(inputs))
    conv_index, norm_index = 2, 0
    for block in range(num_blocks):
        skip = x
        for half in range(2):
            x = _conv(width, 3, f"conv{conv_index}")(x)
            x = instance_norm(epsilon=DPED_EPSILON, name=f"norm{norm_index}")(x)
            x = keras.layers.ReLU(name=f"relu{conv_index}")(x)
            conv_index += 1
            norm_index += 1
        x = keras.layers.Add(name=f"block{block + 1}_add")([x, skip])
    for _ in range(2):
        x = keras.layers.ReLU(name=f"relu{conv_index}")(_conv(width, 3, f"conv{conv_index}")(x))
        conv_index += 1
    x = _conv(3, 9, f"conv{conv_index}")(x)
    x = keras.layers.Activation("tanh", name="tanh")(x)
    outputs = keras.layers.Rescaling(scale=0.58, offset=0.5, name="enhanced")(x)
    return keras.Model(inputs, outputs, name=name)


def build_generator_preset(preset, name="dped_generator"):
    """Generator from a `GENERATOR_PRESETS` name (e.g. "resnet_8_32")."""
    if preset not in GENERATOR_PRESETS:
        raise ValueError(f"unknown generator preset {preset!r}; choose one of {sorted(GENERATOR_PRESETS)}")
    return build_generator(name=name, **GENERATOR_PRESETS[preset])


def texture_gray(images):
    """RGB [N,H,W,3] -> gray [N,H,W,1] with the authors' weights (0.2989, 0.5870, 0.1140): the D input."""
    return keras.ops.sum(images * keras.ops.convert_to_tensor(GRAY_WEIGHTS, dtype=images.dtype), axis=-1,
                         keepdims=True)


def build_discriminator(patch_size=100, logits=False, name="dped_discriminator"):
    """DPED texture discriminator on `patch_size`^2 gray patches: [N,p,p,1] -> [N,2].

    conv(11x11/4, 48) + LeakyReLU(0.2); then conv + LeakyReLU(0.2) + IN for (5x5/2, 128), (3x3/1, 192),
    (3x3/1, 192), (3x3/2, 128); flatten (7*7*128 at p=100; derived from p with SAME padding);
    dense 1024 + LeakyReLU(0.2); dense 2. The output is a softmax over [is_dslr, is_enhanced] (the authors'
    target order), or the raw logits with `logits=True` (for a numerically stable cross entropy).
    7,361,122 parameters at p=100.
    """
    inputs = keras.Input(shape=(patch_size, patch_size, 1), name="gray_patch")
    x = keras.layers.LeakyReLU(0.2, name="lrelu1")(_conv(48, 11, "conv1", strides=4)(inputs))
    for i, (filters, kernel, stride) in enumerate(((128, 5, 2), (192, 3, 1), (192, 3, 1), (128, 3, 2)), start=2):
        x = keras.layers.LeakyReLU(0.2, name=f"lrelu{i}")(_conv(filters, kernel, f"conv{i}", strides=stride)(x))
        x = instance_norm(epsilon=DPED_EPSILON, name=f"norm{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    dense_init = {"kernel_initializer": keras.initializers.TruncatedNormal(stddev=0.01),
                  "bias_initializer": keras.initializers.Constant(0.01)}
    x = keras.layers.LeakyReLU(0.2, name="lrelu_fc")(keras.layers.Dense(1024, name="fc", **dense_init)(x))
    out = keras.layers.Dense(2, name="logits", **dense_init)(x)
    if not logits:
        out = keras.layers.Softmax(name="probabilities")(out)
    return keras.Model(inputs, out, name=name)


def save_generator(model, path):
    """Save a generator atomically as a full `.keras` model recording its family (`common.generators`) or
    as `.weights.h5` weights; returns the path."""
    path = pathlib.Path(path)
    if path.name.endswith(".keras"):
        return generators.save_generator(model, path, family="dped")
    if not path.name.endswith(".weights.h5"):
        raise CheckpointError(f"{path}: generator files must end in .keras or .weights.h5")
    with atomic_output(path) as tmp:
        model.save_weights(tmp)
    return path


def load_generator(path, width=64, num_blocks=4):
    """Load a generator from `.keras` (architecture included; refused unless a DPED generator) or
    `.weights.h5` (into `build_generator(width, num_blocks)`, the paper's shape by default). Raises
    `CheckpointError` naming the file on any problem."""
    path = pathlib.Path(path)
    if path.name.endswith(".keras"):
        return generators.load_generator(path, family="dped")
    if not path.name.endswith(".weights.h5"):
        raise CheckpointError(f"{path}: expected a .keras or .weights.h5 file")
    if not path.is_file():
        raise CheckpointError(f"{path}: generator file not found")
    try:
        model = build_generator(width=width, num_blocks=num_blocks)
        load_weights_of_either_norm(model, path)
        return model
    except Exception as exc:  # Keras raises ValueError, KeyError, OSError, ... for bad or mismatched files.
        raise CheckpointError(
            f"{path}: cannot be loaded as a DPED generator (width={width}, num_blocks={num_blocks}): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
