"""Saving and loading generators with a record of what they are, so no command runs the wrong network.

A DPED generator handed to `pix2pix.enhance` (or a deblur U-Net to the HDR task) runs without complaint
and produces garbage. `save_generator` therefore records the family ("dped" or "pix2pix") and, for
pix2pix, the task in the saved model's name (`photoenhance.<family>[.<task>]`, kept in the `.keras`
config); `load_generator` refuses a model of another family or task with a message naming the file.
Files saved before the record existed are recognised by their architecture: the DPED generator's layers
`conv1`, `norm0` and `enhanced`, the U-Net's `pad` and `crop`; an old U-Net with a ReLU output is an
HDR (ldr2hdr) generator, one with a tanh output serves the other tasks.
"""
import pathlib

import keras

import common.layers  # noqa: F401  (registers the shared custom layers for deserialisation)
import pix2pix.layers  # noqa: F401  (the U-Net's custom layers, likewise)
import pix2pix.models  # noqa: F401
from common.errors import CheckpointError
from common.photo_write import atomic_output

FAMILIES = ("dped", "pix2pix")
RECORD_PREFIX = "photoenhance."
LINEAR_TASKS = ("ldr2hdr",)


def record_name(family, task=None):
    """The model name that records `family` and `task`, e.g. "photoenhance.pix2pix.deblur"."""
    _check_family(family)
    return RECORD_PREFIX + family + (f".{task}" if task else "")


def save_generator(model, path, *, family, task=None):
    """Atomically save `model` as a `.keras` file whose name records `family` (and the pix2pix `task`)."""
    path = pathlib.Path(path)
    if not path.name.endswith(".keras"):
        raise CheckpointError(f"{path}: generator files must end in .keras")
    if family == "pix2pix" and not task:
        raise CheckpointError(f"{path}: a pix2pix generator needs its task recorded")
    model.name = record_name(family, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        model.save(tmp)
    return path


def identify(model):
    """(family, task) of a loaded generator: from its recorded name, else from its architecture (task None
    when only the output activation is known, "ldr2hdr" for a ReLU-output U-Net)."""
    if model.name.startswith(RECORD_PREFIX):
        parts = model.name[len(RECORD_PREFIX):].split(".")
        return parts[0], (parts[1] if len(parts) > 1 else None)
    names = {layer.name for layer in model.layers}
    if {"conv1", "norm0", "enhanced"} <= names:
        return "dped", None
    if {"pad", "crop"} <= names:
        return "pix2pix", ("ldr2hdr" if "output_relu" in names else None)
    return None, None


def load_generator(path, *, family, task=None):
    """Load a `.keras` generator and check it is of `family` (and, for pix2pix, fits `task`).

    Raises `CheckpointError` naming the file when it is missing, unreadable or of another family or task.
    """
    _check_family(family)
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: generator file not found")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, KeyError, OSError, ... for bad or mismatched files.
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{path}: cannot be loaded as a Keras model ({type(exc).__name__}: {first})") from None
    _check_kind(path, model, family, task)
    return model


def _check_kind(path, model, family, task):
    found_family, found_task = identify(model)
    if found_family is None:
        raise CheckpointError(f"{path}: not a generator of this project (model {model.name!r}); expected a "
                              f"{family} generator")
    if found_family != family:
        raise CheckpointError(f"{path}: is a {found_family} generator, not a {family} one; use "
                              f"python -m {found_family}.enhance for it")
    if task is None or found_task == task:
        return
    recorded = model.name.startswith(RECORD_PREFIX)
    if recorded and found_task is not None:
        raise CheckpointError(f"{path}: is a pix2pix {found_task} generator, not a {task} one")
    if (task in LINEAR_TASKS) != (found_task in LINEAR_TASKS):
        kind = "an HDR (ReLU output)" if found_task in LINEAR_TASKS else "a [0, 1] (tanh output)"
        raise CheckpointError(f"{path}: is {kind} generator and cannot serve the {task} task")


def _check_family(family):
    if family not in FAMILIES:
        raise CheckpointError(f"unknown generator family {family!r}; choose one of {FAMILIES}")
