"""Pictures of what the numbers say (issue 13): a title's contact sheet, the pre-training loss
curve, the probe ablation per task, and a 2-D map of a title's contextual shot vectors.

Each function returns encoded image bytes (PNG for plots, WebP for sheets of thumbnails) kept to
tens of kB, and `markdown_image` wraps them the way Dagster's docs embed plots in metadata: a
Markdown image with a base64 data URL (`MetadataValue.md`). matplotlib runs on its Agg backend
(no display) and is imported only inside the plotting functions.
"""

from __future__ import annotations

import io

import numpy as np

from mediafm_core.media.thumbnails import data_url, open_thumbnail

SHEET_COLUMNS = 8  # thumbnails per contact-sheet row
SHEET_TILE = 112  # contact-sheet tile width, pixels
SHEET_MAX_TILES = 40  # longer titles show this many shots, spread evenly over the title
SHEET_MIME = "image/webp"  # contact sheets: WebP at quality 60 (~60 kB for 40 tiles of film)
PLOT_DPI = 80  # plots are drawn at figsize * PLOT_DPI pixels
# Colours of the probe chart rows (ablation order) and of the loss curve lines.
ROW_COLOURS = {
    "video_only": "#9e9e9e",
    "fused": "#4c72b0",
    "contextual": "#dd8452",
    "clip_alone": "#55a868",
}


def markdown_image(data: bytes, alt: str, mime: str = "image/png") -> str:
    """`![alt](data:<mime>;base64,...)`: a picture in Dagster Markdown metadata."""
    return f"![{alt}]({data_url(data, mime)})"


def _figure(width_in: float, height_in: float, ncols: int = 1):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=(width_in, height_in), dpi=PLOT_DPI)


