"""Classical baselines each task's model is compared against (evaluate's "baseline" row).

- overexposure: the exact inverse of the synthetic overexposure with the true tau (seed 003's "trivial
  solution"; clipped highlights stay lost);
- deblur: Wiener deconvolution with the known Gaussian kernel (`skimage.restoration.wiener`, per
  channel, reflect-padded); balance 0.002: the inputs are blurred in float without noise, so little
  regularisation is needed (on a 200x200 crop of skimage's astronaut: blurred 27.7 dB -> 32.5 dB);
- phone2dslr: the phone photo itself (no classical method knows the DSLR's rendering);
- ldr2hdr: the LDR exposure in linear light (inverse gamma 2.2): the trivial HDR reading of one photo.
All take and return float32 images `[H, W, 3]` (HDR: linear values).
"""
import numpy as np
from skimage.restoration import wiener

from common.degradations import gaussian_kernel_1d, inverse_overexpose

WIENER_BALANCE = 0.002


def overexposure_baseline(image, tau, gamma=2.2):
    return np.asarray(inverse_overexpose(np.asarray(image, np.float32), float(tau), gamma=gamma))


def gaussian_psf(sigma):
    """The 2-D blur kernel `common.degradations.gaussian_blur` applies (outer product of its 1-D kernel)."""
    k = np.asarray(gaussian_kernel_1d(sigma), np.float64)
    return np.outer(k, k)


def deblur_baseline(image, sigma=1.0, balance=WIENER_BALANCE):
    """Wiener deconvolution of a Gaussian-blurred image with the known kernel, clipped to [0, 1]."""
    image = np.asarray(image, np.float64)
    psf = gaussian_psf(sigma)
    pad = psf.shape[0]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.stack([wiener(padded[..., c], psf, balance, clip=False) for c in range(image.shape[-1])], axis=-1)
    return np.clip(out[pad:-pad, pad:-pad], 0.0, 1.0).astype(np.float32)


def identity_baseline(image):
    return np.asarray(image, np.float32)


def ldr_to_linear(image, gamma=2.2):
    return np.power(np.clip(np.asarray(image, np.float32), 0.0, 1.0), gamma)
