"""VGG-19 feature extractor for the content and perceptual losses.

Preprocessing. The DPED authors fed `RGB*255 - [123.68, 116.779, 103.939]` to MatConvNet's
`imagenet-vgg-verydeep-19` (RGB input order). Keras' ImageNet VGG19 weights are the original Caffe
weights, which expect **BGR** input; `keras.applications.vgg19.preprocess_input` ("caffe" mode in
`imagenet_utils`) reverses the channels and subtracts the BGR means `[103.939, 116.779, 123.68]`, with
no scaling. The MatConvNet model is the same network with its first-layer filters re-ordered to RGB, so
flipping our RGB input to BGR before the Keras weights reproduces the authors' features. The model built
here takes RGB in [0, 1] and applies exactly that: `x*255`, RGB->BGR, minus the BGR means.

Pooling. Keras pools VALID (100 -> 50, 25, 12, 6); the authors' VGG pools SAME (100 -> 50, 25, 13, 7).
`same_pooling=True` reproduces theirs. Pooling has no weights, so one weight file serves both.

Weights. `"imagenet"`: the file named by `$VGG19_WEIGHTS` if set, else Keras' cache
(`$KERAS_HOME` or `~/.keras`, `models/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`), else a
download through `keras.utils.get_file` (never with `PHOTOENHANCE_OFFLINE=1`); offline,
`VGGWeightsUnavailable` says how to provide the file.
A path loads that file (Keras' legacy `.h5` layout, with or without the classifier top, or a Keras 3
`.weights.h5` of `keras.applications.VGG19(include_top=False)`). `None`: random weights (tests only).
"""
import os
import socket

import h5py
import keras
import numpy as np

from common.downloads import OFFLINE_ENV, downloads_off, keras_cache_dir
from common.errors import PhotoEnhanceError, VGGWeightsUnavailable

DEFAULT_WEIGHTS_ENV = "VGG19_WEIGHTS"
WEIGHTS_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + WEIGHTS_FILENAME
WEIGHTS_MD5 = "253f8cb515780f3b799900260a226db6"
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
"""ImageNet mean pixel in BGR order (= the authors' RGB means [123.68, 116.779, 103.939] reversed)."""

DPED_CONTENT_LAYERS = ("block5_conv4",)
"""DPED: relu5_4."""
PERCEPTUAL_LAYERS_003 = ("block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4")
"""Seed 003 uses 5 of VGG-19's 16 conv layers 'regularly spaced' without naming them; we take the last
(post-ReLU) conv of each of the 5 blocks, one per scale."""

_BLOCKS = (2, 2, 4, 4, 4)
_WIDTHS = (64, 128, 256, 512, 512)
CONV_LAYERS = tuple(f"block{b + 1}_conv{i + 1}" for b, n in enumerate(_BLOCKS) for i in range(n))
_LAYER_ORDER = tuple(
    name for b, n in enumerate(_BLOCKS)
    for name in [f"block{b + 1}_conv{i + 1}" for i in range(n)] + [f"block{b + 1}_pool"]
)
_CACHE = {}


def vgg_layer_names_for(names):
    """Map the papers' names (`relu5_4`, `relu2_2`, `pool3`) or Keras names to Keras VGG19 layer names.

    Keras' conv layers include their ReLU, so `reluB_L` is `blockB_convL`; pre-activation outputs
    (`convB_L`) are not available and are rejected. Accepts one name or a sequence; returns a tuple.
    """
    if isinstance(names, str):
        names = (names,)
    out = []
    for name in names:
        key = str(name).strip().lower()
        if key in _LAYER_ORDER:
            out.append(key)
            continue
        mapped = None
        if key.startswith("relu") and "_" in key:
            block, _, index = key[4:].partition("_")
            mapped = f"block{block}_conv{index}"
        elif key.startswith("pool") and key[4:].isdigit():
            mapped = f"block{key[4:]}_pool"
        if mapped not in _LAYER_ORDER:
            raise PhotoEnhanceError(
                f"unknown VGG-19 layer {name!r}: use reluB_L (e.g. relu5_4), poolB, or a Keras name "
                f"such as block5_conv4 (conv outputs are post-ReLU)"
            )
        out.append(mapped)
    return tuple(out)


