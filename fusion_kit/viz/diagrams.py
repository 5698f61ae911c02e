"""Diagrams: where a model fuses (``draw_architecture``) and the five families at a glance (``draw_taxonomy``).

Both are drawn with one ``Canvas`` of boxes, nodes and arrows. A model says how it should be drawn
through ``model.diagram()`` (a layout name and what that layout needs), so nothing here depends on a
strategy's name.
"""
from __future__ import annotations

import textwrap

from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from .style import FAMILY_COLORS, MODALITY_COLORS, PART_COLORS, CourseFigure, new_figure

__all__ = ["Canvas", "draw_architecture", "draw_taxonomy"]

BOX_W, BOX_H = 1.7, 0.62


class Canvas:
    """A data-coordinate drawing area: boxes, circles and arrows that connect shape edges.

    A shape is ``(x, y, w, h)``, its centre and size; arrows start and end where the line between two
    centres leaves each shape.
    """

    def __init__(self, ax, font: float = 8.5) -> None:
        self.ax, self.font = ax, font

    def box(self, x: float, y: float, text: str, color: str, w: float = BOX_W, h: float = BOX_H, bold: bool = False):
        patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                               facecolor=PART_COLORS.get(color, color), edgecolor="#555555", linewidth=1.0, zorder=2)
        self.ax.add_patch(patch)
        self.ax.text(x, y, text, ha="center", va="center", fontsize=self.font, fontweight="bold" if bold else "normal",
                     zorder=3)
        return (x, y, w, h)

    def node(self, x: float, y: float, text: str = "+", r: float = 0.2, color: str | None = None):
        """A fusion point: the course's fusion colour, or ``color`` with white text."""
        fill, edge, ink = (PART_COLORS["fusion"], "#b45f06", "black") if color is None else (color, "black", "white")
        self.ax.add_patch(Circle((x, y), r, facecolor=fill, edgecolor=edge, linewidth=1.2, zorder=2))
        self.ax.text(x, y, text, ha="center", va="center", fontsize=self.font + 1, fontweight="bold", color=ink, zorder=3)
        return (x, y, 2 * r, 2 * r)

    @staticmethod
    def edge(shape, toward: tuple[float, float]) -> tuple[float, float]:
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
        self.ax.text(x, y, text, ha="center", va="center", fontsize=self.font, color=color, style=style,
                     bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none"), zorder=4)

    def arrow(self, a, b, label: str = "", color: str = "#444444") -> None:
        start, end = self.edge(a, b[:2]), self.edge(b, a[:2])
        self.ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, lw=1.1, color=color,
                                          shrinkA=1, shrinkB=1, zorder=1))
        if label:
            self.ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, label, ha="center", va="center",
                         fontsize=self.font - 0.5, color=color, zorder=4,
                         bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none"))


# ----------------------------------------------------------------------------- one model
def _input_label(model, name: str) -> str:
    spec = model.specs[name]
    if spec.kind == "image":
        return f"{name}\n{spec.spatial_dims}D image {'×'.join(map(str, spec.shape))}"
    return f"{name}\ntable, {spec.channels} features"


def _encoder_label(model, name: str) -> str:
    """'f_pet / CNN, 2 stages, k5': the encoder each modality gets, with its own options (``encoders=``) and sharing."""
    own = getattr(model, "encoder_options", {}).get(name, {})
    if model.specs[name].kind != "image":
        hidden = own.get("tabular_hidden")
        return f"f_{name}\nMLP" + (f" {'-'.join(map(str, hidden))}" if hidden else "")
    stages = len(own.get("channels", model.channels))
    if own.get("network", "cnn") == "densenet":
        return f"f_{name}\nDenseNet, {stages} blocks"
    shared = " shared" if getattr(model, "shared_images", False) else ""
    kernel = f", k{own['kernel_size']}" if "kernel_size" in own else ""
    return f"f_{name}\nCNN{shared}, {stages} stages{kernel}"


def _inputs(c: Canvas, model, x: float, ys: list[float]) -> dict:
    """Inputs in the first column, one per row; returns their shapes."""
    return {m: c.box(x, y, _input_label(model, m), model.specs[m].kind) for m, y in zip(model.modalities, ys)}


