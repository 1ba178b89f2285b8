"""What DPED and pix2pix share.

Importing it quiets TensorFlow before TensorFlow loads: its native log level is raised, and TensorFlow
itself is imported with the process's stderr pointed at /dev/null, because TensorFlow 2.21 prints its
start-up notices (oneDNN, "Could not find cuda drivers", absl's pre-init warning) before any log level
applies. A command run with `--verbose` keeps all of them.
"""
import os
import sys


def _import_tensorflow_quietly():
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


if "--verbose" not in sys.argv:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _import_tensorflow_quietly()
