"""pix2pix networks: the U-Net generator and the PatchGAN discriminator (Isola et al. 2017).

Both work in the symmetric range [-1, 1] (`Pix2Pix` converts at its boundary). Conventions follow the
PyTorch reference implementation: 4x4 kernels, init N(0, 0.02), convolution biases in the U-Net only on
its output layer or when it has no normalisation at all (so the two un-normalised encoder blocks of a
normalised U-Net have none, as in both references), in the PatchGAN wherever no norm follows;
LeakyReLU 0.2 in the encoder, ReLU in the decoder.

The U-Net deliberately has **no normalisation on its innermost (1x1 at 256 input) block**: a batch norm
over a 1x1 map at batch size 1 outputs its shift for every input and silently cuts the bottleneck off
(the official TensorFlow tutorial has this bug). With batch norm the default 256 generator therefore has
54,413,955 trainable parameters (the PyTorch reference count) and 54,423,811 in all; the tutorial's
54,425,859 differ only by that bottleneck norm's 2,048 values (512 scales, 512 shifts, 512 moving means,
512 moving variances).
"""
import itertools

import keras
from keras import ops

from common.layers import instance_norm
from pix2pix.layers import inject_noise, spectral

NORMS = ("batch", "instance", "none")
OUTPUT_ACTIVATIONS = ("tanh", "relu", "linear")


def _init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _norm_layer(norm, name):
    if norm == "batch":
        # Keras momentum 0.9 == PyTorch momentum 0.1; gamma ~ N(1, 0.02) as in the reference init.
        return keras.layers.BatchNormalization(
            momentum=0.9, epsilon=1e-5, gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02), name=name)
    if norm == "instance":
        return instance_norm(epsilon=1e-5, name=name)
    return None


def _check(norm, output_activation=None):
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if output_activation is not None and output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}")


def _centre_offsets(size, multiple):
    total = (size + multiple - 1) // multiple * multiple - size
    return total // 2, total


@keras.saving.register_keras_serializable(package="photoenhance")
class ReflectPadToMultiple(keras.layers.Layer):
    """Pads H and W (centred, mirror without repeating the edge) up to a multiple of `multiple`.

    The padding may exceed the image size (a 32x32 image for an 8-level U-Net needs 256): indices are folded
    with a triangle wave, which equals 'reflect' padding applied repeatedly.
    """

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def _indices(self, size):
        before, total = _centre_offsets(size, self.multiple)
        k = ops.abs(ops.arange(size + total) - before)
        period = ops.maximum(2 * (size - 1), 1)
        j = k % period
        return ops.where(j < size, j, period - j)

    def call(self, x):
        shape = ops.shape(x)
        x = ops.take(x, self._indices(shape[1]), axis=1)
        return ops.take(x, self._indices(shape[2]), axis=2)

    def compute_output_shape(self, input_shape):
        def up(s):
            return None if s is None else (s + self.multiple - 1) // self.multiple * self.multiple
        return (input_shape[0], up(input_shape[1]), up(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="photoenhance")
class CropToReference(keras.layers.Layer):
    """Undoes `ReflectPadToMultiple`: crops `x` back to the H x W of `reference`."""

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, inputs):
        x, reference = inputs
        h, w = ops.shape(reference)[1], ops.shape(reference)[2]
        top, _ = _centre_offsets(h, self.multiple)
        left, _ = _centre_offsets(w, self.multiple)
        return x[:, top:top + h, left:left + w, :]

    def compute_output_shape(self, input_shapes):
        x, reference = input_shapes
        return (x[0], reference[1], reference[2], x[3])

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


def _conv(filters, stride, use_bias, sn, name, transpose=False, padding="same"):
    cls = keras.layers.Conv2DTranspose if transpose else keras.layers.Conv2D
    layer = cls(filters, 4, strides=stride, padding=padding, use_bias=use_bias, kernel_initializer=_init(),
                name=name)
    return spectral(layer, sn)


