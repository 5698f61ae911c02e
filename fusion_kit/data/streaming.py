"""Your study from disk: a manifest read one subject at a time through MONAI transforms, cached on disk.

The same ``participants.csv`` as ``load_manifest``, the same checks and messages, the same batch dict; only
the images stay on disk. Each image goes through MONAI (``LoadImage``, ``EnsureChannelFirst``, optionally
``Spacing``, ``Resize`` and ``ScaleIntensity``) once, into a cache under ``cache_dir()/streamed`` of one
record file per modality (keyed by the settings and every file's path, size and time, so a changed file or
setting is read again), from which each subject is read by offset: about 15 times faster per subject than
one pickled file per subject (MONAI's ``PersistentDataset``), which matters for small 2D images. Splits, folds, ``fit``, ``evaluate`` and ``predict`` take it as they take an
in-memory dataset::

    >>> data = stream_manifest("study/participants.csv", image_size=64)
    >>> train, val, test = split_dataset(data, seed=0)
    >>> fit(model, augment(train), val, workers=2)      # random transforms, training set only

Imports from fusion_kit: core, data.dataset, data.io, data.transforms.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core import cache_dir, look_up_option
from .dataset import ModalitySpec, encode_labels, summary_table
from .io import ManifestRows, parse_manifest

__all__ = ["StreamingDataset", "stream_manifest", "augment", "CACHE_MODES"]

CACHE_MODES = ("disk", "memory", "none")


class ImageRecords:
    """Every subject's preprocessed images: one file per modality of fixed-size float32 records, read by offset.

    ``os.pread`` reads one record without keeping the file in the process (the operating system's page cache
    serves later epochs), so memory stays flat however many subjects there are; ``in_memory`` loads the files
    whole instead. Opened files are not carried into worker processes: each opens its own.
    """

    def __init__(self, folder: Path, shapes: Mapping[str, tuple[int, ...]], in_memory: bool = False) -> None:
        self.folder, self.shapes = Path(folder), {c: tuple(s) for c, s in shapes.items()}
        self.sizes = {c: 4 * int(np.prod(s)) for c, s in self.shapes.items()}
        self.arrays = {c: torch.from_numpy(np.fromfile(self.folder / f"{c}.f32", dtype=np.float32)).view(-1, *s)
                       for c, s in self.shapes.items()} if in_memory else None
        self.files: dict[str, int] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "files": {}}

    def __del__(self) -> None:
        for descriptor in getattr(self, "files", {}).values():
            os.close(descriptor)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        if self.arrays is not None:
            return {c: a[i] for c, a in self.arrays.items()}
        out = {}
        for c, shape in self.shapes.items():
            if c not in self.files:
                self.files[c] = os.open(self.folder / f"{c}.f32", os.O_RDONLY)
            raw = os.pread(self.files[c], self.sizes[c], i * self.sizes[c])
            out[c] = torch.frombuffer(bytearray(raw), dtype=torch.float32).view(shape)
        return out


class ReadEachTime:
    """No cache: every subject's images read from the original files (through the MONAI pipeline) when asked."""

    def __init__(self, items: list[dict], reader) -> None:
        self.items, self.reader = items, reader

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self.reader(self.items[i])


def _items(rows: ManifestRows) -> list[dict[str, str]]:
    return [{"where": rows.where(i), **{c: str(rows.paths[c][i] or "") for c in rows.image_columns}}
            for i in range(len(rows.ids))]


