"""Real anatomy for the synthetic cohort: the MNI152 templates and the tools to warp them per subject.

The tissue probability maps (grey matter, white matter, CSF) of the MNI152 ICBM 2009a nonlinear
symmetric template ship with nilearn, so nothing is downloaded. From them we derive, once, the
signed distance (mm) to the central CSF spaces (lateral ventricles, temporal horns, third ventricle
and basal cisterns), which lets the generator grow the ventricles by a chosen number of millimetres.

Coordinates are MNI millimetres ``p = (x, y, z)``: x to the subject's right, y anterior, z superior.
A subject's image is the template sampled at ``T_i(p)`` for every output voxel ``p``, where

    T_i(p) = c + R_i (p - c) / s_i + t_i + u_i(p)

with head scale ``s_i``, a small rotation ``R_i``, a translation ``t_i`` and a smooth random
displacement field ``u_i`` (see ``subject_points``). All heavy work is batched torch on the CPU.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..core import atomic_save, cache_dir

__all__ = [
    "FIELD_OF_VIEW_MM",
    "REGIONS",
    "Template",
    "load_template",
    "reference_points",
    "voxel_to_mni",
    "subject_points",
    "sample_template",
    "region_weight",
    "smooth_noise",
    "smooth_field",
    "gaussian_blur",
    "rigid_warp",
]

FIELD_OF_VIEW_MM = 180.0  # every output image covers 180 mm along each axis, whatever its size
ANATOMY_VERSION = 1  # bump when the derived maps change, so stale disk caches are ignored

# The 2D cohort shows one oblique axial plane: through (0, -20, -7) mm, tilted 15 degrees up at the front,
# so it cuts the frontal horns of the lateral ventricles, the medial temporal lobes (hippocampi,
# temporal horns) and the lateral temporal cortex in one slice.
PLANE_PIVOT_MM = (0.0, -20.0, -7.0)
PLANE_CENTER_MM = 0.0  # offset of the image centre along the in-plane anterior axis, from the pivot
PLANE_TILT_DEG = 15.0
VOLUME_CENTER_MM = (0.0, -18.0, 4.0)  # centre of the 3D field of view

# Regions of the Alzheimer's pattern, as Gaussian blobs in MNI mm: (centres, sigmas). Left and right
# hemispheres share one sigma; the weight of a region is the largest of its blobs at a point.
REGIONS: dict[str, tuple[tuple[tuple[float, float, float], ...], tuple[float, float, float]]] = {
    "medial_temporal": (((-26.0, -22.0, -14.0), (26.0, -22.0, -14.0)), (7.0, 14.0, 7.0)),
    "lateral_temporal": (((-56.0, -26.0, -12.0), (56.0, -26.0, -12.0)), (10.0, 22.0, 12.0)),
    "temporoparietal": (((-48.0, -58.0, 8.0), (48.0, -58.0, 8.0)), (14.0, 18.0, 22.0)),
    "posterior_cingulate": (((0.0, -54.0, 26.0),), (9.0, 16.0, 14.0)),
}


@dataclass(frozen=True)
class Template:
    """Template maps on the 2 mm MNI grid, as one tensor ready for ``grid_sample``.

    ``maps`` is (1, C, Z, Y, X) with channels named in ``channels``: grey matter, white matter and CSF
    probabilities, the signed distance in mm to the central CSF spaces (negative inside), then one
    weight map per region of ``REGIONS``. ``origin`` is the mm position of voxel (0, 0, 0) in
    (x, y, z) order and ``voxel_mm`` the voxel size.
    """

    maps: Tensor
    origin: tuple[float, float, float]
    voxel_mm: float
    channels: tuple[str, ...] = ("gm", "wm", "csf", "ventricle_distance", *REGIONS)

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        z, y, x = self.maps.shape[-3:]
        return (x, y, z)


def _derive_maps() -> tuple[np.ndarray, np.ndarray]:
    """GM, WM, CSF and ventricle distance from nilearn's MNI152 2009a templates (offline)."""
    from nilearn import datasets
    from scipy import ndimage as ndi

    gm_img = datasets.load_mni152_gm_template(resolution=2)
    gm = gm_img.get_fdata().astype(np.float32)
    wm = datasets.load_mni152_wm_template(resolution=2).get_fdata().astype(np.float32)
    brain = datasets.load_mni152_brain_mask(resolution=2).get_fdata() > 0.5
    csf = np.clip(brain - gm - wm, 0.0, 1.0).astype(np.float32)
    # central CSF: clearly CSF and at least 16 mm inside the brain, small specks dropped
    central = (csf > 0.5) & ndi.binary_erosion(brain, iterations=8)
    labels, count = ndi.label(central)
    sizes = ndi.sum(central, labels, range(1, count + 1))
    central = np.isin(labels, 1 + np.flatnonzero(sizes >= 10))
    voxel = float(abs(gm_img.affine[0, 0]))
    distance = voxel * (ndi.distance_transform_edt(~central) - ndi.distance_transform_edt(central))
    maps = np.stack([gm, wm, csf, distance.astype(np.float32)])  # (4, X, Y, Z)
    return maps, gm_img.affine


