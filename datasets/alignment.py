"""Geometry for building DPED-style datasets from phone + DSLR photos of the same scene.

1. `estimate_homography`: ORB features on reduced copies of both photos, matched with a ratio test and
   fitted with a RANSAC homography (scikit-image), then `refine_homography`: sub-pixel phase correlation
   of windows on a grid, refitted, so the global geometry is accurate to a fraction of a pixel.
2. `common_box`: the part of the phone photo that the DSLR photo covers.
3. `search_patch` / `sample_patch`: the DPED paper's local search (section 3.2.1): for each patch of the
   phone photo, the DSLR window is moved by whole-pixel shifts and small rotations and the position with the
   highest normalised cross-correlation (`ncc_map`, equal to `skimage.feature.match_template`) is kept.

Coordinates are `(x, y)` = `(column, row)` with pixel centres at integers; a matrix maps phone
coordinates to DSLR coordinates. Images here are gray float arrays unless a function says otherwise.
"""
import dataclasses
import math

import numpy as np
from skimage.color import rgb2gray
from skimage.feature import ORB, match_descriptors
from skimage.measure import ransac
from skimage.registration import phase_cross_correlation
from skimage.transform import ProjectiveTransform, resize, warp

from common.degradations import phone_degrade
from common.errors import PhotoEnhanceError
from common.images import to_uint8


class AlignmentError(PhotoEnhanceError):
    """A phone/DSLR pair cannot be aligned; `code` names the kind of failure for the build report."""

    def __init__(self, code, message):
        self.code = code
        super().__init__(message)


@dataclasses.dataclass
class Alignment:
    """A pair's global geometry: `matrix` maps phone `(x, y)` to DSLR `(x, y)`."""

    matrix: np.ndarray
    matches: int
    inliers: int
    residual_px: float  # RMS misfit of the refinement windows, in phone pixels (nan: not refined)
    refined_windows: int

    def scale(self, point):
        """DSLR pixels per phone pixel around `point` (square root of the local Jacobian's determinant)."""
        return local_scale(self.matrix, point)


def gray(image):
    """Luminance of a uint8 RGB image as float32 in [0, 1] (colour differs between cameras; structure not)."""
    return rgb2gray(image).astype(np.float32)


def translation(dx, dy):
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def rotation_about(centre, degrees):
    """Rotation by `degrees` about `centre` `(x, y)` as a 3x3 matrix."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return translation(*centre) @ rot @ translation(-centre[0], -centre[1])


def apply(matrix, points):
    """Map `(x, y)` points `[N, 2]` through a 3x3 homography."""
    return ProjectiveTransform(matrix=matrix)(np.asarray(points, np.float64))


def local_scale(matrix, point, step=1.0):
    """Area scale factor of `matrix` around `point`, as a length ratio."""
    x, y = point
    p = apply(matrix, [[x, y], [x + step, y], [x, y + step]])
    jac = np.stack([p[1] - p[0], p[2] - p[0]], axis=1) / step
    return math.sqrt(abs(np.linalg.det(jac)))


def _reduced(image, max_side):
    """`image` shrunk (anti-aliased) so its long side is at most `max_side`, and the matrix mapping the
    reduced copy's coordinates back to the original's."""
    h, w = image.shape[:2]
    factor = max(h, w) / max_side
    if factor <= 1.0:
        return image, np.eye(3)
    shape = (max(1, round(h / factor)), max(1, round(w / factor)))
    return resize(image, shape, anti_aliasing=True).astype(np.float32), resize_back(image.shape, shape)


def resize_back(original_shape, resized_shape):
    """The matrix from pixel coordinates of a `skimage.transform.resize`d copy to the original's
    (pixel centres line up: x = (x' + 0.5) * factor - 0.5)."""
    fy, fx = original_shape[0] / resized_shape[0], original_shape[1] / resized_shape[1]
    return np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])


def _orb_features(image, n_keypoints):
    orb = ORB(n_keypoints=n_keypoints, fast_threshold=0.05)
    try:
        orb.detect_and_extract(image)
    except (RuntimeError, ValueError, IndexError):  # scikit-image's ORB raises these on texture-less images
        return np.empty((0, 2)), np.empty((0, 256), bool)
    return orb.keypoints[:, ::-1], orb.descriptors