def _cache_key(rows: ManifestRows, settings: Mapping) -> str:
    """The settings and every image file's path, size and modification time: any change gives a new cache."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in rows.files():
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def _write_records(items: list[dict], reader, folder: Path) -> None:
    """Read every subject once through the pipeline into the record files, then move them in place whole."""
    from tqdm.auto import tqdm

    from ..core import quick_mode

    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    partial.mkdir(parents=True, exist_ok=True)
    try:
        files = {c: open(partial / f"{c}.f32", "wb") for c in reader.shapes}
        bar = tqdm(items, desc="caching images", unit="subject", disable=quick_mode() or len(items) < 50, leave=False)
        for item in bar:
            for c, image in reader(item).items():
                files[c].write(image.numpy().astype(np.float32, copy=False).tobytes())
        for f in files.values():
            f.close()
        try:
            partial.rename(folder)
        except OSError:  # another process finished the same cache first
            if not folder.is_dir():
                raise
    finally:
        if partial.exists():
            for f in partial.iterdir():
                f.unlink()
            partial.rmdir()


def _wait_for(folder: Path, timeout: float = 3600.0) -> None:
    """Under torchrun, the other processes of a machine wait while its first process writes the cache."""
    import time

    start = time.monotonic()
    while not folder.is_dir():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"waited {timeout:.0f} s for process 0 of this machine to cache the images in {folder}")
        time.sleep(0.5)


def _check_headers(rows: ManifestRows, reader) -> None:
    """Without a cache nothing reads every image before training; read every NIfTI header instead (cheap), so an
    unreadable header or, without ``image_size``, a volume of another shape fails now, naming its line."""
    import nibabel as nib

    for c in rows.image_columns:
        first = None
        for row, path in enumerate(rows.paths[c]):
            if path is None or not path.name.endswith((".nii", ".nii.gz")):
                continue
            try:
                shape = tuple(nib.load(path).shape)
            except Exception as err:
                raise ValueError(f"{rows.where(row)}: could not read the header of {c} image {path.name} ({err}); "
                                 "is it a complete NIfTI file?") from None
            while len(shape) > 2 and shape[-1] == 1:
                shape = shape[:-1]
            if first is None:
                first = (shape, row)
            elif shape != first[0] and reader.image_size is None and reader.spacing is None:
                raise ValueError(f"{rows.where(row)}: {c} image has shape {shape} but {rows.where(first[1])} has "
                                 f"{first[0]}; pass image_size= to resize them all")


def _image_store(rows: ManifestRows, reader, cache: str, settings: Mapping):
    """Each subject's images: from record files written once (on disk, or loaded into memory), or read each time."""
    items = _items(rows)
    if cache == "none":
        _check_headers(rows, reader)
        return ReadEachTime(items, reader)
    folder = cache_dir() / "streamed" / _cache_key(rows, settings)
    if not folder.is_dir():
        if int(os.environ.get("LOCAL_RANK", "0")) == 0:
            _write_records(items, reader, folder)
        else:
            _wait_for(folder)
    return ImageRecords(folder, reader.shapes, in_memory=cache == "memory")