def _template_points(shape_zyx: tuple[int, ...], origin: Sequence[float], voxel_mm: float) -> Tensor:
    """MNI mm of every template voxel: (Z, Y, X, 3) in (x, y, z) order."""
    axes = [torch.arange(n, dtype=torch.float32) * voxel_mm for n in shape_zyx]
    z, y, x = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([x, y, z], -1) + torch.tensor(origin, dtype=torch.float32)


@functools.lru_cache(maxsize=1)
def load_template() -> Template:
    """The template maps; the tissue maps are derived once and kept in ``cache_dir()`` (a few MB)."""
    path = cache_dir() / f"mni152_anatomy_v{ANATOMY_VERSION}.pt"
    stored = None
    if path.exists():
        try:
            stored = torch.load(path, weights_only=True)
        except Exception:  # a broken cache file is rebuilt, never trusted
            stored = None
    if stored is None:
        maps, affine = _derive_maps()
        stored = {
            "maps": torch.from_numpy(maps).permute(0, 3, 2, 1).contiguous(),  # (4, Z, Y, X)
            "origin": [float(v) for v in affine[:3, 3]],
            "voxel_mm": float(affine[0, 0]),
        }
        atomic_save(stored, path)
    points = _template_points(tuple(stored["maps"].shape[1:]), stored["origin"], stored["voxel_mm"])
    regions = [region_weight(points, {name: 1.0}) for name in REGIONS]
    maps = torch.cat([stored["maps"], torch.stack(regions)])
    return Template(maps[None], tuple(stored["origin"]), float(stored["voxel_mm"]))


