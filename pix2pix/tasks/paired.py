"""`paired`: any folder of aligned input/target photos, with the pix2pix paper's defaults.

Layout: `train/input/`, `train/target/` and, optionally, `val/{input,target}/` and `test/{input,target}/`;
an input pairs with the target of the same name (`0001.jpg` with `0001.png`). A missing val or test
split is a seeded 10 % share of the training pairs, by photo (`--seed` picks it). Photos may have any
size, but the two photos of a pair must have the same size: training takes random `--image-size` crops
(the same window of both), evaluation the whole photos or their centre crops, validation centre crops of
`--val-crop` (default `--image-size`). Unpaired names, pairs of different sizes and unreadable files
are refused with their names. Baseline: the input itself.
"""
import pathlib

from common import data as D
from common import demo_data
from common.degradations import phone_degrade
from common.errors import DataLayoutError
from common.images import list_images, write_image
from pix2pix.tasks.base import (DEMO_SIZE, SPLITS, Task, TaskData, carve_splits, center_crop, read_unit,
                                register_task)

DEMO_SEED = 12


@register_task
class Paired(Task):
    name = "paired"
    description = "any aligned input/target photo pairs (train/{input,target}/, test/{input,target}/)"
    reported = "pix2pix (Isola et al. 2017): U-Net + 70 px PatchGAN, BCE + 100 L1, Adam 2e-4 (0.5)"
    preset = {}
    options = ("val_crop",)

    def open(self, settings, data_dir):
        return PairedData(self, settings, data_dir)

    def prepare_demo(self, root, *, n_train, n_test):
        """Pairs from the bundled photos (every photo, whatever the counts): `build_demo_paired`."""
        return build_demo_paired(pathlib.Path(root).expanduser())


class PairedData(TaskData):
    """`(input, target)` file pairs matched by name; val and test checked when opened, train when trained."""

    unit = "pairs"

    def __init__(self, task, settings, data_dir):
        super().__init__(task, settings, data_dir)
        found = {}
        for split in SPLITS:
            if (self.data_dir / split).is_dir():
                inputs, targets = D.paired_files(self.data_dir / split / "input", self.data_dir / split / "target")
                found[split] = list(zip(inputs, targets))
        if "train" not in found:
            raise DataLayoutError(f"{self.data_dir}: no train/ folder (expected train/input/ and train/target/, "
                                  "plus test/input/ and test/target/)")
        self.splits = carve_splits(found, settings.seed, self.data_dir)
        for split in ("val", "test"):
            D.scan_pairs(*zip(*self.splits[split]))

    def train_batches(self, batch_size, *, seed, start_step=0):
        """Random `image_size` crops of random pairs (pairs of other sizes or too small are refused, named)."""
        s = self.settings
        inputs, targets = zip(*self.splits["train"])
        return D.random_pair_batches(list(inputs), list(targets), batch_size, seed=seed, start_step=start_step,
                                     patch_size=s.image_size, flip=s.flip, color_augment=s.color_augment)

    def pairs(self, split, *, image_size=None, limit=None):
        """Whole pairs, or their centre `image_size` crops."""
        out = []
        for a, b in self.splits[split][:limit]:
            x, y = read_unit(a), read_unit(b)
            if image_size:
                x, y = center_crop(x, image_size, a), center_crop(y, image_size, b)
            out.append((x, y, {"name": pathlib.Path(a).stem}))
        return out


def build_demo_paired(root, min_side=DEMO_SIZE, seed=DEMO_SEED):
    """Write `<root>/paired/{train,test}/{input,target}/<photo>.png` from the bundled photos and return it.

    Targets are the clean demo photos (`common.demo_data.build_demo_clean`, split by photo); each input
    is its target after `common.degradations.phone_degrade` with a fixed per-photo seed (blur, tone,
    colour cast, noise, JPEG). Built in a temporary folder, then moved into place; reused when complete.
    """
    root = pathlib.Path(root).expanduser()
    final, marker = root / "paired", ".demo_paired_complete.json"
    params = {"version": 1, "min_side": min_side, "seed": seed}
    if demo_data.is_complete(final, marker, params):
        return final
    clean = demo_data.build_demo_clean(root / "clean", min_side=min_side)
    tmp = demo_data.building_folder(root, "paired")
    for offset, split in enumerate(("train", "test")):
        for i, path in enumerate(list_images(clean / split)):
            target = read_unit(path)
            degraded = phone_degrade(target, seed=[seed, 1000 * offset + i]).numpy()
            write_image(tmp / split / "input" / f"{path.stem}.png", degraded)
            write_image(tmp / split / "target" / f"{path.stem}.png", target)
    demo_data.publish(tmp, final, marker, params)
    return final