def unet_filters(depth, base_filters=64, max_filters=512):
    """Encoder widths per level: base * 2**i capped at max_filters (64,128,256,512,512,... for the default)."""
    return [min(base_filters * 2 ** i, max_filters) for i in range(depth)]


def build_unet(depth=8, base_filters=64, max_filters=512, norm="batch", output_activation="tanh",
               dropout=0.5, dropout_blocks=3, spectral_norm=False, noise_injection=False,
               input_channels=3, output_channels=3, residual=False, seed=None, name="unet_generator"):
    """The pix2pix U-Net generator for images of any size.

    Encoder: `depth` conv 4x4/2 + norm + LeakyReLU(0.2) blocks (no norm on the first and the innermost);
    decoder: `depth - 1` transposed conv 4x4/2 + norm + ReLU blocks (dropout on the first `dropout_blocks`),
    each concatenated with the encoder output of the same size, then a transposed conv to `output_channels`
    and `output_activation` (tanh for [-1, 1] photos, relu for HDR values above 1). Inputs are mirror-padded
    to a multiple of 2**depth and the output is cropped back, so any H x W works (saved files hold the
    network between the two, `unet_core`, which loads without this project). Seed 000's 64x64 model is
    `depth=6` with one dropout block (their layers 6, 7, 10, 11 removed). `noise_injection` adds
    `inject_noise` after every convolution but the output one (seed 003); `spectral_norm` wraps every
    convolution. `residual=True` (not in the papers; an option for restoration tasks such as deblurring)
    returns `input + activation(last conv)`: the network predicts a bounded correction of its input, so
    the identity is where training starts instead of something it has to learn through a half-resolution
    skip path.
    """
    _check(norm, output_activation)
    if residual and input_channels != output_channels:
        raise ValueError(f"residual=True needs input_channels == output_channels, got {input_channels} and "
                         f"{output_channels}")
    if depth < 2:
        raise ValueError(f"depth must be at least 2, got {depth}")
    filters = unet_filters(depth, base_filters, max_filters)
    multiple = 2 ** depth
    inputs = keras.Input((None, None, input_channels), name="image")
    padded = x = ReflectPadToMultiple(multiple, name="pad")(inputs)
    noise_seeds = itertools.count(0 if seed is None else seed + 1)

    def maybe_noise(x, name):
        if not noise_injection:
            return x
        return inject_noise(x, None if seed is None else next(noise_seeds), name)

    skips = []
    for i, f in enumerate(filters):
        normed = norm != "none" and 0 < i < depth - 1
        x = _conv(f, 2, norm == "none", spectral_norm, f"down{i + 1}_conv")(x)
        x = maybe_noise(x, f"down{i + 1}_noise")
        if normed:
            x = _norm_layer(norm, f"down{i + 1}_norm")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down{i + 1}_lrelu")(x)
        skips.append(x)
    for n, j in enumerate(range(depth - 2, -1, -1)):
        name = f"up{n + 1}"
        x = _conv(filters[j], 2, norm == "none", spectral_norm, f"{name}_conv", transpose=True)(x)
        x = maybe_noise(x, f"{name}_noise")
        if norm != "none":
            x = _norm_layer(norm, f"{name}_norm")(x)
        if dropout and n < dropout_blocks:
            x = keras.layers.Dropout(dropout, seed=seed, name=f"{name}_dropout")(x)
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
        x = keras.layers.Concatenate(name=f"{name}_skip")([x, skips[j]])
    x = _conv(output_channels, 2, True, spectral_norm, "output_conv", transpose=True)(x)
    x = keras.layers.Activation(output_activation, dtype="float32", name=f"output_{output_activation}")(x)
    if residual:
        x = keras.layers.Add(dtype="float32", name="residual_add")([x, padded])
    outputs = CropToReference(multiple, dtype="float32", name="crop")([x, inputs])
    return keras.Model(inputs, outputs, name=name)


