"""Errors for bad user input: each names the file or folder and the problem.

They derive from `ValueError` so callers that already catch that keep working, and the command-line
entry points print them as one line instead of a traceback.
"""


class PhotoEnhanceError(ValueError):
    """Base class: a problem with the user's input, files or settings."""


class ImageReadError(PhotoEnhanceError):
    """An image file is missing, unreadable, truncated or of an unsupported kind."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class DatasetNotFoundError(PhotoEnhanceError):
    """A dataset folder or file is not where it was looked for."""


class DataLayoutError(PhotoEnhanceError):
    """A dataset exists but its layout is wrong (unpaired names, empty folders, wrong sizes)."""


class VGGWeightsUnavailable(PhotoEnhanceError):
    """ImageNet VGG-19 weights could neither be found locally nor downloaded."""


class CheckpointError(PhotoEnhanceError):
    """A checkpoint is missing, incomplete or does not match the model."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint was kept."""