def _head(c: Canvas, source, x_head: float, x_out: float, y: float, label: str = "head\nsoftmax(W z)") -> None:
    head = c.box(x_head, y, label, "head", w=1.4)
    out = c.box(x_out, y, "ŷ\nclass probabilities", "output", w=1.5)
    for s in source if isinstance(source, list) else [source]:
        c.arrow(s, head)
    c.arrow(head, out)


def _fusion_box(c: Canvas, model, x: float, ys: list[float], w: float):
    height = max(ys) - min(ys) + BOX_H
    return c.box(x, sum(ys) / len(ys), model.fusion_label, "fusion", w=w, h=max(height, 0.9))


def _draw_vectors(c: Canvas, model, ys: list[float], spec: dict) -> None:
    """inputs -> one encoder each -> one fusion box (or none, for one modality) -> head."""
    cols = [1.0, 3.2, 5.6, 7.8, 9.7]
    inputs = _inputs(c, model, cols[0], ys)
    encoders = {m: c.box(cols[1], y, _encoder_label(model, m), "encoder") for m, y in zip(model.modalities, ys)}
    for m in model.modalities:
        c.arrow(inputs[m], encoders[m])
    mid = sum(ys) / len(ys)
    if spec["layout"] == "unimodal":
        _head(c, encoders[model.modalities[0]], cols[3], cols[4], mid)
        return
    fusion = _fusion_box(c, model, cols[2], ys, w=2.1)
    for m in model.modalities:
        c.arrow(encoders[m], fusion, label="h" if len(model.modalities) < 4 else "")
    _head(c, fusion, cols[3], cols[4], mid)


def _draw_inputs(c: Canvas, model, ys: list[float], spec: dict) -> None:
    """inputs -> stack -> one shared encoder -> head."""
    cols = [1.0, 3.3, 5.6, 7.8, 9.7]
    inputs = _inputs(c, model, cols[0], ys)
    fusion = _fusion_box(c, model, cols[1], ys, w=1.9)
    for m in model.modalities:
        c.arrow(inputs[m], fusion, label="x" if len(model.modalities) < 4 else "")
    mid = sum(ys) / len(ys)
    encoder = c.box(cols[2], mid, f"f (shared)\nCNN, {len(model.channels)} stages", "encoder")
    c.arrow(fusion, encoder)
    _head(c, encoder, cols[3], cols[4], mid)


def _draw_decisions(c: Canvas, model, ys: list[float], spec: dict) -> None:
    """inputs -> encoder -> head per modality -> combination of decisions."""
    cols = [1.0, 3.2, 5.3, 7.5, 9.6]
    inputs = _inputs(c, model, cols[0], ys)
    heads = {}
    for m, y in zip(model.modalities, ys):
        enc = c.box(cols[1], y, _encoder_label(model, m), "encoder")
        heads[m] = c.box(cols[2], y, f"head_{m}\nsoftmax(W_m h_m)", "head", w=1.6)
        c.arrow(inputs[m], enc)
        c.arrow(enc, heads[m])
    fusion = _fusion_box(c, model, cols[3], ys, w=1.9)
    for m in model.modalities:
        c.arrow(heads[m], fusion, label="p_m" if len(model.modalities) < 4 else "")
    c.arrow(fusion, c.box(cols[4], sum(ys) / len(ys), "ŷ\nclass probabilities", "output", w=1.5))


def _stage_row(c: Canvas, model, name: str, y: float, x0: float, step: float, stages: int, joins: dict | None = None):
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