def estimate_homography(phone, dslr, *, feature_side=1200, n_keypoints=2000, min_inliers=25, seed=0):
    """Feature matching + RANSAC: the homography from phone to DSLR coordinates and its match counts.

    Features are found on copies reduced to `feature_side` pixels (long side): ORB is scale-invariant
    only within its pyramid, and 12 MP photos would be slow. Raises `AlignmentError` (code
    `too_few_inliers`) when fewer than `min_inliers` matches agree on one homography.
    """
    small_p, back_p = _reduced(phone, feature_side)
    small_d, back_d = _reduced(dslr, feature_side)
    pts_p, desc_p = _orb_features(small_p, n_keypoints)
    pts_d, desc_d = _orb_features(small_d, n_keypoints)
    if len(pts_p) < 4 or len(pts_d) < 4:
        raise AlignmentError("too_few_inliers", "too few distinctive features to match (a flat or blank photo?)")
    pairs = match_descriptors(desc_p, desc_d, cross_check=True, max_ratio=0.85)
    if len(pairs) < min_inliers:
        raise AlignmentError("too_few_inliers", f"only {len(pairs)} feature matches (need {min_inliers}): "
                             "are both photos of the same scene?")
    src, dst = apply(back_p, pts_p[pairs[:, 0]]), apply(back_d, pts_d[pairs[:, 1]])
    threshold = 2.0 * max(back_d[0, 0], back_d[1, 1])
    model, inliers = ransac((src, dst), ProjectiveTransform, min_samples=4, residual_threshold=threshold,
                            max_trials=3000, rng=seed)
    count = 0 if inliers is None else int(inliers.sum())
    if model is None or count < min_inliers:
        raise AlignmentError("too_few_inliers", f"only {count} of {len(pairs)} feature matches agree on one "
                             f"geometry (need {min_inliers})")
    return Alignment(model.params, len(pairs), count, float("nan"), 0)


def sample_patch(image, matrix, shape, order=1):
    """The `shape` (rows, cols) window whose pixel `(x, y)` is `image` at `matrix @ (x, y)`, or None when
    that footprint leaves `image`. Only the footprint is converted and resampled, so this stays cheap on
    12 MP photos. Works on gray and colour images; returns float64."""
    rows, cols = shape
    corners = apply(matrix, [[0, 0], [cols - 1, 0], [0, rows - 1], [cols - 1, rows - 1]])
    low = np.floor(corners.min(axis=0)).astype(int) - 1
    high = np.ceil(corners.max(axis=0)).astype(int) + 2
    if corners.min() < 0 or corners[:, 0].max() > image.shape[1] - 1 or corners[:, 1].max() > image.shape[0] - 1:
        return None
    low = np.maximum(low, 0)
    region = image[low[1]: high[1], low[0]: high[0]]
    local = translation(-low[0], -low[1]) @ matrix
    return warp(region, ProjectiveTransform(matrix=local), output_shape=shape, order=order, mode="edge",
                preserve_range=True)


def _window_centres(box, window, grid):
    x0, y0, x1, y1 = box
    half = window // 2
    if x1 - x0 < window or y1 - y0 < window:
        return []
    xs = np.linspace(x0 + half, x1 - window + half, grid).round().astype(int)
    ys = np.linspace(y0 + half, y1 - window + half, grid).round().astype(int)
    return [(x, y) for y in np.unique(ys) for x in np.unique(xs)]


def _window_matches(phone, dslr, matrix, box, window, grid):
    """Corresponding points from phase correlation of textured windows: phone centres, DSLR points."""
    half = window // 2
    src, dst = [], []
    for x, y in _window_centres(box, window, grid):
        ref = phone[y - half: y - half + window, x - half: x - half + window]
        if ref.std() < 0.02:
            continue
        moving = sample_patch(dslr, matrix @ translation(x - half, y - half), (window, window))
        if moving is None or moving.std() < 0.02:
            continue
        shift, _, _ = phase_cross_correlation(ref, moving, upsample_factor=10, normalization=None)
        dy, dx = shift
        if abs(dx) > half / 2 or abs(dy) > half / 2:
            continue
        src.append((x, y))
        dst.append(apply(matrix, [[x - dx, y - dy]])[0])
    return np.array(src, np.float64).reshape(-1, 2), np.array(dst, np.float64).reshape(-1, 2)


