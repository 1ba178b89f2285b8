"""pix2pix settings: network, objective, optimiser and data, each with its default, help and resume rule.

A task (`pix2pix/tasks/`, one module each) is a preset of these settings plus the task's data; `Pix2PixSettings` defaults are
the pix2pix paper's (8-level U-Net, 70 px PatchGAN, BCE + 100 L1, Adam 2e-4 / 0.5). Settings that only some
tasks read (`TASK_OPTIONS`) are refused when given for a task that does not use them.
"""
import dataclasses

from common.config import setting
from common.run_settings import RunSettings

NORMS = ("batch", "instance", "none")
GAN_LOSSES = ("bce", "lsgan", "wgan", "wgan-gp", "hinge")
INFERENCE_MODES = ("moving", "batch")
TASK_OPTIONS = ("phone", "blur_sigma", "tau", "random_tau", "val_crop", "demo_photos", "postprocess")


@dataclasses.dataclass(frozen=True)
class Pix2PixSettings(RunSettings):
    task: str = setting(None, "the task preset", flag=False)
    iterations: int = setting(100_000, "total training steps", on_resume="change")
    batch_size: int = setting(1, "global batch size")
    # generator / discriminator
    depth: int = setting(8, "U-Net levels (the input is padded to a multiple of 2^depth)")
    base_filters: int = setting(64, "first-level filters of G and D")
    g_norm: str = setting("batch", "generator normalisation", choices=NORMS)
    d_norm: str = setting("batch", "discriminator normalisation", choices=NORMS)
    d_layers: int = setting(3, "PatchGAN strided layers (3: 70 px receptive field)")
    output_activation: str = setting("tanh", "tanh for [0, 1] photos, relu for linear HDR",
                                     choices=("tanh", "relu"))
    dropout_blocks: int = setting(3, "decoder blocks with dropout 0.5")
    spectral_norm: bool = setting(False, "spectral normalisation on every convolution")
    noise_injection: bool = setting(False, "noise injection after every convolution (seed 003)")
    residual: bool = setting(False, "generator returns input + tanh(correction) (not in the papers; helps "
                             "restoration)")
    # objective
    gan_loss: str = setting("bce", "adversarial objective", choices=GAN_LOSSES, on_resume="fixed")
    n_critic: int = setting(1, "discriminator updates per generator update")
    lambda_adv: float = setting(1.0, "weight of the adversarial term", on_resume="change")
    lambda_l1: float = setting(100.0, "weight of the L1 term", on_resume="change")
    lambda_perceptual: float = setting(0.0, "weight of the VGG-19 perceptual term", on_resume="change")
    lambda_color: float = setting(0.0, "weight of the DPED colour term", on_resume="change")
    lambda_content: float = setting(0.0, "weight of the DPED content term (relu5_4)", on_resume="change")
    # optimisation
    lr: float = setting(2e-4, "Adam learning rate of both networks", on_resume="change")
    beta_1: float = setting(0.5, "Adam beta_1")
    beta_2: float = setting(0.999, "Adam beta_2")
    # data
    image_size: int = setting(256, "training crop / resize side")
    flip: bool = setting(True, "random horizontal flips")
    color_augment: bool = setting(False, "colour jitter on training pairs")
    inference_mode: str = setting("moving", "validation with moving statistics (deterministic) or the "
                                  "paper's test-batch statistics with dropout", choices=INFERENCE_MODES,
                                  on_resume="change")
    # task options (see TASK_OPTIONS)
    phone: str = setting("iphone", "phone2dslr: the DPED phone sub-folder")
    blur_sigma: float = setting(1.0, "deblur: Gaussian blur sigma of the synthetic input")
    tau: float = setting(0.5, "overexposure: clipping threshold in (0, 1]")
    random_tau: bool = setting(False, "overexposure: tau uniform in [0.5, 1] per image")
    val_crop: int = setting(None, "synthetic and paired tasks: centre crop of the validation photos "
                            "(default: --image-size)", kind=int)
    demo_photos: int = setting(None, "demo of a synthetic task: train on the first N bundled photos only",
                               kind=int)
    postprocess: str = setting("none", "deblur: seed 000's contrast stretch after the generator",
                               choices=("none", "contrast_stretch"), flag=False)
    eval_every: int = setting(1000, "validate every N steps", on_resume="change")
    log_every: int = setting(100, "history/TensorBoard scalars every N steps", on_resume="change")

    @property
    def target_range(self):
        """"symmetric" ([-1, 1] tanh output, photos) or "linear" (ReLU output, HDR values)."""
        return "symmetric" if self.output_activation == "tanh" else "linear"


DEMO = {"iterations": 200, "batch_size": 4, "image_size": 64, "depth": 6, "base_filters": 32,
        "eval_every": 100, "log_every": 10}
"""What `--demo` changes on top of a task's preset: a CPU-sized run of a few minutes."""
