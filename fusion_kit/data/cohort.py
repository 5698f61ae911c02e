"""A synthetic multimodal brain cohort on real anatomy: CN, MCI and AD subjects with MRI, PET and a clinical table.

The generative story (equations in ``datasets/brain_cohort.md``):

1. Every subject has a latent disease severity s ~ N(0, 1); the label is CN, MCI or AD by rank of s,
   so class counts follow ``class_balance`` exactly.
2. Each modality m sees the disease through its own latent e_m = s + noise. ``modality_signal`` sets
   how much noise; ``complementarity`` how it is shared: the same for all modalities (redundant),
   independent, or opposed so that it cancels when the modalities are combined (complementary).
   Everything a modality shows about the disease passes through e_m.
3. MRI: the MNI152 tissue maps, warped per subject (head size, pose, smooth deformation, an individual
   grey-matter pattern), with atrophy driven by e_mri (ventricles grow, medial temporal and cortical
   grey matter thin), rendered as a T1-like image with bias field, contrast changes and Rician noise.
4. PET: FDG-like uptake from the same subject's tissue maps, with hypometabolism driven by e_pet in
   temporal, temporoparietal and posterior cingulate regions, a global scale, optional misregistration
   against the MRI, a PET-like blur and noise.
5. Clinical: age, sex, education, MMSE and APOE4 alleles, related to e_clinical and to each other.

    >>> cohort = make_brain_cohort(1000)            # 2D, 64 x 64; cached after the first call
    >>> cohort.meta["severity"][:3], cohort.class_counts()
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..core import cache_dir, look_up_option
from . import anatomy, imaging, regimes
from .dataset import MultimodalDataset
from .io import COURSE_CLASSES, export_cohort
from .store import load_dataset, save_dataset

__all__ = [
    "CLASS_NAMES",
    "MODALITIES",
    "CLINICAL_FEATURES",
    "CLINICAL_UNITS",
    "CLINICAL_SCALING",
    "MISSING_MECHANISMS",
    "LATENT_NOISE",
    "make_brain_cohort",
    "CohortConfig",
    "cohort_cache_path",
    "scale_clinical",
    "disease_load",
    "DEMO_COHORT",
    "write_demo_cohort",
    "latent_ceiling",
]

GENERATOR_VERSION = 1  # bump whenever the generated data change, so old caches are not reused
CLASS_NAMES = COURSE_CLASSES  # ("CN", "MCI", "AD"): the order a manifest of these labels keeps too
MODALITIES = ("mri", "pet", "clinical")
CLINICAL_FEATURES = ("age", "sex", "education", "mmse", "apoe4")
CLINICAL_UNITS = {
    "age": "years",
    "sex": "0 male, 1 female",
    "education": "years of schooling",
    "mmse": "Mini-Mental State Examination score, 0-30 (higher is better)",
    "apoe4": "number of APOE e4 alleles (0, 1, 2)",
}
# fixed population constants: stored feature = (raw - centre) / spread, never data-dependent
CLINICAL_SCALING = {"age": (72.0, 8.0), "sex": (0.5, 0.5), "education": (15.0, 3.0), "mmse": (27.0, 3.0), "apoe4": (0.5, 0.6)}
MISSING_MECHANISMS = ("mcar", "mar", "severity")
LATENT_NOISE = 0.8  # tau: std of a modality's latent noise at modality_signal 1.0

# Random streams: one per part of the story, so changing one knob leaves the other parts unchanged.
_STREAMS = {"latent": 0, "anatomy": 1, "mri": 2, "pet": 3, "clinical": 4, "missing": 5, "labels": 6, "texture": 7,
            "regimes": 8, "lesions": 9, "degraded": 10}
_CHUNK = 128  # subjects rendered at a time (bounds memory; results do not depend on it)


# ------------------------------------------------------------------------------- parameters
def _rng(seed: int, stream: str, *extra: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAMS[stream], *extra)))


def _check_fraction(name: str, value: float, high_inclusive: bool = True) -> float:
    value = float(value)
    ok = 0.0 <= value <= 1.0 if high_inclusive else 0.0 <= value < 1.0
    if not ok or math.isnan(value):
        bound = "1" if high_inclusive else "1 (excluded)"
        raise ValueError(f"{name} must lie between 0 and {bound}, got {value!r}")
    return value


def _per_modality(name: str, value, default: float, modalities: Sequence[str] = MODALITIES) -> dict[str, float]:
    if value is None:
        return {m: default for m in modalities}
    if isinstance(value, (int, float)):
        return {m: float(value) for m in modalities}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a number or a dict such as {{'pet': 0.5}}, got {type(value).__name__}")
    for key in value:
        look_up_option(key, modalities, f"modality in {name}")
    return {m: float(value.get(m, default)) for m in modalities}


@dataclass(frozen=True)
class CohortConfig:
    """Every knob of ``make_brain_cohort``, checked and normalised when built; the same config (and
    version of the generator) gives bit-identical data.

    Attributes:
        n_subjects: number of subjects (at least 3, one per class).
        spatial_dims: 2 for one oblique axial slice per subject (1, S, S); 3 for volumes (1, S, S, S).
        image_size: S, the side in voxels over a 180 mm field of view; default 64 in 2D, 32 in 3D.
        class_balance: shares of CN, MCI, AD (normalised to sum 1); class counts follow them exactly.
        modality_signal: how clearly each modality shows the disease, a number for all or a dict such as
            ``{"pet": 0.5}`` (others stay 1.0). Modality m's latent noise has std 0.8 / signal_m; 0 means
            the modality carries no class information, 2 halves its noise.
        complementarity: in [0, 1], how the modalities' latent noise is shared. 0: one shared nuisance,
            the weaker modalities are noisier copies of the best one and fusion gains nothing
            (redundant). 0.5: independent noise, which fusion averages away. 1: opposed noise that
            cancels in the sum, each modality seeing its own part of the disease (complementary).
            The default 0.75 lies between the last two. Each modality alone is equally informative at
            every setting; only what fusion can gain changes.
        missing: share of subjects without each modality, a number for all or a dict such as
            ``{"pet": 0.3}``; absent modalities have mask False and zeroed content.
        missing_mechanism: "mcar" (completely at random), "mar" (at random given the age in the table:
            older subjects miss more often; the table itself cannot then be missing) or "severity"
            (sicker subjects miss more often: not at random).
        misregistration: spread in mm of a random rigid motion of PET against MRI per subject
            (shift std in mm per axis, rotation std misregistration / 2 in degrees); 0 means aligned.
        label_noise: share of subjects whose label is replaced by another class at random.
        interaction: in [0, 1], how far the diagnosis depends on whether the focal lesions of the MRI and
            the PET coincide (input, hierarchical and map-level attention fusion can see it; no fusion of
            pooled per-modality vectors can). 0: no focal lesions at all.
        conditioning: in [0, 1], how far the images must be read against the age in the table (an older
            brain shows more change per unit of disease, and normal ageing): calls for multiplicative fusion.
        reliability: in [0, 1], how often a modality is degraded for a subject (50% each at 1, never all
            three), showing a misleading latent; which scan is degraded is written in the acquisition
            record (two columns added to the table): calls for per-subject weights set from the table.
        seed: the same seed and knobs give bit-identical data.

        The three regime knobs are described, with their equations, in ``fusion_kit.data.regimes``.
    """

    n_subjects: int = 1000
    spatial_dims: int = 2
    image_size: int | None = None
    class_balance: Sequence[float] = (0.4, 0.35, 0.25)
    modality_signal: float | Mapping[str, float] | None = None
    complementarity: float = 0.75
    missing: float | Mapping[str, float] | None = None
    missing_mechanism: str = "mcar"
    misregistration: float = 0.0
    label_noise: float = 0.0
    interaction: float = 0.0
    conditioning: float = 0.0
    reliability: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value in self._checked().items():
            object.__setattr__(self, name, value)

    def _checked(self) -> dict:
        n, seed = self.n_subjects, self.seed
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 3:
            raise ValueError(f"n_subjects must be an integer of at least 3 (one per class), got {n!r}")
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 (slices) or 3 (volumes), got {self.spatial_dims!r}")
        size = self.image_size if self.image_size is not None else (64 if self.spatial_dims == 2 else 32)
        if not isinstance(size, (int, np.integer)) or not 16 <= size <= 256:
            raise ValueError(f"image_size must be an integer between 16 and 256, got {self.image_size!r}")
        balance = [float(b) for b in self.class_balance]
        if len(balance) != 3 or min(balance) <= 0:
            raise ValueError(f"class_balance needs 3 positive shares for {CLASS_NAMES}, got {tuple(self.class_balance)}")
        signal = _per_modality("modality_signal", self.modality_signal, 1.0)
        if any(v < 0 or math.isnan(v) for v in signal.values()):
            raise ValueError(f"modality_signal values must be >= 0 (0: no class information), got {signal}")
        rates = _per_modality("missing", self.missing, 0.0)
        for key, rate in rates.items():
            _check_fraction(f"missing rate of {key!r}", rate, high_inclusive=False)
        if self.missing_mechanism == "mar" and rates.get("clinical", 0.0) > 0:
            raise ValueError("missing_mechanism 'mar' ties missingness to the age in the clinical table, which must "
                             "then be observed for everyone: set missing['clinical'] to 0, or use 'mcar' or 'severity'")
        if self.misregistration < 0:
            raise ValueError(f"misregistration is a spread in mm and must be >= 0, got {self.misregistration!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        return {
            "n_subjects": int(n),
            "spatial_dims": int(self.spatial_dims),
            "image_size": int(size),
            "class_balance": tuple(b / sum(balance) for b in balance),
            "modality_signal": signal,
            "complementarity": _check_fraction("complementarity", self.complementarity),
            "missing": rates,
            "missing_mechanism": look_up_option(self.missing_mechanism, MISSING_MECHANISMS, "missing_mechanism"),
            "misregistration": float(self.misregistration),
            "label_noise": _check_fraction("label_noise", self.label_noise, high_inclusive=False),
            **{k: _check_fraction(k, getattr(self, k)) for k in regimes.KNOBS},
            "seed": int(seed),
        }

    @classmethod
    def from_knobs(cls, n_subjects: "int | CohortConfig" = 1000, **knobs) -> "CohortConfig":
        """A config from ``make_brain_cohort``'s arguments; an unknown knob names the valid ones."""
        valid = [f.name for f in fields(cls)]
        for name in knobs:
            look_up_option(name, valid, "cohort knob")
        if isinstance(n_subjects, CohortConfig):
            return replace(n_subjects, **knobs)
        return cls(n_subjects, **knobs)

    def as_dict(self) -> dict:
        """Plain values (the cache key and ``meta['params']``), with the generator's version. A regime knob
        at 0 is left out, so the default cohort keeps the key (and the data) it had before the knobs."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["class_balance"] = list(out["class_balance"])
        for knob in regimes.KNOBS:
            if not out[knob]:
                del out[knob]
        if self.regime:
            out["regimes_version"] = regimes.VERSION
        return {**out, "version": GENERATOR_VERSION}

    @property
    def regime(self) -> bool:
        """Whether any regime knob (interaction, conditioning, reliability) is on."""
        return any(getattr(self, k) for k in regimes.KNOBS)


def cohort_cache_path(config: CohortConfig) -> Path:
    """Where a cohort with this config is cached: a hash of every knob and the version, in ``cache_dir()``."""
    text = json.dumps(config.as_dict(), sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:20]
    return cache_dir() / f"brain_cohort_{key}.pt"


# ------------------------------------------------------------------------------- latent variables
def _labels_by_rank(severity: np.ndarray, balance: Sequence[float]) -> np.ndarray:
    """Class k for the subjects whose severity rank falls in the k-th share (largest remainder rounding)."""
    n = len(severity)
    raw = np.asarray(balance) * n
    counts = np.floor(raw).astype(int)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    labels = np.empty(n, dtype=np.int64)
    labels[np.argsort(severity, kind="stable")] = np.repeat(np.arange(len(balance)), counts)
    return labels


def _noise_weights(c: float) -> tuple[float, float, float]:
    """Weights (shared, own, opposed) of the unit nuisance u_m; their squares sum to 1.

    c in [0, 0.5]: (sqrt(1 - 2c), sqrt(2c), 0), correlation between modalities rho = 1 - 2c.
    c in [0.5, 1]: (0, sqrt(2 - 2c), sqrt(2c - 1)), rho = -(c - 0.5): the opposed part sums to zero
    over the three modalities, so it cancels when they are combined.
    """
    if c <= 0.5:
        return math.sqrt(1 - 2 * c), math.sqrt(2 * c), 0.0
    return 0.0, math.sqrt(2 - 2 * c), math.sqrt(2 * c - 1)


def _modality_latents(s: np.ndarray, signal: Mapping[str, float], c: float, rng: np.random.Generator) -> dict:
    """e_m = s + tau_min u_m + sqrt(tau_m^2 - tau_min^2) p_m, with tau_m = tau / signal_m.

    u_m = a eta + b xi_m + g sqrt(3/2) (z_m - mean(z)) mixes a nuisance shared by all modalities (eta),
    one of their own (xi_m) and one that opposes across modalities (z), with weights set by c
    (``_noise_weights``); p_m is extra noise of the less informative modalities. At c = 0 every
    modality is the most informative one plus noise: fusion cannot gain (redundant). At c = 0.5
    the nuisances are independent; at c = 1 they cancel in the sum, each modality seeing its own
    part of the disease (complementary). A modality with signal 0 gets e_m = sqrt(1 + tau^2) xi_m.
    """
    n = len(s)
    shared = rng.standard_normal(n)
    own = {m: rng.standard_normal(n) for m in MODALITIES}
    opposed = rng.standard_normal((n, len(MODALITIES)))
    opposed = math.sqrt(1.5) * (opposed - opposed.mean(1, keepdims=True))  # unit variance, sums to 0
    extra = {m: rng.standard_normal(n) for m in MODALITIES}
    w_shared, w_own, w_opposed = _noise_weights(c)
    taus = {m: LATENT_NOISE / v for m, v in signal.items() if v > 0}
    tau_min = min(taus.values()) if taus else 0.0
    latents = {}
    for j, m in enumerate(MODALITIES):
        if m not in taus:
            latents[m] = math.sqrt(1 + LATENT_NOISE**2) * own[m]
            continue
        unit = w_shared * shared + w_own * own[m] + w_opposed * opposed[:, j]
        latents[m] = s + tau_min * unit + math.sqrt(taus[m] ** 2 - tau_min**2) * extra[m]
    return latents


def disease_load(latent: Tensor | np.ndarray) -> Tensor:
    """l(e) = softplus(2 (e + 1)) / 2: near 0 for healthy subjects (e << -1), about e + 1 beyond."""
    e = torch.as_tensor(latent, dtype=torch.float32)
    return F.softplus(2 * (e + 1)) / 2


def _subject_rngs(seed: int, stream: str, first: int, n: int) -> list[np.random.Generator]:
    """One random stream per subject, so what a subject gets does not depend on the chunk it is rendered in."""
    return [_rng(seed, stream, first + i) for i in range(n)]


def _shown_load(p: Mapping, latent: np.ndarray, draws, age: np.ndarray | None) -> Tensor:
    """The disease load an image shows: its latent's, mixed with normal ageing under ``conditioning``."""
    load = disease_load(latent)
    if draws is None or not p.get("conditioning", 0.0):
        return load
    return regimes.image_loads(load, disease_load(draws.ageing), age, p["conditioning"])


