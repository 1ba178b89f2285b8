"""pix2pix (Isola et al. 2017) for photo enhancement: U-Net, PatchGAN, tasks, recipe and commands."""
import common  # noqa: F401  (quiets TensorFlow before it loads)
