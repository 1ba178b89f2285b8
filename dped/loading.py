"""Where a DPED generator comes from: a `.keras` / `.weights.h5` file, an exported SavedModel folder or the
authors' TF1 checkpoint. Shared by the enhance, evaluate and export commands (none imports another CLI).
"""
import keras
import numpy as np
import tensorflow as tf

from common.enhance_cli import ARTIFACT_SOURCE, ModelSource, load_saved_model
from common.pretrained import PRETRAINED, pretrained_checkpoint
from dped.convert_original import load_original_checkpoint
from dped.models import load_generator


def load_weights(path):
    """A DPED generator file (`.keras`, family checked; `.weights.h5` into the paper's network)."""
    return load_generator(path)


def load_checkpoint(prefix):
    """The authors' TF1 checkpoint prefix (e.g. `iphone_orig`) as a Keras generator."""
    return load_original_checkpoint(prefix)


def load_pretrained(name):
    """The authors' published model `name`, fetched once into Keras' cache (`common.pretrained`)."""
    return load_checkpoint(pretrained_checkpoint(name))


KERAS_SOURCES = (
    ModelSource("--weights", "generator file (.keras or .weights.h5)", load_weights),
    ModelSource("--original-checkpoint", "the authors' TF1 checkpoint prefix, e.g. iphone_orig", load_checkpoint),
    ModelSource("--pretrained", "the authors' model, downloaded once into Keras' cache", load_pretrained,
                tuple(sorted(PRETRAINED))),
)
"""The sources that give a Keras generator (what export and fine-tuning need)."""
SOURCES = KERAS_SOURCES + (
    ModelSource("--saved-model", "SavedModel folder written by dped.export", load_saved_model), ARTIFACT_SOURCE)


def make_predictor(model):
    """A numpy function [N,h,w,3] float32 -> float32 for a Keras model (one trace for every batch and size)
    or for any callable (e.g. a SavedModel signature)."""
    if isinstance(model, keras.Model):
        traced = tf.function(lambda x: model(x, training=False),
                             input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        return lambda x: traced(tf.convert_to_tensor(x, tf.float32)).numpy()
    return lambda x: np.asarray(model(np.asarray(x, np.float32)))