def _images(p: Mapping, latents: dict, sex: np.ndarray, draws=None, age: np.ndarray | None = None) -> tuple[Tensor, Tensor, dict]:
    """MRI and PET for every subject, rendered a chunk of subjects at a time (``draws``: the regime knobs')."""
    n, dims, size, seed = p["n_subjects"], p["spatial_dims"], p["image_size"], p["seed"]
    spatial = (size,) * dims
    voxel_mm = anatomy.FIELD_OF_VIEW_MM / size
    template = anatomy.load_template()
    reference = anatomy.reference_points(dims, size)
    geo = imaging.geometry(n, sex, dims, _rng(seed, "anatomy"))
    motion = imaging.pet_misregistration(n, dims, p["misregistration"], _rng(seed, "pet", 1))
    mri_rng, pet_rng = _rng(seed, "mri"), _rng(seed, "pet")
    loads = {m: _shown_load(p, latents[m], draws, age) for m in ("mri", "pet")}
    mri, pet, foci = [], [], []
    for start in range(0, n, _CHUNK):
        part = slice(start, min(start + _CHUNK, n))
        k = part.stop - part.start
        displacement = anatomy.smooth_field(geo["control"][part], spatial).movedim(1, -1)
        points = anatomy.subject_points(reference, geo["scale"][part], geo["angles"][part], geo["shift"][part], displacement)
        maps = anatomy.sample_template(template, points)
        regions = dict(zip(template.channels[4:], maps[:, 4:].unbind(1)))
        texture = imaging.texture(_subject_rngs(seed, "texture", start, k), spatial, imaging.TEXTURE_MM / voxel_mm)
        healthy = imaging.apply_texture(maps[:, :3], texture)
        lesion_mri, lesion_pet = 0.0, 0.0
        if p.get("interaction", 0.0):
            rngs = _subject_rngs(seed, "lesions", start, k)
            lesion_mri, lesion_pet, *at = regimes.lesion_maps(points, healthy[:, 0], draws.coincide[part], rngs)
            foci.append(torch.stack(at, 1))  # (k, 2, dims): MRI and PET focus, voxel indices
        atrophied = imaging.apply_texture(imaging.atrophy(maps, regions, loads["mri"][part]), texture)
        image = imaging.render_mri(atrophied, mri_rng)
        if p.get("interaction", 0.0):
            image = image * (1 + lesion_mri[:, None])
        mri.append(image)
        pet_motion = (motion[0][part], motion[1][part])
        pet.append(imaging.render_pet(healthy, regions, loads["pet"][part], pet_motion, voxel_mm, pet_rng, lesion_pet))
    info = {
        "head_scale": geo["scale"].numpy().astype(np.float64),
        "pet_shift_mm": motion[1].numpy().astype(np.float64),
        "pet_rotation_deg": np.rad2deg(motion[0].numpy()).astype(np.float64),
        **({"lesion_voxels": torch.cat(foci).numpy()} if foci else {}),  # (N, 2, dims): MRI, PET focus
    }
    return torch.cat(mri), torch.cat(pet), info


