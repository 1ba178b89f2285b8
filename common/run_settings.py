"""The settings every training run has, whatever the model: data, run folder, length, cadences, runtime.

Recipes (`dped.config`, `pix2pix.config`) subclass `RunSettings` with their own fields; `common.config`
turns all of them into flags and applies the resume rules.
"""
import dataclasses

from common.config import setting
from common.training import STRATEGIES


@dataclasses.dataclass(frozen=True)
class RunSettings:
    data_dir: str = setting(None, "the dataset folder (layouts: --help epilog)")
    demo: bool = setting(False, "build and train on a small offline demo dataset")
    out: str = setting(None, "run folder (default runs/<model>[-demo])", on_resume="free")
    iterations: int = setting(20000, "total training steps", on_resume="change")
    batch_size: int = setting(50, "global batch size")
    eval_every: int = setting(1000, "validate every N steps", on_resume="change")
    checkpoint_every: int = setting(None, "checkpoint every N steps (default: --eval-every)", kind=int,
                                    on_resume="change")
    log_every: int = setting(100, "history/TensorBoard scalars every N steps", on_resume="change")
    keep_checkpoints: int = setting(3, "how many checkpoints to keep (at least 1)", on_resume="change")
    val_limit: int = setting(None, "validate on the first N validation pairs only (default: all)", kind=int)
    seed: int = setting(0, "seed of initialisation, data split, batches and random draws")
    strategy: str = setting("default", "default (one device), mirrored (all local GPUs, or logical CPUs), "
                            "multiworker (the machines of $TF_CONFIG) or tpu; each makes the same update as one "
                            "device with the same --batch-size", choices=tuple(STRATEGIES), on_resume="free")
    mixed_precision: str = setting("auto", "float16 compute with loss scaling; auto = on with a GPU",
                                   choices=("auto", "on", "off"))
    jit_compile: bool = setting(False, "XLA-compile the training step", on_resume="free")
    vgg_weights: str = setting(None, "VGG-19 notop .h5 file (default: $VGG19_WEIGHTS, Keras' cache, or a "
                               "download)", on_resume="free")
    export: bool = setting(True, "write the SavedModel at the end of the run", on_resume="free")
    progress: bool = setting(True, "progress bars (--no-progress: logs only)", on_resume="free")
    verbose: bool = setting(False, "show TensorFlow's native log lines (hidden by default)", on_resume="free")

    @property
    def checkpoint_cadence(self):
        return self.checkpoint_every or self.eval_every
