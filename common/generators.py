"""Saving and loading generators with a record of what they are, so no command runs the wrong network.

A DPED generator handed to `pix2pix.enhance` (or a deblur U-Net to the HDR task) runs without complaint
and produces garbage. `save_generator` therefore records the family ("dped" or "pix2pix") and, for
pix2pix, the task in the saved model's name (`photoenhance.<family>[.<task>]`, kept in the `.keras`
config); `load_generator` refuses a model of another family or task with a message naming the file.
Files saved before the record existed are recognised by their architecture (`ARCHITECTURES`); whether
such an old file fits a task is the family's question (`fits`).
"""
import json
import pathlib
import zipfile

import keras

import common.layers  # noqa: F401  (registers the shared custom layers for deserialisation)
from common.errors import CheckpointError
from common.atomic_files import atomic_output

FAMILIES = ("dped", "pix2pix")
RECORD_PREFIX = "photoenhance."
ARCHITECTURES = {"dped": {"conv1", "norm0", "enhanced"}, "pix2pix": {"pad", "crop"}}
"""Layer names that identify a family's generator saved before the record existed."""


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
    with atomic_output(path) as tmp:
        model.save(tmp)
    return path


def _kind(name, layer_names):
    """(family, task) from a model's name and layer names; (None, None) for something else."""
    if name.startswith(RECORD_PREFIX):
        parts = name[len(RECORD_PREFIX):].split(".")
        return parts[0], (parts[1] if len(parts) > 1 else None)
    for family, layers in ARCHITECTURES.items():
        if layers <= set(layer_names):
            return family, None
    return None, None


def identify(model):
    """(family, task) of a loaded generator: from its recorded name, else from its architecture (task None)."""
    return _kind(model.name, [layer.name for layer in model.layers])


def recorded_kind(path):
    """(family, task) of a `.keras` file, read from its config without building the model (so a file of
    another family is named as such even when that family's layers are not imported)."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))["config"]
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: not a Keras .keras model file ({type(exc).__name__}: {exc})") from None
    return _kind(config.get("name", ""), [layer.get("config", {}).get("name") for layer in config.get("layers", [])])


def load_generator(path, *, family, task=None, fits=None):
    """Load a `.keras` generator and check it is of `family` (and, for pix2pix, of `task`).

    The caller has imported its family's layers. `fits(model)` may return why an old file (no record) cannot
    serve `task`. Raises `CheckpointError` naming the file when it is missing, unreadable or of another kind.
    """
    _check_family(family)
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: generator file not found")
    found_family, found_task = recorded_kind(path)
    if found_family is None:
        raise CheckpointError(f"{path}: not a generator of this project; expected a {family} generator")
    if found_family != family:
        raise CheckpointError(f"{path}: is a {found_family} generator, not a {family} one; use "
                              f"python -m {found_family}.enhance for it")
    if task is not None and found_task is not None and found_task != task:
        raise CheckpointError(f"{path}: is a pix2pix {found_task} generator, not a {task} one")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, KeyError, OSError, ... for bad or mismatched files.
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{path}: cannot be loaded as a Keras model ({type(exc).__name__}: {first})") from None
    problem = fits(model) if fits is not None and found_task is None else None
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    return model


def _check_family(family):
    if family not in FAMILIES:
        raise CheckpointError(f"unknown generator family {family!r}; choose one of {FAMILIES}")
