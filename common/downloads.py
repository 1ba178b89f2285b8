"""Where downloaded model files live and whether the project may fetch them.

Files go to Keras' cache (`$KERAS_HOME`, else `~/.keras`), as `keras.utils.get_file` puts them. Setting
`PHOTOENHANCE_OFFLINE=1` forbids every download: files already in the cache (hash-checked) are used, and
anything missing fails at once with the usual message naming the URL and the folder, instead of waiting on
a network that is not there (clusters, CI, the notebook's smoke run).
"""
import hashlib
import os
import pathlib

OFFLINE_ENV = "PHOTOENHANCE_OFFLINE"


def keras_cache_dir():
    """The folder `keras.utils.get_file` caches into by default: `$KERAS_HOME`, else `~/.keras`.

    Read at call time (Keras reads it once at import), so a changed `KERAS_HOME` takes effect."""
    return pathlib.Path(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")))


def downloads_off():
    """True when `PHOTOENHANCE_OFFLINE` is set to anything but "", "0" or "false"."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false")


def sha256_matches(path, sha256):
    """Whether the file at `path` exists and has this sha256 (what `get_file` checks before reusing it)."""
    path = pathlib.Path(path)
    if not path.is_file():
        return False
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == sha256
