"""DPED training settings (paper defaults) and the demo's: each field's default, help and resume rule."""
import dataclasses

from common.config import setting
from common.run_settings import RunSettings

PHONES = ("iphone", "sony", "blackberry")


@dataclasses.dataclass(frozen=True)
class DPEDSettings(RunSettings):
    phone: str = setting("iphone", "the DPED sub-folder (iphone, sony, blackberry, or your own camera's name)")
    tfds: bool = setting(False, "read DPED through its TFDS builder (datasets/dped.py), prepared from --data-dir "
                         "in array_record format if needed; same batches and exact resume")
    tfds_data_dir: str = setting(None, "TFDS data folder (with --tfds; default: TFDS's own)", on_resume="free")
    patch_size: int = setting(100, "training patch side (at least 32)")
    lr: float = setting(5e-4, "Adam learning rate of both networks", on_resume="change")
    loss_preset: str = setting("code", "loss weights of the authors' code (10/0.5/1/2000) or of the paper "
                               "(1/0.1/0.4/400)", choices=("code", "paper"), on_resume="change")
    content_weight: float = setting(None, "override the preset's content weight", kind=float, on_resume="change")
    color_weight: float = setting(None, "override the preset's color weight", kind=float, on_resume="change")
    texture_weight: float = setting(None, "override the preset's texture weight", kind=float, on_resume="change")
    tv_weight: float = setting(None, "override the preset's tv weight", kind=float, on_resume="change")
    texture_warmup: int = setting(0, "leave the texture term out of the generator loss for the first N steps "
                                  "(authors' tip: 1-2K)", on_resume="change")
    same_batch: bool = setting(False, "update G and D on the same batch (the authors use two separate random "
                               "batches)")
    init_from: str = setting(None, "start a new run from these generator weights (fine-tuning): a .keras file, "
                             "the authors' TF1 checkpoint prefix, or a --pretrained name")
    width: int = setting(64, "generator channels")
    blocks: int = setting(4, "generator residual blocks")

    def loss_overrides(self):
        return {"content": self.content_weight, "color": self.color_weight, "texture": self.texture_weight,
                "tv": self.tv_weight}


DEMO = {"iterations": 200, "batch_size": 4, "patch_size": 40, "eval_every": 100, "log_every": 10,
        "content_weight": 0.0, "tv_weight": 0.0}
"""What `--demo` changes: a CPU-sized run of a few minutes on the offline demo dataset, fine-tuning the
authors' model when it is available (`dped.recipe.demo_start`). No content term, online or offline: the
result is the measured one everywhere, and the first run downloads no 548 MB of VGG-19 (`--content-weight
10` turns it on). No TV term: unbalanced by the content term, the code preset's 2000 blurs the photo in 200
steps (measured on the demo data: 25.1 dB / SSIM 0.67 with it, 27.4 dB / SSIM 0.81 without; input 19.6 /
0.79)."""
DEMO_DATASET = {"n_train": 400, "n_test": 24, "patch_size": 100}