class StreamingDataset(torch.utils.data.Dataset):
    """Subjects whose images are read from disk when asked for (tables, labels and mask stay in memory).

    Gives the same sample and batch dicts as ``MultimodalDataset``, and the attributes the splits, models
    and ``fit`` read (``specs``, ``labels``, ``mask``, ``class_names``, ``subject_ids``, ``meta``); build it
    with ``stream_manifest``.
    """

    def __init__(self, images, index: np.ndarray, specs: dict[str, ModalitySpec], tables: dict[str, Tensor],
                 labels: Tensor, mask: Tensor, class_names: tuple[str, ...], subject_ids: tuple[str, ...],
                 meta: dict, augmentation=None) -> None:
        self.images, self.index = images, np.asarray(index, dtype=np.int64)
        self.specs, self.tables = specs, tables
        self.labels, self.mask, self.class_names = labels, mask, class_names
        self.subject_ids, self.meta, self.augmentation = subject_ids, meta, augmentation

    # -------------------------------------------------------------- what a dataset says about itself
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.specs)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={s.shape}" for k, s in self.specs.items())
        extra = ", augmented" if self.augmentation is not None else ""
        return f"StreamingDataset({len(self)} subjects, {self.num_classes} classes; {shapes}{extra})"

    def class_counts(self) -> dict[str, int]:
        return dict(zip(self.class_names, torch.bincount(self.labels, minlength=self.num_classes).tolist()))

    def summary(self) -> str:
        return summary_table(self, " (images streamed from disk)")

    def rows(self, name: str) -> Tensor:
        """The table ``name`` of the subjects that have it (F columns): what table statistics are fitted on."""
        return self.tables[name][self.mask[:, self.modalities.index(name)]]

    # -------------------------------------------------------------- samples and batches
    def __getitem__(self, i: int) -> dict[str, Tensor]:
        images = self.images[int(self.index[i])]
        if self.augmentation is not None:
            images = {k: _plain(v) for k, v in self.augmentation(dict(images)).items()}
        sample = {}
        for j, (m, spec) in enumerate(self.specs.items()):
            value = images[m] if spec.kind == "image" else self.tables[m][i]
            sample[m] = value if bool(self.mask[i, j]) else torch.zeros_like(value)  # absent stays zeros
        sample["mask"] = self.mask[i]
        sample["label"] = self.labels[i]
        return sample

    def batch(self, indices=None) -> dict[str, Tensor]:
        """The batch dict of the given subjects (reads their images: for a few subjects, not for training)."""
        positions = np.arange(len(self))[indices if indices is not None else slice(None)]
        samples = [self[int(i)] for i in np.atleast_1d(positions)]
        return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}

    # -------------------------------------------------------------- derived sets
    def _copy(self, **changes) -> "StreamingDataset":
        state = dict(images=self.images, index=self.index, specs=self.specs, tables=self.tables, labels=self.labels,
                     mask=self.mask, class_names=self.class_names, subject_ids=self.subject_ids, meta=self.meta,
                     augmentation=self.augmentation)
        state.update(changes)
        return StreamingDataset(**state)

    def subset(self, indices) -> "StreamingDataset":
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        meta = {k: (v[idx] if isinstance(v, np.ndarray) and v.ndim >= 1 and len(v) == n else v) for k, v in self.meta.items()}
        return self._copy(index=self.index[idx], tables={m: t[idx] for m, t in self.tables.items()},
                          labels=self.labels[idx], mask=self.mask[idx],
                          subject_ids=tuple(self.subject_ids[i] for i in idx.tolist()), meta=meta)

    def select(self, modalities: Sequence[str]) -> "StreamingDataset":
        modalities = [modalities] if isinstance(modalities, str) else list(modalities)
        for name in modalities:
            if name not in self.specs:
                raise KeyError(f"no modality {name!r}; this dataset has {', '.join(self.modalities)}")
        if not modalities:
            raise ValueError(f"select at least one modality; this dataset has {', '.join(self.modalities)}")
        if modalities == list(self.modalities):
            return self
        cols = [self.modalities.index(m) for m in modalities]
        return self._copy(specs={m: self.specs[m] for m in modalities}, mask=self.mask[:, cols],
                          tables={m: t for m, t in self.tables.items() if m in modalities})

    def with_mask(self, mask) -> "StreamingDataset":
        """The same subjects with a new presence mask (newly absent content is zeroed when read)."""
        mask = torch.as_tensor(np.asarray(mask), dtype=torch.bool)
        if tuple(mask.shape) != tuple(self.mask.shape):
            raise ValueError(f"mask must have shape {tuple(self.mask.shape)}, got {tuple(mask.shape)}")
        return self._copy(mask=mask)

    def augmented(self, transform) -> "StreamingDataset":
        """The same subjects, their images passed through ``transform`` (a MONAI dict transform) when read."""
        return self._copy(augmentation=transform)


def _plain(value) -> Tensor:
    """A MONAI MetaTensor (what random transforms return) as a plain float tensor, so batches collate alike."""
    value = value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(np.asarray(value))
    return value.float()


def _first_shapes(rows: ManifestRows, reader) -> dict[str, tuple[int, ...]]:
    """Each image column's shape after the pipeline, from its first present image."""
    shapes = {}
    for c in rows.image_columns:
        row = next(i for i, p in enumerate(rows.paths[c]) if p is not None)
        shapes[c] = tuple(reader.read(c, str(rows.paths[c][row]), rows.where(row)).shape)
    return shapes