def unet_core(generator):
    """The U-Net of `generator` between its pad and crop, sharing its layers and weights: the form saved to
    `.keras` files. Built from Keras layers only, it loads with plain
    `keras.saving.load_model`, without this project, and takes H and W that are multiples of 2**depth
    (256 for the default U-Net, as the pix2pix references do); `any_size` gives back the any-size model."""
    pad, crop = generator.get_layer("pad"), generator.get_layer("crop")
    core = keras.Model(pad.output, crop.input[0], name=generator.name)
    core.layers[0].name = "padded_image"
    return core


def unet_depth(core):
    """Levels of a U-Net: its stride-2 encoder convolutions (spectral-norm wrappers looked through)."""
    convs = [getattr(layer, "layer", layer) for layer in core.layers]
    return sum(1 for c in convs if type(c) is keras.layers.Conv2D and tuple(c.strides) == (2, 2))


def any_size(core):
    """A saved U-Net core wrapped to take any H x W: mirror-padded to a multiple of 2**depth, cropped back.
    A model that already pads (a whole generator, or a file saved before cores were) is returned as is."""
    if any(isinstance(layer, ReflectPadToMultiple) for layer in core.layers):
        return core
    multiple = 2 ** unet_depth(core)
    inputs = keras.Input((None, None, core.input.shape[-1]), name="image")
    x = core(ReflectPadToMultiple(multiple, name="pad")(inputs))
    outputs = CropToReference(multiple, dtype="float32", name="crop")([x, inputs])
    return keras.Model(inputs, outputs, name=core.name)


def unet_receptive_field(depth):
    """Receptive field in pixels of one U-Net output pixel through its deepest path: 4 * 2**depth - 2
    (encoder 3 * 2**depth - 2, widened by 2**depth by the decoder's transposed 4x4 convolutions):
    30, 62, 126, 254, 1022 for depth 3, 4, 5, 6, 8."""
    return 4 * 2 ** depth - 2


def patchgan_receptive_field(n_layers):
    """Receptive field in pixels of one PatchGAN logit: 16, 34, 70, 142 for n_layers 1, 2, 3, 4."""
    size = 1
    strides = [2] * n_layers + [1, 1]
    for stride in reversed(strides):
        size = (size - 1) * stride + 4
    return size


def build_patchgan(n_layers=3, base_filters=64, norm="batch", spectral_norm=False, input_channels=6,
                   name="patchgan_discriminator"):
    """The PatchGAN discriminator on concat(condition, image): a map of real/fake logits, one per patch.

    `n_layers` conv 4x4/2 blocks (64 without norm, then 128, 256, ... capped at 8x base) + LeakyReLU(0.2),
    one conv 4x4/1 block, and a conv 4x4/1 to one logit channel; every conv has 1 pixel of zero padding
    (PyTorch reference), so a 256x256 pair gives 30x30 logits at n_layers=3. The receptive field is
    `patchgan_receptive_field(n_layers)` (70 px by default). Output logits are float32.
    """
    _check(norm)
    if n_layers < 1:
        raise ValueError(f"n_layers must be at least 1, got {n_layers}")
    inputs = keras.Input((None, None, input_channels), name="condition_and_image")
    x = inputs
    widths = [base_filters * min(2 ** i, 8) for i in range(n_layers + 1)]
    for i, f in enumerate(widths):
        stride = 2 if i < n_layers else 1
        normed = norm != "none" and i > 0
        x = keras.layers.ZeroPadding2D(1, name=f"d{i + 1}_pad")(x)
        x = _conv(f, stride, not normed, spectral_norm, f"d{i + 1}_conv", padding="valid")(x)
        if normed:
            x = _norm_layer(norm, f"d{i + 1}_norm")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"d{i + 1}_lrelu")(x)
    x = keras.layers.ZeroPadding2D(1, name="logits_pad")(x)
    x = _conv(1, 1, True, spectral_norm, "logits_conv", padding="valid")(x)
    outputs = keras.layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
