"""`Pix2Pix`: the conditional GAN (U-Net generator + PatchGAN discriminator) with its custom train step.

Images enter and leave the model in the library's "unit" range [0, 1] (HDR targets: linear values >= 0,
1.0 = white of the normal exposure); the networks work in [-1, 1] and the conversion happens here:
conditions always become `2x - 1`, targets too when the generator ends in tanh (`target_range="symmetric"`),
while a ReLU/linear generator (LDR->HDR) predicts the linear values directly (`target_range="linear"`).

One `train_step` (the PyTorch reference order, both updates on the same batch):
1. the generator makes `fake = G(condition)` once;
2. `n_critic` discriminator updates on (condition, target) vs (condition, fake): loss
   `0.5 * objective.discriminator_loss(real, fake)`, plus `gradient_penalty_weight * gradient_penalty` on
   interpolates of the conditional pair for wgan-gp, then weight clipping for wgan. With `n_critic > 1`
   the extra critic steps reuse the batch (fresh interpolates each time);
3. one generator update with `lambda_adv * objective.generator_loss + lambda_l1 * L1 (in [-1, 1] units, as
   pix2pix's 100) + lambda_perceptual * perceptual (VGG-19, seed 003) + lambda_color * DPED colour +
   lambda_content * DPED content (relu5_4)`, against the discriminator as just updated.
Every term is one value per example reduced with `global_mean`, so a distribution strategy gives the
same update. The loss weights are non-trainable variables: they can be changed between steps (a
schedule) and they are saved with the checkpoint.

Inference mode (`inference_mode`): "moving" (default) runs the generator in inference mode: batch norm
uses its moving statistics and dropout/noise are off, so a photo always gives the same output.
"batch" is what the pix2pix paper does at test time: the generator runs in training mode (batch norm
uses the statistics of the test batch, dropout and noise injection stay active); the moving statistics
are restored afterwards, so evaluating never changes the model.
"""
import keras
import tensorflow as tf

from common import losses as L
from common.metrics import psnr, ssim
from common.training import PrebuiltGAN

INFERENCE_MODES = ("moving", "batch")
TARGET_RANGES = ("symmetric", "linear")
LOSS_WEIGHTS = ("lambda_adv", "lambda_l1", "lambda_perceptual", "lambda_color", "lambda_content")


def tone_map(x):
    """Reinhard's global tone map `x / (1 + x)`: linear HDR [0, inf) -> [0, 1) for bounded metrics."""
    x = tf.maximum(x, 0.0)
    return x / (1.0 + x)


