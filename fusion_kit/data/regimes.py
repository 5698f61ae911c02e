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
- ``reliability``: a modality may be degraded for a subject, with probability ``RELIABILITY_RATE *
  reliability`` each (never all three), and shows then a *confidently misleading* latent (an independent
  draw, twice as spread). A degraded scan looks like any other scan: head motion during the T1 biases
  the morphometry (motion lowers grey-matter volume and thickness estimates), a high blood glucose at
  the FDG injection lowers cortical uptake (it mimics hypometabolism). What tells is the **acquisition
  record**, two columns added to the table: the scanner's head-motion estimate (mm) and the blood
  glucose at injection (mg/dL). A mistyped clinical record is visible in itself (an age typed in
  decades). So whether to trust an image is written in *another* modality: its weight must be set per
  subject from the table (gating, attention over all modalities); a fixed sum of per-modality evidence
  cannot, and neither can an image's own encoder.

The draws come from their own random streams, so a knob changes nothing else in the cohort.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


__all__ = [
    "KNOBS",
    "RegimeDraws",
    "draw_regimes",
    "diagnosis_latent",
    "image_loads",
    "lesion_maps",
    "misleading_latents",
    "RECORD_FEATURES",
    "acquisition_record",
    "mistyped_clinical",
]

KNOBS = ("interaction", "conditioning", "reliability")
VERSION = 3  # bump whenever what the knobs generate changes, so cached regime cohorts are regenerated
INTERACTION_SHIFT = 0.6  # how far a coinciding (or separate) pair of lesions moves the diagnosis latent
LESION_SD_MM = 12.0  # size of a focal lesion (Gaussian standard deviation)
LESION_APART_MM = 40.0  # lesions that do not coincide are at least this far apart
LESION_MRI = 1.5  # relative change of the T1 signal at the centre of the MRI lesion (+: brighter)
LESION_PET = 2.0  # relative change of the uptake at the centre of the PET lesion (+: hotter)
AGEING_CENTRE, AGEING_WIDTH = 72.0, 2.0  # w(age) = sigmoid((age - 72) / 2)
GAIN_YOUNG, GAIN_OLD = 0.1, 2.5  # change in the image per unit of disease load, young and old (conditioning 1)
RELIABILITY_RATE = 0.5  # chance that a modality is degraded for a subject, at reliability 1
# the acquisition record, added to the table under ``reliability``: name, unit, (centre, spread) of the scaling
RECORD_FEATURES = ("motion_mm", "glucose_mg_dl")
RECORD_UNITS = {"motion_mm": "head motion during the T1, scanner estimate (mm)",
                "glucose_mg_dl": "blood glucose at the FDG injection (mg/dL)"}
RECORD_SCALING = {"motion_mm": (1.0, 1.0), "glucose_mg_dl": (130.0, 40.0)}
MOTION_DEGRADED_MM = (1.5, 4.0)  # a degraded T1: motion drawn uniformly in this range; intact: about 0.3 mm
GLUCOSE_DEGRADED = (170.0, 260.0)  # a degraded FDG-PET: glucose in this range; intact: about 100 +- 15
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


def acquisition_record(degraded: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The record of each scan, (N, 2) in RECORD_FEATURES order: head motion in mm (about 0.3 when still,
    1.5 to 4 when the T1 is degraded) and blood glucose in mg/dL (100 +- 15, or 170 to 260 when the PET is
    degraded). It is exact about which scan is degraded, and says nothing about the disease."""
    n = len(degraded)
    still = np.round(rng.lognormal(np.log(0.3), 0.5, n), 2)
    moved = np.round(rng.uniform(*MOTION_DEGRADED_MM, n), 2)
    normal = np.round(np.clip(rng.normal(100.0, 15.0, n), 65.0, 150.0))
    high = np.round(rng.uniform(*GLUCOSE_DEGRADED, n))
    return np.stack([np.where(degraded[:, 0], moved, still), np.where(degraded[:, 1], high, normal)], 1)


def mistyped_clinical(raw: np.ndarray, shown: np.ndarray, degraded: np.ndarray) -> np.ndarray:
    """The recorded table: a degraded subject's row comes from a misleading latent (``shown``), with the
    age typed in decades (72 recorded as 7.2): implausible, and visible in the row itself."""
    out = raw.copy()
    out[degraded] = shown[degraded]
    out[degraded, 0] = np.round(shown[degraded, 0] / 10, 1)
    return out