# ------------------------------------------------------------------------------- clinical table
def _clinical_raw(latent: np.ndarray, sex: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Raw table (N, 5) in CLINICAL_FEATURES order, from the clinical latent e_c.

    age = clip(72 + 2.5 e_c + 6 N, 55, 92); education = clip(round(15 + 3 N), 6, 22);
    MMSE = clip(round(27.2 - 2.5 e_c + 0.25 (education - 15) + 0.4 N), 0, 30);
    APOE4 carrier with probability sigmoid(-0.9 + 0.8 e_c), two alleles for 20% of carriers.
    """
    n = len(latent)
    age = np.round(np.clip(72 + 2.5 * latent + 6 * rng.standard_normal(n), 55, 92), 1)
    education = np.clip(np.round(15 + 3 * rng.standard_normal(n)), 6, 22)
    mmse = np.clip(np.round(27.2 - 2.5 * latent + 0.25 * (education - 15) + 0.4 * rng.standard_normal(n)), 0, 30)
    carrier = rng.random(n) < 1 / (1 + np.exp(0.9 - 0.8 * latent))
    apoe4 = carrier * (1 + (rng.random(n) < 0.2))
    return np.stack([age, sex.astype(float), education, mmse, apoe4.astype(float)], 1)


def scale_clinical(raw: np.ndarray, features: Sequence[str] = CLINICAL_FEATURES) -> np.ndarray:
    """(raw - centre) / spread per column with the fixed constants of ``CLINICAL_SCALING`` (and of the
    acquisition record's columns, ``regimes.RECORD_SCALING``)."""
    constants = {**CLINICAL_SCALING, **regimes.RECORD_SCALING}
    centre = np.array([constants[f][0] for f in features])
    spread = np.array([constants[f][1] for f in features])
    return (np.asarray(raw, dtype=np.float64) - centre) / spread


# ------------------------------------------------------------------------------- missingness and label noise
def _apply_missing(data: MultimodalDataset, p: Mapping) -> MultimodalDataset:
    """Hide each modality for its share of subjects; a subject never loses all three (see the card)."""
    from .missingness import mask_modality

    rates = p["missing"]
    if not any(rates.values()):
        return data
    base = int(np.random.SeedSequence(p["seed"], spawn_key=(_STREAMS["missing"],)).generate_state(1)[0])
    masked = data
    for j, m in enumerate(MODALITIES):
        if rates[m] > 0:
            masked = mask_modality(masked, m, rates[m], p["missing_mechanism"], seed=base + j)
    mask = masked.mask.clone()
    empty = ~mask.any(1)
    if empty.any():  # give back the modality that was asked to be missing least often
        keep = min(range(len(MODALITIES)), key=lambda j: (rates[MODALITIES[j]], j))
        mask[empty, keep] = True
    return data.with_mask(mask)


def _noisy_labels(labels: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Exactly round(rate N) labels, chosen at random, moved to one of the other classes at random."""
    noisy = labels.copy()
    flip = rng.permutation(len(labels))[: int(round(rate * len(labels)))]
    noisy[flip] = (labels[flip] + rng.integers(1, len(CLASS_NAMES), len(flip))) % len(CLASS_NAMES)
    return noisy


# ------------------------------------------------------------------------------- the cohort
def _generate(p: Mapping) -> MultimodalDataset:
    """Run the generative story for the checked parameters ``p`` (see the module docstring)."""
    n, seed = p["n_subjects"], p["seed"]
    rng = _rng(seed, "latent")
    severity = rng.standard_normal(n)
    sex = (rng.random(n) < 0.5).astype(np.int64)
    latents = _modality_latents(severity, p["modality_signal"], p["complementarity"], rng)
    raw = _clinical_raw(latents["clinical"], sex, _rng(seed, "clinical"))
    on = any(p.get(k, 0.0) for k in regimes.KNOBS)
    draws = regimes.draw_regimes(n, p, _rng(seed, "regimes")) if on else None
    diagnosis = regimes.diagnosis_latent(severity, draws, p) if on else severity
    labels = _labels_by_rank(diagnosis, p["class_balance"])
    shown, table, features, units = latents, raw, CLINICAL_FEATURES, dict(CLINICAL_UNITS)
    if p.get("reliability", 0.0):  # the acquisition record joins the table, and degraded modalities mislead
        shown = regimes.misleading_latents(latents, draws, MODALITIES, _rng(seed, "degraded"))
        misleading = _clinical_raw(shown["clinical"], sex, _rng(seed, "degraded", 1))
        record = regimes.acquisition_record(draws.degraded, _rng(seed, "degraded", 2))
        table = np.concatenate([regimes.mistyped_clinical(raw, misleading, draws.degraded[:, 2]), record], 1)
        features, units = features + regimes.RECORD_FEATURES, {**units, **regimes.RECORD_UNITS}
    mri, pet, info = _images(p, shown, sex, draws, raw[:, 0])
    noisy = _noisy_labels(labels, p["label_noise"], _rng(seed, "labels"))
    meta = {
        "severity": severity,
        **{f"latent_{m}": latents[m] for m in MODALITIES},
        "label_clean": labels,
        "label_flipped": noisy != labels,
        **info,
        "clinical_raw": table,
        "clinical_units": units,
        "affine": anatomy.voxel_to_mni(p["spatial_dims"], p["image_size"]).tolist(),
        "params": json.loads(json.dumps(p)),
        **(_regime_meta(diagnosis, draws, raw) if on else {}),
    }
    data = MultimodalDataset(
        {"mri": mri, "pet": pet, "clinical": torch.as_tensor(scale_clinical(table, features), dtype=torch.float32)},
        noisy,
        class_names=CLASS_NAMES,
        feature_names={"clinical": features},
        subject_ids=[f"sub-{i + 1:04d}" for i in range(n)],
        meta=meta,
    )
    return _apply_missing(data, p)


def _regime_meta(diagnosis: np.ndarray, draws, raw: np.ndarray) -> dict:
    """The hidden truth of the regime knobs, one value per subject."""
    return {
        "diagnosis": diagnosis,  # what the labels rank: severity, plus the lesions' shift under interaction
        "lesions_coincide": draws.coincide > 0,
        "ageing_weight": regimes.ageing_weight(raw[:, 0]),  # w(true age)
        "ageing_latent": draws.ageing,
        "degraded": draws.degraded,  # (N, 3): mri, pet, clinical
    }


@contextlib.contextmanager
def _single_thread():
    """Run torch on one CPU thread: the generator's many small operations run fastest this way
    (and do not fight other processes for cores), and the results cannot depend on the thread count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def make_brain_cohort(n_subjects: int | CohortConfig = 1000, *, cache: bool = True, **knobs) -> MultimodalDataset:
    """The synthetic CN / MCI / AD cohort with modalities "mri", "pet" (images) and "clinical" (5 features).

    Args:
        n_subjects: number of subjects, or a whole ``CohortConfig``.
        cache: reuse (and write) the cohort in ``fusion_kit.core.cache_dir()``, keyed by all the knobs.
        **knobs: any field of ``CohortConfig`` (``spatial_dims``, ``image_size``, ``class_balance``,
            ``modality_signal``, ``complementarity``, ``missing``, ``missing_mechanism``,
            ``misregistration``, ``label_noise``, ``seed``), each described there.

    Returns:
        A MultimodalDataset; ``meta`` holds the latent variables (``severity``, ``latent_mri``,
        ``latent_pet``, ``latent_clinical``, ``label_clean``, ...), ``clinical_raw`` with
        ``clinical_units``, the voxel-to-MNI ``affine`` and the knobs in ``params``.
    """
    config = CohortConfig.from_knobs(n_subjects, **knobs)
    path = cohort_cache_path(config)
    if cache and path.exists():
        try:
            return load_dataset(path)
        except Exception:  # an unreadable cache file is regenerated and overwritten
            pass
    with _single_thread():
        data = _generate(config.as_dict())
    if cache:
        save_dataset(data, path)
    return data


def latent_ceiling(cohort: MultimodalDataset, modalities: Sequence[str] | None = None, *, folds: int = 5) -> float:
    """What no model of ``modalities`` can expect to beat on ``cohort``: balanced accuracy of a logistic
    regression (balanced class weights, ``folds``-fold cross-validated) on their true latents ``e_m``.

    The images and the table are rendered from ``e_m`` plus further noise, so this is an upper bound
    for a model of the observed data (``datasets/brain_cohort.md``, "The known ceiling"). It is known for
    the default regime only: under ``interaction``, ``conditioning`` or ``reliability`` the label or the
    evidence depends on more than the latents.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    params = cohort.meta.get("params", {})
    if not all(f"latent_{m}" in cohort.meta for m in MODALITIES):
        raise ValueError("a latent ceiling needs a cohort from make_brain_cohort: this dataset has no true latents")
    if any(params.get(k, 0) for k in regimes.KNOBS):
        raise ValueError("the latent ceiling is known for the default regime only: set interaction, conditioning "
                         "and reliability to 0")
    chosen = list(modalities or MODALITIES)
    unknown = [m for m in chosen if m not in MODALITIES]
    if unknown:
        raise ValueError(f"no latent for {', '.join(map(repr, unknown))}: choose among {', '.join(MODALITIES)}")
    latents = np.stack([np.asarray(cohort.meta[f"latent_{m}"]) for m in chosen], 1)
    labels = cohort.labels.numpy()
    split = StratifiedKFold(folds, shuffle=True, random_state=0)
    model = LogisticRegression(class_weight="balanced", max_iter=1000)
    return float(balanced_accuracy_score(labels, cross_val_predict(model, latents, labels, cv=split)))


DEMO_COHORT = Path(__file__).resolve().parents[2] / "datasets" / "demo_cohort"


def write_demo_cohort(path: str | os.PathLike = DEMO_COHORT, *, n_subjects: int = 12, seed: int = 0) -> Path:
    """(Re)write the tiny on-disk demo: the first ``n_subjects`` of the default cohort (``make_brain_cohort(1000,
    seed=seed)``, so ``sub-0001`` is the same subject in both), with PET absent for one subject in six."""
    cohort = make_brain_cohort(1000, seed=seed).subset(range(n_subjects))
    without_pet = np.random.default_rng(seed).choice(n_subjects, size=max(1, round(n_subjects / 6)), replace=False)
    mask = cohort.mask.clone()
    mask[torch.as_tensor(without_pet), cohort.modalities.index("pet")] = False
    return export_cohort(cohort.with_mask(mask), path, overwrite=True)
