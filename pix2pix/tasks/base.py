"""The task interface: a `Task` is a registered preset of `Pix2PixSettings` plus the data it reads.

A task module subclasses `Task` (name, description, what the source reported, its settings preset, the
task options it reads, how it opens a data folder, builds its demo data, and its classical baseline) and
`TaskData` (splits, step-keyed training batches, evaluation pairs), and registers the task with
`@register_task`. Nothing outside a task module asks which task it is: behaviour comes from the object.

Splits never share a photo, patch or scene. Where a layout gives no validation (or test) split, one is
carved from the training items by a seeded shuffle (`carve_splits`, keyed on `settings.seed`).
"""
import abc
import pathlib
import types

import numpy as np
import tensorflow as tf

from common.config import flag_name, layered, require_positive
from common.errors import DataLayoutError, DatasetNotFoundError, PhotoEnhanceError
from common.images import read_image, to_float
from pix2pix.config import TASK_OPTIONS, Pix2PixSettings

TASKS = {}
"""name -> the registered `Task` (in registration order; command-line choices come from it)."""
SPLITS = ("train", "val", "test")
GAMMA = 2.2
"""The display gamma of the synthetic overexposure and of LDR photos in linear light (seeds 000, 003)."""
HOLD_OUT = 0.1
"""Share of the training items carved out for a missing validation or test split (at least one item)."""
EVAL_SEED = 1234
"""Seed of the synthetic degradations of evaluation pairs: every evaluation sees the same inputs."""
DEMO_SIZE = 256
"""Short side of the photo demos' photos (HDR demo: scene side): crops of the default 256 always fit."""


class Task(abc.ABC):
    """One pix2pix task: a preset of `Pix2PixSettings` and the data behind it."""

    name = ""
    description = ""
    reported = ""  # what the source paper / seed reported for this task
    preset = {}  # Pix2PixSettings overrides (read-only once registered)
    options = ()  # the names of pix2pix.config.TASK_OPTIONS this task reads
    exposure_histograms = False  # evaluate also reports seed 003's exposure histogram intersections

    def settings(self, *layers):
        """`Pix2PixSettings` of this task: defaults < the preset < each dict of `layers`, in order."""
        return layered(Pix2PixSettings, {"task": self.name}, self.preset, *layers)

    def refuse_options(self, given, flags=None):
        """Raise `PhotoEnhanceError` for a task option in `given` (setting names) that this task ignores,
        naming its flag (`flags` maps a setting to the flag that set it, e.g. "--contrast-stretch")."""
        for name in given:
            if name in TASK_OPTIONS and name not in self.options:
                readers = ", ".join(t.name for t in TASKS.values() if name in t.options) or "none"
                flag = (flags or {}).get(name, flag_name(name))
                raise PhotoEnhanceError(f"{flag} does not apply to task {self.name} (tasks that read it: {readers})")

    @abc.abstractmethod
    def open(self, settings, data_dir):
        """The `TaskData` of `data_dir` for these settings (`settings.seed` picks seeded splits)."""

    @abc.abstractmethod
    def prepare_demo(self, root, *, n_train, n_test):
        """Build (or reuse) the offline demo data under `root`; returns the folder to `open`."""

    def baseline(self, settings, x, meta):
        """The classical method's answer for one `[H, W, 3]` input (default: the input itself)."""
        return np.asarray(x, np.float32)

    def postprocess_output(self, settings, image):
        """Post-processing of one `[H, W, 3]` output in [0, 1] (default: none)."""
        return image


def register_task(cls):
    """Class decorator: instantiate `cls` and add it to `TASKS`, checking its preset and options."""
    task = cls()
    if not task.name or task.name in TASKS:
        raise ValueError(f"task name {task.name!r} is empty or already registered")
    unknown = set(task.options) - set(TASK_OPTIONS)
    if unknown:
        raise ValueError(f"task {task.name}: {sorted(unknown)} are not in TASK_OPTIONS")
    task.preset = types.MappingProxyType(dict(cls.preset))
    task.settings()  # an unknown preset key fails here, at import
    TASKS[task.name] = task
    return cls


def get_task(name):
    """The registered task `name`; `PhotoEnhanceError` naming the choices for an unknown one."""
    if name not in TASKS:
        raise PhotoEnhanceError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


