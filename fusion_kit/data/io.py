"""Your data on disk: NIfTI + CSV export, and the manifest loader for your own study.

A *manifest* is a CSV with one row per subject::

    subject_id,label,mri,pet,age,sex,education,mmse,apoe4
    sub-0001,CN,images/sub-0001_mri.nii.gz,images/sub-0001_pet.nii.gz,71.3,1,16,29,0
    sub-0002,AD,images/sub-0002_mri.nii.gz,,78.0,0,12,22,1      <- no PET for this subject

Image paths are relative to the CSV's folder (or absolute); an empty path means the modality is
absent for that subject (mask False). ``load_manifest`` reads it through MONAI transforms into the
same batch contract as ``make_brain_cohort``, checking everything first and naming the line and
subject of each problem, so bad input fails before any training.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core import cache_dir, look_up_option
from .dataset import MultimodalDataset, encode_labels
from .store import load_dataset, save_dataset

__all__ = ["export_cohort", "load_manifest"]

NAN_POLICIES = ("raise", "absent")
COURSE_CLASSES = ("CN", "MCI", "AD")  # labels among these keep this order (the course's), others sort


# ------------------------------------------------------------------------------- export
def _nifti_affine(dataset: MultimodalDataset) -> np.ndarray:
    """The dataset's voxel-to-mm affine when it has one (the cohort keeps ``meta['affine']``), else 1 mm voxels."""
    affine = np.asarray(dataset.meta.get("affine", np.eye(4)), dtype=np.float64)
    return affine if affine.shape == (4, 4) else np.eye(4)


def _tabular_table(dataset: MultimodalDataset, name: str) -> tuple[list[str], np.ndarray]:
    """Column names and values for a tabular modality: raw values from ``meta[name + '_raw']`` when present."""
    spec = dataset.specs[name]
    columns = list(spec.feature_names or [f"{name}_{j}" for j in range(spec.channels)])
    raw = dataset.meta.get(f"{name}_raw")
    values = np.asarray(raw, dtype=np.float64) if raw is not None else dataset.tensors[name].cpu().double().numpy()
    if values.shape != (len(dataset), len(columns)):
        values = dataset.tensors[name].cpu().double().numpy()
    values = values.copy()
    values[~dataset.mask[:, dataset.modalities.index(name)].cpu().numpy()] = np.nan  # absent: empty cells
    return columns, values


EXPORT_RECORD = ".fusion_kit_export.json"  # what an export wrote, so a later export removes only that
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_subject_ids(dataset: MultimodalDataset) -> None:
    """Subject ids become file names: refuse any that could leave the folder or be mistaken for another file."""
    for sid in dataset.subject_ids:
        if not _SAFE_ID.match(sid) or ".." in sid:
            raise ValueError(
                f"subject id {sid!r} is not a safe file name (letters, digits, '.', '_' and '-', not starting with "
                "'.' and without '..'); rename the subject before exporting"
            )


def _remove_old_export(folder: Path) -> None:
    """Delete what a previous export recorded writing (and its participants.csv), nothing else."""
    record = folder / EXPORT_RECORD
    written = json.loads(record.read_text()) if record.is_file() else []
    for rel in written:
        target = (folder / rel).resolve()
        if target.parent == (folder / "images").resolve() and target.is_file():
            target.unlink()
    (folder / "participants.csv").unlink(missing_ok=True)
    record.unlink(missing_ok=True)


