"""Dataset builders and layouts (TFDS DPED builder, the DPED-style builder for your own camera)."""
import common  # noqa: F401  (quiets TensorFlow before it loads)
