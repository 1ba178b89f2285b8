"""Tasks whose input is made on the fly from clean photos (deblur, overexposure): their shared data.

Layout: clean photos in `train/` (+ optional `val/`, `test/`) sub-folders, or in one flat folder. A
missing split is a seeded 10 % share of the training photos (a flat folder: 80 / 10 / 10), so no photo
is in two splits. Training crops `image_size` windows (flip, colour jitter) and degrades the finished
batch; evaluation degrades whole photos, or their centre crops, keyed on `(EVAL_SEED, index)` so every
evaluation sees the same inputs.
"""
import abc
import pathlib

import tensorflow as tf

from common import data as D
from common import demo_data
from common.images import list_images
from pix2pix.tasks.base import (DEMO_SIZE, EVAL_SEED, SPLITS, Task, TaskData, carve_splits, center_crop,
                                data_folder, read_unit)


def clean_photo_splits(data_dir, seed=0):
    """{"train", "val", "test"} lists of clean photo paths (see the module docstring for the layouts)."""
    root = data_folder(data_dir)
    if (root / "train").is_dir():
        found = {k: [str(p) for p in list_images(root / k)] for k in SPLITS if (root / k).is_dir()}
    else:
        found = {"train": [str(p) for p in list_images(root)]}
    return carve_splits(found, seed, root)


class SyntheticTask(Task):
    """A task whose input is `degrade(settings, clean, seed)` of a clean photo."""

    def open(self, settings, data_dir):
        self.check(settings)
        return SyntheticData(self, settings, data_dir)

    @abc.abstractmethod
    def check(self, settings):
        """Refuse settings the degradation cannot use (raise `PhotoEnhanceError` naming the flag)."""

    @abc.abstractmethod
    def degrade(self, settings, clean, seed):
        """The synthetic input of a clean [0, 1] batch `[N, H, W, 3]`, keyed on the stateless `seed` [2]."""

    def meta(self, settings, seed):
        """What evaluation needs to know about the degradation drawn with `seed` (e.g. its tau)."""
        return {}

    def prepare_demo(self, root, *, n_train, n_test):
        """The bundled photos as clean PNGs (every photo, whatever `n_train` / `n_test`), split by photo."""
        return demo_data.build_demo_clean(pathlib.Path(root).expanduser() / "clean", min_side=DEMO_SIZE)


class SyntheticData(TaskData):
    """Clean photos and the task's degradation of them."""

    def __init__(self, task, settings, data_dir):
        super().__init__(task, settings, data_dir)
        self.splits = clean_photo_splits(self.data_dir, seed=settings.seed)

    def _degrade(self, clean, seed):
        return self.task.degrade(self.settings, clean, seed)

    def train_batches(self, batch_size, *, seed, start_step=0):
        s = self.settings
        return D.synthetic_pair_dataset(self.splits["train"], self._degrade, batch_size, seed=seed,
                                        crop_size=s.image_size, flip=s.flip, color_augment=s.color_augment,
                                        start_step=start_step)

    def pairs(self, split, *, image_size=None, limit=None):
        """Whole photos, or their centre `image_size` crops, with the inputs keyed on `(EVAL_SEED, index)`."""
        out = []
        for i, path in enumerate(self.splits[split][:limit]):
            clean = read_unit(path)
            if image_size:
                clean = center_crop(clean, image_size, path)
            seed = tf.constant([EVAL_SEED, i], tf.int64)
            degraded = self._degrade(clean[None], seed)[0].numpy()
            out.append((degraded, clean, {"name": pathlib.Path(path).stem, **self.task.meta(self.settings, seed)}))
        return out
