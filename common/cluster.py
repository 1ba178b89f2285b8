"""Training on several machines (`--strategy multiworker`) or on a TPU (`--strategy tpu`).

`multiworker` is `tf.distribute.MultiWorkerMirroredStrategy`: every machine runs the same command with its
own `TF_CONFIG` (the cluster's `host:port` list and this machine's place in it); gradients are summed over
all workers each step, so the update is one device's with the same global `--batch-size`. `tpu` is
`tf.distribute.TPUStrategy` on the TPU that `TPUClusterResolver` finds (a Colab TPU runtime, or the name in
`$TPU_NAME`).

The chief (task `chief`, or worker 0 when the cluster has no chief) alone writes the run folder
(`--out`): lock, checkpoints, history, generators, export. Every other worker runs the same code into a
temporary folder, seeded from the chief's run folder when it can see it (so a resume restores the same
checkpoint on every machine), and deletes it at the end. A worker that stops or cannot be reached makes the
others stop with `ClusterError` instead of hanging.
"""
import contextlib
import json
import os
import shutil
import tempfile

import tensorflow as tf

from common.errors import PhotoEnhanceError

TF_CONFIG = "TF_CONFIG"
EXAMPLE = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
           " (index 1 on the second machine)")
NOT_COPIED = ("run.lock", "tensorboard", "saved_model")


class ClusterError(PhotoEnhanceError):
    """The cluster of a multi-worker run is misconfigured, or one of its workers stopped."""


def cluster_config(environ=os.environ):
    """`TF_CONFIG` parsed and checked: `(cluster dict, task type, task index)`; `ClusterError` otherwise."""
    text = environ.get(TF_CONFIG)
    if not text:
        raise ClusterError(f"--strategy multiworker needs ${TF_CONFIG} on every machine, e.g. {EXAMPLE}")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], task["index"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ClusterError(f"${TF_CONFIG} is not a cluster description ({type(exc).__name__}: {exc}); "
                           f"expected e.g. {EXAMPLE}") from None
    if not isinstance(cluster, dict) or not all(isinstance(v, list) and v for v in cluster.values()):
        raise ClusterError(f"${TF_CONFIG}: \"cluster\" must map job names to lists of host:port, got {cluster!r}")
    if kind not in ("chief", "worker"):
        raise ClusterError(f"${TF_CONFIG}: task type {kind!r} does not train; use \"chief\" or \"worker\"")
    if kind not in cluster or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ClusterError(f"${TF_CONFIG}: task {kind} {index!r} is not in the cluster {cluster!r}")
    return cluster, kind, index


def multiworker_strategy():
    """MultiWorkerMirroredStrategy of the `TF_CONFIG` cluster (create it before any other TensorFlow work)."""
    cluster_config()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as exc:
        raise ClusterError(f"--strategy multiworker could not start ({exc})") from None


def tpu_strategy():
    """TPUStrategy on the TPU `TPUClusterResolver` finds (Colab's TPU runtime, or `$TPU_NAME`)."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"--strategy tpu: no TPU found ({reason}); in Colab choose a TPU runtime, "
                           f"elsewhere set $TPU_NAME") from None
    return tf.distribute.TPUStrategy(resolver)


def worker_count(strategy):
    """How many machines train under `strategy` (1 unless it is a multi-worker cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    spec = resolver.cluster_spec().as_dict()
    return max(1, sum(len(spec.get(job, ())) for job in ("chief", "worker")))


def is_chief(strategy):
    """Whether this process writes the run folder: always, except on the non-chief workers of a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type in (None, "chief"):
        return True
    jobs = resolver.cluster_spec().jobs
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in jobs


@contextlib.contextmanager
def worker_folder(out):
    """A non-chief worker's temporary run folder, seeded from the chief's `out` when this machine sees it
    (shared disk): the worker then restores the same checkpoint and validation record. Deleted at exit."""
    folder = tempfile.mkdtemp(prefix="photoenhance-worker-")
    try:
        if os.path.isdir(out):
            shutil.copytree(out, folder, dirs_exist_ok=True, ignore=lambda d, names: [
                n for n in names if n in NOT_COPIED or (n.startswith(".") and ".tmp" in n)])
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def peers_watched():
    """Turn a lost peer (TensorFlow's collective errors) into a one-line `ClusterError`."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError) as exc:
        reason = (exc.message.splitlines() or [type(exc).__name__])[0][:200]
        raise ClusterError(f"a worker of the {TF_CONFIG} cluster stopped or cannot be reached ({reason}); the "
                           f"chief's last checkpoint is kept: start every worker again with the same command "
                           f"to resume") from None
