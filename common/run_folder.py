"""A training run's folder: one process at a time, its settings on record, no temporary files left behind.

    runs/dped-sony/
      run.lock               PID, host and start time of the process training in this folder
      config.json            the settings, plus every change made on resume (step and old -> new)
      checkpoints/           ckpt-<step>.npz and latest.json (`common.training.RunCheckpoint`)
      history.jsonl          logged losses, validation scores, resume events
      best.json, best_generator.keras, last_generator.keras, saved_model/, summary.json, tensorboard/

`RunFolder.lock()` refuses a second process on the same folder, naming the holder; a lock whose process is
gone (killed, machine restarted) is taken over with a message. Everything written here goes through a
temporary file or folder beside its target and a rename, and `clean_temporaries()` removes the leftovers of
a process that was killed mid-write.
"""
import contextlib
import json
import os
import pathlib
import shutil
import socket
import sys
import time

from common.errors import PhotoEnhanceError
from common.atomic_files import write_text

LOCK_FILE = "run.lock"
CONFIG_FILE = "config.json"
TEMPORARY_MARK = ".tmp"


class RunFolderBusy(PhotoEnhanceError):
    """Another live process is training in this run folder."""


def process_alive(pid):
    """Whether process `pid` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunFolder:
    """Paths of one run folder, its lock and its settings record."""

    def __init__(self, path):
        self.path = pathlib.Path(path).expanduser()
        if self.path.exists() and not self.path.is_dir():
            raise PhotoEnhanceError(f"{self.path}: the run folder (--out) is a file")

    def __truediv__(self, name):
        return self.path / name

    @contextlib.contextmanager
    def lock(self):
        """Hold the folder's lock for the duration of the block (a second process is refused)."""
        self.path.mkdir(parents=True, exist_ok=True)
        lock = self.path / LOCK_FILE
        self._take(lock)
        try:
            yield self
        finally:
            with contextlib.suppress(FileNotFoundError):
                if json.loads(lock.read_text()).get("pid") == os.getpid():
                    lock.unlink()

    def _take(self, lock):
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._check_holder(lock)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(record)
            return
        raise RunFolderBusy(f"{lock}: could not take the lock (another process keeps taking it)")

    def _check_holder(self, lock):
        """Raise if the lock's holder is alive; remove a stale lock (its process is gone)."""
        try:
            holder = json.loads(lock.read_text() or "{}")
        except (OSError, ValueError):
            holder = {}
        pid, host = holder.get("pid"), holder.get("host")
        if isinstance(pid, int) and (host != socket.gethostname() or process_alive(pid)):
            raise RunFolderBusy(
                f"{self.path} is in use by process {pid} on {host} (started {holder.get('started')}); wait for it "
                f"to finish, stop it, or train into another --out (if that process is really gone, delete {lock})")
        print(f"note: {lock}: taking over the lock of process {pid}, which no longer runs", file=sys.stderr)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()

    def clean_temporaries(self):
        """Remove temporary files and folders that a killed process left (names start with '.' and hold
        '.tmp'); returns their names."""
        removed = []
        for folder in (self.path, self.path / "checkpoints"):
            if not folder.is_dir():
                continue
            for item in folder.iterdir():
                if item.name.startswith(".") and TEMPORARY_MARK in item.name:
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
                    removed.append(item.name)
        return removed

    def read_config(self):
        """The recorded config.json as a dict, or None for a new run."""
        path = self.path / CONFIG_FILE
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise PhotoEnhanceError(f"{path}: unreadable run settings ({exc}); move it away to start afresh") from None

    def write_config(self, record):
        write_text(self.path / CONFIG_FILE, json.dumps(record, indent=2, default=str), fsync=True)

    def write_json(self, name, record):
        write_text(self.path / name, json.dumps(record, indent=2, default=float), fsync=True)
