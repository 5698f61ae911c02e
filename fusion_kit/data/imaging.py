"""How one subject's images are made: its anatomy, the disease's atrophy, and the MRI and PET physics.

``cohort.make_brain_cohort`` calls these for a chunk of subjects at a time; the equations are in
``datasets/brain_cohort.md`` (sections 4 to 6) and the constants below are the ones quoted there.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from . import anatomy

__all__ = ["geometry", "texture", "atrophy", "apply_texture", "render_mri", "pet_misregistration", "render_pet"]

# How strongly the disease load l shows in the images, and the main nuisances (see the dataset card).
VENTRICLE_GROWTH_MM = 3.0  # ventricles grow by this many mm per unit of load
MEDIAL_TEMPORAL_LOSS = 0.18  # share of medial temporal grey matter lost per unit of load
CORTICAL_LOSS = 0.05  # share of all grey matter lost per unit of load
HYPOMETABOLISM = 0.4  # share of uptake lost per unit of load in the PET pattern
PET_SCALE_SD = 0.1  # per-subject global PET scale g = exp(PET_SCALE_SD N)
PET_FWHM_MM = 8.0  # PET resolution
TEXTURE_STRENGTH = 0.35  # amplitude of the individual grey-matter pattern
TEXTURE_MM = 4.0  # its correlation length (std of the Gaussian smoothing)


def geometry(n: int, sex: np.ndarray, spatial_dims: int, rng: np.random.Generator) -> dict[str, Tensor]:
    """Per-subject head scale, pose and coarse deformation control points (all in mm or radians)."""
    scale = np.exp(0.05 * rng.standard_normal(n)) * np.where(sex == 1, 0.98, 1.02)
    angles = np.deg2rad(3.0) * rng.standard_normal((n, 3))
    shift = 2.0 * rng.standard_normal((n, 3))
    control = 2.5 * rng.standard_normal((n, 3, *([5] * spatial_dims)))
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return {"scale": as_t(scale), "angles": as_t(angles), "shift": as_t(shift), "control": as_t(control)}


def texture(rngs, spatial: tuple[int, ...], sigma_px: float) -> Tensor:
    """Each subject's own grey-matter pattern: a unit-variance random field (n, 1, *spatial), one random
    stream per subject (``rngs``), so a subject's pattern does not depend on the cohort size."""
    white = np.stack([rng.standard_normal(spatial, dtype=np.float32) for rng in rngs])
    return anatomy.smooth_noise(torch.from_numpy(white)[:, None], sigma_px)


def atrophy(maps: Tensor, regions: Mapping[str, Tensor], load: Tensor) -> Tensor:
    """Grey/white matter turned into CSF by disease load l (maps: (N, 4, *S) GM, WM, CSF, distance).

    Ventricles grow by 3 l mm (VENTRICLE_GROWTH_MM): v = sigmoid(-(d - 3 l) / 1 mm), tissue lost = (GM + WM) max(v - v_0, 0).
    Grey matter thins: a share min(0.18 l w_mt + 0.05 l, 0.8) of the remaining GM becomes CSF,
    with w_mt the medial temporal region weight.
    """
    gm, wm, csf, dist = maps[:, :4].unbind(1)
    view = (-1,) + (1,) * (gm.ndim - 1)
    grow = VENTRICLE_GROWTH_MM * load.view(view)
    vent_gain = (torch.sigmoid(-(dist - grow)) - torch.sigmoid(-dist)).clamp_min(0)
    w_mt = regions["medial_temporal"]
    gm_loss = (MEDIAL_TEMPORAL_LOSS * w_mt + CORTICAL_LOSS) * load.view(view)
    gm_new = gm * (1 - vent_gain) * (1 - gm_loss.clamp(0, 0.8))
    wm_new = wm * (1 - vent_gain)
    csf_new = csf + (gm + wm) - (gm_new + wm_new)
    return torch.stack([gm_new, wm_new, csf_new], 1)


def apply_texture(tissue: Tensor, texture: Tensor) -> Tensor:
    """Exchange grey and white matter locally: GM' = clip(GM (1 + a T), 0, GM + WM), WM' = GM + WM - GM'."""
    gm, wm, csf = tissue.unbind(1)
    gm_new = torch.minimum((gm * (1 + TEXTURE_STRENGTH * texture[:, 0])).clamp_min(0), gm + wm)
    return torch.stack([gm_new, gm + wm - gm_new, csf], 1)


