"""pix2pix tasks as registered objects, one module each; `TASKS` is the registry (CLI choices come from it).

- `phone2dslr` (seed 000): DPED phone/DSLR patches resized to 64x64;
- `deblur` (seed 000): clean photos blurred with a Gaussian of sigma 1 on the fly;
- `ldr2hdr` (seed 000): one exposure of a scene -> its HDR image;
- `overexposure` (seed 003): clean photos overexposed in linear light;
- `paired`: any folder of aligned input/target photos, with the pix2pix paper's defaults.
Each module's docstring gives its preset, data layout and baseline; `base` the interface. All images are
float32 in [0, 1] (HDR targets: linear, >= 0); `Pix2Pix` converts to [-1, 1].
"""
from pix2pix.tasks import deblur, ldr2hdr, overexposure, paired, phone2dslr  # noqa: F401 (they register)
from pix2pix.tasks.base import TASKS, Task, TaskData, get_task, pairs_dataset, register_task

__all__ = ["TASKS", "Task", "TaskData", "get_task", "pairs_dataset", "register_task"]
