"""Figures the chapters show. Every function returns a matplotlib ``Figure`` (never calls ``show``).

Figures are built with ``matplotlib.figure.Figure`` directly, so they work with any backend
(including headless Agg in tests and nbval) and never pile up in pyplot's state.
"""
from __future__ import annotations

import textwrap

from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch
from torch import nn

__all__ = [
    "FAMILY_COLORS",
    "draw_architecture",
    "draw_taxonomy",
    "plot_clinical",
    "plot_comparison",
    "plot_confusions",
    "plot_history",
    "plot_modality_weights",
    "plot_pet_overlay",
    "plot_result",
    "plot_samples",
    "plot_sweep",
]

# ----------------------------------------------------------------------------- architecture diagrams
_COLORS = {
    "image": "#cfe2f3",
    "tabular": "#d9ead3",
    "encoder": "#eeeeee",
    "fusion": "#fce5cd",
    "head": "#e6d7f0",
    "output": "#ffffff",
}
_BOX_W, _BOX_H, _FONT = 1.7, 0.62, 8.5


class _Canvas:
    """A data-coordinate drawing area: boxes, circles and arrows that connect box edges."""

    def __init__(self, ax) -> None:
        self.ax = ax

    def box(self, x: float, y: float, text: str, color: str, w: float = _BOX_W, h: float = _BOX_H, bold: bool = False):
        patch = FancyBboxPatch(
            (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=_COLORS.get(color, color), edgecolor="#555555", linewidth=1.0,
        )
        patch.set_zorder(2)
        self.ax.add_patch(patch)
        self.ax.text(x, y, text, ha="center", va="center", fontsize=_FONT, fontweight="bold" if bold else "normal", zorder=3)
        return (x, y, w, h)

    def node(self, x: float, y: float, text: str = "+", r: float = 0.2):
        self.ax.add_patch(Circle((x, y), r, facecolor=_COLORS["fusion"], edgecolor="#b45f06", linewidth=1.4, zorder=2))
        self.ax.text(x, y, text, ha="center", va="center", fontsize=_FONT + 1, fontweight="bold", zorder=3)
        return (x, y, 2 * r, 2 * r)

    @staticmethod
    def _edge(shape, toward: tuple[float, float]) -> tuple[float, float]:
        """The point where the line from a shape's centre toward ``toward`` leaves the shape."""
        x, y, w, h = shape
        dx, dy = toward[0] - x, toward[1] - y
        if dx == 0 and dy == 0:
            return x, y
        sx = (w / 2) / abs(dx) if dx else float("inf")
        sy = (h / 2) / abs(dy) if dy else float("inf")
        s = min(sx, sy)
        return x + dx * s, y + dy * s

    def line(self, points: list[tuple[float, float]], color: str = "#444444") -> None:
        xs, ys = zip(*points)
        self.ax.plot(xs, ys, color=color, lw=1.1, zorder=1)

    def dot(self, x: float, y: float, color: str = "#b45f06") -> None:
        self.ax.plot([x], [y], "o", color=color, markersize=4, zorder=3)

    def label(self, x: float, y: float, text: str, color: str = "#444444", style: str = "normal") -> None:
        self.ax.text(x, y, text, ha="center", va="center", fontsize=_FONT, color=color, style=style,
                     bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none"), zorder=4)

    def arrow(self, a, b, label: str = "", color: str = "#444444") -> None:
        start = self._edge(a, (b[0], b[1]))
        end = self._edge(b, (a[0], a[1]))
        self.ax.annotate(
            "", xy=end, xytext=start,
            arrowprops=dict(arrowstyle="-|>", color=color, lw=1.1, shrinkA=1, shrinkB=1, mutation_scale=10),
            zorder=1,
        )
        if label:
            mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
            self.ax.text(mx, my, label, ha="center", va="center", fontsize=_FONT - 0.5, color=color,
                         bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none"))


def _input_label(model: nn.Module, name: str) -> str:
    spec = model.specs[name]
    if spec.kind == "image":
        return f"{name}\n{spec.spatial_dims}D image {'×'.join(map(str, spec.shape))}"
    return f"{name}\ntable, {spec.channels} features"


def _encoder_label(model: nn.Module, name: str) -> str:
    spec = model.specs[name]
    if spec.kind == "image":
        return f"f_{name}\nCNN, {len(model.channels)} stages"
    return f"f_{name}\nMLP"


def _rows(n: int, top: float, gap: float = 1.0) -> list[float]:
    return [top - i * gap for i in range(n)]


def _layout_columns(c: _Canvas, model, columns: list[float], ys: list[float]) -> dict:
    """Inputs in the first column, one per row; returns their shapes."""
    return {m: c.box(columns[0], y, _input_label(model, m), model.specs[m].kind) for m, y in zip(model.modalities, ys)}


def _draw_head(c: _Canvas, source, x_head: float, x_out: float, y: float, label: str = "head\nsoftmax(W z)") -> None:
    head = c.box(x_head, y, label, "head", w=1.4)
    out = c.box(x_out, y, "ŷ\nclass probabilities", "output", w=1.5)
    for s in source if isinstance(source, list) else [source]:
        c.arrow(s, head)
    c.arrow(head, out)


def _draw_standard(c: _Canvas, model, ys: list[float]) -> None:
    """inputs -> one encoder each -> one fusion box -> head (single-level, attention, unimodal)."""
    cols = [1.0, 3.2, 5.6, 7.8, 9.7]
    inputs = _layout_columns(c, model, cols, ys)
    encoders = {m: c.box(cols[1], y, _encoder_label(model, m), "encoder") for m, y in zip(model.modalities, ys)}
    for m in model.modalities:
        c.arrow(inputs[m], encoders[m])
    mid = sum(ys) / len(ys)
    if model.family == "unimodal":
        _draw_head(c, encoders[model.modalities[0]], cols[3], cols[4], mid)
        return
    height = max(ys) - min(ys) + _BOX_H
    fusion = c.box(cols[2], mid, model.fusion_label, "fusion", w=2.1, h=max(height, 0.9), bold=False)
    for m in model.modalities:
        c.arrow(encoders[m], fusion, label="h" if len(model.modalities) < 4 else "")
    _draw_head(c, fusion, cols[3], cols[4], mid)


def _draw_input(c: _Canvas, model, ys: list[float]) -> None:
    """inputs -> stack -> one shared encoder -> head."""
    cols = [1.0, 3.3, 5.6, 7.8, 9.7]
    inputs = _layout_columns(c, model, cols, ys)
    mid = sum(ys) / len(ys)
    height = max(ys) - min(ys) + _BOX_H
    fusion = c.box(cols[1], mid, model.fusion_label, "fusion", w=1.9, h=max(height, 0.9))
    for m in model.modalities:
        c.arrow(inputs[m], fusion, label="x" if len(model.modalities) < 4 else "")
    encoder = c.box(cols[2], mid, f"f (shared)\nCNN, {len(model.channels)} stages", "encoder")
    c.arrow(fusion, encoder)
    _draw_head(c, encoder, cols[3], cols[4], mid)


def _draw_output(c: _Canvas, model, ys: list[float]) -> None:
    """inputs -> encoder -> head per modality -> combination of decisions."""
    cols = [1.0, 3.2, 5.3, 7.5, 9.6]
    inputs = _layout_columns(c, model, cols, ys)
    mid = sum(ys) / len(ys)
    heads = {}
    for m, y in zip(model.modalities, ys):
        enc = c.box(cols[1], y, _encoder_label(model, m), "encoder")
        heads[m] = c.box(cols[2], y, f"head_{m}\nsoftmax(W_m h_m)", "head", w=1.6)
        c.arrow(inputs[m], enc)
        c.arrow(enc, heads[m])
    height = max(ys) - min(ys) + _BOX_H
    fusion = c.box(cols[3], mid, model.fusion_label, "fusion", w=1.9, h=max(height, 0.9))
    for m in model.modalities:
        c.arrow(heads[m], fusion, label="p_m" if len(model.modalities) < 4 else "")
    out = c.box(cols[4], mid, "ŷ\nclass probabilities", "output", w=1.5)
    c.arrow(fusion, out)


def _stage_row(c: _Canvas, model, name: str, y: float, x0: float, step: float, stages: int, joins: dict | None = None):
    """An image encoder drawn stage by stage; ``joins[s]`` puts a fusion node after stage s. Returns the last shape."""
    joins = joins or {}
    previous = None
    for s in range(stages):
        stage = c.box(x0 + s * step, y, f"f_{name}^({s})\n{model.channels[s]} ch", "encoder", w=1.1)
        if previous is not None:
            c.arrow(previous, stage)
        previous = stage
        if s in joins:
            node = c.node(x0 + s * step + step / 2, y, joins[s])
            c.arrow(previous, node)
            previous = node
    return previous


def _draw_film(c: _Canvas, model, ys: list[float]) -> None:
    """Images encoded stage by stage; the table's encoder sends (γ, β) into a node after the conditioned stage."""
    step, x0 = 1.9, 3.0
    x_node = x0 + model.stage * step + step / 2
    rows = dict(zip(list(model.images) + list(model.tables), ys))
    ends, nodes = [], []
    for m in model.images:
        inp = c.box(1.0, rows[m], _input_label(model, m), "image")
        stages = len(model.channels)
        end = _stage_row(c, model, m, rows[m], x0, step, stages, joins={model.stage: "⊙"})
        c.arrow(inp, (x0, rows[m], 1.1, _BOX_H))
        ends.append(end)
        nodes.append((x_node, rows[m]))
    for m in model.tables:  # each table joins a line that taps every image's node
        inp = c.box(1.0, rows[m], _input_label(model, m), "tabular")
        enc = c.box(x0, rows[m], _encoder_label(model, m), "encoder", w=1.3)
        c.arrow(inp, enc)
        c.line([(x0 + 0.65, rows[m]), (x_node, rows[m])], color="#b45f06")
        c.dot(x_node, rows[m])
        for x, y in nodes:
            c.arrow((x, rows[m], 0.0, 0.0), (x, y, 0.4, 0.4), color="#b45f06")
    top_table = rows[model.tables[0]]
    c.label(x_node + 0.45, (top_table + min(y for _, y in nodes)) / 2, "γ, β", color="#b45f06")
    x_head = x0 + len(model.channels) * step + 0.6
    mid = sum(rows[m] for m in model.images) / len(model.images)
    _draw_head(c, ends, x_head, x_head + 1.9, mid, label="head\nsoftmax(W [h_i])")


def _draw_hierarchical(c: _Canvas, model, ys: list[float]) -> None:
    """Image encoders stage by stage; a fusion branch receives the maps at every fusion depth."""
    images, tables = list(model.images), list(model.tables)
    step, x0 = 2.0, 3.0
    last = model.depths[-1]
    image_rows = ys[: len(images)]
    branch_y = ys[len(images)]
    table_rows = ys[len(images) + 1:]
    taps = {s: x0 + s * step + step / 2 for s in model.depths}  # fusion nodes sit in the gaps after each stage
    for m, y in zip(images, image_rows):
        inp = c.box(1.0, y, _input_label(model, m), "image")
        end = _stage_row(c, model, m, y, x0, step, last + 1)
        c.arrow(inp, (x0, y, 1.1, _BOX_H))
        c.line([(end[0] + 0.55, y), (taps[last], y)])
        for s in model.depths:
            c.dot(taps[s], y)
            c.arrow((taps[s], y, 0.0, 0.0), (taps[s], branch_y, 0.4, 0.4), color="#b45f06")
    for m, y in zip(tables, table_rows):
        inp = c.box(1.0, y, _input_label(model, m), "tabular")
        enc = c.box(x0, y, _encoder_label(model, m), "encoder", w=1.3)
        c.arrow(inp, enc)
        c.line([(x0 + 0.65, y), (taps[last], y)], color="#b45f06")
        for s in model.depths:
            c.arrow((taps[s], y, 0.0, 0.0), (taps[s], branch_y, 0.4, 0.4), color="#b45f06")
    previous = None
    for s in range(model.depths[0], len(model.channels)):
        if previous is not None:
            branch = c.box(x0 + s * step, branch_y, f"B_{s}\n{model.channels[s]} ch", "encoder", w=1.0)
            c.arrow(previous, branch)
            previous = branch
        if s in model.depths:
            node = c.node(taps[s], branch_y, "+")
            if previous is not None:
                c.arrow(previous, node)
            previous = node
    x_head = x0 + len(model.channels) * step + 0.6
    _draw_head(c, previous, x_head, x_head + 1.9, branch_y, label="pool, head\nsoftmax(W pool(b))")
    c.label(1.0, branch_y, "fusion branch b", color="#b45f06", style="italic")


def draw_architecture(model: nn.Module) -> Figure:
    """Block diagram of inputs -> encoders -> fusion point(s) -> head, showing where ``model`` fuses."""
    family = getattr(model, "family", "")
    modalities = tuple(getattr(model, "modalities", ()))
    if not modalities or not family:
        raise TypeError("draw_architecture needs a fusion_kit model (built with fusion_kit.models.build_model)")
    if family == "hierarchical":
        n_rows = len(model.images) + 1 + len(model.tables)
        width = 3.0 + 2.0 * len(model.channels) + 3.6
    elif hasattr(model, "stage") and family == "single_level":  # FiLM / DAFT: conditioning inside the encoder
        n_rows = len(modalities)
        width = 3.0 + 1.9 * len(model.channels) + 3.5
    else:
        n_rows = len(modalities)
        width = 10.8
    row_gap = 1.0
    height = n_rows * row_gap + 0.75
    fig = Figure(figsize=(width * 0.95, height * 0.95), dpi=110)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    top = height - 1.05
    ys = _rows(n_rows, top, row_gap)
    c = _Canvas(ax)
    if family == "input":
        _draw_input(c, model, ys)
    elif family == "output":
        _draw_output(c, model, ys)
    elif family == "hierarchical":
        _draw_hierarchical(c, model, ys)
    elif hasattr(model, "stage") and family == "single_level":
        _draw_film(c, model, ys)
    else:
        _draw_standard(c, model, ys)
    kind = "no fusion" if family == "unimodal" else f"{family.replace('_', '-')} fusion"
    title = f"{getattr(model, 'strategy', type(model).__name__)}  ({kind})"
    where = textwrap.fill(f"fuses at: {getattr(model, 'where', '')}", width=int(width * 11))
    ax.text(0.25, height - 0.2, title, ha="left", va="top", fontsize=11, fontweight="bold")
    ax.text(0.25, height - 0.5, where, ha="left", va="top", fontsize=_FONT, color="#333333")
    return fig


# ----------------------------------------------------------------- course figures
def _draw_confusion(ax, metrics, title: str) -> None:
    """Row-normalised confusion matrix of ``metrics`` on ``ax``, each cell labelled."""
    import numpy as np

    cm = metrics.confusion / np.maximum(metrics.confusion.sum(1, keepdims=True), 1)
    k = len(cm)
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for r in range(k):
        for c in range(k):
            ax.text(c, r, f"{cm[r, c]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if cm[r, c] > 0.6 else "black")
    ticks = metrics.class_names or [str(i) for i in range(k)]
    ax.set_xticks(range(k), ticks, fontsize=8)
    ax.set_yticks(range(k), ticks, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_title(title, fontsize=9)


FAMILY_COLORS = {
    "unimodal": "#8c8c8c",
    "input": "#1f77b4",
    "single_level": "#ff7f0e",
    "hierarchical": "#2ca02c",
    "attention": "#d62728",
    "output": "#9467bd",
    "missing": "#17becf",
}
MODALITY_COLORS = {"mri": "#4c72b0", "pet": "#dd8452", "clinical": "#55a868"}


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kw):
    """A Figure outside pyplot's state, and a 2D array of its axes."""
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def _middle_slice(image):
    """(C, H, W) -> (H, W); (C, D, H, W) -> the middle axial slice."""
    import numpy as np

    image = np.asarray(image)
    return image[0] if image.ndim == 3 else image[0, image.shape[1] // 2]


def plot_samples(dataset, per_class: int = 2, modalities=None):
    """A grid of subjects (rows, grouped by class) by image modality (columns)."""
    import numpy as np

    mods = [m for m in (modalities or dataset.modalities) if dataset.specs[m].kind == "image"]
    if not mods:
        raise ValueError("plot_samples needs at least one image modality")
    labels = dataset.labels.cpu().numpy()
    rows = [i for k in range(dataset.num_classes) for i in np.flatnonzero(labels == k)[:per_class]]
    fig, axes = _figure(1.9 * len(mods), 1.9 * len(rows), ncols=len(mods), nrows=len(rows))
    for r, i in enumerate(rows):
        for c, m in enumerate(mods):
            ax = axes[r, c]
            present = bool(dataset.mask[i, dataset.modalities.index(m)])
            img = _middle_slice(dataset.tensors[m][i].cpu())
            ax.imshow(img, cmap="gray" if m != "pet" else "hot", origin="lower")
            ax.set_xticks([]), ax.set_yticks([])
            if not present:
                ax.text(0.5, 0.5, "absent", ha="center", va="center", transform=ax.transAxes, color="w")
            if r == 0:
                ax.set_title(m.upper() if len(m) <= 4 else m)
            if c == 0:
                ax.set_ylabel(f"{dataset.class_names[labels[i]]}\n{dataset.subject_ids[i]}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_pet_overlay(dataset, index: int = 0, alpha: float = 0.5):
    """PET in colour over the same subject's MRI: where metabolism sits in the anatomy."""
    mri = _middle_slice(dataset.tensors["mri"][index].cpu())
    pet = _middle_slice(dataset.tensors["pet"][index].cpu())
    fig, axes = _figure(7.5, 2.8, ncols=3)
    for ax, img, title, cmap in ((axes[0, 0], mri, "MRI", "gray"), (axes[0, 1], pet, "PET", "hot")):
        ax.imshow(img, cmap=cmap, origin="lower")
        ax.set_title(title)
    axes[0, 2].imshow(mri, cmap="gray", origin="lower")
    axes[0, 2].imshow(pet, cmap="hot", alpha=alpha, origin="lower")
    axes[0, 2].set_title("PET over MRI")
    for ax in axes[0]:
        ax.set_xticks([]), ax.set_yticks([])
    label = dataset.class_names[int(dataset.labels[index])]
    fig.suptitle(f"{dataset.subject_ids[index]} ({label})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_clinical(dataset, modality: str = "clinical", raw_key: str = "clinical_raw"):
    """Distribution of every clinical variable per class (raw units when the dataset keeps them)."""
    import numpy as np

    spec = dataset.specs[modality]
    values = dataset.meta.get(raw_key)
    values = np.asarray(values) if values is not None else dataset.tensors[modality].cpu().numpy()
    names = spec.feature_names or tuple(str(i) for i in range(spec.channels))
    labels = dataset.labels.cpu().numpy()
    present = dataset.mask[:, dataset.modalities.index(modality)].cpu().numpy()
    units = dataset.meta.get(f"{modality}_units") or {}
    fig, axes = _figure(2.3 * len(names), 2.6 if not units else 2.9, ncols=len(names))
    for j, name in enumerate(names):
        ax = axes[0, j]
        groups = [values[(labels == k) & present, j] for k in range(dataset.num_classes)]
        levels = np.unique(values[present, j])
        if name in units:
            ax.set_xlabel(textwrap.fill(str(units[name]), 26), fontsize=7)
        if len(levels) <= 2:  # binary: share of the higher value per class
            ax.bar(dataset.class_names, [(g == levels.max()).mean() if len(g) else 0 for g in groups], color="#55a868")
            ax.set_ylim(0, 1)
            ax.set_title(f"{name} (share of {levels.max():g})")
        elif len(levels) <= 4 and np.allclose(levels, np.round(levels)):  # a few integer levels: mean per class
            ax.bar(dataset.class_names, [g.mean() if len(g) else 0 for g in groups], color="#55a868")
            ax.set_title(f"{name} (mean)")
        else:
            ax.boxplot(groups, showfliers=False)
            ax.set_xticks(range(1, dataset.num_classes + 1), dataset.class_names)
            ax.set_title(name)
    fig.tight_layout()
    return fig


def plot_history(histories):
    """Training and validation loss, and validation balanced accuracy, per epoch."""
    if not isinstance(histories, dict):
        histories = {"model": histories}
    fig, axes = _figure(9, 3.2, ncols=2)
    for i, (name, h) in enumerate(histories.items()):
        color = f"C{i % 10}"
        epochs = range(1, h.epochs_run + 1)
        axes[0, 0].plot(epochs, h.train_loss, color=color, label=f"{name} train")
        if h.val_loss:
            axes[0, 0].plot(epochs, h.val_loss, color=color, linestyle="--", label=f"{name} val")
            axes[0, 1].plot(epochs, h.val_balanced_accuracy, color=color, label=name)
            axes[0, 1].axvline(h.best_epoch, color=color, linewidth=0.8, alpha=0.4)
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="loss (dashed: validation)")
    axes[0, 1].set(xlabel="epoch", ylabel="balanced accuracy", title="validation (thin line: kept epoch)")
    axes[0, 1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_confusions(results):
    """Row-normalised confusion matrices side by side: which classes each model confuses."""
    names = list(results)
    fig, axes = _figure(2.9 * len(names), 3.0, ncols=len(names))
    for ax, name in zip(axes[0], names):
        _draw_confusion(ax, results[name], f"{name}\nbal. acc. {results[name].balanced_accuracy:.2f}")
    axes[0, 0].set_ylabel("true")
    fig.tight_layout()
    return fig


def plot_comparison(comparison, num_classes: int = 3, title: str = "Balanced accuracy on the test set"):
    """Bars of mean balanced accuracy (± std over seeds), coloured by family, with chance and best unimodal."""
    table = comparison.table() if hasattr(comparison, "table") else comparison
    table = table.sort_values("balanced_accuracy")
    fig, axes = _figure(7.5, 0.45 * len(table) + 1.4)
    ax = axes[0, 0]
    colors = [FAMILY_COLORS.get(f, "#444444") for f in table["family"]]
    spread = table.get("bacc_std")
    spread = spread if spread is not None and (spread > 0).any() else None  # one seed: no error bars
    ax.barh(range(len(table)), table["balanced_accuracy"], xerr=spread, color=colors, capsize=3)
    ax.set_yticks(range(len(table)), table.index, fontsize=8)
    ax.axvline(1 / num_classes, color="k", linestyle=":", linewidth=1, label="chance")
    uni = table[table["family"] == "unimodal"]
    if len(uni):
        ax.axvline(uni["balanced_accuracy"].max(), color="#8c8c8c", linestyle="--", linewidth=1, label="best single modality")
    ax.set_xlim(0, 1)
    ax.set_xlabel("balanced accuracy")
    ax.set_title(title, fontsize=10)
    from matplotlib.patches import Patch

    handles = [Patch(color=FAMILY_COLORS[f], label=f.replace("_", "-")) for f in dict.fromkeys(table["family"]) if f in FAMILY_COLORS]
    ax.legend(handles=handles + ax.get_legend_handles_labels()[0], fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_sweep(
    x, curves, xlabel: str, ylabel: str = "balanced accuracy", title: str = "", chance: float | None = None,
    logx: bool = False,
):
    """Lines of a score against a knob, one per model: ``curves`` maps name -> (mean, std) arrays or means.

    ``logx`` spaces the knob logarithmically (for sizes such as 35, 70, 175, 700), labelled at each x.
    """
    import numpy as np

    fig, axes = _figure(6, 3.6)
    ax = axes[0, 0]
    for i, (name, values) in enumerate(curves.items()):
        mean, std = (values if isinstance(values, tuple) else (values, None))
        mean = np.asarray(mean)
        ax.plot(x, mean, marker="o", label=name, color=f"C{i % 10}")
        if std is not None:
            ax.fill_between(x, mean - np.asarray(std), mean + np.asarray(std), alpha=0.15, color=f"C{i % 10}")
    if chance is not None:
        ax.axhline(chance, color="k", linestyle=":", linewidth=1, label="chance")
    if logx:
        ax.set_xscale("log")
        ax.set_xticks(list(x), [f"{v:g}" for v in x])
        ax.minorticks_off()
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_modality_weights(weights, labels, modalities, class_names, title: str = "Attention per modality"):
    """Mean attention weight of each modality, per class: (N, M) weights, (N,) labels."""
    import numpy as np

    weights, labels = np.asarray(weights), np.asarray(labels)
    fig, axes = _figure(6, 3.2)
    ax = axes[0, 0]
    width = 0.8 / len(modalities)
    for j, m in enumerate(modalities):
        means = [weights[labels == k, j].mean() if (labels == k).any() else 0 for k in range(len(class_names))]
        ax.bar(np.arange(len(class_names)) + j * width, means, width, label=m,
               color=MODALITY_COLORS.get(m, f"C{j}"))
    ax.set_xticks(np.arange(len(class_names)) + width * (len(modalities) - 1) / 2, class_names)
    ax.set(ylabel="mean weight", title=title, ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def draw_taxonomy():
    """The five families of the taxonomy (Li et al. 2024), one strip each, from the earliest fusion to the latest.

    Every strip draws the same three inputs (MRI, PET, clinical table) flowing left to right into a
    prediction ŷ; the coloured node is where the modalities meet, so it moves right from one family
    to the next. On the left: the family, where it fuses and its equation in the course notation.
    """
    from matplotlib.patches import FancyArrowPatch

    strips = [
        ("input", "Input fusion", "merge the raw inputs,\nthen one shared encoder", r"$z = f([x_1; \dots; x_M])$"),
        ("single_level", "Single-level fusion", "one fusion point between\nthe encoders and the head",
         r"$z = g(h_1, \dots, h_M)$"),
        ("hierarchical", "Hierarchical fusion", "feature maps meet at\nseveral encoder depths",
         r"$b_s = B_s(b_{s-1}) + \phi_s(\dots)$"),
        ("attention", "Attention-based fusion", "weights computed from the\ndata, per subject",
         r"$z = \sum_m \alpha_m(x)\, h_m$"),
        ("output", "Output fusion", "one classifier per modality,\nthe decisions are combined",
         r"$p = \frac{1}{M} \sum_m p_m$"),
    ]
    mods = [("MRI", "mri"), ("PET", "pet"), ("clinical", "clinical")]
    rows = [3.1, 1.85, 0.6]  # y of the MRI, PET and clinical rows inside a strip
    mid = rows[1]
    x_in, x_enc, x_fuse, x_head, x_out = 6.3, 9.6, 12.2, 14.6, 17.6
    bw, bh = 1.9, 0.62  # box width and height (data units; the axes have equal aspect)
    fs = 9
    fig, axes = _figure(10.5, 11.2, nrows=len(strips))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.955, bottom=0.01, hspace=0.12)

    def box(ax, x, y, text, color, w=bw, h=bh, fontsize=fs):
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.1",
                                    fc=color, ec="#555555", lw=0.9, zorder=2))
        ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, zorder=3)
        return (x, y, w, h)

    def node(ax, x, y, text, color, r=0.3):
        ax.add_patch(Circle((x, y), r, fc=color, ec="k", lw=0.9, zorder=2))
        ax.text(x, y, text, ha="center", va="center", fontsize=fs + 1, color="white", fontweight="bold", zorder=3)
        return (x, y, 2 * r, 2 * r)

    def arrow(ax, a, b, color="#444444", label="", lw=1.0, style="-|>"):
        start, end = _Canvas._edge(a, b[:2]), _Canvas._edge(b, a[:2])
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=9, lw=lw, color=color, zorder=1,
                                     shrinkA=1, shrinkB=1))
        if label:
            ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, label, ha="center", va="center",
                    fontsize=fs - 0.5, color=color, zorder=4,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none"))

    def inputs(ax):
        return [box(ax, x_in, y, name, MODALITY_COLORS[key] + "99") for (name, key), y in zip(mods, rows)]

    def head_and_output(ax, source, y=mid):
        head = box(ax, x_head, y, "head", _COLORS["head"], w=1.5)
        out = box(ax, x_out, y, "ŷ", "white", w=1.2)
        for s in source if isinstance(source, list) else [source]:
            arrow(ax, s, head)
        arrow(ax, head, out)

    for ax, (key, title, where, equation) in zip(axes[:, 0], strips):
        ax.set_xlim(0, 18.6), ax.set_ylim(0, 3.7), ax.set_aspect("equal"), ax.set_axis_off()
        color = FAMILY_COLORS[key]
        ax.text(0.1, 3.4, title, ha="left", va="center", fontsize=fs + 2.5, fontweight="bold", color=color)
        ax.text(0.1, 2.2, where, ha="left", va="center", fontsize=fs, color="#333333", linespacing=1.3)
        ax.text(0.1, 0.85, equation, ha="left", va="center", fontsize=fs + 1.5)
        xs = inputs(ax)
        if key == "input":
            fuse = node(ax, 8.3, mid, "+", color)
            for x in xs:
                arrow(ax, x, fuse)
            enc = box(ax, 10.6, mid, "one encoder $f$", _COLORS["encoder"], w=2.4)
            arrow(ax, fuse, enc)
            head_and_output(ax, enc)
        elif key in ("single_level", "attention"):
            encs = [box(ax, x_enc, y, f"encoder $f_{i + 1}$", _COLORS["encoder"]) for i, y in enumerate(rows)]
            for x, e in zip(xs, encs):
                arrow(ax, x, e)
            fuse = node(ax, x_fuse, mid, "Σ" if key == "attention" else "g", color)
            for i, e in enumerate(encs):
                label = f"$\\alpha_{i + 1} h_{i + 1}$" if key == "attention" else f"$h_{i + 1}$"
                arrow(ax, e, fuse, label=label, color=color if key == "attention" else "#444444")
            head_and_output(ax, fuse)
        elif key == "hierarchical":
            sw, x1, x2 = 1.25, 8.7, 11.0
            top, low = rows[0], rows[1]
            branch = (top + low) / 2
            stages = {}
            for (name, _), x, y in zip(mods[:2], xs[:2], (top, low)):
                s1 = box(ax, x1, y, "stage 1", _COLORS["encoder"], w=sw)
                s2 = box(ax, x2, y, "stage 2", _COLORS["encoder"], w=sw)
                arrow(ax, x, s1), arrow(ax, s1, s2)
                stages[name] = (s1, s2)
            n1 = node(ax, (x1 + x2) / 2, branch, "+", color, r=0.24)
            n2 = node(ax, x_fuse + 0.2, branch, "+", color, r=0.24)
            for s1, s2 in stages.values():
                arrow(ax, s1, n1, color=color), arrow(ax, s2, n2, color=color)
            arrow(ax, n1, n2, color=color, label="branch $b$")
            enc = box(ax, x_enc, rows[2], "encoder $f_3$", _COLORS["encoder"])
            arrow(ax, xs[2], enc)
            arrow(ax, enc, n1, color=color), arrow(ax, enc, n2, color=color)
            head_and_output(ax, n2, y=branch)
        else:  # output
            heads = []
            for i, (x, y) in enumerate(zip(xs, rows)):
                e = box(ax, x_enc, y, f"encoder $f_{i + 1}$", _COLORS["encoder"])
                h = box(ax, x_fuse, y, f"head$_{i + 1}$", _COLORS["head"], w=1.5)
                arrow(ax, x, e), arrow(ax, e, h)
                heads.append(h)
            fuse = node(ax, x_head, mid, "+", color)
            for i, h in enumerate(heads):
                arrow(ax, h, fuse, label=f"$p_{i + 1}$", color=color)
            arrow(ax, fuse, box(ax, x_out, mid, "ŷ", "white", w=1.2))
    fig.suptitle("Where the modalities meet: the five families of fusion, from earliest (top) to latest (bottom)",
                 fontsize=fs + 2, y=0.99)
    return fig


def plot_result(result):
    """One trained model at a glance: learning curves and test confusion matrix."""
    fig, axes = _figure(10, 3.2, ncols=3, gridspec_kw={"width_ratios": [1.1, 1.1, 0.9]})
    h = result.history
    epochs = range(1, h.epochs_run + 1)
    axes[0, 0].plot(epochs, h.train_loss, label="train")
    if h.val_loss:
        axes[0, 0].plot(epochs, h.val_loss, linestyle="--", label="validation")
        axes[0, 1].plot(epochs, h.val_balanced_accuracy, color="C2")
        axes[0, 1].axvline(h.best_epoch, color="k", linewidth=0.8, alpha=0.4)
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[0, 0].legend(fontsize=8)
    axes[0, 1].set(xlabel="epoch", ylabel="balanced accuracy", title="validation (line: kept epoch)", ylim=(0, 1))
    _draw_confusion(axes[0, 2], result.metrics, f"test: bal. acc. {result.metrics.balanced_accuracy:.2f}")
    axes[0, 2].set_ylabel("true")
    fig.suptitle(result.setup.label, fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------- chapters 07-08: missing data, benchmark
def plot_grouped_bars(values, errors=None, *, ylabel: str = "balanced accuracy", title: str = "",
                      chance: float | None = None, ylim=None, colors=None, legend_title: str | None = None):
    """Grouped bars: ``values`` is a DataFrame (rows: groups on the x axis, columns: one bar each) or a dict of dicts.

    ``errors`` (same layout) draws error bars; ``colors`` maps column names to colours.
    """
    import numpy as np
    import pandas as pd

    table = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values).T
    err = None if errors is None else (errors if isinstance(errors, pd.DataFrame) else pd.DataFrame(errors).T)
    groups, series = list(table.index), list(table.columns)
    fig, axes = _figure(min(10.0, max(5.0, 0.75 * len(groups) * max(1, len(series)) ** 0.5 + 2.0)), 3.6)
    ax = axes[0, 0]
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for j, name in enumerate(series):
        color = (colors or {}).get(name, MODALITY_COLORS.get(name, f"C{j % 10}"))
        yerr = None if err is None or name not in err else err.loc[groups, name].to_numpy(dtype=float)
        ax.bar(x + (j - (len(series) - 1) / 2) * width, table[name].to_numpy(dtype=float), width,
               yerr=yerr, capsize=2, label=str(name), color=color)
    ax.set_xticks(x, [textwrap.fill(str(g), 18, break_long_words=False) for g in groups], fontsize=8)
    if chance is not None:
        ax.axhline(chance, color="k", linestyle=":", linewidth=1, label="chance")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.axhline(0, color="k", linewidth=0.6)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=7, title=legend_title, title_fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_differences(stats, *, reference: str = "", title: str = ""):
    """Forest plot of paired differences against a reference (``experiment.paired_comparison`` table).

    Thick bar: interval over test-set resamples (bootstrap); thin line: interval over seeds.
    """
    import numpy as np

    table = stats.sort_values("diff")
    fig, axes = _figure(7.5, 0.42 * len(table) + 1.5)
    ax = axes[0, 0]
    y = np.arange(len(table))
    seed_lo, seed_hi = table["seed_low"].to_numpy(dtype=float), table["seed_high"].to_numpy(dtype=float)
    has_seed = np.isfinite(seed_lo)
    ax.hlines(y[has_seed], seed_lo[has_seed], seed_hi[has_seed], color="#888888", linewidth=1,
              label="interval over seeds (t)")
    ax.hlines(y, table["boot_low"], table["boot_high"], color="#1f77b4", linewidth=5, alpha=0.45,
              label="interval over test subjects (bootstrap)")
    ax.plot(table["diff"], y, "o", color="#1f77b4", label="mean difference")
    ax.axvline(0, color="k", linewidth=1, linestyle=":")
    ax.set_yticks(y, table.index, fontsize=8)
    ref = f" − {reference}" if reference else " − reference"
    ax.set_xlabel(f"balanced accuracy: model{ref}")
    ax.set_title(title or "Paired differences on the same test subjects", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_cost(table, *, title: str = "What each model costs"):
    """Trainable parameters and training seconds per run, one bar per model (rows of ``table``), coloured by family."""
    import numpy as np

    names = list(table.index)
    fig, axes = _figure(10, 0.32 * len(names) + 1.6, ncols=2, sharey=True)
    colors = [FAMILY_COLORS.get(f, "#444444") for f in table["family"]]
    y = np.arange(len(names))[::-1]
    several_seeds = "seeds" in table and (table["seeds"] > 1).any()
    seconds_label = "training seconds per run" + (" (mean over seeds)" if several_seeds else "")
    panels = ((axes[0, 0], "parameters", "trainable parameters"), (axes[0, 1], "seconds", seconds_label))
    for ax, column, label in panels:
        ax.barh(y, table[column].to_numpy(dtype=float), color=colors)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y, names, fontsize=8)
    from matplotlib.patches import Patch

    handles = [Patch(color=FAMILY_COLORS[f], label=f.replace("_", "-")) for f in dict.fromkeys(table["family"]) if f in FAMILY_COLORS]
    axes[0, 1].legend(handles=handles, fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ += ["plot_grouped_bars", "plot_differences", "plot_cost"]


# ----------------------------------------------------------- chapters 05-06: attention, calibration, uncertainty
def attention_weights(model, attention):
    """Reduce a model's ``FusionOutput.attention`` (as NumPy, from ``train.predict``) to one weight per source.

    Returns ``(weights (N, C), names)``: modality weights as they are (``modality_attention``,
    ``transformer``, ``weighted_vote``, ``learned_weights``); the mean gate of each modality's channels
    (``channel_attention``); the mean weight of each image over the places of the deepest maps
    (``spatial_attention``); for ``cross_attention``, the weight each query puts on each key source,
    averaged over queries, with ``"nothing"`` for the always-present null key.
    """
    import numpy as np

    if attention is None:
        raise ValueError(f"{getattr(model, 'strategy', type(model).__name__)} returns no attention weights")
    a = np.asarray(attention, dtype=float)
    strategy = getattr(model, "strategy", "")
    if strategy == "cross_attention":
        q = a.mean(1)  # (N, 1+Nk): mean over queries
        if model.queries == "image":
            names = ["nothing"] + [f for t in model.tables for f in (model.specs[t].feature_names or
                                                                     [f"{t}[{i}]" for i in range(model.specs[t].channels)])]
            return q, names
        sizes = [model.position[m].shape[0] for m in model.images]
        cuts = np.cumsum([1] + sizes)
        weights = np.stack([q[:, 0]] + [q[:, cuts[i]:cuts[i + 1]].sum(1) for i in range(len(sizes))], 1)
        return weights, ["nothing"] + list(model.images)
    if strategy == "spatial_attention":
        return a.reshape(*a.shape[:2], -1).mean(-1), list(model.images)
    if a.ndim == 3:  # channel gates (N, M, D)
        return a.mean(-1), list(model.modalities)
    if a.ndim == 2 and a.shape[1] == len(model.modalities):
        return a, list(model.modalities)
    raise ValueError(f"do not know how to summarise attention of shape {a.shape} for {strategy!r}")


def _source_color(name: str, j: int) -> str:
    return MODALITY_COLORS.get(name, "#bbbbbb" if name == "nothing" else f"C{(j + 3) % 10}")


def plot_attention_by_class(models, dataset, ncols: int = 3, title: str = "What each model weighs, per true class (test set)"):
    """One panel per model: the mean weight per source (``attention_weights``) for each true class.

    ``models`` maps a label to a trained fusion_kit model that returns attention; ``dataset`` is scored
    with ``train.predict``. Error bars: standard deviation over the subjects of the class.
    """
    import numpy as np

    from .train import predict

    items = list(models.items())
    nrows = -(-len(items) // ncols)
    ncols = min(ncols, len(items))
    fig, axes = _figure(3.6 * ncols, 2.9 * nrows + 0.4, ncols=ncols, nrows=nrows)
    k = dataset.num_classes
    for ax, (label, model) in zip(axes.flat, items):
        pred = predict(model, dataset.select(list(model.modalities)))
        weights, names = attention_weights(model, pred.attention)
        width = 0.8 / len(names)
        for j, name in enumerate(names):
            groups = [weights[pred.labels == c, j] for c in range(k)]
            means = [g.mean() if len(g) else 0.0 for g in groups]
            stds = [g.std() if len(g) else 0.0 for g in groups]
            ax.bar(np.arange(k) + (j - (len(names) - 1) / 2) * width, means, width, yerr=stds, capsize=1.5,
                   error_kw={"elinewidth": 0.6}, label=name, color=_source_color(name, j))
        ax.set_xticks(np.arange(k), dataset.class_names)
        ax.set_ylim(0, 1)
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=6.5, ncols=2 if len(names) > 3 else 1, loc="upper left")
    for ax in axes.flat[len(items):]:
        ax.set_axis_off()
    for r in range(nrows):
        axes[r, 0].set_ylabel("mean weight")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_attention_by_severity(weights, severity, names, labels=None, class_names=None,
                               title: str = "Attention per subject against disease severity"):
    """Per-subject weights (N, C) against the latent severity: dots per subject, a line of binned means per source."""
    import numpy as np

    weights, severity = np.asarray(weights, dtype=float), np.asarray(severity, dtype=float)
    fig, axes = _figure(6.5, 3.6)
    ax = axes[0, 0]
    edges = np.quantile(severity, np.linspace(0, 1, 9))
    centers = 0.5 * (edges[1:] + edges[:-1])
    which = np.clip(np.searchsorted(edges, severity, side="right") - 1, 0, len(centers) - 1)
    for j, name in enumerate(names):
        color = _source_color(name, j)
        ax.scatter(severity, weights[:, j], s=7, alpha=0.35, color=color, linewidths=0)
        means = [weights[which == b, j].mean() if (which == b).any() else np.nan for b in range(len(centers))]
        ax.plot(centers, means, color=color, linewidth=2, label=name)
    if labels is not None and class_names is not None:
        labels = np.asarray(labels)
        for c, name in enumerate(class_names):
            if (labels == c).any():
                ax.axvline(np.median(severity[labels == c]), color="#888888", linestyle=":", linewidth=0.8)
                ax.text(np.median(severity[labels == c]), 1.01, f"median {name}", fontsize=7, ha="center",
                        va="bottom", color="#555555", transform=ax.get_xaxis_transform())
    ax.set(xlabel="latent disease severity (from the generator)", ylabel="weight", ylim=(0, 1))
    ax.set_title(title, fontsize=10, pad=14)
    ax.legend(fontsize=7, loc="upper left", title="binned mean", title_fontsize=7)
    fig.tight_layout()
    return fig


def plot_spatial_attention(dataset, attention, indices, images=("mri", "pet")):
    """Each image of the chosen subjects with its spatial-attention weight a_i(x) overlaid (0: ignored, 1: trusted).

    ``attention`` (N, I, *S) comes from ``train.predict`` on ``dataset`` with a ``spatial_attention`` model;
    the coarse map of the deepest features is stretched over the image. 3D: the middle axial slice.
    """
    import numpy as np

    attention = np.asarray(attention, dtype=float)
    images = list(images)
    fig, axes = _figure(2.5 * len(images) + 0.6, 2.5 * len(indices), ncols=len(images), nrows=len(indices))
    shown = None
    for r, i in enumerate(indices):
        label = dataset.class_names[int(dataset.labels[i])]
        for c, m in enumerate(images):
            ax = axes[r, c]
            img = _middle_slice(dataset.tensors[m][i].cpu())
            a = attention[i, c]
            a = a[a.shape[0] // 2] if a.ndim == 3 else a
            h, w = img.shape
            ax.imshow(img, cmap="gray", origin="lower")
            shown = ax.imshow(a, cmap="coolwarm", vmin=0, vmax=1, alpha=0.5, origin="lower",
                              extent=(-0.5, w - 0.5, -0.5, h - 0.5), interpolation="bilinear")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"weight on {m.upper()}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{dataset.subject_ids[i]}\n{label}", fontsize=8)
    fig.set_layout_engine("constrained")
    if shown is not None:
        fig.colorbar(shown, ax=axes, shrink=0.8, label="weight a_i(x)")
    return fig


def plot_reliability(probs, labels, bins: int = 10, title: str = "Reliability diagram (test set)"):
    """Confidence against accuracy per confidence bin for each model (``probs``: name -> (N, K)), with ECE.

    A calibrated model lies on the diagonal: among subjects predicted with confidence 0.8, 80% are right.
    Below: how many subjects fall in each bin.
    """
    import numpy as np

    from .metrics import calibration_bins, expected_calibration_error

    fig, axes = _figure(5.2, 5.6, nrows=2, sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    top, bottom = axes[0, 0], axes[1, 0]
    top.plot([0, 1], [0, 1], color="k", linestyle=":", linewidth=1, label="perfect calibration")
    step = 1.0 / bins
    names = list(probs)
    for j, name in enumerate(names):
        p = np.asarray(probs[name])
        conf, acc, count = calibration_bins(labels, p, bins)
        ece = expected_calibration_error(labels, p, bins)
        keep = count > 0
        top.plot(conf[keep], acc[keep], marker="o", markersize=4, color=f"C{j % 10}", label=f"{name} (ECE {ece:.3f})")
        lefts = np.arange(bins) * step + j * step / len(names)
        bottom.bar(lefts, count, width=step / len(names), align="edge", color=f"C{j % 10}")
    top.set(ylabel="accuracy in the bin", xlim=(0, 1), ylim=(0, 1))
    top.set_title(title, fontsize=10)
    top.legend(fontsize=7, loc="upper left")
    bottom.set(xlabel="confidence (probability of the predicted class)", ylabel="subjects")
    fig.tight_layout()
    return fig


def plot_uncertainty(uncertainty, correct, names, severity=None, title: str = "Evidential uncertainty (test set)"):
    """Uncertainty u of each modality's opinion and of the fused one, for right and wrong fused predictions.

    ``uncertainty`` (N, M + 1): per modality, then fused (``FusionOutput.uncertainty`` of ``evidential``);
    ``correct`` (N,) bool; with ``severity`` (N,), a second panel plots the fused u against it.
    """
    import numpy as np

    u, correct = np.asarray(uncertainty, dtype=float), np.asarray(correct, dtype=bool)
    names = list(names) + ["fused"]
    fig, axes = _figure(10.5 if severity is not None else 6, 3.6, ncols=2 if severity is not None else 1,
                        gridspec_kw={"width_ratios": [1.4, 1]} if severity is not None else None)
    ax = axes[0, 0]
    positions, data, colors = [], [], []
    for j, name in enumerate(names):
        for s, ok in enumerate((True, False)):
            positions.append(3 * j + s)
            data.append(u[correct == ok, j])
            colors.append("#55a868" if ok else "#c44e52")
    parts = ax.boxplot([d if len(d) else [np.nan] for d in data], positions=positions, widths=0.8,
                       showfliers=False, patch_artist=True)
    for patch, color in zip(parts["boxes"], colors):
        patch.set_facecolor(color), patch.set_alpha(0.6)
    ax.set_xticks([3 * j + 0.5 for j in range(len(names))], names)
    ax.set(ylabel="uncertainty u = K / S", ylim=(0, 1))
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color="#55a868", alpha=0.6, label="fused prediction right"),
                       Patch(color="#c44e52", alpha=0.6, label="fused prediction wrong")], fontsize=7, loc="upper right")
    ax.set_title("per modality and fused", fontsize=9)
    if severity is not None:
        ax2 = axes[0, 1]
        severity = np.asarray(severity, dtype=float)
        ax2.scatter(severity[correct], u[correct, -1], s=9, alpha=0.5, color="#55a868", label="right")
        ax2.scatter(severity[~correct], u[~correct, -1], s=14, alpha=0.8, color="#c44e52", marker="x", label="wrong")
        ax2.set(xlabel="latent disease severity", ylabel="fused uncertainty")
        ax2.set_title("fused uncertainty against severity", fontsize=9)
        ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ += ["attention_weights", "plot_attention_by_class", "plot_attention_by_severity", "plot_spatial_attention",
            "plot_reliability", "plot_uncertainty"]


def _show_figures_inline() -> None:
    """In IPython/Jupyter, show a Figure left as the last expression of a cell as a PNG (as pyplot's inline backend does).

    The figures here are built outside pyplot, so without this Jupyter would print only their repr
    unless ``%matplotlib inline`` had been run.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
    if not formatters or "image/png" not in formatters:
        return

    def png(fig: Figure) -> bytes:
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()

    formatters["image/png"].for_type(Figure, png)


_show_figures_inline()


def _head(image, background: float):
    """Boolean mask of the head: voxels above ``background`` times the maximum, with enclosed holes filled."""
    from scipy import ndimage

    return ndimage.binary_fill_holes(image >= background * image.max())


def plot_heatmaps(images, heats, titles, *, row_labels=("image", "Grad-CAM over image"), cmap: str = "gray",
                  title: str = "", background: float | None = 0.15):
    """Images (top row) and the same images with a heat map on top (bottom row), one column per subject.

    ``images`` and ``heats`` are 2D arrays (or (C, H, W) / 3D volumes, shown as their middle slice). The heat
    map is hidden outside the head: where the image is darker than ``background`` times its maximum, except in
    dark regions enclosed by the head (a hypometabolic spot stays visible).
    """
    import numpy as np

    n = len(images)
    fig, axes = _figure(2.2 * n + 1.0, 4.8, ncols=n, nrows=2)
    fig.set_layout_engine("constrained")  # room for the colour bar
    for j, (image, heat, name) in enumerate(zip(images, heats, titles)):
        image = np.asarray(image)
        image = _middle_slice(image if image.ndim >= 3 else image[None])
        heat = np.asarray(heat)
        heat = heat if heat.ndim == 2 else _middle_slice(heat if heat.ndim >= 3 else heat[None])
        axes[0, j].imshow(image, cmap=cmap, origin="lower")
        axes[1, j].imshow(image, cmap="gray", origin="lower")
        if background is not None:
            heat = np.ma.masked_where(~_head(image, background), heat)
        shown = axes[1, j].imshow(heat, cmap="jet", alpha=0.5, origin="lower", vmin=0, vmax=1)
        axes[0, j].set_title(name, fontsize=8)
        for ax in axes[:, j]:
            ax.set_xticks([]), ax.set_yticks([])
    for r, label in enumerate(row_labels):
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.colorbar(shown, ax=list(axes[1]), shrink=0.8, pad=0.01, label="Grad-CAM (0 to 1)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


__all__ += ["plot_heatmaps"]


def plot_robustness(x, curves, floor: float, *, xlabel: str, floor_label: str = "floor", ylabel: str = "balanced accuracy",
                    title: str = "", mean_label: str | None = "mean of the strategies"):
    """Score of each strategy (``curves``: name -> values at ``x``) against a knob, with a reference ``floor`` dashed.

    With ``mean_label``, the mean over strategies is drawn as a thick black line (less noisy than any one curve).
    """
    import numpy as np

    fig, axes = _figure(7.5, 3.8)
    ax = axes[0, 0]
    for i, (name, values) in enumerate(curves.items()):
        ax.plot(x, np.asarray(values), marker="o", markersize=4, linewidth=1.2, alpha=0.75, label=name, color=f"C{i % 10}")
    if mean_label:
        ax.plot(x, np.mean([np.asarray(v) for v in curves.values()], 0), marker="s", color="k", linewidth=2.8,
                label=mean_label)
    ax.axhline(floor, color="k", linestyle="--", linewidth=1.2, label=floor_label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


__all__ += ["plot_robustness"]


# ----------------------------------------------------------- chapter 02: input fusion and registration
def _draw_pet_contour(ax, mri, pet, level: float, color: str, linestyle: str = "-", linewidth: float = 1.4) -> None:
    """PET iso-line at ``level`` times the PET maximum over the MRI's axes (nothing if PET is empty)."""
    import numpy as np

    pet = np.asarray(pet)
    if pet.max() > pet.min():
        ax.contour(pet, levels=[level * pet.max()], colors=color, linestyles=linestyle, linewidths=linewidth, origin="lower")


def _motion_label(dataset, index: int) -> str:
    """How far the generator moved this subject's PET against its MRI, from ``meta`` (empty if unknown)."""
    import numpy as np

    shift, angle = dataset.meta.get("pet_shift_mm"), dataset.meta.get("pet_rotation_deg")
    if shift is None or angle is None:
        return ""
    moved = float(np.linalg.norm(np.asarray(shift)[index]))
    turned = float(np.abs(np.asarray(angle)[index]).max())
    return f"PET moved {moved:.1f} mm, turned {turned:.1f}°"


def plot_registration(datasets, index: int = 0, level: float = 0.5, images=("mri", "pet")):
    """One subject's MRI (grey) with its PET contour (orange), one panel per dataset of the same subjects.

    ``datasets`` maps a panel title to a dataset (e.g. one cohort per misregistration level). The first
    dataset's PET contour is drawn dashed in every later panel: the gap between the lines is the motion.
    """
    if not isinstance(datasets, dict) or not datasets:
        raise TypeError("plot_registration needs a dict such as {'aligned': cohort, '9 mm': moved}")
    anatomy_key, pet_key = images
    for name, data in datasets.items():
        for key in images:
            if key not in data.modalities or data.specs[key].kind != "image":
                raise ValueError(f"dataset {name!r} has no image modality {key!r}; it has {', '.join(data.modalities)}")
    names = list(datasets)
    reference = _middle_slice(datasets[names[0]].tensors[pet_key][index].cpu())
    fig, axes = _figure(2.6 * len(names), 3.0, ncols=len(names))
    for j, name in enumerate(names):
        data, ax = datasets[name], axes[0, j]
        ax.imshow(_middle_slice(data.tensors[anatomy_key][index].cpu()), cmap="gray", origin="lower")
        if j > 0:
            _draw_pet_contour(ax, None, reference, level, "#4fc3f7", linestyle="--", linewidth=1.0)
        _draw_pet_contour(ax, None, _middle_slice(data.tensors[pet_key][index].cpu()), level, "#ff7f0e")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(_motion_label(data, index), fontsize=7.5)
    first = datasets[names[0]]
    label = first.class_names[int(first.labels[index])]
    note = f" (orange: PET contour; dashed blue: PET of '{names[0]}')" if len(names) > 1 else " (orange: PET contour)"
    fig.suptitle(f"{first.subject_ids[index]} ({label}): {anatomy_key.upper()} in grey{note}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_registration_result(result, dataset, index: int = 0, level: float = 0.5, images=("mri", "pet")):
    """A trained model beside the data it saw: one subject's PET contour over its MRI, validation curve, confusion."""
    anatomy_key, pet_key = images
    fig, axes = _figure(10, 3.2, ncols=3, gridspec_kw={"width_ratios": [0.9, 1.1, 0.9]})
    ax = axes[0, 0]
    ax.imshow(_middle_slice(dataset.tensors[anatomy_key][index].cpu()), cmap="gray", origin="lower")
    _draw_pet_contour(ax, None, _middle_slice(dataset.tensors[pet_key][index].cpu()), level, "#ff7f0e")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(f"{dataset.subject_ids[index]}: PET contour on MRI", fontsize=9)
    ax.set_xlabel(_motion_label(dataset, index), fontsize=8)
    h = result.history
    if h.val_balanced_accuracy:
        axes[0, 1].plot(range(1, h.epochs_run + 1), h.val_balanced_accuracy, color="C2")
        axes[0, 1].axvline(h.best_epoch, color="k", linewidth=0.8, alpha=0.4)
    axes[0, 1].set(xlabel="epoch", ylabel="balanced accuracy", ylim=(0, 1))
    axes[0, 1].set_title("validation (line: kept epoch)", fontsize=9)
    _draw_confusion(axes[0, 2], result.metrics, f"test: bal. acc. {result.metrics.balanced_accuracy:.2f}")
    axes[0, 2].set_ylabel("true")
    fig.suptitle(result.setup.label, fontsize=10)
    fig.tight_layout()
    return fig


__all__ += ["plot_registration", "plot_registration_result"]
