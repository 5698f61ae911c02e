"""Three kinds of evidence beyond "each modality adds its own": the cohort's regime knobs.

Each knob is a share in [0, 1] (0: the cohort is exactly the default one) with a clinical story, and
each calls for a family of fusion (equations and limits in ``datasets/brain_cohort.md``):

- ``interaction``: every subject has one focal finding in each image, a T1-bright focus in the MRI and a
  hot spot in the PET, at places that vary per subject. When both come from one lesion of the disease
  process they **coincide**; when they are unrelated findings (an incidental focus, a physiological
  hot spot) they lie apart. The diagnosis shifts with that coincidence: ``t = s + 0.6 interaction z``,
  z = +1 (together) or -1 (apart). Each image alone shows one focus anywhere, so only a model that
  compares the two images place by place (input, hierarchical, spatial or patch cross-attention
  fusion) can read z.
- ``conditioning``: the images must be read against the patient's age. An older brain shows more change
  per unit of disease (less reserve) and normal ageing on top; a younger brain hides the same disease
  behind a smaller change. The load an image shows is ``g(age) l(e_m) + c w(age) l(u)``, with
  ``w(age) = sigmoid((age - 72) / 2)``, ``g`` from 0.1 (young) to 2.5 (old) at ``c = 1`` and ``u`` a
  normal-ageing latent shared by both images. The same picture is strong evidence of disease at 60 and
  weak at 85: the image's evidence must be multiplied by a function of a table column, which
  multiplicative fusion (FiLM, DAFT, tensor, product) can do and a sum of per-modality evidence cannot.
- ``reliability``: a modality may be degraded for a subject (head motion in the MRI, a low-count PET,
  a mistyped clinical record), with probability ``RELIABILITY_RATE * reliability`` each (never all
  three). A degraded modality shows a confidently misleading latent (an independent draw, twice as
  spread), and its artefact is visible in its own data (MRI ghosting, blur and noise; PET noise five
  times stronger; an age typed in decades). Fixed modality weights trust it anyway; per-subject
  weights (attention, gating, evidential fusion) need not.

The draws come from their own random streams, so a knob changes nothing else in the cohort.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from . import anatomy

__all__ = [
    "KNOBS",
    "RegimeDraws",
    "draw_regimes",
    "diagnosis_latent",
    "image_loads",
    "lesion_maps",
    "misleading_latents",
    "degrade_mri",
    "pet_noise_factor",
    "mistyped_clinical",
]

KNOBS = ("interaction", "conditioning", "reliability")
VERSION = 2  # bump whenever what the knobs generate changes, so cached regime cohorts are regenerated
INTERACTION_SHIFT = 0.6  # how far a coinciding (or separate) pair of lesions moves the diagnosis latent
LESION_SD_MM = 12.0  # size of a focal lesion (Gaussian standard deviation)
LESION_APART_MM = 40.0  # lesions that do not coincide are at least this far apart
LESION_MRI = 1.5  # relative change of the T1 signal at the centre of the MRI lesion (+: brighter)
LESION_PET = 2.0  # relative change of the uptake at the centre of the PET lesion (+: hotter)
AGEING_CENTRE, AGEING_WIDTH = 72.0, 2.0  # w(age) = sigmoid((age - 72) / 2)
GAIN_YOUNG, GAIN_OLD = 0.1, 2.5  # change in the image per unit of disease load, young and old (conditioning 1)
RELIABILITY_RATE = 0.5  # chance that a modality is degraded for a subject, at reliability 1
PET_NOISE_DEGRADED = 5.0  # a low-count PET: noise five times stronger
MISLEADING_SPREAD = 2.0  # a degraded modality's latent: an independent draw, this many times as spread


@dataclass
class RegimeDraws:
    """Every subject's draws for the regime knobs (arrays of length N)."""

    coincide: np.ndarray  # (N,) +1 lesions together, -1 apart (interaction)
    ageing: np.ndarray  # (N,) normal-ageing latent u ~ N(0, 1) (conditioning)
    degraded: np.ndarray  # (N, 3) bool, per modality in MODALITIES order (reliability)


def draw_regimes(n: int, p: Mapping, rng: np.random.Generator) -> RegimeDraws:
    """The per-subject draws; the degraded flags follow ``p['reliability']`` (never all three modalities)."""
    coincide = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    ageing = rng.standard_normal(n)
    degraded = rng.random((n, 3)) < RELIABILITY_RATE * p.get("reliability", 0.0)
    keep = rng.integers(0, 3, n)  # a subject with every modality degraded keeps one of them
    every = degraded.all(1)
    degraded[every, keep[every]] = False
    return RegimeDraws(coincide, ageing, degraded)


def diagnosis_latent(severity: np.ndarray, draws: RegimeDraws, p: Mapping) -> np.ndarray:
    """t = s + INTERACTION_SHIFT * interaction * z: what the labels rank."""
    return severity + INTERACTION_SHIFT * p.get("interaction", 0.0) * draws.coincide