class Pix2Pix(PrebuiltGAN):
    """The conditional GAN; `call(condition)` returns the enhanced image in the unit (or linear HDR) range.

    `vgg`: a `common.vgg.build_vgg19_features` model for the perceptual and content terms (required when
    either weight is non-zero); `perceptual_layers`/`content_layer` index its outputs.
    """

    def __init__(self, generator, discriminator, *, gan_loss="bce", n_critic=1, lambda_adv=1.0, lambda_l1=100.0,
                 lambda_perceptual=0.0, lambda_color=0.0, lambda_content=0.0, vgg=None, perceptual_layers=None,
                 content_layer=-1, target_range="symmetric", inference_mode="moving", seed=0,
                 global_batch_size=None, **kwargs):
        super().__init__(**kwargs)
        if gan_loss not in L.GAN_OBJECTIVES:
            raise ValueError(f"gan_loss must be one of {sorted(L.GAN_OBJECTIVES)}, got {gan_loss!r}")
        if int(n_critic) < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if target_range not in TARGET_RANGES:
            raise ValueError(f"target_range must be one of {TARGET_RANGES}, got {target_range!r}")
        if inference_mode not in INFERENCE_MODES:
            raise ValueError(f"inference_mode must be one of {INFERENCE_MODES}, got {inference_mode!r}")
        if (lambda_perceptual or lambda_content) and vgg is None:
            raise ValueError("perceptual/content loss weights are non-zero but no VGG feature model was given")
        self.generator = generator
        self.discriminator = discriminator
        self.gan_loss = gan_loss
        self.objective = L.GAN_OBJECTIVES[gan_loss]
        self.n_critic = int(n_critic)
        self.vgg = vgg
        self.perceptual_layers = perceptual_layers
        self.content_layer = content_layer
        self.target_range = target_range
        self.inference_mode = inference_mode
        self.seed = int(seed)
        self.global_batch_size = global_batch_size
        self.use_perceptual = bool(lambda_perceptual) and vgg is not None
        self.use_content = bool(lambda_content) and vgg is not None
        self.use_color = bool(lambda_color)
        values = dict(lambda_adv=lambda_adv, lambda_l1=lambda_l1, lambda_perceptual=lambda_perceptual,
                      lambda_color=lambda_color, lambda_content=lambda_content)
        for name, value in values.items():
            setattr(self, name, keras.Variable(float(value), trainable=False, name=name, dtype="float32"))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in (
            "d_loss", "d_real", "d_fake", "gradient_penalty", "g_loss", "g_adv", "g_l1", "g_perceptual",
            "g_color", "g_content")}
        self.val_trackers = {name: keras.metrics.Mean(name=name) for name in ("l1", "psnr", "ssim")}
        unused = {"gradient_penalty": not self.objective.gradient_penalty_weight,
                  "g_perceptual": not self.use_perceptual, "g_content": not self.use_content,
                  "g_color": not self.use_color}
        self.logged = [name for name in self.trackers if not unused.get(name, False)]

    @classmethod
    def for_inference(cls, generator, target_range="symmetric", inference_mode="moving"):
        """A model around a trained generator alone (evaluate, enhance): `model(x)` maps [0, 1] photos."""
        return cls(generator, None, lambda_l1=0.0, target_range=target_range, inference_mode=inference_mode)

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer

    @property
    def metrics(self):
        return list(self.trackers.values()) + list(self.val_trackers.values())

    def state_variables(self):
        """Variables besides the networks and optimizers that a checkpoint must hold (the loss weights)."""
        return [getattr(self, name) for name in LOSS_WEIGHTS]

    def get_loss_weights(self):
        return {name: float(getattr(self, name).numpy()) for name in LOSS_WEIGHTS}

    def set_loss_weights(self, **weights):
        """Change loss weights between steps (e.g. a term switched on after a warm-up). The colour,
        perceptual and content terms are only built when their weight is non-zero at construction, so to
        schedule one, construct with its final weight and set it to 0 for the warm-up."""
        built = {"lambda_color": self.use_color, "lambda_perceptual": self.use_perceptual,
                 "lambda_content": self.use_content}
        for name, value in weights.items():
            if name not in LOSS_WEIGHTS:
                raise ValueError(f"unknown loss weight {name!r}; choose from {LOSS_WEIGHTS}")
            if value and not built.get(name, True):
                raise ValueError(f"{name}: this term was off when the model was built, so a weight cannot "
                                 "switch it on now (start a new run with the weight set)")
            getattr(self, name).assign(float(value))

    # --- range conversion at the model boundary --------------------------------------------------------
    def condition_to_net(self, x):
        return x * 2.0 - 1.0

    def target_to_net(self, y):
        return y * 2.0 - 1.0 if self.target_range == "symmetric" else y

    def net_to_output(self, y):
        return (y + 1.0) * 0.5 if self.target_range == "symmetric" else y

    def for_metrics(self, y):
        """Images as the metrics see them: clipped to [0, 1], or tone-mapped for linear HDR."""
        return tf.clip_by_value(y, 0.0, 1.0) if self.target_range == "symmetric" else tone_map(y)

    def _pair(self, condition_net, image_net):
        return tf.concat([condition_net, tf.cast(image_net, condition_net.dtype)], axis=-1)

    def generate(self, condition_net, training):
        """Generator output in network units, honouring `inference_mode` when not training."""
        if training or self.inference_mode == "moving":
            return self.generator(condition_net, training=training)
        moving = [v for v in self.generator.non_trainable_variables if "moving" in v.path]
        saved = [tf.identity(v.value) for v in moving]
        out = self.generator(condition_net, training=True)
        with tf.control_dependencies([out]):
            for v, value in zip(moving, saved):
                v.assign(value)
            return tf.identity(out)

    def call(self, condition, training=False):
        condition = tf.convert_to_tensor(condition)
        return self.net_to_output(self.generate(self.condition_to_net(condition), training))

    def enhance(self, condition):
        """[0, 1] batch -> the output as the metrics see it (clipped, or tone-mapped for HDR); used by
        `common.training.ValidationCallback`."""
        return self.for_metrics(self(condition, training=False))

    # --- training ----------------------------------------------------------------------------------------
    def _mean(self, per_example):
        batch = self.global_batch_size or tf.shape(per_example)[0]
        return L.global_mean(per_example, batch)

    def _d_step(self, condition_net, real_net, fake_net, step_seed):
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(self._pair(condition_net, real_net), training=True)
            fake_logits = self.discriminator(self._pair(condition_net, fake_net), training=True)
            per_example = 0.5 * self.objective.discriminator_loss(real_logits, fake_logits)
            penalty = tf.zeros_like(per_example)
            if self.objective.gradient_penalty_weight:
                penalty = L.gradient_penalty(self.discriminator, condition_net, real_net, fake_net, step_seed)
                per_example = per_example + self.objective.gradient_penalty_weight * penalty
            loss = self._mean(per_example)
            scaled = self.d_optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))
        if self.objective.clip_value:
            L.clip_weights(self.discriminator, self.objective.clip_value)
        self.trackers["d_loss"].update_state(loss)
        self.trackers["gradient_penalty"].update_state(tf.reduce_mean(penalty))
        self.trackers["d_real"].update_state(tf.reduce_mean(tf.cast(real_logits, tf.float32)))
        self.trackers["d_fake"].update_state(tf.reduce_mean(tf.cast(fake_logits, tf.float32)))

    def _generator_terms(self, condition, target, fake_net, fake_logits):
        """Weighted per-example generator terms (dict name -> [N])."""
        target_net = self.target_to_net(target)
        fake_net = tf.cast(fake_net, tf.float32)
        terms = {"g_adv": self.lambda_adv * self.objective.generator_loss(fake_logits),
                 "g_l1": self.lambda_l1 * L.l1_loss(fake_net, target_net)}
        fake = self.net_to_output(fake_net)
        if self.use_color:
            terms["g_color"] = self.lambda_color * L.color_loss(fake, target)
        if self.use_perceptual or self.use_content:
            feats_fake = self.vgg(fake)
            feats_real = [tf.stop_gradient(f) for f in self.vgg(target)]
            if self.use_perceptual:
                layers = self.perceptual_layers if self.perceptual_layers is not None else range(len(feats_fake))
                terms["g_perceptual"] = self.lambda_perceptual * L.perceptual_loss(
                    [feats_fake[i] for i in layers], [feats_real[i] for i in layers])
            if self.use_content:
                terms["g_content"] = self.lambda_content * L.content_loss(
                    feats_fake[self.content_layer], feats_real[self.content_layer])
        return terms

    def train_step(self, data):
        condition, target = data[0], data[1]
        condition = tf.cast(condition, tf.float32)
        target = tf.cast(target, tf.float32)
        condition_net = self.condition_to_net(condition)
        real_net = self.target_to_net(target)
        base_seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self.g_optimizer.iterations, tf.int64)])
        with tf.GradientTape() as tape:
            fake_net = self.generator(condition_net, training=True)
            with tape.stop_recording():
                for k in range(self.n_critic):
                    step_seed = tf.random.experimental.stateless_fold_in(base_seed, k)
                    self._d_step(condition_net, real_net, tf.stop_gradient(fake_net), step_seed)
            fake_logits = self.discriminator(self._pair(condition_net, fake_net), training=True)
            terms = self._generator_terms(condition, target, fake_net, fake_logits)
            g_loss = self._mean(tf.add_n(list(terms.values())))
            scaled = self.g_optimizer.scale_loss(g_loss)
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        self.trackers["g_loss"].update_state(g_loss)
        for name, value in terms.items():
            self.trackers[name].update_state(tf.reduce_mean(value))
        return self.step_logs({name: self.trackers[name] for name in self.logged})

    def test_step(self, data):
        condition, target = tf.cast(data[0], tf.float32), tf.cast(data[1], tf.float32)
        output = self(condition, training=False)
        self.val_trackers["l1"].update_state(tf.reduce_mean(tf.abs(output - target)))
        pred, ref = self.for_metrics(output), self.for_metrics(target)
        self.val_trackers["psnr"].update_state(psnr(pred, ref, max_val=1.0))
        self.val_trackers["ssim"].update_state(ssim(pred, ref, max_val=1.0))
        return {name: t.result() for name, t in self.val_trackers.items()}
