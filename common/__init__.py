"""What DPED and pix2pix share.

Importing it quiets TensorFlow before TensorFlow loads: its native log level is raised, and TensorFlow
itself is imported with the process's stderr pointed at /dev/null, because TensorFlow 2.21 prints its
start-up notices (oneDNN, "Could not find cuda drivers", absl's pre-init warning) before any log level
applies. A command run with `--verbose` keeps all of them.

It also caps glibc's malloc arenas at the core count (glibc's default is 8 per core; `MALLOC_ARENA_MAX`
set by the user wins): TensorFlow's pool threads each grow an arena of their own, and that memory, tens of
MB that differ from run to run, is what a `--memory-budget-mb` plan cannot foresee.
"""
import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def _cap_malloc_arenas():
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, max(2, os.cpu_count() or 2))
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to cap
        pass


def _import_tensorflow_quietly():
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


_cap_malloc_arenas()
if "--verbose" not in sys.argv:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _import_tensorflow_quietly()