def ageing_weight(age: np.ndarray) -> np.ndarray:
    """w(age) = sigmoid((age - 72) / 2): 0 for a young brain, 1 for an old one."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(age, dtype=float) - AGEING_CENTRE) / AGEING_WIDTH))


def image_loads(load: Tensor, ageing_load: Tensor, age: np.ndarray, conditioning: float) -> Tensor:
    """The disease load an image shows: g(age) l(e_m) + c w(age) l(u), with g(age) = 1 + c (G_YOUNG + (G_OLD -
    G_YOUNG) w(age) - 1): an older brain shows more change per unit of disease, and normal ageing on top."""
    w = torch.as_tensor(ageing_weight(age), dtype=load.dtype)
    gain = 1 + conditioning * (GAIN_YOUNG + (GAIN_OLD - GAIN_YOUNG) * w - 1)
    return gain * load + conditioning * w * ageing_load


def misleading_latents(latents: dict, draws: RegimeDraws, modalities, rng: np.random.Generator) -> dict:
    """A degraded modality's latent: an independent draw, twice as spread as the true one, so that it shows,
    confidently, a disease the subject may not have."""
    out = dict(latents)
    for j, m in enumerate(modalities):
        fresh = rng.standard_normal(len(draws.degraded)) * MISLEADING_SPREAD * float(np.std(latents[m]))
        out[m] = np.where(draws.degraded[:, j], fresh, latents[m])
    return out


def _lesion(points: Tensor, centre: Tensor) -> Tensor:
    """exp(-|p - c|^2 / (2 sd^2)) at every voxel's MNI point (k, *S, 3) for centres (k, 3)."""
    view = (len(centre),) + (1,) * (points.ndim - 2) + (3,)
    d2 = ((points - centre.view(view)) ** 2).sum(-1)
    return torch.exp(-d2 / (2 * LESION_SD_MM**2))


def _centres(points: Tensor, gm: Tensor, coincide: np.ndarray, rngs) -> tuple[Tensor, Tensor]:
    """Per subject, the flat voxel index of an MRI focus in grey matter, and of a PET focus there or >= 40 mm away."""
    mri, pet = [], []
    for i, rng in enumerate(rngs):
        where = points[i].reshape(-1, 3)
        cortex = torch.nonzero(gm[i].reshape(-1) > 0.5).flatten()
        if len(cortex) == 0:
            cortex = torch.arange(len(where))
        a = cortex[rng.integers(len(cortex))]
        if coincide[i] > 0:
            b = a
        else:
            distance = ((where[cortex] - where[a]) ** 2).sum(-1).sqrt()
            far = cortex[distance >= LESION_APART_MM]
            pool = far if len(far) else cortex[distance.argmax().view(1)]
            b = pool[rng.integers(len(pool))]
        mri.append(a)
        pet.append(b)
    return torch.stack(mri), torch.stack(pet)


def lesion_maps(points: Tensor, gm: Tensor, coincide: np.ndarray, rngs) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The relative signal change of the MRI focus and of the PET focus, maps (k, *S), and their centres as
    voxel indices (k, dims)."""
    mri_at, pet_at = _centres(points, gm, coincide, rngs)
    flat = points.reshape(len(points), -1, 3)
    rows = torch.arange(len(points))
    mri_centre, pet_centre = flat[rows, mri_at], flat[rows, pet_at]
    spatial = tuple(points.shape[1:-1])
    voxel = lambda flat_index: torch.stack(torch.unravel_index(flat_index, spatial), 1)  # noqa: E731
    return (LESION_MRI * _lesion(points, mri_centre), LESION_PET * _lesion(points, pet_centre),
            voxel(mri_at), voxel(pet_at))


def degrade_mri(images: Tensor, degraded: np.ndarray, rngs) -> Tensor:
    """Head motion in a T1: a ghost of the head shifted along the phase-encoding axis, blur and noise."""
    if not degraded.any():
        return images
    out = images.clone()
    size = images.shape[-1]
    for i in np.flatnonzero(degraded):
        image = images[i : i + 1]
        ghost = torch.roll(image, shifts=size // 6, dims=-1)
        moved = anatomy.gaussian_blur(0.5 * image + 0.5 * ghost, 1.5)
        noise = torch.as_tensor(rngs[i].standard_normal(tuple(image.shape)), dtype=image.dtype)
        out[i : i + 1] = (moved + 0.08 * noise).abs()
    return out


def pet_noise_factor(degraded: np.ndarray) -> Tensor:
    """Per subject, how much stronger the PET noise is: PET_NOISE_DEGRADED times for a low-count scan."""
    return torch.as_tensor(np.where(degraded, PET_NOISE_DEGRADED, 1.0), dtype=torch.float32)


def mistyped_clinical(raw: np.ndarray, shown: np.ndarray, degraded: np.ndarray) -> np.ndarray:
    """The recorded table: a degraded subject's row comes from a misleading latent (``shown``), with the
    age typed in decades (72 recorded as 7.2): implausible, and visible in the row itself."""
    out = raw.copy()
    out[degraded] = shown[degraded]
    out[degraded, 0] = np.round(shown[degraded, 0] / 10, 1)
    return out
