"""Run `dped.train` and SIGKILL this process at one chosen moment: the harness of tests/test_faults.py.

    python tests/fault_runner.py MOMENT STEP -- <dped.train flags>

MOMENT is where the kill lands at training step STEP: `step` (as the step starts), `checkpoint` (half-way
through writing its checkpoint file), `history` (half-way through a history line), `validation` (while
validating), `best` (after the best generator is written, before best.json), `export` (the export folder
written, not yet moved into place), or `none` (no kill). Nothing here is imported by the product.
"""
import io
import json
import os
import signal
import sys

from common import trainer, training
from common.cli import run_cli
from dped import train


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def arm(moment, step):
    """Patch the training machinery so that this process dies at `moment` of step `step`."""
    if moment == "step":
        training.NaNGuard.on_train_batch_begin = lambda self, batch, logs=None: die() if self.step + 1 == step else None
    elif moment == "checkpoint":
        savez = training.np.savez

        def half_written(f, **arrays):
            if f'"step": {step},' in str(arrays["manifest"]):
                f.write(b"PK\x03\x04 half a checkpoint")
                f.flush()
                die()
            savez(f, **arrays)

        training.np.savez = half_written
    elif moment == "history":
        append = training.append_jsonl

        def half_line(path, record):
            if record.get("step") == step and "val_psnr" not in record:
                with open(path, "a") as f:
                    f.write('{"step": %d, "g_lo' % step)
                die()
            append(path, record)

        training.append_jsonl = half_line
    else:
        arm_late(moment, step)


def arm_late(moment, step):
    """The moments after the step's losses: validation, best model, export."""
    if moment == "validation":
        evaluate = training.evaluate_pairs
        training.evaluate_pairs = lambda *a, **k: die() if k.get("desc") == f"validation @ {step}" else evaluate(*a, **k)
    elif moment == "best":
        write = training._atomic_write

        def best_then_die(path, fn):
            if path.name == training.BEST_FILE:
                buffer = io.BytesIO()
                fn(buffer)
                if json.loads(buffer.getvalue())["step"] == step:
                    die()
            write(path, fn)

        training._atomic_write = best_then_die
    elif moment == "export":
        export = trainer.export_atomic

        def half_export(recipe, generator, settings, target):
            recipe.export(generator, settings, target.with_name(f".{target.name}.tmp"))
            die()

        trainer.export_atomic = half_export if step else export
    elif moment != "none":
        raise SystemExit(f"unknown moment {moment!r}")


if __name__ == "__main__":
    moment, step, separator, *argv = sys.argv[1:]
    assert separator == "--"
    arm(moment, int(step))
    run_cli(train.main, argv)