def _png(fig) -> bytes:
    """PNG bytes of a matplotlib figure, quantised to a 64-colour palette (about 3x smaller)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PLOT_DPI, bbox_inches="tight")
    plt.close(fig)
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(64)
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()


def _webp(img, quality: int = 60) -> bytes:
    out = io.BytesIO()
    img.save(out, "WEBP", quality=quality, method=4)
    return out.getvalue()


def sheet_rows(n: int, max_tiles: int = SHEET_MAX_TILES) -> np.ndarray:
    """Indices of the shots a contact sheet shows: all, or `max_tiles` spread evenly."""
    if n <= max_tiles:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_tiles).round().astype(int))


def contact_sheet(
    thumbnails: list[bytes | None],
    starts_s,
    transitions=None,
    columns: int = SHEET_COLUMNS,
    tile: int = SHEET_TILE,
) -> bytes:
    """WebP of a title's shots in order: each tile is a thumbnail with its shot index and start
    time (m:ss.s); a coloured bar on a tile's left edge marks the transition into the shot
    (red: cut, blue: gradual, when `transitions` gives each shot's kind; red otherwise).
    Shots without a thumbnail are grey. Titles with more than SHEET_MAX_TILES shots show that
    many, spread evenly (the caption says so)."""
    from PIL import Image, ImageDraw

    rows = sheet_rows(len(thumbnails))
    th = tile * 9 // 16 if not any(thumbnails) else _tile_height(thumbnails, tile)
    label_h = 14
    n_rows = -(-len(rows) // columns)
    caption_h = 16
    sheet = Image.new("RGB", (columns * tile, caption_h + n_rows * (th + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    shown = (
        f"{len(rows)} of {len(thumbnails)} shots"
        if len(rows) < len(thumbnails)
        else f"{len(thumbnails)} shots"
    )
    draw.text((4, 2), f"{shown}; label: shot index @ start time; bar: transition in", fill="black")
    for i, k in enumerate(rows):
        x, y = (i % columns) * tile, caption_h + (i // columns) * (th + label_h)
        data = thumbnails[k]
        if data:
            img = open_thumbnail(data).resize((tile - 2, th), Image.BILINEAR)
            sheet.paste(img, (x + 1, y))
        else:
            draw.rectangle([x + 1, y, x + tile - 2, y + th], fill="#cccccc")
        if k > 0:
            kind = transitions[k] if transitions is not None else "cut"
            draw.rectangle(
                [x + 1, y, x + 4, y + th], fill="#1f77b4" if kind == "gradual" else "#d62728"
            )
        draw.text((x + 3, y + th + 1), f"#{k} @ {_clock(float(starts_s[k]))}", fill="black")
    return _webp(sheet)


def _tile_height(thumbnails, tile: int) -> int:
    first = open_thumbnail(next(t for t in thumbnails if t))
    return max(1, round(first.height * (tile - 2) / first.width))


def _clock(s: float) -> str:
    return f"{int(s // 60)}:{s % 60:04.1f}"


def loss_curve(curve: list[dict], baselines: dict[str, float] | None = None) -> bytes:
    """PNG of pre-training: train and validation MSM loss (mean cosine distance at masked shots)
    by step, with the mean-shot and neighbour baselines as flat dashed lines."""
    fig, ax = _figure(6.0, 3.0)
    steps = [p["step"] for p in curve if "train_loss" in p]
    ax.plot(
        steps,
        [p["train_loss"] for p in curve if "train_loss" in p],
        label="train MSM",
        color="#4c72b0",
        lw=1.5,
    )
    val = [(p["step"], p["val_loss"]) for p in curve if p.get("val_loss") is not None]
    if val:
        ax.plot(*zip(*val), "o-", label="validation MSM", color="#dd8452", lw=1.5, ms=4)
    styles = {
        "mean_shot": ("mean-shot baseline", "#7f7f7f"),
        "neighbour": ("neighbour baseline", "#2ca02c"),
    }
    for name, value in (baselines or {}).items():
        if value is not None and name in styles:
            label, colour = styles[name]
            ax.axhline(value, ls="--", lw=1.2, color=colour, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("MSM loss (cosine distance)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    return _png(fig)


def probe_chart(results: dict) -> bytes:
    """PNG of the ablation: one panel per task, one bar per feature row (mean over title-grouped
    folds), whiskers the fold std. `results` is row -> task -> ProbeResult (or a dict with
    metric, mean, std)."""
    rows = list(results)
    tasks = list(next(iter(results.values())))
    fig, axes = _figure(1.9 * len(tasks), 2.6, ncols=len(tasks))
    axes = np.atleast_1d(axes)
    for ax, task in zip(axes, tasks):
        cells = [_cell(results[r][task]) for r in rows if task in results[r]]
        names = [r for r in rows if task in results[r]]
        means = np.array([c["mean"] for c in cells], float)  # NaN: the probe had no score
        stds = np.nan_to_num(np.array([c["std"] for c in cells], float))
        ok = np.isfinite(means)
        ax.bar(
            np.flatnonzero(ok),
            means[ok],
            yerr=stds[ok],
            capsize=3,
            color=[ROW_COLOURS.get(r, "#8172b2") for r, k in zip(names, ok) if k],
        )
        ax.set_xticks([])
        ax.set_title(f"{task} ({cells[0]['metric']})", fontsize=8)
        if ok.any():
            lo, hi = float((means - stds)[ok].min()), float((means + stds)[ok].max())
            pad = max(0.02, 0.15 * (hi - lo))
            ax.set_ylim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        else:  # too few clips with both classes in every fold (tiny catalogues)
            ax.set_yticks([])
            ax.text(
                0.5,
                0.5,
                "no score",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=8,
                color="#777777",
            )
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    from matplotlib.patches import Patch

    fig.legend(
        handles=[Patch(color=ROW_COLOURS.get(r, "#8172b2"), label=r) for r in rows],
        loc="lower center",
        ncol=len(rows),
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _png(fig)


def _cell(r) -> dict:
    if isinstance(r, dict):
        return r
    return {"metric": r.metric, "mean": r.mean, "std": r.std}


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """(n, 2) coordinates on the first two principal components of (n, D) vectors (centred;
    zeros when n < 2)."""
    x = np.asarray(vectors, np.float64)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    x = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    coords = u[:, :2] * s[:2]
    return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))


def shot_map(
    vectors: np.ndarray, starts_s, thumbnails: list[bytes | None] | None = None, n_pictures: int = 6
) -> bytes:
    """PNG of a title's shots on the first two principal components of their contextual vectors,
    points coloured by start time, with `n_pictures` thumbnails (spread over the title) placed at
    their shots."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    xy = pca_2d(vectors)
    fig, ax = _figure(6.0, 4.2)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.asarray(starts_s, float), cmap="viridis", s=18)
    ax.plot(xy[:, 0], xy[:, 1], color="#bbbbbb", lw=0.5, zorder=0)
    fig.colorbar(sc, ax=ax, label="shot start (s)")
    have = [i for i, t in enumerate(thumbnails or []) if t]
    for i in (have[j] for j in sheet_rows(len(have), n_pictures)) if have else ():
        img = np.asarray(open_thumbnail(thumbnails[i]).resize((36, 36)))
        ax.add_artist(
            AnnotationBbox(
                OffsetImage(img, zoom=1.0),
                xy[i],
                frameon=True,
                pad=0.1,
                xybox=(14, 14),
                boxcoords="offset points",
            )
        )
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title("shots on the first two principal components", fontsize=9)
    return _png(fig)
