"""Shared command-line plumbing: one-line errors for bad input, exit codes."""
import sys


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


def console_script(main):
    """The zero-argument entry point of a command (`cli = console_script(main)`: the console scripts of
    pyproject.toml and `python -m` both call it)."""
    return lambda: run_cli(main)