def _draw_conditioned(c: Canvas, model, ys: list[float], spec: dict) -> None:
    """Images encoded stage by stage; the table's encoder sends (γ, β) into a node after the conditioned stage."""
    step, x0 = 1.9, 3.0
    x_node = x0 + spec["stage"] * step + step / 2
    rows = dict(zip(list(model.images) + list(model.tables), ys))
    ends, nodes = [], []
    for m in model.images:
        c.arrow(c.box(1.0, rows[m], _input_label(model, m), "image"), (x0, rows[m], 1.1, BOX_H))
        ends.append(_stage_row(c, model, m, rows[m], x0, step, len(model.channels), joins={spec["stage"]: "⊙"}))
        nodes.append((x_node, rows[m]))
    for m in model.tables:  # each table joins a line that taps every image's node
        c.arrow(c.box(1.0, rows[m], _input_label(model, m), "tabular"), c.box(x0, rows[m], _encoder_label(model, m), "encoder", w=1.3))
        c.line([(x0 + 0.65, rows[m]), (x_node, rows[m])], color="#b45f06")
        c.dot(x_node, rows[m])
        for x, y in nodes:
            c.arrow((x, rows[m], 0.0, 0.0), (x, y, 0.4, 0.4), color="#b45f06")
    c.label(x_node + 0.45, (rows[model.tables[0]] + min(y for _, y in nodes)) / 2, "γ, β", color="#b45f06")
    x_head = x0 + len(model.channels) * step + 0.6
    mid = sum(rows[m] for m in model.images) / len(model.images)
    _head(c, ends, x_head, x_head + 1.9, mid, label="head\nsoftmax(W [h_i])")


def _draw_stages(c: Canvas, model, ys: list[float], spec: dict) -> None:
    """Image encoders stage by stage; a fusion branch receives the maps at every fusion depth."""
    depths, step, x0 = spec["depths"], 2.0, 3.0
    images, tables = list(model.images), list(model.tables)
    branch_y = ys[len(images)]
    taps = {s: x0 + s * step + step / 2 for s in depths}  # fusion nodes sit in the gaps after each stage
    for m, y in zip(images, ys[: len(images)]):
        c.arrow(c.box(1.0, y, _input_label(model, m), "image"), (x0, y, 1.1, BOX_H))
        end = _stage_row(c, model, m, y, x0, step, depths[-1] + 1)
        c.line([(end[0] + 0.55, y), (taps[depths[-1]], y)])
        for s in depths:
            c.dot(taps[s], y)
            c.arrow((taps[s], y, 0.0, 0.0), (taps[s], branch_y, 0.4, 0.4), color="#b45f06")
    for m, y in zip(tables, ys[len(images) + 1:]):
        c.arrow(c.box(1.0, y, _input_label(model, m), "tabular"), c.box(x0, y, _encoder_label(model, m), "encoder", w=1.3))
        c.line([(x0 + 0.65, y), (taps[depths[-1]], y)], color="#b45f06")
        for s in depths:
            c.arrow((taps[s], y, 0.0, 0.0), (taps[s], branch_y, 0.4, 0.4), color="#b45f06")
    previous = None
    for s in range(depths[0], len(model.channels)):
        if previous is not None:
            branch = c.box(x0 + s * step, branch_y, f"B_{s}\n{model.channels[s]} ch", "encoder", w=1.0)
            c.arrow(previous, branch)
            previous = branch
        if s in depths:
            node = c.node(taps[s], branch_y, "+")
            if previous is not None:
                c.arrow(previous, node)
            previous = node
    x_head = x0 + len(model.channels) * step + 0.6
    _head(c, previous, x_head, x_head + 1.9, branch_y, label="pool, head\nsoftmax(W pool(b))")
    c.label(1.0, branch_y, "fusion branch b", color="#b45f06", style="italic")


def _draw_exchange(c: Canvas, model, ys: list[float], spec: dict) -> None:
    """Image encoders stage by stage, with a two-way exchange between the image rows after each exchange stage."""
    step, x0 = 2.0, 3.0
    rows = dict(zip(list(model.images) + list(model.tables), ys))
    ends = []
    for m in model.images:
        c.arrow(c.box(1.0, rows[m], _input_label(model, m), "image"), (x0, rows[m], 1.1, BOX_H))
        ends.append(_stage_row(c, model, m, rows[m], x0, step, len(model.channels)))
    for s in spec["depths"]:  # the exchange sits in the gap after stage s, between neighbouring image rows
        x = x0 + s * step + step / 2
        for a, b in zip(model.images, model.images[1:]):
            c.ax.annotate("", xy=(x, rows[b] - 0.05), xytext=(x, rows[a] + 0.05),
                          arrowprops=dict(arrowstyle="<|-|>", color="#b45f06", lw=1.4, mutation_scale=11))
            c.dot(x, rows[a]), c.dot(x, rows[b])
        c.label(x + 0.3, (rows[model.images[0]] + rows[model.images[1]]) / 2, "φ", color="#b45f06")
    for m in model.tables:
        ends.append(c.box(x0, rows[m], _encoder_label(model, m), "encoder", w=1.3))
        c.arrow(c.box(1.0, rows[m], _input_label(model, m), "tabular"), ends[-1])
    x_head = x0 + len(model.channels) * step + 0.6
    _head(c, ends, x_head, x_head + 1.9, sum(ys) / len(ys), label="head\nsoftmax(W [h_m])")


