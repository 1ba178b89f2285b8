"""DPED speed and memory: `python benchmarks/dped_benchmark.py [--batch-size 50 --train-steps 3]`.

Prints, for this machine:
- the achieved matmul peak (best of several big float32 `tf.matmul`s), the yardstick for the rest;
- generator inference on one 1280x720 photo: seconds per image, GFLOP/s (FLOPs counted by the TF profiler
  on the frozen forward graph) as a fraction of the matmul peak, and peak memory: on CPU the growth of the
  process' maximum resident set size (`resource.getrusage`) caused by the inference, measured in a fresh
  subprocess, plus that process' total peak (the PIRM 2018 limit is 3.5 GB for the whole run); on a GPU
  `tf.config.experimental.get_memory_info` peak;
- DPED training iterations/s at the authors' batch 50 and 100x100 patches with the real texture
  discriminator and a VGG-19 with random weights (same cost as ImageNet weights), and the estimated
  GFLOP/s: per iteration 4 generator forwards (G step forward+backward = 3, D step forward = 1),
  3 VGG forwards (enhanced + DSLR forward, input gradient for the enhanced half) and 5 discriminator
  forwards (G step forward + input gradient = 2, D step forward + backward = 3), each forward counted
  by the profiler.
"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PIRM_LIMIT_GB = 3.5
PHOTO_HW = (720, 1280)


def forward_flops(model, shape):
    """Float operations of one `model` forward pass on a float32 input of `shape` (TF profiler)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec(shape, tf.float32))
    graph = convert_variables_to_constants_v2(concrete).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return float(tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops)


def matmul_peak(n, repeats=5):
    """Best achieved GFLOP/s of an n x n float32 matmul on the default device."""
    import tensorflow as tf

    a = tf.random.uniform([n, n])
    b = tf.random.uniform([n, n])
    run = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    run().numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        run().numpy()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


def inference_child(runs):
    """Runs in a fresh process: time and memory of the generator on one 1280x720 photo; prints JSON."""
    import tensorflow as tf

    from dped.models import build_generator

    gpu = bool(tf.config.list_physical_devices("GPU"))
    generator = build_generator()
    enhance = tf.function(lambda x: generator(x, training=False))
    photo = tf.random.uniform([1, *PHOTO_HW, 3])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    t = time.perf_counter()
    enhance(photo).numpy()
    first = time.perf_counter() - t
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        enhance(photo).numpy()
        times.append(time.perf_counter() - t)
    result = {"first_call_s": first, "seconds": min(times), "gpu": gpu,
              "rss_before_mb": rss_before, "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if gpu:
        result["gpu_peak_mb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20
    print(json.dumps(result))


def inference(runs):
    proc = subprocess.run([sys.executable, __file__, "--inference-child", "--runs", str(runs)], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode:
        raise SystemExit(f"inference subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def training_speed(batch, patch, steps, warmup, mixed):
    """(iterations/s, FLOPs per iteration) of DPEDGAN.train_step at `batch` x `patch`^2."""
    import keras
    import tensorflow as tf

    from common import training
    from common.vgg import build_vgg19_features
    from dped.gan import DPEDGAN
    from dped.models import build_discriminator, build_generator

    training.configure_precision("on" if mixed else "off")
    keras.utils.set_random_seed(0)
    generator, discriminator = build_generator(), build_discriminator(patch_size=patch, logits=True)
    vgg = build_vgg19_features(weights=None, same_pooling=True)
    gan = DPEDGAN(generator, discriminator, vgg, from_logits=True)
    gan.compile(training.make_adam(5e-4, mixed=mixed), training.make_adam(5e-4, mixed=mixed))
    shape = [batch, patch, patch, 3]
    pairs = tuple((tf.random.uniform(shape), tf.random.uniform(shape)) for _ in range(2))
    data = tf.data.Dataset.from_tensors(pairs).repeat()
    gan.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)
    t = time.perf_counter()
    gan.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    seconds = (time.perf_counter() - t) / steps
    training.configure_precision("off")
    flops = (4 * forward_flops(generator, [batch, patch, patch, 3])
             + 3 * forward_flops(vgg, [batch, patch, patch, 3])
             + 5 * forward_flops(discriminator, [batch, patch, patch, 1]))
    return 1.0 / seconds, flops


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--patch-size", type=int, default=100)
    p.add_argument("--train-steps", type=int, default=3, help="timed training iterations (after 1 warm-up)")
    p.add_argument("--runs", type=int, default=3, help="timed inference runs (best is reported)")
    p.add_argument("--matmul-size", type=int, default=None, help="default 8192 on GPU, 2048 on CPU")
    p.add_argument("--mixed-precision", action="store_true", help="train in mixed float16 (GPU)")
    p.add_argument("--inference-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.inference_child:
        return inference_child(args.runs)

    import tensorflow as tf

    from dped.models import build_generator

    gpu = tf.config.list_physical_devices("GPU")
    device = tf.config.experimental.get_device_details(gpu[0]).get("device_name", "GPU") if gpu else \
        f"CPU ({os.cpu_count()} cores visible)"
    peak = matmul_peak(args.matmul_size or (8192 if gpu else 2048))
    print(f"device: {device}")
    print(f"matmul peak (float32, measured): {peak:.1f} GFLOP/s")

    inf = inference(args.runs)
    gen_flops = forward_flops(build_generator(), [1, *PHOTO_HW, 3])
    inf_gflops = gen_flops / inf["seconds"] / 1e9
    print(f"generator on a {PHOTO_HW[1]}x{PHOTO_HW[0]} photo: {inf['seconds']:.3f} s/image "
          f"(first call incl. tracing {inf['first_call_s']:.2f} s), {gen_flops / 1e9:.1f} GFLOP/image, "
          f"{inf_gflops:.1f} GFLOP/s = {inf_gflops / peak:.0%} of the matmul peak")
    if inf["gpu"]:
        print(f"  GPU memory peak: {inf['gpu_peak_mb']:.0f} MB")
    growth = inf["rss_peak_mb"] - inf["rss_before_mb"]
    verdict = "within" if inf["rss_peak_mb"] < PIRM_LIMIT_GB * 1024 else "OVER"
    print(f"  host memory: +{growth:.0f} MB resident for the inference; process peak {inf['rss_peak_mb']:.0f} MB "
          f"(PIRM limit {PIRM_LIMIT_GB * 1024:.0f} MB: {verdict})")

    its, flops = training_speed(args.batch_size, args.patch_size, args.train_steps, 1, args.mixed_precision)
    train_gflops = its * flops / 1e9
    print(f"training (batch {args.batch_size}, {args.patch_size}x{args.patch_size}, real discriminator, VGG-19 with "
          f"random weights{', mixed precision' if args.mixed_precision else ''}): {its:.3f} it/s "
          f"({1 / its:.2f} s/it; 20,000 iterations = {20000 / its / 3600:.1f} h), ~{flops / 1e9:.0f} GFLOP/it, "
          f"{train_gflops:.1f} GFLOP/s = {train_gflops / peak:.0%} of the matmul peak")


if __name__ == "__main__":
    main()