def render_mri(tissue: Tensor, rng: np.random.Generator) -> Tensor:
    """T1-like: I = B (mu_GM GM + mu_WM WM + mu_CSF CSF)^gamma, then Rician noise of level sigma.

    Per subject: mu_WM = 1, mu_GM ~ 0.6 +- 0.03, mu_CSF ~ 0.15 +- 0.03, gamma ~ exp(0.08 N),
    bias field B = exp(0.1 z) with z a smooth field, sigma ~ U(0.02, 0.04).
    """
    n, spatial = tissue.shape[0], tissue.shape[2:]
    view = (-1,) + (1,) * len(spatial)
    as_t = lambda a: torch.as_tensor(a, dtype=torch.float32).view(view)  # noqa: E731
    mu_gm = as_t(0.6 + 0.03 * rng.standard_normal(n))
    mu_csf = as_t(np.clip(0.15 + 0.03 * rng.standard_normal(n), 0.02, None))
    gamma = as_t(np.exp(0.08 * rng.standard_normal(n)))
    control = torch.as_tensor(rng.standard_normal((n, 1, *[3] * len(spatial))), dtype=torch.float32)
    bias = torch.exp(0.1 * anatomy.smooth_field(control, spatial))[:, 0]
    sigma = as_t(rng.uniform(0.02, 0.04, n))
    gm, wm, csf = tissue.unbind(1)
    clean = bias * (mu_gm * gm + wm + mu_csf * csf).clamp_min(0) ** gamma
    n1, n2 = (torch.as_tensor(rng.standard_normal((n, *spatial)), dtype=torch.float32) for _ in range(2))
    return torch.sqrt((clean + sigma * n1) ** 2 + (sigma * n2) ** 2)[:, None]


def pet_misregistration(n: int, dims: int, spread_mm: float, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Per-subject rigid motion of PET against MRI: shifts ~ N(0, m^2) mm per axis, angles ~ N(0, (m/2)^2) degrees.

    In 2D the motion is in-plane (one angle, two shifts); in 3D it has three of each.
    """
    angles = np.deg2rad(spread_mm / 2) * rng.standard_normal((n, 1 if dims == 2 else 3))
    shifts = spread_mm * rng.standard_normal((n, dims))
    return torch.as_tensor(angles, dtype=torch.float32), torch.as_tensor(shifts, dtype=torch.float32)


PET_PATTERN = {"temporoparietal": 1.0, "posterior_cingulate": 1.0, "lateral_temporal": 0.8, "medial_temporal": 0.6}


def render_pet(
    tissue: Tensor,
    regions: Mapping[str, Tensor],
    load: Tensor,
    motion: tuple[Tensor, Tensor],
    voxel_mm: float,
    rng: np.random.Generator,
    focal: Tensor | float = 0.0,
) -> Tensor:
    """FDG-like: P = blur_8mm(move(g (GM + 0.25 WM + 0.05 CSF)(1 - h)) + noise).

    Hypometabolism h = min(0.4 l w, 0.7) (HYPOMETABOLISM) with w = min(sum_r a_r w_r, 1) over ``PET_PATTERN``
    (temporoparietal and posterior cingulate 1.0, lateral temporal 0.8, medial temporal 0.6).
    Global scale g ~ exp(0.1 N) (PET_SCALE_SD). Noise std k sqrt(max(uptake, 0)) with k ~ U(0.12, 0.24) per subject,
    added before the blur, so it is spatially correlated as in a reconstructed PET image. ``focal`` (a focal
    lesion, relative change of uptake) comes from the ``interaction`` knob.
    """
    n, spatial = tissue.shape[0], tissue.shape[2:]
    view = (-1,) + (1,) * len(spatial)
    pattern = sum(a * regions[r] for r, a in PET_PATTERN.items()).clamp(0, 1)
    hypo = (HYPOMETABOLISM * load.view(view) * pattern).clamp(0, 0.7)
    scale = torch.as_tensor(np.exp(PET_SCALE_SD * rng.standard_normal(n)), dtype=torch.float32).view(view)
    gm, wm, csf = tissue.unbind(1)
    uptake = (scale * (gm + 0.25 * wm + 0.05 * csf) * (1 - hypo) * (1 + focal))[:, None]
    angles, shifts = motion
    if shifts.abs().sum() > 0:
        uptake = anatomy.rigid_warp(uptake, angles[:, 0] if len(spatial) == 2 else angles, shifts / voxel_mm)
    k = torch.as_tensor(rng.uniform(0.12, 0.24, n), dtype=torch.float32)
    k = k.view(-1, 1, *[1] * len(spatial))
    noise = torch.as_tensor(rng.standard_normal(tuple(uptake.shape)), dtype=torch.float32)
    noisy = uptake + k * uptake.clamp_min(0).sqrt() * noise
    return anatomy.gaussian_blur(noisy, PET_FWHM_MM / 2.355 / voxel_mm).clamp_min(0)