def stream_manifest(
    csv_path: str | os.PathLike,
    *,
    image_columns: Sequence[str] = ("mri", "pet"),
    tabular_columns: Sequence[str] | None = None,
    label_column: str = "label",
    class_names: Sequence[str] | None = None,
    id_column: str = "subject_id",
    tabular_name: str = "clinical",
    image_size: int | None = None,
    spacing: float | None = None,
    scale_intensity: bool = False,
    nan_policy: str = "raise",
    na_values: Sequence[str] | None = None,
    allow_rare_classes: bool = False,
    cache: str = "disk",
) -> StreamingDataset:
    """A participants CSV read lazily: the arguments and checks of ``load_manifest``, the images left on disk.

    Args (beyond ``load_manifest``'s):
        spacing: resample each image to isotropic voxels of this many mm (MONAI ``Spacing``, from the
            file's affine) before ``image_size`` resizes it.
        cache: "disk" (default): each subject's images are read once now, through the pipeline, into
            record files under ``cache_dir()/streamed`` (a changed file or setting gives a new cache), then
            read from there one subject at a time; "memory": the same files, loaded whole into RAM; "none":
            read from the original files every time (only the first image of each column is read now,
            and every NIfTI header: a truncated header, or a shape that differs without ``image_size``, fails now).

    Every check that needs no image runs first (columns, ids, labels, table cells, files exist); with a cache,
    every image is then read once, so an unreadable file or a shape mismatch fails here, naming its line and
    subject, not in a training worker. Absent images (empty cells) are zeros with mask False.
    """
    cache = look_up_option(cache, CACHE_MODES, "cache")
    rows = parse_manifest(csv_path, image_columns=image_columns, tabular_columns=tabular_columns,
                          label_column=label_column, class_names=class_names, id_column=id_column,
                          tabular_name=tabular_name, nan_policy=nan_policy, na_values=na_values,
                          allow_rare_classes=allow_rare_classes)
    if not rows.image_columns:
        raise ValueError("no image columns: a table alone fits in memory; read it with load_manifest")
    from .transforms import ReadImages  # MONAI, imported only when a study is streamed

    reader = ReadImages({}, image_size, scale_intensity, spacing)
    reader.shapes = _first_shapes(rows, reader)
    settings = dict(rows.settings, image_size=image_size, spacing=spacing, scale=scale_intensity,
                    shapes={c: list(s) for c, s in reader.shapes.items()})
    store = _image_store(rows, reader, cache, settings)
    specs = {c: ModalitySpec(c, "image", shape) for c, shape in reader.shapes.items()}
    tables = {}
    if rows.table is not None:
        tables[tabular_name] = torch.as_tensor(np.nan_to_num(rows.table), dtype=torch.float32)
        specs[tabular_name] = ModalitySpec(tabular_name, "tabular", (len(rows.columns),), tuple(rows.columns))
    labels, names = encode_labels(rows.labels, rows.class_names)
    meta = dict(rows.meta(), cache=cache, settings=json.dumps(settings, sort_keys=True, default=str))
    return StreamingDataset(store, np.arange(len(rows.ids)), specs, tables, labels,
                            torch.as_tensor(rows.mask()), names, tuple(rows.ids), meta)


# ------------------------------------------------------------------ augmentation
def augment(
    dataset: StreamingDataset, *, spatial: bool = True, flip: bool = True, intensity: bool = True, seed: int = 0,
) -> StreamingDataset:
    """The training set with MONAI random transforms applied each time a subject is read.

    spatial: one random affine (rotation up to ~6 degrees, shift up to 2 voxels, scale +-5 %) drawn per
        subject and applied to *all* its images alike, so co-registered images stay aligned for input fusion.
    flip: a left-right flip (image axis 0, left-right in RAS-stored images) with probability 1/2, again the
        same for all images of the subject; turn it off where the sides differ (lateralised disease).
    intensity: per modality, its own random intensity scaling (+-10 %) and Gaussian noise (sd 0.02 of the
        image's scale).
    Absent images stay zeros. Use it on the training set only: validation and test read the images as they are.
    """
    from monai.transforms import Compose, RandAffined, RandFlipd, RandGaussianNoised, RandScaleIntensityd

    if not isinstance(dataset, StreamingDataset):
        raise TypeError(f"augment takes a StreamingDataset (stream_manifest), got {type(dataset).__name__}; "
                        "random transforms run per subject as images are read, which in-memory data skips")
    images = [m for m, s in dataset.specs.items() if s.kind == "image"]
    dims = dataset.specs[images[0]].spatial_dims
    if any(dataset.specs[m].spatial_dims != dims for m in images):
        raise ValueError(f"augment moves a subject's images together, so they must all be {dims}D; "
                         f"{', '.join(f'{m} is {dataset.specs[m].spatial_dims}D' for m in images)}")
    steps = []
    if spatial:
        rotate = (0.1,) if dims == 2 else (0.1, 0.1, 0.1)
        steps.append(RandAffined(images, prob=0.8, rotate_range=rotate, translate_range=(2,) * dims,
                                 scale_range=(0.05,) * dims, mode="bilinear", padding_mode="zeros"))
    if flip:
        steps.append(RandFlipd(images, prob=0.5, spatial_axis=0))
    if intensity:
        for m in images:  # each modality its own draw: scanners differ in gain and noise independently
            steps += [RandScaleIntensityd([m], factors=0.1, prob=0.5), RandGaussianNoised([m], prob=0.5, std=0.02)]
    transform = Compose(steps)
    transform.set_random_state(seed=seed)
    return dataset.augmented(transform)
