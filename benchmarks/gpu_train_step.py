"""GPU train-step time of the DPED and pix2pix networks in float32 and mixed float16, with and without XLA.

Why this script exists beside `dped_benchmark.py` / `pix2pix_benchmark.py`: the lent GPU machines carry
JAX and PyTorch but no TensorFlow (its wheel is far over what can be shipped there), so this benchmark
runs the project's own Keras networks (`dped.models`, `pix2pix.models`) on the Keras 3 **JAX** backend,
with one train step written to mirror `dped.gan.DPEDGAN.train_step` and `pix2pix.gan.Pix2Pix.train_step`
op for op: the same networks, losses, loss weights, two Adam optimizers and update order. It measures what
the networks cost on the GPU and how much mixed precision and whole-step XLA compilation save. It runs on
any backend that Keras and JAX support, CPU included (slowly).

- "xla": the whole step is one `jax.jit` program (XLA fuses it; this is what `--jit-compile` aims at in TF).
- "eager": the same step op by op, without whole-step compilation (JAX still compiles each op alone, so
  this is an upper bound for a non-XLA graph, not TF's graph mode).
- "mixed": Keras `mixed_float16` policy (float16 compute, float32 variables) with a static loss scale of
  1024, as a T4 would run it (T4s have no bfloat16 tensor cores).

Usage: `KERAS_BACKEND=jax python -m benchmarks.gpu_train_step [--steps 20] [--json OUT.json]`
"""
import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

LOSS_SCALE = 1024.0


def _gaussian_kernel(size=21, sigma=4.7):
    """A 21x21 Gaussian like the DPED colour kernel (its exact values do not change the timing)."""
    x = np.arange(size) - (size - 1) / 2
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k2 = np.outer(k, k)
    return (k2 / k2.sum()).astype("float32")


def _adam(lr, beta_1):
    return keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1, epsilon=1e-8)


class _Net:
    """A Keras model's variables held as JAX arrays, for a functional (jit-able) step."""

    def __init__(self, model, optimizer=None):
        self.model = model
        self.trainable = [v.value for v in model.trainable_variables]
        self.non_trainable = [v.value for v in model.non_trainable_variables]
        self.optimizer = optimizer
        if optimizer is not None:
            optimizer.build(model.trainable_variables)
            self.opt_state = [v.value for v in optimizer.variables]

    def __call__(self, trainable, non_trainable, x, training):
        out, non_trainable = self.model.stateless_call(trainable, non_trainable, x, training=training)
        return ops.cast(out, "float32"), non_trainable


