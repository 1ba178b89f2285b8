"""Shared command-line plumbing: quiet TensorFlow start-up and one-line errors for bad input."""
import os
import sys


def quiet_tensorflow():
    """Silence TensorFlow's C++ start-up chatter; call before importing TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def add_runtime_flags(parser):
    """The flags every training command shares: distribution, precision, XLA and the VGG-19 weights file."""
    parser.add_argument("--strategy", choices=("default", "mirrored"), default="default",
                        help="mirrored: all local GPUs (or logical CPU devices), same update as one device")
    parser.add_argument("--mixed-precision", choices=("auto", "on", "off"), default="auto",
                        help="float16 compute with loss scaling; auto = on when a GPU is present")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile the training step")
    parser.add_argument("--vgg-weights", default=None,
                        help="VGG-19 notop .h5 file (default: $VGG19_WEIGHTS, Keras' cache, or a download)")


def run_cli(main, argv=None):
    """Run `main(argv)`: bad user input (`PhotoEnhanceError`) becomes one line on stderr and exit code 2,
    a diverged training run (`TrainingDiverged`, last good checkpoint kept) one line and exit code 3."""
    from common.errors import PhotoEnhanceError, TrainingDiverged

    try:
        return main(argv)
    except PhotoEnhanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is kept; re-run the same command to resume", file=sys.stderr)
        raise SystemExit(130) from None