@keras.saving.register_keras_serializable(package="photoenhance")
class VGGPreprocess(keras.layers.Layer):
    """RGB in [0, 1] -> Caffe-mode VGG input: `x*255`, RGB->BGR, minus the BGR ImageNet means."""

    def call(self, x):
        x = keras.ops.cast(x, "float32") * 255.0
        bgr = keras.ops.flip(x, axis=-1)
        return bgr - keras.ops.convert_to_tensor(np.array(CAFFE_BGR_MEAN, np.float32))

    def compute_output_shape(self, input_shape):
        return input_shape


def _build_graph(layers, same_pooling, input_shape):
    """VGG-19 convolutional part up to the deepest requested layer, with Keras' layer names."""
    deepest = max(_LAYER_ORDER.index(name) for name in layers)
    inputs = keras.Input(shape=input_shape, name="rgb_unit")
    x = VGGPreprocess(name="caffe_preprocess", dtype="float32")(inputs)
    taps = {}
    for name in _LAYER_ORDER[: deepest + 1]:
        block = int(name[5]) - 1
        if name.endswith("_pool"):
            x = keras.layers.MaxPooling2D(2, strides=2, padding="same" if same_pooling else "valid",
                                          name=name)(x)
        else:
            x = keras.layers.Conv2D(_WIDTHS[block], 3, padding="same", activation="relu", name=name)(x)
        taps[name] = x
    outputs = [keras.ops.cast(taps[name], "float32") if taps[name].dtype != "float32" else taps[name]
               for name in layers]
    return keras.Model(inputs, outputs, name="vgg19")


class VGGFeatures(keras.Model):
    """The VGG-19 graph returning a list of feature maps (Keras unwraps one-output functional models)."""

    def __init__(self, backbone, layer_names, **kwargs):
        super().__init__(name="vgg19_features", **kwargs)
        self.backbone = backbone
        self.layer_names = tuple(layer_names)

    def call(self, images, training=False):
        out = self.backbone(images, training=training)
        return list(out) if isinstance(out, (list, tuple)) else [out]


def _keras_cache_path():
    return str(keras_cache_dir() / "models" / WEIGHTS_FILENAME)


def _how_to_provide():
    return (
        f"download {WEIGHTS_URL} on a machine with internet and either pass its path as "
        f"weights=<path>, set the environment variable {DEFAULT_WEIGHTS_ENV}=<path>, or copy it to "
        f"{_keras_cache_path()} (Keras' cache)"
    )


def _check_reachable(timeout=5.0):
    """Fail fast (OSError) when the weights host is unreachable, instead of waiting on a download.

    Skipped behind an HTTP(S) proxy, where only the proxy is reachable and urllib goes through it.
    """
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    with socket.create_connection(("storage.googleapis.com", 443), timeout=timeout):
        pass


def _download_imagenet_weights():
    """Keras' own cached download of the notop weights (hash-checked)."""
    _check_reachable()
    return keras.utils.get_file(WEIGHTS_FILENAME, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_MD5)


def _resolve_weights(weights):
    """-> absolute path of the weight file, or None for random weights."""
    if weights is None:
        return None
    if weights != "imagenet":
        path = os.path.abspath(os.fspath(weights))
        if not os.path.isfile(path):
            raise VGGWeightsUnavailable(f"{path}: VGG-19 weight file not found; {_how_to_provide()}")
        return path
    env_path = os.environ.get(DEFAULT_WEIGHTS_ENV)
    if env_path:
        path = os.path.abspath(env_path)
        if not os.path.isfile(path):
            raise VGGWeightsUnavailable(
                f"{path}: file named by ${DEFAULT_WEIGHTS_ENV} not found; {_how_to_provide()}")
        return path
    cached = _keras_cache_path()
    if os.path.isfile(cached):
        return cached
    if downloads_off():
        raise VGGWeightsUnavailable(f"ImageNet VGG-19 weights are not cached and {OFFLINE_ENV} forbids downloads; "
                                    f"{_how_to_provide()}")
    try:
        return os.path.abspath(_download_imagenet_weights())
    except Exception as exc:  # get_file raises bare Exception on URL failures
        raise VGGWeightsUnavailable(
            f"ImageNet VGG-19 weights are not available offline ({exc}); {_how_to_provide()}") from exc