def dped_step_fn(batch_size, patch, scale):
    """Mirror of DPEDGAN.train_step: G update (content+color+texture+tv), then D update on another batch."""
    from dped.models import build_discriminator, build_generator

    gen = _Net(build_generator(), _adam(5e-4, 0.9))
    disc = _Net(build_discriminator(patch_size=patch), _adam(5e-4, 0.9))
    vgg_full = keras.applications.VGG19(include_top=False, weights=None, input_shape=(patch, patch, 3))
    vgg = _Net(keras.Model(vgg_full.input, vgg_full.get_layer("block5_conv4").output))
    kernel = ops.convert_to_tensor(np.tile(_gaussian_kernel()[:, :, None, None], (1, 1, 3, 1)))
    gray_w = ops.convert_to_tensor(np.array([0.2989, 0.5870, 0.1140], "float32"))
    mean = ops.convert_to_tensor(np.array([103.939, 116.779, 123.68], "float32"))

    def features(x):
        return vgg(vgg.trainable, vgg.non_trainable, x[..., ::-1] * 255.0 - mean, False)[0]

    def gray(x):
        return ops.sum(x * gray_w, axis=-1, keepdims=True)

    def g_loss(g_tv, g_ntv, d_tv, d_ntv, phone, dslr):
        enhanced, g_ntv = gen(g_tv, g_ntv, phone, True)
        content = ops.mean(ops.square(features(enhanced) - features(dslr)))
        blur_e = ops.depthwise_conv(enhanced, kernel, padding="same")
        blur_d = ops.depthwise_conv(dslr, kernel, padding="same")
        color = ops.sum(ops.square(blur_e - blur_d)) / (2.0 * batch_size)
        tv = ops.mean(ops.square(enhanced[:, 1:] - enhanced[:, :-1])) + ops.mean(
            ops.square(enhanced[:, :, 1:] - enhanced[:, :, :-1]))
        probs, _ = disc(d_tv, d_ntv, gray(enhanced), False)
        texture = ops.sum(ops.log(ops.clip(probs[:, 1], 1e-10, 1.0)))
        loss = 10.0 * content + 0.5 * color + 1.0 * texture + 2000.0 * tv
        return loss * scale, (loss, g_ntv)

    def d_loss(d_tv, d_ntv, inputs, target):
        probs, d_ntv = disc(d_tv, d_ntv, inputs, True)
        loss = -ops.sum(target * ops.log(ops.clip(probs, 1e-10, 1.0)))
        return loss * scale, (loss, d_ntv)

    g_grad = jax.value_and_grad(g_loss, has_aux=True)
    d_grad = jax.value_and_grad(d_loss, has_aux=True)

    def step(state, batch):
        g_tv, g_ntv, g_opt, d_tv, d_ntv, d_opt, key = state
        phone_g, dslr_g, phone_d, dslr_d = batch
        (_, (gl, g_ntv)), grads = g_grad(g_tv, g_ntv, d_tv, d_ntv, phone_g, dslr_g)
        g_tv, g_opt = gen.optimizer.stateless_apply(g_opt, [g / scale for g in grads], g_tv)
        key, sub = jax.random.split(key)
        is_dslr = ops.cast(jax.random.uniform(sub, (batch_size,)) < 0.5, "float32")[:, None, None, None]
        enhanced_d, _ = gen(g_tv, g_ntv, phone_d, False)
        inputs = gray(is_dslr * dslr_d + (1.0 - is_dslr) * jax.lax.stop_gradient(enhanced_d))
        target = ops.concatenate([is_dslr[:, 0, 0], 1.0 - is_dslr[:, 0, 0]], axis=-1)
        (_, (dl, d_ntv)), grads = d_grad(d_tv, d_ntv, inputs, target)
        d_tv, d_opt = disc.optimizer.stateless_apply(d_opt, [g / scale for g in grads], d_tv)
        return (g_tv, g_ntv, g_opt, d_tv, d_ntv, d_opt, key), (gl, dl)

    rng = np.random.default_rng(0)
    batch = tuple(ops.convert_to_tensor(rng.random((batch_size, patch, patch, 3), dtype=np.float32))
                  for _ in range(4))
    state = (gen.trainable, gen.non_trainable, gen.opt_state, disc.trainable, disc.non_trainable, disc.opt_state,
             jax.random.PRNGKey(0))
    return step, state, batch