def refine_homography(phone, dslr, alignment, *, window=96, grid=8, max_iterations=8, tolerance=0.02, seed=0):
    """Sharpen a feature-based homography to sub-pixel accuracy (ORB keypoints are only pixel-accurate).

    Windows on a `grid` x `grid` lattice of the common area are resampled from the DSLR photo through the
    current homography and registered to the phone photo by cross-correlation, upsampled 10x (untapered
    and unwhitened: both biased the shifts on noisy phone photos); a RANSAC refit over the window centres
    gives the next homography. Each pass recovers only part of the remaining error (a window's fixed frame
    pulls its shift towards zero), so passes repeat until the geometry moves less than `tolerance` px
    RMS, at most `max_iterations` times. Returns the alignment unchanged when fewer than 8 windows have
    texture.
    """
    result = alignment
    for _ in range(max_iterations):
        box = common_box(result.matrix, phone.shape, dslr.shape)
        src, dst = _window_matches(phone, dslr, result.matrix, box, window, grid)
        if len(src) < 8:
            return result
        model, inliers = ransac((src, dst), ProjectiveTransform, min_samples=4,
                                residual_threshold=0.75 * local_scale(result.matrix, src.mean(axis=0)),
                                max_trials=500, rng=seed)
        if model is None or inliers.sum() < 8:
            return result
        model = ProjectiveTransform.from_estimate(src[inliers], dst[inliers])
        scale = local_scale(model.params, src.mean(axis=0))
        misfit = float(np.sqrt(np.mean(model.residuals(src[inliers], dst[inliers]) ** 2)) / scale)
        moved = geometry_rms(model.params, result.matrix, box, step=max(1, (box[2] - box[0]) // 16)) / scale
        result = dataclasses.replace(result, matrix=model.params, residual_px=misfit,
                                     refined_windows=int(inliers.sum()))
        if moved < tolerance:
            break
    return result


def common_box(matrix, phone_shape, dslr_shape):
    """`(x0, y0, x1, y1)` (x1, y1 exclusive): the largest box of phone pixels found from the DSLR photo's
    corners whose every pixel maps inside the DSLR photo; `(0, 0, 0, 0)` when they do not overlap.

    The DSLR corners are mapped into the phone photo; for a convex quadrilateral the box between its
    inner-most left/right/top/bottom corners lies inside it.
    """
    h, w = dslr_shape[:2]
    inverse = np.linalg.inv(matrix)
    tl, tr, br, bl = apply(inverse, [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    x0 = math.ceil(max(tl[0], bl[0], 0))
    x1 = math.floor(min(tr[0], br[0], phone_shape[1] - 1)) + 1
    y0 = math.ceil(max(tl[1], tr[1], 0))
    y1 = math.floor(min(bl[1], br[1], phone_shape[0] - 1)) + 1
    if x1 <= x0 or y1 <= y0 or not _convex((tl, tr, br, bl)):
        return (0, 0, 0, 0)
    return (x0, y0, x1, y1)


def _convex(quad):
    """True for a quadrilateral whose corners turn the same way (no fold, no mirror)."""
    turns = [np.cross(quad[(i + 1) % 4] - quad[i], quad[(i + 2) % 4] - quad[(i + 1) % 4]) for i in range(4)]
    return all(t > 0 for t in turns)


def search_patch(phone_patch, dslr, matrix, corner, *, max_shift=4, angles=(0.0,)):
    """The paper's local search for one patch: `(ncc, dx, dy, angle)` of the best DSLR window.

    `phone_patch` (gray, `p x p`) sits at `corner` `(x, y)` of the phone photo. For each angle (degrees,
    about the patch centre) a `(p + 2 max_shift)`-wide DSLR window is resampled through `matrix`, and
    `ncc_map` scores every whole-pixel shift up to `max_shift` by normalised cross-correlation.
    Returns None when a window leaves the DSLR photo.
    """
    p = phone_patch.shape[0]
    r = max_shift
    centre = (corner[0] + (p - 1) / 2, corner[1] + (p - 1) / 2)
    best = None
    for angle in angles:
        local = matrix @ rotation_about(centre, angle) @ translation(corner[0] - r, corner[1] - r)
        window = sample_patch(dslr, local, (p + 2 * r, p + 2 * r))
        if window is None:
            return None
        scores = ncc_map(window, phone_patch)
        i, j = np.unravel_index(np.argmax(scores), scores.shape)
        if best is None or scores[i, j] > best[0]:
            best = (float(scores[i, j]), int(j) - r, int(i) - r, float(angle))
    return best


def ncc_map(image, template):
    """Normalised cross-correlation of `template` with every same-sized window of `image`: what
    `skimage.feature.match_template(image, template)` returns, computed directly. For the local search's
    few shifts (9 x 9 for 100 px patches) this is several times faster than match_template's FFT of
    the padded image and cumulative sums, which dominated the build time of 12 MP pairs."""
    windows = np.lib.stride_tricks.sliding_window_view(np.asarray(image, np.float64), template.shape)
    t = np.asarray(template, np.float64)
    t = t - t.mean()
    n = t.size
    sums = windows.sum(axis=(2, 3))
    energy = np.einsum("ijkl,ijkl->ij", windows, windows) - sums ** 2 / n
    numerator = np.einsum("ijkl,kl->ij", windows, t)
    denominator = np.sqrt(np.maximum(energy, 0.0) * np.sum(t * t))
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 1e-12)


def patch_matrix(matrix, corner, size, dx, dy, angle):
    """The matrix that `sample_patch` needs to cut the DSLR twin found by `search_patch`."""
    centre = (corner[0] + (size - 1) / 2, corner[1] + (size - 1) / 2)
    return matrix @ rotation_about(centre, angle) @ translation(corner[0] + dx, corner[1] + dy)


def correlation(a, b):
    """Pearson correlation of two equally sized images' luminance (the paper's cross-correlation score)."""
    ga, gb = gray(a).ravel(), gray(b).ravel()
    if ga.std() == 0 or gb.std() == 0:
        return 0.0
    return float(np.corrcoef(ga, gb)[0, 1])


def known_warp(shape, rng, max_degrees=3.0, max_shift=40.0, scales=(0.9, 1.1)):
    """A random phone->DSLR homography for synthetic pairs: rotation and scale about the photo's centre
    and a shift, each drawn from `rng` (a `numpy.random.Generator`) within the given ranges."""
    h, w = shape[:2]
    centre = ((w - 1) / 2, (h - 1) / 2)
    scale = rng.uniform(*scales)
    return (rotation_about(centre, rng.uniform(-max_degrees, max_degrees))
            @ translation(*centre) @ np.diag([scale, scale, 1.0]) @ translation(-centre[0], -centre[1])
            @ translation(*rng.uniform(-max_shift, max_shift, 2)))


def phone_twin(dslr, matrix, seed, shape=None):
    """What a phone would have taken of a DSLR photo's scene: the photo seen through `matrix` (bicubic;
    `shape` (rows, cols), default the DSLR photo's) and then `common.degradations.phone_degrade`. Used to
    test, benchmark and demonstrate the builder."""
    warped = warp(dslr, ProjectiveTransform(matrix=matrix), output_shape=shape or dslr.shape[:2], order=3)
    return to_uint8(phone_degrade(warped.astype(np.float32), seed=seed).numpy())


def geometry_rms(found, true, box, step=20):
    """RMS distance in DSLR pixels between two homographies' images of a `step`-pixel grid of phone pixels
    in `box` `(x0, y0, x1, y1)`: how far an estimated geometry is from a known one."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1:step, x0:x1:step]
    points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    errors = apply(found, points) - apply(true, points)
    return float(np.sqrt(np.mean(np.sum(errors ** 2, axis=1))))