LAYOUTS = {"unimodal": _draw_vectors, "vectors": _draw_vectors, "inputs": _draw_inputs, "decisions": _draw_decisions,
           "conditioned": _draw_conditioned, "stages": _draw_stages, "exchange": _draw_exchange}


def draw_architecture(model) -> CourseFigure:
    """Block diagram of inputs -> encoders -> fusion point(s) -> head, showing where ``model`` fuses."""
    diagram = getattr(model, "diagram", None)
    if not callable(diagram):
        raise TypeError("draw_architecture needs a fusion_kit model (built with fusion_kit.models.build_model)")
    spec = diagram()
    rows = len(model.modalities) + (1 if spec["layout"] == "stages" else 0)  # the fusion branch gets a row
    width = {"stages": 3.0 + 2.0 * len(model.channels) + 3.6, "exchange": 3.0 + 2.0 * len(model.channels) + 3.6,
             "conditioned": 3.0 + 1.9 * len(model.channels) + 3.5}.get(spec["layout"], 10.8)
    height = rows + 0.75
    fig = CourseFigure(figsize=(width * 0.95, height * 0.95), dpi=110)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    LAYOUTS[spec["layout"]](Canvas(ax), model, [height - 1.05 - i for i in range(rows)], spec)
    kind = "no fusion" if model.family == "unimodal" else f"{model.family.replace('_', '-')} fusion"
    ax.text(0.25, height - 0.2, f"{model.strategy}  ({kind})", ha="left", va="top", fontsize=11, fontweight="bold")
    where = textwrap.fill(f"fuses at: {model.where}", width=int(width * 11))
    ax.text(0.25, height - 0.5, where, ha="left", va="top", fontsize=8.5, color="#333333")
    return fig


# ----------------------------------------------------------------------------- the taxonomy
TAXONOMY = [
    ("input", "Input fusion", "merge the raw inputs,\nthen one shared encoder", r"$z = f([x_1; \dots; x_M])$"),
    ("single_level", "Single-level fusion", "one fusion point between\nthe encoders and the head",
     r"$z = g(h_1, \dots, h_M)$"),
    ("hierarchical", "Hierarchical fusion", "feature maps meet at\nseveral encoder depths",
     r"$b_s = B_s(b_{s-1}) + \phi_s(\dots)$"),
    ("attention", "Attention-based fusion", "weights computed from the\ndata, per subject",
     r"$z = \sum_m \alpha_m(x)\, h_m$"),
    ("output", "Output fusion", "one classifier per modality,\nthe decisions are combined", r"$p = \frac{1}{M} \sum_m p_m$"),
]
ROWS = [3.1, 1.85, 0.6]  # y of the MRI, PET and clinical rows inside a strip
X_ENC, X_FUSE, X_HEAD, X_OUT = 9.6, 12.2, 14.6, 17.6


def _strip_head(c: Canvas, source, y: float = ROWS[1]) -> None:
    head = c.box(X_HEAD, y, "head", "head", w=1.5)
    for s in source if isinstance(source, list) else [source]:
        c.arrow(s, head)
    c.arrow(head, c.box(X_OUT, y, "ŷ", "white", w=1.2))


def _strip_input(c: Canvas, xs: list, color: str) -> None:
    fuse = c.node(8.3, ROWS[1], "+", r=0.3, color=color)
    for x in xs:
        c.arrow(x, fuse)
    enc = c.box(10.6, ROWS[1], "one encoder $f$", "encoder", w=2.4)
    c.arrow(fuse, enc)
    _strip_head(c, enc)


