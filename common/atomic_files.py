"""Files that appear whole or not at all: each is written to a temporary name beside its target and renamed
over it once complete (`os.replace`, atomic on POSIX and Windows), so an interrupted run leaves the old file
or the new one, never half of one, and no temporary file behind.

    with atomic_output("out/photo.png") as tmp:   # any writer that takes a path
        image.save(tmp)
    write_text("out/metrics.json", json.dumps(result))

`fsync=True` also flushes the data to disk before the rename, for files a resumed run depends on
(checkpoints, their pointers, run records): after a power cut the rename must not point at empty blocks.
"""
import contextlib
import os
import pathlib
import tempfile


@contextlib.contextmanager
def atomic_output(path, *, fsync=False):
    """Yield a temporary path beside `path` (its parent folders made); on success rename it to `path`, on
    any failure remove it. The temporary name keeps every suffix: Keras insists on `.weights.h5`."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffixes = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:len(path.name) - len(suffixes)]}.", suffix=f".tmp{suffixes}",
                               dir=path.parent)
    os.close(fd)
    tmp = pathlib.Path(tmp)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path, data, *, fsync=False):
    """Write `data` to `path` whole or not at all."""
    with atomic_output(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return pathlib.Path(path)


def write_text(path, text, *, fsync=False):
    """Write `text` (UTF-8) to `path` whole or not at all."""
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)