def pix2pix_step_fn(batch_size, size, scale):
    """Mirror of Pix2Pix.train_step (BCE + 100 L1): D update (loss x 0.5), then G update, same batch."""
    from pix2pix.models import build_patchgan, build_unet

    gen = _Net(build_unet(depth=8, norm="batch"), _adam(2e-4, 0.5))
    disc = _Net(build_patchgan(n_layers=3, norm="batch"), _adam(2e-4, 0.5))

    def bce(logits, label):
        return ops.mean(ops.binary_crossentropy(ops.full_like(logits, label), logits, from_logits=True))

    def d_loss(d_tv, d_ntv, cond, real, fake):
        real_logits, d_ntv = disc(d_tv, d_ntv, ops.concatenate([cond, real], -1), True)
        fake_logits, d_ntv = disc(d_tv, d_ntv, ops.concatenate([cond, fake], -1), True)
        loss = 0.5 * (bce(real_logits, 1.0) + bce(fake_logits, 0.0))
        return loss * scale, (loss, d_ntv)

    def g_loss(g_tv, g_ntv, d_tv, d_ntv, cond, real):
        fake, g_ntv = gen(g_tv, g_ntv, cond, True)
        logits, _ = disc(d_tv, d_ntv, ops.concatenate([cond, fake], -1), True)
        loss = bce(logits, 1.0) + 100.0 * ops.mean(ops.abs(real - fake))
        return loss * scale, (loss, g_ntv)

    d_grad = jax.value_and_grad(d_loss, has_aux=True)
    g_grad = jax.value_and_grad(g_loss, has_aux=True)

    def step(state, batch):
        g_tv, g_ntv, g_opt, d_tv, d_ntv, d_opt, key = state
        cond, real = batch
        fake, _ = gen(g_tv, g_ntv, cond, True)
        (_, (dl, d_ntv)), grads = d_grad(d_tv, d_ntv, cond, real, jax.lax.stop_gradient(fake))
        d_tv, d_opt = disc.optimizer.stateless_apply(d_opt, [g / scale for g in grads], d_tv)
        (_, (gl, g_ntv)), grads = g_grad(g_tv, g_ntv, d_tv, d_ntv, cond, real)
        g_tv, g_opt = gen.optimizer.stateless_apply(g_opt, [g / scale for g in grads], g_tv)
        return (g_tv, g_ntv, g_opt, d_tv, d_ntv, d_opt, key), (gl, dl)

    rng = np.random.default_rng(0)
    batch = tuple(ops.convert_to_tensor(rng.random((batch_size, size, size, 3), dtype=np.float32) * 2 - 1)
                  for _ in range(2))
    state = (gen.trainable, gen.non_trainable, gen.opt_state, disc.trainable, disc.non_trainable, disc.opt_state,
             jax.random.PRNGKey(0))
    return step, state, batch


def time_step(build, steps, mixed, xla, **kwargs):
    keras.config.set_dtype_policy("mixed_float16" if mixed else "float32")
    keras.backend.clear_session()
    step, state, batch = build(scale=LOSS_SCALE if mixed else 1.0, **kwargs)
    run = jax.jit(step) if xla else step
    t0 = time.perf_counter()
    state, losses = run(state, batch)
    jax.block_until_ready(losses)
    first = time.perf_counter() - t0
    state, losses = run(state, batch)
    jax.block_until_ready(losses)
    t0 = time.perf_counter()
    for _ in range(steps):
        state, losses = run(state, batch)
    jax.block_until_ready(losses)
    per_step = (time.perf_counter() - t0) / steps
    finite = bool(np.all(np.isfinite(np.asarray([float(x) for x in losses]))))
    keras.config.set_dtype_policy("float32")
    return {"ms_per_step": 1000 * per_step, "first_step_s": first, "losses_finite": finite}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dped-batch", type=int, default=50)
    parser.add_argument("--pix2pix-size", type=int, default=256)
    parser.add_argument("--skip-eager", action="store_true", help="time only the XLA-compiled steps")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    device = jax.devices()[0]
    print(f"backend {keras.backend.backend()}, device {device.platform}: {getattr(device, 'device_kind', device)}")
    results = []
    cases = [("dped", dped_step_fn, {"batch_size": args.dped_batch, "patch": 100}),
             ("pix2pix", pix2pix_step_fn, {"batch_size": 1, "size": args.pix2pix_size})]
    for name, build, kwargs in cases:
        for xla in ([True] if args.skip_eager else [True, False]):
            for mixed in (False, True):
                r = time_step(build, args.steps if xla else max(2, args.steps // 4), mixed, xla, **kwargs)
                r.update(model=name, precision="mixed_float16" if mixed else "float32", xla=xla, **kwargs)
                results.append(r)
                print(f"{name:8s} {r['precision']:14s} {'xla' if xla else 'eager':5s} "
                      f"{r['ms_per_step']:9.2f} ms/step (first step {r['first_step_s']:.1f} s, "
                      f"losses finite: {r['losses_finite']})", flush=True)
        base = next(r for r in results if r["model"] == name and r["xla"] and r["precision"] == "float32")
        for r in results:
            if r["model"] == name:
                r["speedup_vs_float32_xla"] = base["ms_per_step"] / r["ms_per_step"]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": str(getattr(device, "device_kind", device)), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