def _strip_vectors(c: Canvas, xs: list, color: str, weighted: bool) -> None:
    encs = [c.box(X_ENC, y, f"encoder $f_{i + 1}$", "encoder", w=1.9) for i, y in enumerate(ROWS)]
    fuse = c.node(X_FUSE, ROWS[1], "Σ" if weighted else "g", r=0.3, color=color)
    for i, (x, e) in enumerate(zip(xs, encs)):
        c.arrow(x, e)
        c.arrow(e, fuse, label=f"$\\alpha_{i + 1} h_{i + 1}$" if weighted else f"$h_{i + 1}$",
                color=color if weighted else "#444444")
    _strip_head(c, fuse)


def _strip_hierarchical(c: Canvas, xs: list, color: str) -> None:
    x1, x2, branch = 8.7, 11.0, (ROWS[0] + ROWS[1]) / 2
    stages = []
    for x, y in zip(xs[:2], ROWS[:2]):
        s1, s2 = c.box(x1, y, "stage 1", "encoder", w=1.25), c.box(x2, y, "stage 2", "encoder", w=1.25)
        c.arrow(x, s1), c.arrow(s1, s2)
        stages.append((s1, s2))
    n1 = c.node((x1 + x2) / 2, branch, "+", r=0.24, color=color)
    n2 = c.node(X_FUSE + 0.2, branch, "+", r=0.24, color=color)
    for s1, s2 in stages:
        c.arrow(s1, n1, color=color), c.arrow(s2, n2, color=color)
    c.arrow(n1, n2, color=color, label="branch $b$")
    enc = c.box(X_ENC, ROWS[2], "encoder $f_3$", "encoder", w=1.9)
    c.arrow(xs[2], enc)
    c.arrow(enc, n1, color=color), c.arrow(enc, n2, color=color)
    _strip_head(c, n2, y=branch)


def _strip_output(c: Canvas, xs: list, color: str) -> None:
    fuse = c.node(X_HEAD, ROWS[1], "+", r=0.3, color=color)
    for i, (x, y) in enumerate(zip(xs, ROWS)):
        e = c.box(X_ENC, y, f"encoder $f_{i + 1}$", "encoder", w=1.9)
        h = c.box(X_FUSE, y, f"head$_{i + 1}$", "head", w=1.5)
        c.arrow(x, e), c.arrow(e, h)
        c.arrow(h, fuse, label=f"$p_{i + 1}$", color=color)
    c.arrow(fuse, c.box(X_OUT, ROWS[1], "ŷ", "white", w=1.2))


def draw_taxonomy() -> CourseFigure:
    """The five families of the taxonomy (Li et al. 2024), one strip each, from the earliest fusion to the latest.

    Every strip draws the same three inputs (MRI, PET, clinical table) flowing left to right into a
    prediction ŷ; the coloured node is where the modalities meet, so it moves right from one family
    to the next. On the left: the family, where it fuses and its equation in the course notation.
    """
    fig, axes = new_figure(10.5, 11.2, nrows=len(TAXONOMY))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.955, bottom=0.01, hspace=0.12)
    inputs = [("MRI", "mri"), ("PET", "pet"), ("clinical", "clinical")]
    for ax, (key, title, where, equation) in zip(axes[:, 0], TAXONOMY):
        ax.set_xlim(0, 18.6), ax.set_ylim(0, 3.7), ax.set_aspect("equal"), ax.set_axis_off()
        c, color = Canvas(ax, font=9), FAMILY_COLORS[key]
        ax.text(0.1, 3.4, title, ha="left", va="center", fontsize=11.5, fontweight="bold", color=color)
        ax.text(0.1, 2.2, where, ha="left", va="center", fontsize=9, color="#333333", linespacing=1.3)
        ax.text(0.1, 0.85, equation, ha="left", va="center", fontsize=10.5)
        xs = [c.box(6.3, y, name, MODALITY_COLORS[m] + "99", w=1.9) for (name, m), y in zip(inputs, ROWS)]
        if key == "input":
            _strip_input(c, xs, color)
        elif key == "hierarchical":
            _strip_hierarchical(c, xs, color)
        elif key == "output":
            _strip_output(c, xs, color)
        else:
            _strip_vectors(c, xs, color, weighted=key == "attention")
    fig.suptitle("Where the modalities meet: the five families of fusion, from earliest (top) to latest (bottom)",
                 fontsize=11, y=0.99)
    return fig