def _read_legacy_h5(path, names):
    """{conv name: (kernel, bias)} from Keras' legacy HDF5 weight layout (what Keras' download is)."""
    with h5py.File(path, "r") as f:
        group = f
        if "layer_names" not in f.attrs and "model_weights" in f:
            group = f["model_weights"]
        if "layer_names" not in group.attrs:
            return None
        stored = {n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["layer_names"]}
        values = {}
        for name in names:
            if name not in stored:
                raise VGGWeightsUnavailable(f"{path}: no layer {name!r} in this file; is it a VGG-19 weight file?")
            layer = group[name]
            weight_names = [n.decode() if isinstance(n, bytes) else str(n) for n in layer.attrs["weight_names"]]
            if len(weight_names) != 2:
                raise VGGWeightsUnavailable(f"{path}: layer {name!r} holds {len(weight_names)} arrays, expected 2")
            values[name] = tuple(np.asarray(layer[w]) for w in weight_names)
        return values


def _read_keras3_weights(path, names):
    """{conv name: (kernel, bias)} from a Keras 3 `.weights.h5` of `VGG19(include_top=False)`."""
    reference = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    reference.load_weights(path)
    return {name: tuple(w.numpy() if hasattr(w, "numpy") else np.asarray(w)
                        for w in reference.get_layer(name).get_weights()) for name in names}


def _load_weights(model, path):
    convs = [layer.name for layer in model.layers if layer.name in CONV_LAYERS]
    try:
        values = _read_legacy_h5(path, convs)
        if values is None:
            values = _read_keras3_weights(path, convs)
    except VGGWeightsUnavailable:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise VGGWeightsUnavailable(f"{path}: cannot read VGG-19 weights ({exc})") from exc
    for name in convs:
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(v.shape) for v in values[name]]
        if expected != got:
            raise VGGWeightsUnavailable(f"{path}: layer {name!r} has shapes {got}, VGG-19 needs {expected}")
        layer.set_weights(list(values[name]))


def build_vgg19_features(layers=DPED_CONTENT_LAYERS, weights="imagenet", same_pooling=False,
                         input_shape=(None, None, 3)):
    """A frozen `keras.Model`: float RGB images in [0, 1] -> list of the requested feature maps (float32).

    `layers`: Keras names or the papers' names (`relu5_4`); always returns a list, even for one layer.
    `weights`: "imagenet" | path | None (see the module docstring). `same_pooling=True`: the DPED
    authors' SAME max pooling. Built models are cached per (layers, weights file, pooling, input shape),
    so losses can call this in every step without rebuilding.
    """
    layers = vgg_layer_names_for(layers)
    if not layers:
        raise PhotoEnhanceError("build_vgg19_features needs at least one layer")
    path = _resolve_weights(weights)
    key = (layers, path, bool(same_pooling), tuple(input_shape))
    if key not in _CACHE:
        backbone = _build_graph(layers, bool(same_pooling), tuple(input_shape))
        if path is not None:
            _load_weights(backbone, path)
        model = VGGFeatures(backbone, layers)
        model.trainable = False
        _CACHE[key] = model
    return _CACHE[key]


def loss_features(layers, weights=None, *, optional=False, notes=None, terms="content loss", same_pooling=False):
    """The VGG-19 feature model of a training run's loss terms, one policy for every model family.

    `weights`: a file, or None for the ImageNet weights found as the module docstring says. Unavailable
    weights stop a normal run (`VGGWeightsUnavailable`, saying how to provide them); with `optional` (the
    offline demos) the function returns None and appends to `notes` that `terms` are disabled.
    """
    try:
        return build_vgg19_features(layers, weights=weights or "imagenet", same_pooling=same_pooling)
    except VGGWeightsUnavailable as exc:
        if not optional:
            raise
        notes.append(f"{terms} disabled: VGG-19 weights unavailable ({exc})")
        return None
