"""`phone2dslr` (seed 000): phone photo -> DSLR photo on DPED patches resized to 64x64.

6-level U-Net (one dropout block), instance norm in D, WGAN with weight clipping, G = 2 * (3 perceptual
+ 0.15 colour + 17 content) + adversarial, batch 32, Adam 2e-4 (0.5, 0.99), no L1.

Data: the DPED layout (`common.data.dped_folders`; `--phone` picks the sub-folder). The test patches are
split in two halves, validation (first) and test (second), so none is in both; the training patches
are a separate folder of the layout. The training split is opened only when training needs it, so a
bare `<phone>/` + `canon/` folder of test patches still serves evaluation.
"""
import functools
import pathlib

import numpy as np

from common import data as D
from common import demo_data
from common.errors import DatasetNotFoundError
from pix2pix.tasks.base import Task, TaskData, read_unit, register_task, resize_square


@register_task
class Phone2Dslr(Task):
    name = "phone2dslr"
    description = "phone photo -> DSLR photo on DPED patches resized to 64x64"
    reported = "seed 000: no improvement over the phone photos (misaligned patches)"
    preset = {"depth": 6, "dropout_blocks": 1, "d_norm": "instance", "gan_loss": "wgan", "lambda_l1": 0.0,
              "lambda_perceptual": 6.0, "lambda_color": 0.3, "lambda_content": 34.0, "beta_2": 0.99,
              "batch_size": 32, "iterations": 93_700, "image_size": 64, "flip": False}
    options = ("phone",)

    def open(self, settings, data_dir):
        return DpedData(self, settings, data_dir)

    def prepare_demo(self, root, *, n_train, n_test):
        """A DPED-layout dataset of `n_train` / `n_test` patch pairs (`common.demo_data.build_demo_dped`)."""
        return demo_data.build_demo_dped(pathlib.Path(root).expanduser() / "dped", n_train=n_train, n_test=n_test)


class DpedData(TaskData):
    """DPED patch pairs `(phone, canon)`, resized to `image_size` for training and evaluation."""

    unit = "pairs"

    def __init__(self, task, settings, data_dir):
        super().__init__(task, settings, data_dir)
        test = _pairs(D.dped_folders(self.data_dir, settings.phone, "test"))
        half = len(test) // 2
        self._held_out = {"val": test[:half], "test": test[half:]}

    @functools.cached_property
    def _train(self):
        return _pairs(D.dped_folders(self.data_dir, self.settings.phone, "train"))

    @property
    def splits(self):
        return {"train": self._train, **self._held_out}

    def _split(self, split):
        """One split's pairs; only "train" opens the training folder."""
        return self._train if split == "train" else self._held_out[split]

    def describe(self):
        """The splits; a folder of test patches only says it has no training split."""
        try:
            return super().describe()
        except DatasetNotFoundError:
            return f"{self.data_dir}: test patches only, " + ", ".join(
                f"{k} {len(v)} {self.unit}" for k, v in self._held_out.items())

    def train_batches(self, batch_size, *, seed, start_step=0):
        s = self.settings
        phone, canon = zip(*self._train)
        return D.random_pair_batches(list(phone), list(canon), batch_size, seed=seed, start_step=start_step,
                                     resize=(s.image_size, s.image_size), flip=s.flip,
                                     color_augment=s.color_augment)

    def pairs(self, split, *, image_size=None, limit=None):
        """The split's pairs area-resized to `image_size` (default: the training size)."""
        size = image_size or self.settings.image_size
        out = []
        for phone, canon in self._split(split)[:limit]:
            x, y = (np.clip(resize_square(read_unit(p), size), 0.0, 1.0) for p in (phone, canon))
            out.append((x, y, {"name": pathlib.Path(phone).stem}))
        return out


def _pairs(folders):
    return list(zip(*D.paired_files(*folders)))