def export_cohort(dataset: MultimodalDataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``dataset`` as NIfTI images plus ``participants.csv``; returns the CSV path.

    Each present image is ``images/<subject>_<modality>.nii.gz`` (float32, single channel, with the
    dataset's voxel-to-mm affine); subject ids must be safe file names. ``overwrite=True`` first removes
    the files an earlier export recorded writing (in ``.fusion_kit_export.json``), and nothing else. The CSV has ``subject_id``, ``label`` (class name), one column of
    relative image paths per image modality (empty when absent), then the tabular features (raw
    units when ``meta['clinical_raw']`` exists; empty cells when absent). ``load_manifest`` reads it back.
    """
    import nibabel as nib
    import pandas as pd

    folder = Path(path)
    csv_path = folder / "participants.csv"
    if csv_path.exists() and not overwrite:
        raise FileExistsError(f"{csv_path} exists; pass overwrite=True to replace that export")
    _check_subject_ids(dataset)
    images = [m for m, s in dataset.specs.items() if s.kind == "image"]
    for m in images:
        if dataset.specs[m].channels != 1:
            raise ValueError(f"export_cohort writes single-channel images; {m!r} has {dataset.specs[m].channels} channels")
    folder.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _remove_old_export(folder)
    (folder / "images").mkdir(exist_ok=True)
    written: list[str] = []
    table: dict[str, list] = {"subject_id": list(dataset.subject_ids)}
    table["label"] = [dataset.class_names[k] for k in dataset.labels.cpu().tolist()]
    for m in images:
        j = dataset.modalities.index(m)
        affine = _nifti_affine(dataset)
        paths = []
        for i, sid in enumerate(dataset.subject_ids):
            if not bool(dataset.mask[i, j]):
                paths.append("")
                continue
            rel = f"images/{sid}_{m}.nii.gz"
            nib.save(nib.Nifti1Image(dataset.tensors[m][i, 0].cpu().numpy().astype(np.float32), affine), folder / rel)
            paths.append(rel)
            written.append(rel)
        table[m] = paths
    for m, spec in dataset.specs.items():
        if spec.kind == "tabular":
            columns, values = _tabular_table(dataset, m)
            table.update({c: values[:, k] for k, c in enumerate(columns)})
    pd.DataFrame(table).to_csv(csv_path, index=False, float_format="%.6g")
    (folder / EXPORT_RECORD).write_text(json.dumps(written, indent=0) + "\n")
    return csv_path


# ------------------------------------------------------------------------------- manifest loading
def _where(frame, row: int, id_column: str) -> str:
    """'line 5 (subject sub-0004)' for a data row (line 1 is the header)."""
    sid = frame[id_column].iloc[row] if id_column in frame else None
    return f"line {row + 2} (subject {sid})" if isinstance(sid, str) and sid else f"line {row + 2}"


def _read_table(csv_path: Path, id_column: str, label_column: str, image_columns: Sequence[str], na_values=None):
    import pandas as pd

    if not csv_path.is_file():
        raise FileNotFoundError(f"manifest {csv_path} not found; give the path to your participants CSV")
    text_columns = {c: str for c in (id_column, label_column, *image_columns)}
    try:
        frame = pd.read_csv(csv_path, dtype=text_columns, skipinitialspace=True, na_values=na_values)
    except Exception as err:
        raise ValueError(f"could not read {csv_path} as a CSV file: {err}") from None
    needed = [id_column, label_column, *image_columns]
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise ValueError(
            f"{csv_path.name} has no column {absent[0]!r} (it has {', '.join(map(str, frame.columns))}); "
            "name yours with id_column=, label_column= or image_columns="
        )
    if frame.empty:
        raise ValueError(f"{csv_path.name} has a header but no subjects")
    return frame


def _check_ids(frame, id_column: str) -> list[str]:
    ids = frame[id_column]
    for row in np.flatnonzero(ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()):
        raise ValueError(f"line {row + 2} has an empty {id_column!r}; every subject needs an id")
    ids = ids.astype(str).str.strip()
    duplicated = ids[ids.duplicated(keep=False)]
    if len(duplicated):
        first = duplicated.iloc[0]
        lines = [int(r) + 2 for r in np.flatnonzero((ids == first).to_numpy())]
        raise ValueError(f"subject id {first!r} appears on lines {lines}; subject ids must be unique")
    return ids.tolist()


def _likely_class(label: str, others: Sequence[str]) -> str | None:
    """The class a mistyped label most likely meant: a close spelling, else the one class with its initial."""
    lower = {o.lower(): o for o in others}
    close = difflib.get_close_matches(label.lower(), list(lower), n=1, cutoff=0.6)
    if close:
        return lower[close[0]]
    same_initial = [o for o in others if o[:1].lower() == label[:1].lower()]
    return same_initial[0] if len(same_initial) == 1 else None


def _check_rare_labels(frame, labels, id_column: str, label_column: str) -> None:
    """A label carried by one subject only is far more often a typo than a class: refuse it, naming the row."""
    counts = labels.value_counts()
    if len(counts) < 2:
        return
    for value, count in counts.items():
        if count == 1:
            row = int(np.flatnonzero((labels == value).to_numpy())[0])
            others = [str(v) for v in counts.index if v != value and counts[v] > 1]
            guess = _likely_class(str(value), others)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise ValueError(
                f"{_where(frame, row, id_column)} has {label_column} {value!r}{hint}, the only subject of that class; "
                "fix the label, or pass class_names= (or allow_rare_classes=True) to keep a class of one subject"
            )


def _check_labels(
    frame, label_column: str, id_column: str, class_names: Sequence[str] | None, allow_rare: bool
) -> tuple[np.ndarray, tuple[str, ...]]:
    labels = frame[label_column]
    for row in np.flatnonzero(labels.isna().to_numpy()):
        raise ValueError(f"{_where(frame, row, id_column)} has no {label_column!r}; label it or drop the row")
    labels = labels.astype(str).str.strip()
    if class_names is None:
        if not allow_rare:
            _check_rare_labels(frame, labels, id_column, label_column)
        found = set(labels)
        names = tuple(c for c in COURSE_CLASSES if c in found) if found <= set(COURSE_CLASSES) else None
    else:
        names = tuple(str(c) for c in class_names)
        for row, value in enumerate(labels):
            if value not in names:
                raise ValueError(
                    f"{_where(frame, row, id_column)} has label {value!r}, which is not one of {', '.join(names)}; "
                    "fix the label or pass class_names="
                )
    codes, names = encode_labels(labels.tolist(), names)
    return codes.numpy(), names


def _numeric_column(frame, c: str, id_column: str):
    """The column as numbers, or None for a text column; a lone non-number among numbers is an error."""
    import pandas as pd

    numbers = pd.to_numeric(frame[c], errors="coerce")
    bad = numbers.isna() & frame[c].notna()
    if not bad.any():
        return numbers
    if numbers.notna().sum() <= bad.sum():
        return None  # mostly text: not a feature column
    row = int(np.flatnonzero(bad.to_numpy())[0])
    value = frame[c].iloc[row]
    raise ValueError(
        f"{_where(frame, row, id_column)}: column {c!r} holds {value!r}, not a number, while its other cells are numbers; "
        f"fix the cell, leave the column out (tabular_columns=[...]), or read it as missing with na_values=[{value!r}] "
        "(then nan_policy='absent' marks that subject's table absent)"
    )


def _tabular(frame, columns: Sequence[str] | None, reserved: Sequence[str], id_column: str, nan_policy: str):
    """The numeric table (N, F), its column names, which subjects have it, and skipped (text) columns."""
    skipped: list[str] = []
    if columns is None:
        numeric = {}
        for c in (c for c in frame.columns if c not in reserved):
            values = _numeric_column(frame, c, id_column)
            if values is None:
                skipped.append(str(c))
            else:
                numeric[c] = values
        columns = list(numeric)
    else:
        columns = list(columns)
        for c in columns:
            if c not in frame.columns:
                raise ValueError(f"no column {c!r} for tabular_columns; the CSV has {', '.join(map(str, frame.columns))}")
        numeric = {}
        for c in columns:
            values = _numeric_column(frame, c, id_column)
            if values is None:
                row = int(np.flatnonzero(frame[c].notna().to_numpy())[0])
                raise ValueError(f"{_where(frame, row, id_column)}: column {c!r} holds {frame[c].iloc[row]!r}, not a number")
            numeric[c] = values
    if not columns:
        return None, [], None, skipped
    values = np.stack([numeric[c].to_numpy(dtype=float) for c in columns], 1)
    holes = np.isnan(values)
    if holes.any() and nan_policy == "raise":
        row, col = (int(v) for v in np.argwhere(holes)[0])
        raise ValueError(
            f"{_where(frame, row, id_column)} has no value in column {columns[col]!r}: impute it (e.g. with the "
            "training median) or drop the row, or pass nan_policy='absent' to mark that subject's table absent"
        )
    return values, columns, ~holes.any(1), skipped


def _image_paths(frame, column: str, base: Path, id_column: str) -> list[Path | None]:
    """Resolved path per subject (None where the cell is empty); every named file must exist."""
    paths: list[Path | None] = []
    for row, cell in enumerate(frame[column]):
        if not isinstance(cell, str) or not cell.strip():
            paths.append(None)
            continue
        path = Path(cell.strip()).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise FileNotFoundError(f"{_where(frame, row, id_column)}: {column} image {cell.strip()!r} not found (looked for {path})")
        paths.append(path)
    if all(p is None for p in paths):
        raise ValueError(f"no subject has a {column!r} image; drop {column!r} from image_columns")
    return paths


def read_image(path: Path, image_size: int | None, scale_intensity: bool, spacing: float | None = None) -> Tensor:
    """MONAI: LoadImage -> EnsureChannelFirst [-> Spacing] [-> Resize] [-> ScaleIntensity], as a float32 tensor.

    A trailing singleton axis is dropped (after resampling), so a 2D slice stored as (x, y, 1) is a 2D image.
    ``spacing`` resamples to isotropic voxels of that many mm, using the file's affine.
    """
    from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Resize, ScaleIntensity, Spacing

    steps = [LoadImage(image_only=True, dtype=np.float32), EnsureChannelFirst()]
    steps += [Spacing(pixdim=float(spacing), mode="bilinear")] if spacing is not None else []
    image = torch.as_tensor(np.asarray(Compose(steps)(str(path))), dtype=torch.float32)
    while image.ndim > 3 and image.shape[-1] == 1:
        image = image[..., 0]
    steps = [Resize(spatial_size=(image_size,) * (image.ndim - 1))] if image_size is not None else []
    steps += [ScaleIntensity()] if scale_intensity else []
    return torch.as_tensor(np.asarray(Compose(steps)(image)), dtype=torch.float32) if steps else image


def read_error(rows_where: str, column: str, path: Path, err: BaseException) -> ValueError:
    """The one-line error for an image that cannot be read, naming the line, subject, file and reason."""
    return ValueError(f"{rows_where}: could not read {column} image {path.name} ({_root_cause(err)}); "
                      "is it a complete, valid NIfTI or image file?")


def _root_cause(err: BaseException) -> str:
    """The innermost reason of an error chain ("compressed file ended before ..."), not a wrapper's."""
    seen = set()
    while id(err) not in seen and (err.__cause__ or err.__context__) is not None:
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else 'unreadable'}"


def _shape_hint(shape: tuple, first: tuple, image_size: int | None) -> str:
    if len(shape) != len(first):
        return (f"one is {len(first) - 1}D and the other {len(shape) - 1}D; give images of one dimensionality "
                "(a slice stored as (x, y, 1) is read as 2D)")
    if shape[0] != first[0]:
        return "their channel counts differ; give every image of a modality the same channels"
    return "pass image_size= to resize them all" if image_size is None else "resize them to one shape first"


def _load_images(frame, column: str, paths: list[Path | None], id_column: str, image_size: int | None, scale: bool) -> Tensor:
    """Stack one image column into (N, C, *spatial); absent subjects get zeros; shapes must agree."""
    images: list[Tensor | None] = []
    first_shape, first_row = None, None
    for row, path in enumerate(paths):
        if path is None:
            images.append(None)
            continue
        try:
            image = read_image(path, image_size, scale)
        except Exception as err:
            raise read_error(_where(frame, row, id_column), column, path, err) from None
        if first_shape is None:
            first_shape, first_row = tuple(image.shape), row
        elif tuple(image.shape) != first_shape:
            raise ValueError(
                f"{_where(frame, row, id_column)}: {column} image has shape {tuple(image.shape)} but "
                f"{_where(frame, first_row, id_column)} has {first_shape}; "
                + _shape_hint(tuple(image.shape), first_shape, image_size)
            )
        images.append(image)
    zeros = torch.zeros(first_shape)
    return torch.stack([zeros if im is None else im for im in images])


def _manifest_cache_path(csv_path: Path, settings: Mapping, image_paths: Sequence[Path]) -> Path:
    """Key: the CSV bytes, the loader settings and each image's size and modification time."""
    digest = hashlib.sha256(csv_path.read_bytes())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for p in image_paths:
        stat = p.stat()
        digest.update(f"{p}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return cache_dir() / f"manifest_{digest.hexdigest()[:20]}.pt"


@dataclass
class ManifestRows:
    """A manifest, checked row by row but no image read: what both loaders (in memory, streamed) start from."""

    csv_path: Path
    frame: object  # the pandas DataFrame as read
    id_column: str
    ids: list[str]
    labels: np.ndarray  # class index per subject
    class_names: tuple[str, ...]
    image_columns: list[str]
    paths: dict[str, list[Path | None]]  # per image column: the file of each subject, None where absent
    tabular_name: str
    table: np.ndarray | None  # (N, F) raw values, NaN where empty
    columns: list[str]
    table_present: np.ndarray | None
    skipped: list[str]
    settings: dict

    def where(self, row: int) -> str:
        return _where(self.frame, row, self.id_column)

    def files(self) -> list[Path]:
        return [p for ps in self.paths.values() for p in ps if p]

    def mask(self) -> np.ndarray:
        """(N, M) presence in the loaders' modality order: the image columns, then the table."""
        masks = [[p is not None for p in self.paths[c]] for c in self.image_columns]
        if self.table is not None:
            masks.append(list(self.table_present))
        return np.array(masks, dtype=bool).T

    def meta(self) -> dict:
        meta: dict = {"source": str(self.csv_path), "skipped_columns": self.skipped}
        if self.table is not None:
            meta[f"{self.tabular_name}_raw"] = self.table
        return meta


def parse_manifest(
    csv_path: str | os.PathLike, *, image_columns, tabular_columns, label_column: str, class_names, id_column: str,
    tabular_name: str, nan_policy: str, na_values, allow_rare_classes: bool,
) -> ManifestRows:
    """Every check of ``load_manifest`` that needs no image read: columns, ids, labels, table cells, files exist."""
    csv_path = Path(csv_path).expanduser().resolve()
    nan_policy = look_up_option(nan_policy, NAN_POLICIES, "nan_policy")
    image_columns = [image_columns] if isinstance(image_columns, str) else list(image_columns)
    frame = _read_table(csv_path, id_column, label_column, image_columns, na_values)
    ids = _check_ids(frame, id_column)
    labels, names = _check_labels(frame, label_column, id_column, class_names, allow_rare_classes)
    reserved = [id_column, label_column, *image_columns]
    table, columns, table_present, skipped = _tabular(frame, tabular_columns, reserved, id_column, nan_policy)
    if not image_columns and table is None:
        raise ValueError(f"{csv_path.name} gives no image columns and no numeric feature columns: nothing to learn from")
    paths = {c: _image_paths(frame, c, csv_path.parent, id_column) for c in image_columns}
    settings = dict(image_columns=image_columns, tabular_columns=columns, label_column=label_column, class_names=names,
                    id_column=id_column, tabular_name=tabular_name, nan=nan_policy, na_values=na_values)
    return ManifestRows(csv_path, frame, id_column, ids, labels, names, image_columns, paths, tabular_name, table,
                        columns, table_present, skipped, settings)


def load_manifest(
    csv_path: str | os.PathLike,
    *,
    image_columns: Sequence[str] = ("mri", "pet"),
    tabular_columns: Sequence[str] | None = None,
    label_column: str = "label",
    class_names: Sequence[str] | None = None,
    id_column: str = "subject_id",
    tabular_name: str = "clinical",
    image_size: int | None = None,
    scale_intensity: bool = False,
    nan_policy: str = "raise",
    na_values: Sequence[str] | None = None,
    allow_rare_classes: bool = False,
    cache: bool = False,
) -> MultimodalDataset:
    """Read a participants CSV and its images into a MultimodalDataset (the same contract as the cohort).

    Args:
        csv_path: the manifest; image paths in it are relative to its folder (or absolute).
        image_columns: columns of image paths, one modality each, in this order. Images are read with
            MONAI ``LoadImage`` + ``EnsureChannelFirst`` as stored (no reorientation); a trailing
            singleton axis is dropped, so a slice saved as (x, y, 1) is a 2D image.
        tabular_columns: feature columns of the table; None takes every remaining numeric column.
            Columns of text are skipped and listed in ``meta['skipped_columns']`` (and by ``summary()``);
            a lone non-number in an otherwise numeric column is an error naming the cell. Values are
            kept as they are: models built with ``build_model`` scale them with the training set's
            statistics (``fusion_kit.data.standardize`` does it explicitly).
        label_column / class_names: class name per row. Without ``class_names`` the classes are the
            course's ("CN", "MCI", "AD") in that order (those present) when the labels are among them,
            else the distinct labels, numerically when they are integers ('2' before '10'), else
            alphabetically; a label only one subject has is refused as a likely typo.
        id_column: unique subject ids.
        tabular_name: the name of the tabular modality.
        image_size: resize every image to this side (MONAI ``Resize``); otherwise shapes must agree.
        scale_intensity: rescale each image to [0, 1] (MONAI ``ScaleIntensity``).
        nan_policy: an empty cell in a feature column either raises an error ("raise", the default:
            impute or drop first) or marks that subject's whole table absent ("absent": mask False, zeros).
        na_values: extra cell values to read as empty, such as ``["unknown", "n/a"]``.
        allow_rare_classes: keep a class that only one subject has (without ``class_names``).
        cache: keep the loaded dataset in ``cache_dir()``, keyed by the CSV, the settings and the image
            files' sizes and times; nothing is written unless the whole load succeeded.

    Raises:
        ValueError / FileNotFoundError naming the line and subject: a missing column or file, an
        unreadable image, duplicate ids, an unknown label, a non-numeric or empty feature value,
        images of different shapes. All checks except reading the images run before any image is read.
    """
    rows = parse_manifest(csv_path, image_columns=image_columns, tabular_columns=tabular_columns,
                          label_column=label_column, class_names=class_names, id_column=id_column,
                          tabular_name=tabular_name, nan_policy=nan_policy, na_values=na_values,
                          allow_rare_classes=allow_rare_classes)
    frame, paths, image_columns = rows.frame, rows.paths, rows.image_columns
    settings = dict(rows.settings, image_size=image_size, scale=scale_intensity)
    cache_path = _manifest_cache_path(rows.csv_path, settings, rows.files()) if cache else None
    if cache_path is not None and cache_path.exists():
        return load_dataset(cache_path)
    data = {c: _load_images(frame, c, paths[c], id_column, image_size, scale_intensity) for c in image_columns}
    if rows.table is not None:
        data[tabular_name] = torch.as_tensor(np.nan_to_num(rows.table), dtype=torch.float32)
    dataset = MultimodalDataset(
        data,
        rows.labels,
        mask=rows.mask(),
        class_names=rows.class_names,
        feature_names={tabular_name: rows.columns} if rows.table is not None else None,
        subject_ids=rows.ids,
        meta=rows.meta(),
    )
    if cache_path is not None:
        save_dataset(dataset, cache_path)
    return dataset