# --------------------------------------------------------------------------- output grid
def _plane_axes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors of the 2D plane: rows (anterior, tilted), columns (right), and its normal."""
    tilt = math.radians(PLANE_TILT_DEG)
    rows = np.array([0.0, math.cos(tilt), math.sin(tilt)])
    cols = np.array([1.0, 0.0, 0.0])
    return rows, cols, np.cross(cols, rows)


def voxel_to_mni(spatial_dims: int, size: int) -> np.ndarray:
    """4x4 affine from output voxel indices to MNI mm (image axes: 2D (H, W), 3D (D, H, W)).

    2D: rows run posterior to anterior in the tilted plane, columns left to right.
    3D: depth runs inferior to superior, rows posterior to anterior, columns left to right.
    """
    step = FIELD_OF_VIEW_MM / size
    half = (size - 1) / 2
    affine = np.eye(4)
    if spatial_dims == 2:
        rows, cols, normal = _plane_axes()
        centre = np.asarray(PLANE_PIVOT_MM) + PLANE_CENTER_MM * rows
        axes = (rows, cols, normal)
    else:
        centre = np.asarray(VOLUME_CENTER_MM)
        axes = (np.array([0.0, 0, 1]), np.array([0.0, 1, 0]), np.array([1.0, 0, 0]))
    for k, axis in enumerate(axes):
        affine[:3, k] = step * axis
    affine[:3, 3] = centre - half * step * (axes[0] + axes[1] + (axes[2] if spatial_dims == 3 else 0))
    return affine


def reference_points(spatial_dims: int, size: int) -> Tensor:
    """MNI mm of every output voxel for the average subject: (*spatial, 3) in (x, y, z) order."""
    affine = torch.as_tensor(voxel_to_mni(spatial_dims, size), dtype=torch.float32)
    index = torch.arange(size, dtype=torch.float32)
    grids = torch.meshgrid(*([index] * spatial_dims), indexing="ij")
    voxels = torch.stack([*grids] + ([torch.zeros_like(grids[0])] if spatial_dims == 2 else []), -1)
    return voxels @ affine[:3, :3].T + affine[:3, 3]


def _rotation_matrices(angles: Tensor) -> Tensor:
    """Rotation matrices R = Rz Ry Rx from angles (N, 3) in radians about x, y, z: (N, 3, 3)."""
    cx, cy, cz = angles.cos().unbind(1)
    sx, sy, sz = angles.sin().unbind(1)
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], 1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], 1).view(-1, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx


def subject_points(
    reference: Tensor, scale: Tensor, angles: Tensor, shift_mm: Tensor, displacement: Tensor
) -> Tensor:
    """Template coordinates for each subject: T_i(p) = c + R_i (p - c) / s_i + t_i + u_i(p).

    Args:
        reference: (*spatial, 3) output points in mm (``reference_points``).
        scale: (N,) head scale s_i; angles: (N, 3) radians; shift_mm: (N, 3) translation t_i.
        displacement: (N, *spatial, 3) smooth displacement u_i(p) in mm.
    Returns (N, *spatial, 3).
    """
    centre = torch.as_tensor(VOLUME_CENTER_MM, dtype=reference.dtype)
    rot = _rotation_matrices(angles)  # (N, 3, 3)
    flat = (reference - centre).reshape(1, -1, 3)  # (1, P, 3)
    moved = flat @ rot.transpose(1, 2) / scale.view(-1, 1, 1)  # (N, P, 3)
    points = centre + moved + shift_mm.view(-1, 1, 3)
    return points.view(len(scale), *reference.shape) + displacement


def sample_template(template: Template, points: Tensor, chunk: int = 64) -> Tensor:
    """Trilinear samples of the template maps at ``points`` (N, *spatial, 3) mm: (N, 4, *spatial)."""
    size = torch.tensor(template.shape_xyz, dtype=points.dtype)
    origin = torch.tensor(template.origin, dtype=points.dtype)
    norm = 2 * (points - origin) / (template.voxel_mm * (size - 1)) - 1  # align_corners=True
    spatial = points.shape[1:-1]
    channels = template.maps.shape[1]
    out = []
    for part in norm.split(chunk):
        grid = part.reshape(1, -1, *spatial[-2:], 3)  # subjects (and depth) stacked along the grid depth
        values = F.grid_sample(template.maps, grid, mode="bilinear", padding_mode="border", align_corners=True)
        out.append(values.reshape(channels, len(part), *spatial).transpose(0, 1))
    return torch.cat(out)


def region_weight(points: Tensor, names: dict[str, float]) -> Tensor:
    """Weighted sum of region blobs at ``points`` (..., 3) mm, clipped to [0, 1]: shape (...).

    A region's weight is w_r(p) = max_c exp(-|(p - c) / sigma_r|^2 / 2) over its centres c.
    """
    total = torch.zeros(points.shape[:-1], dtype=points.dtype)
    for name, factor in names.items():
        centres, sigma = REGIONS[name]
        sig = torch.tensor(sigma, dtype=points.dtype)
        blobs = [torch.exp(-0.5 * (((points - torch.tensor(c)) / sig) ** 2).sum(-1)) for c in centres]
        total = total + factor * torch.stack(blobs).amax(0)
    return total.clamp(0, 1)


# --------------------------------------------------------------------------- random fields and filters
def _gaussian_kernel(sigma_px: float) -> Tensor:
    radius = max(1, int(math.ceil(3 * sigma_px)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma_px) ** 2)
    return kernel / kernel.sum()


def _blur_matrix(size: int, sigma_px: float) -> Tensor:
    """(size, size) matrix G with G[i, j] = g(i - j): a 1D Gaussian convolution with zero padding."""
    kernel = _gaussian_kernel(sigma_px)
    radius = len(kernel) // 2
    offset = torch.arange(size).view(-1, 1) - torch.arange(size).view(1, -1)
    inside = offset.abs() <= radius
    return torch.where(inside, kernel[(offset + radius).clamp(0, 2 * radius)], torch.zeros(()))


def gaussian_blur(images: Tensor, sigma_px: float) -> Tensor:
    """Separable Gaussian blur of (N, C, *spatial) images, zero padding; sigma in voxels.

    Each axis is one matrix product with a banded matrix, which on the CPU is much faster than a
    single-channel convolution.
    """
    if sigma_px <= 0:
        return images
    out = images
    for axis in range(2, images.ndim):
        matrix = _blur_matrix(images.shape[axis], sigma_px).to(images.dtype)
        out = (out.movedim(axis, -1) @ matrix.T).movedim(-1, axis)
    return out


def smooth_noise(white: Tensor, sigma_px: float) -> Tensor:
    """Unit-variance Gaussian random field: white noise (N, C, *spatial) blurred, then rescaled.

    For white noise w, (g * w) has variance sum(g^2) per axis away from the borders, so we divide
    by the root of its product over the axes.
    """
    kernel = _gaussian_kernel(sigma_px)
    dims = white.ndim - 2
    return gaussian_blur(white, sigma_px) / float(kernel.pow(2).sum()) ** (dims / 2)


def smooth_field(control: Tensor, spatial: tuple[int, ...]) -> Tensor:
    """Interpolate a coarse control grid (N, C, k, k[, k]) to ``spatial``: bicubic in 2D, trilinear in 3D."""
    mode = "bicubic" if len(spatial) == 2 else "trilinear"
    return F.interpolate(control, size=spatial, mode=mode, align_corners=True)


def rigid_warp(images: Tensor, angles: Tensor, shift_px: Tensor) -> Tensor:
    """Rotate (about the image centre) and shift (N, C, *spatial) images; what leaves the grid is lost.

    2D: ``angles`` (N,) radians in-plane and ``shift_px`` (N, 2) in (row, column) voxels.
    3D: ``angles`` (N, 3) about the column, row and depth axes, ``shift_px`` (N, 3) in (depth, row, column).
    """
    n, dims = images.shape[0], images.ndim - 2
    size = torch.tensor(images.shape[2:][::-1], dtype=images.dtype)  # (W, H[, D]) = grid order
    if dims == 2:
        c, s = angles.cos(), angles.sin()
        rot = torch.stack([c, -s, s, c], 1).view(n, 2, 2)
    else:
        rot = _rotation_matrices(angles)
    shift = shift_px.flip(1) * 2 / size  # voxels -> normalised units, in grid (x, y[, z]) order
    # output voxel q samples input at R^T (q - shift): the content moves by +shift
    theta = torch.cat([rot.transpose(1, 2), -(rot.transpose(1, 2) @ shift.unsqueeze(-1))], 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
