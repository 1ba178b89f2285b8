"""DPED (Ignatov et al. 2017): networks, GAN train step, recipe and commands."""
import common  # noqa: F401  (quiets TensorFlow before it loads)
