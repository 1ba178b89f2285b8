"""DPED as a `keras.Model`: one generator step, then one texture-discriminator step, per `train_step`.

Losses (SPEC "DPED losses and training", authors' code):
- content: mean squared VGG-19 `relu5_4` feature difference, batch mean;
- color: squared difference of the 21x21-blurred images summed per example / 2, batch mean;
- tv: mean squared vertical + horizontal differences, batch mean;
- texture: minus the discriminator's cross entropy on an all-enhanced batch, **summed** over the batch
  (as the authors did; the sum's magnitude therefore grows with the batch size);
- generator loss `w_content*content + w_color*color + w_texture*texture + w_tv*tv` with the `code` preset
  (10, 0.5, 1, 2000) by default, or the paper's (1, 0.1, 0.4, 400);
- discriminator: summed two-class cross entropy on gray patches that are, per sample at random, either the
  enhanced or the DSLR patch; target one-hot `[is_dslr, is_enhanced]`.

The authors train G and D on separate random batches: the dataset then yields `((phone1, dslr1),
(phone2, dslr2))` per step (`batches_per_step=2` in `common.data.random_pair_batches`); with
`same_batch=True` it yields one `(phone, dslr)` batch used for both updates.

The random real/enhanced swap is drawn with `tf.random.stateless_uniform` keyed on `(seed, step)`, where
`step` is a model variable saved in checkpoints: a resumed run draws exactly the uninterrupted run's
swaps, and the draw is made for the global batch and sliced per replica, so MirroredStrategy matches
one device. Loss weights are non-trainable variables: `set_loss_weights` changes them without retracing.
"""
import keras
import tensorflow as tf

from common import losses, metrics as image_metrics
from common.training import PrebuiltGAN, build_optimizers, global_batch_size, replica_slice

LOSS_PRESETS = {
    "code": {"content": 10.0, "color": 0.5, "texture": 1.0, "tv": 2000.0},
    "paper": {"content": 1.0, "color": 0.1, "texture": 0.4, "tv": 400.0},
}
"""Generator loss weights: the authors' code (default; it produced the published models) and the paper."""

LOG_KEYS = ("g_loss", "content", "color", "texture", "tv", "d_loss", "d_accuracy")


def resolve_loss_weights(preset="code", **overrides):
    """The weights of `preset` with any non-None `overrides` (content, color, texture, tv) applied."""
    if preset not in LOSS_PRESETS:
        raise ValueError(f"unknown loss preset {preset!r}; choose one of {sorted(LOSS_PRESETS)}")
    weights = dict(LOSS_PRESETS[preset])
    for name, value in overrides.items():
        if name not in weights:
            raise ValueError(f"unknown loss weight {name!r}; expected one of {sorted(weights)}")
        if value is not None:
            weights[name] = float(value)
    return weights