class TaskData(abc.ABC):
    """A task's data in one folder: batches, evaluation pairs and `splits`, {"train", "val", "test"} ->
    list of items (photo paths, `(input, target)` path pairs or scenes), set by the subclass."""

    unit = "photos"

    def __init__(self, task, settings, data_dir):
        require_positive(settings, ("val_crop", "demo_photos"))
        self.task = task
        self.settings = settings
        self.data_dir = data_folder(data_dir)

    def describe(self):
        """One line for logs and reports: the folder and the size of each split."""
        return f"{self.data_dir}: " + ", ".join(f"{k} {len(v)} {self.unit}" for k, v in self.splits.items())

    @abc.abstractmethod
    def train_batches(self, batch_size, *, seed, start_step=0):
        """Infinite `(input, target)` [0, 1] batches; batch k depends only on `(seed, start_step + k)`."""

    @abc.abstractmethod
    def pairs(self, split, *, image_size=None, limit=None):
        """Evaluation pairs of `split`: a list of `(input, target, meta)`, float32 `[H, W, 3]` images."""

    def validation_pairs(self, limit=None):
        """What training validates on, all of one shape: the val pairs at the training size, or, for tasks
        that read `val_crop`, centre crops of `--val-crop` (default: the training crop)."""
        s = self.settings
        size = (s.val_crop if "val_crop" in self.task.options else None) or s.image_size
        pairs = self.pairs("val", image_size=size, limit=limit)
        if not pairs:
            raise DataLayoutError(f"{self.data_dir}: no validation pairs for task {self.task.name}")
        return pairs

    def restrict_training(self, n):
        """Train on the first `n` training items only (`--demo-photos`)."""
        if "demo_photos" not in self.task.options:
            raise PhotoEnhanceError(f"--demo-photos does not apply to task {self.task.name}")
        train = self.splits["train"]
        if not 1 <= n <= len(train):
            raise PhotoEnhanceError(f"--demo-photos must be in 1..{len(train)}, got {n}")
        self.splits["train"] = train[:n]


def pairs_dataset(pairs, batch_size=1):
    """A finite tf.data of `(input, target)` batches from equal-size evaluation pairs (validation)."""
    x = np.stack([p[0] for p in pairs])
    y = np.stack([p[1] for p in pairs])
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


# ------------------------------------------------------------------------------------------ helpers
def data_folder(data_dir):
    """`data_dir` as a path, or `DatasetNotFoundError` when it is not a folder."""
    root = pathlib.Path(data_dir).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: {'not a folder' if root.exists() else 'data folder not found'}")
    return root


def seeded_split(items, seed, n_val, n_test):
    """Seeded shuffle of `items` into (train, val, test) lists, each sorted."""
    order = [items[i] for i in np.random.default_rng(seed).permutation(len(items))]
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return sorted(train), sorted(val), sorted(test)


def carve_splits(found, seed, where):
    """{"train", "val", "test"} from the splits a layout holds (`found` has "train"): each missing or
    empty val/test split is a seeded `HOLD_OUT` share (at least one item) of the training items."""
    items = list(found["train"])
    missing = [k for k in ("val", "test") if not found.get(k)]
    n_hold = max(1, round(HOLD_OUT * len(items))) if missing else 0
    if len(items) < 1 + n_hold * len(missing):
        raise DataLayoutError(f"{where}: {len(items)} training item(s) cannot also give "
                              f"{' and '.join(missing)} (need at least {1 + n_hold * len(missing)})")
    train, val, test = seeded_split(items, seed, n_hold if "val" in missing else 0,
                                    n_hold if "test" in missing else 0)
    return {"train": train, "val": val if "val" in missing else list(found["val"]),
            "test": test if "test" in missing else list(found["test"])}


def read_unit(path):
    """A photo file as float32 [0, 1] RGB."""
    return to_float(read_image(path))


def center_crop(image, size, path):
    """The central `size` x `size` window of `image`; `DataLayoutError` naming `path` if it is smaller."""
    h, w = image.shape[:2]
    if min(h, w) < size:
        raise DataLayoutError(f"{path}: {h}x{w} is smaller than the crop {size}")
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


def resize_square(image, size):
    """Area-resize `[H, W, 3]` to `size` x `size` (the fixed evaluation size of resized tasks)."""
    return tf.image.resize(image, (size, size), method="area").numpy()