class DPEDGAN(PrebuiltGAN):
    """The DPED generator trained against the texture discriminator with the content/color/tv losses.

    Args:
        generator: [N,H,W,3] in [0,1] -> [N,H,W,3] (`dped.models.build_generator`).
        discriminator: gray [N,p,p,1] -> [N,2] over [is_dslr, is_enhanced] (`build_discriminator`).
        vgg: feature extractor from `common.vgg.build_vgg19_features`, or None (then the content term is 0
            and must have weight 0).
        loss_weights: dict with content, color, texture, tv (default: the "code" preset).
        texture_warmup: the texture term is left out of the generator loss for the first K steps.
        same_batch: one batch for both updates instead of the authors' two.
        seed: key of the random real/enhanced swap.
        from_logits: the discriminator returns logits instead of softmax probabilities.
        color_kernel: passed to `common.losses.color_loss` (None: the authors' kernel).

    Build it inside `strategy.scope()`; `compile(g_optimizer, d_optimizer)` builds both optimizers.
    """

    def __init__(self, generator, discriminator, vgg=None, loss_weights=None, texture_warmup=0,
                 same_batch=False, seed=0, from_logits=False, color_kernel=None, name="dped_gan", **kwargs):
        super().__init__(name=name, **kwargs)
        weights = dict(LOSS_PRESETS["code"] if loss_weights is None else loss_weights)
        if set(weights) != set(LOSS_PRESETS["code"]):
            raise ValueError(f"loss_weights needs exactly {sorted(LOSS_PRESETS['code'])}, got {sorted(weights)}")
        if vgg is None and weights["content"] != 0:
            raise ValueError("the content loss needs a VGG feature extractor; pass vgg= or set its weight to 0")
        self.generator = generator
        self.discriminator = discriminator
        self.vgg = vgg
        self.texture_warmup = int(texture_warmup)
        self.same_batch = bool(same_batch)
        self.seed = int(seed)
        self.from_logits = bool(from_logits)
        self.color_kernel = color_kernel
        self.loss_weights = {
            k: keras.Variable(float(v), dtype="float32", trainable=False, name=f"weight_{k}",
                              aggregation="only_first_replica")
            for k, v in weights.items()}
        self.step = keras.Variable(0, dtype="int64", trainable=False, name="step", aggregation="only_first_replica")
        self.trackers = {k: keras.metrics.Mean(name=k) for k in LOG_KEYS}
        self.val_trackers = {k: keras.metrics.Mean(name=k) for k in ("psnr", "ssim")}
        self.built = True

    # ------------------------------------------------------------------------------------------ set-up
    def compile(self, g_optimizer, d_optimizer, jit_compile=False):
        """Attach the two optimizers (Adam, possibly loss-scaled) and build their slots now."""
        super().compile(jit_compile=jit_compile)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        build_optimizers((g_optimizer, self.generator), (d_optimizer, self.discriminator))

    def set_loss_weights(self, **weights):
        """Change loss weights in place (no retracing of the compiled step)."""
        for name, value in weights.items():
            if name not in self.loss_weights:
                raise ValueError(f"unknown loss weight {name!r}; expected one of {sorted(self.loss_weights)}")
            if name == "content" and self.vgg is None and value != 0:
                raise ValueError("the content loss needs a VGG feature extractor")
            self.loss_weights[name].assign(float(value))

    def state_variables(self):
        """Variables besides the networks and optimizers that a checkpoint must hold (step, loss weights)."""
        return [self.step, *self.loss_weights.values()]

    @property
    def metrics(self):
        return [*self.trackers.values(), *self.val_trackers.values()]

    # ------------------------------------------------------------------------------------------ inference
    def enhance(self, images):
        """Generator output for [0, 1] images, float32 (not clipped, like the authors' output)."""
        return tf.cast(self.generator(images, training=False), tf.float32)

    def call(self, images, training=False):
        return self.enhance(images)

    # ------------------------------------------------------------------------------------------ training
    def _split(self, data):
        if self.same_batch:
            return data, data
        if not (isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], (tuple, list))):
            raise ValueError("DPEDGAN expects ((phone, dslr), (phone, dslr)) per step; use "
                             "batches_per_step=2 or same_batch=True")
        return data[0], data[1]

    def _discriminate(self, gray, training):
        return tf.cast(self.discriminator(gray, training=training), tf.float32)

    def train_step(self, data):
        (phone_g, dslr_g), (phone_d, dslr_d) = self._split(data)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        w = self.loss_weights
        texture_weight = tf.where(self.step < self.texture_warmup, 0.0, w["texture"].value)

        # Generator step: D sees only enhanced patches (is_dslr = 0 everywhere).
        n = tf.shape(phone_g)[0]
        gbs = global_batch_size(n)
        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            enhanced = tf.cast(self.generator(phone_g, training=True), tf.float32)
            dslr_g = tf.cast(dslr_g, tf.float32)
            if self.vgg is not None:
                content = losses.global_mean(losses.content_loss(self.vgg(enhanced), self.vgg(dslr_g)), gbs)
            else:
                content = tf.constant(0.0)
            color = losses.global_mean(losses.color_loss(enhanced, dslr_g, self.color_kernel), gbs)
            tv = losses.global_mean(losses.tv_loss(enhanced), gbs)
            gray, _ = losses.dped_texture_pair(enhanced, dslr_g, tf.zeros([n]))
            texture = losses.global_sum(losses.dped_texture_loss(self._discriminate(gray, False), self.from_logits))
            g_loss = (w["content"] * content + w["color"] * color + texture_weight * texture + w["tv"] * tv)
            scaled = self.g_optimizer.scale_loss(g_loss)
        self.g_optimizer.apply(tape.gradient(scaled, g_vars), g_vars)

        # Discriminator step on its own batch, with the updated generator; per-sample random swap.
        m = tf.shape(phone_d)[0]
        draw = tf.random.stateless_uniform([m * replicas], seed=tf.stack([tf.constant(self.seed, tf.int64),
                                                                          self.step.value]))
        is_dslr = tf.cast(replica_slice(draw, m) < 0.5, tf.float32)
        enhanced_d = tf.stop_gradient(tf.cast(self.generator(phone_d, training=False), tf.float32))
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            gray_d, target = losses.dped_texture_pair(enhanced_d, tf.cast(dslr_d, tf.float32), is_dslr)
            pred = self._discriminate(gray_d, True)
            d_loss = losses.global_sum(losses.dped_texture_discriminator_loss(pred, target, self.from_logits))
            scaled = self.d_optimizer.scale_loss(d_loss)
        self.d_optimizer.apply(tape.gradient(scaled, d_vars), d_vars)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(pred, -1), tf.argmax(target, -1)), tf.float32))
        self.step.assign_add(1)

        # Each replica holds its share of every batch-reduced loss; the Mean metrics average replicas,
        # so shares are scaled by the replica count to log the global values.
        values = {"g_loss": g_loss, "content": content, "color": color, "texture": texture, "tv": tv,
                  "d_loss": d_loss}
        for key, value in values.items():
            self.trackers[key].update_state(value * replicas)
        self.trackers["d_accuracy"].update_state(accuracy)
        return self.step_logs(self.trackers)

    def test_step(self, data):
        """PSNR and SSIM (output clipped to [0, 1]) of validation pairs `(phone, dslr)`."""
        phone, dslr = data
        out = tf.clip_by_value(self.enhance(phone), 0.0, 1.0)
        dslr = tf.cast(dslr, tf.float32)
        self.val_trackers["psnr"].update_state(image_metrics.psnr(out, dslr, max_val=1.0))
        self.val_trackers["ssim"].update_state(image_metrics.ssim(out, dslr, max_val=1.0))
        return {k: t.result() for k, t in self.val_trackers.items()}
