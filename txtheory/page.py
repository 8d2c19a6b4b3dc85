"""How a chapter page shows its results: figures sized for the content column (about 688
pixels), heat maps, tables, numbers in the prose, and the page's own run time.

Used by every chapter (``book/framework.md`` first): ``start()`` and ``use_style()`` once at
the top, ``figure(...)`` for a figure drawn at 1:1 in the column, ``heatmap(...)`` for every
grid of results (heads against widths or lags), ``markdown_table(...)`` for tables, so that
no output line is wider than the column, ``num(...)`` for a number in the text, and
``runtime()`` at the end; ``grid(...)`` turns result rows into the table a heat map shows.
A figure is drawn at ``DPI`` dots per inch and at most ``COLUMN_INCHES`` wide, so the page never shrinks it, and its fonts are at least 9 points
at that size. The browser test (``tests/test_browser.py``) checks the rendered pages
against the same column.
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

import matplotlib
import numpy as np

COLUMN_PX = 688  # the content column of the rendered book
DPI = 100  # matplotlib's default, which the inline backend keeps
COLUMN_INCHES = 6.4  # 640 px (+ about 10 px of tight bounding box): shown at 1:1 in a figure box of 660 px
MIN_FONT_PT = 9

STYLE = {
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.figsize": (COLUMN_INCHES, 3.4),
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.framealpha": 0.9,
    "figure.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def use_style() -> None:
    """Set matplotlib's defaults for the book: column width, DPI, fonts of at least 9 pt."""
    matplotlib.rcParams.update(STYLE)


def figure(ncols: int = 1, height: float = 3.4, width: float = COLUMN_INCHES, nrows: int = 1, **kwargs):
    """A figure of ``nrows`` x ``ncols`` panels that fits the column at 1:1: (fig, axes)."""
    import matplotlib.pyplot as plt

    for name, value in (("ncols", ncols), ("nrows", nrows)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not (0 < width <= COLUMN_INCHES):
        raise ValueError(f"width must be in (0, {COLUMN_INCHES}] inches (the column is {COLUMN_PX} px), got {width!r}")
    if not (0 < height <= 8):
        raise ValueError(f"height must be in (0, 8] inches, got {height!r}")
    return plt.subplots(nrows, ncols, figsize=(width, height), **kwargs)


def legend_outside(ax, **kwargs):
    """A legend below the axes, off the data."""
    kwargs.setdefault("loc", "upper center")
    kwargs.setdefault("bbox_to_anchor", (0.5, -0.22))
    kwargs.setdefault("ncol", 2)
    kwargs.setdefault("frameon", False)
    return ax.legend(**kwargs)


def heatmap(ax, table: np.ndarray, xticks: Sequence[Any], yticks: Sequence[Any], *, vmin: float, vmax: float,
            log: bool = True, cmap: str = "viridis_r", xlabel: str = "", ylabel: str = "", fmt: str = "{:.2g}",
            fontsize: float = MIN_FONT_PT):
    """Draw ``table`` (rows: yticks, columns: xticks) as a heat map with each cell's value
    written in it, on a colour scale from ``vmin`` to ``vmax`` (log10 when ``log``).

    Values outside the range are drawn at its ends; their numbers are still exact, and the
    caller states the range in the colour bar's label (``colorbar_label``). NaN cells stay
    blank. Returns the image, for ``fig.colorbar``.
    """
    table = np.asarray(table, dtype=np.float64)
    if table.shape != (len(yticks), len(xticks)):
        raise ValueError(f"table must have shape (len(yticks), len(xticks)) = ({len(yticks)}, {len(xticks)}), "
                         f"got {table.shape}")
    if not vmin < vmax:
        raise ValueError(f"vmin must be < vmax, got {vmin} and {vmax}")
    if log and vmin <= 0:
        raise ValueError(f"a log colour scale needs vmin > 0, got {vmin}")
    lo, hi = (math.log10(vmin), math.log10(vmax)) if log else (vmin, vmax)
    shown = np.log10(np.clip(table, vmin, vmax)) if log else np.clip(table, vmin, vmax)
    im = ax.imshow(shown, cmap=cmap, vmin=lo, vmax=hi, origin="lower", aspect="auto")
    ax.set_xticks(range(len(xticks)), [str(v) for v in xticks])
    ax.set_yticks(range(len(yticks)), [str(v) for v in yticks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    colormap = matplotlib.colormaps[cmap]
    for a in range(table.shape[0]):
        for b in range(table.shape[1]):
            if not np.isfinite(table[a, b]):
                continue
            level = (shown[a, b] - lo) / (hi - lo)
            r, g, bl, _ = colormap(level)
            dark = 0.299 * r + 0.587 * g + 0.114 * bl < 0.5  # text colour by the cell's luminance
            ax.text(b, a, fmt.format(table[a, b]), ha="center", va="center", fontsize=fontsize,
                    color="w" if dark else "k")
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    return im


def grid(rows: Sequence[dict], y: str, x: str, value: str) -> tuple[list, list, np.ndarray]:
    """A results grid for ``heatmap``: (y values, x values, table) from a list of result rows
    (dicts), the table[i, j] = row[value] of the row with row[y] = ys[i] and row[x] = xs[j]
    (NaN where no row has them; a second row for the same cell raises)."""
    ys = sorted({r[y] for r in rows})
    xs = sorted({r[x] for r in rows})
    table = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        i, j = ys.index(r[y]), xs.index(r[x])
        if np.isfinite(table[i, j]):
            raise ValueError(f"two rows for the cell {y}={r[y]}, {x}={r[x]}: filter the rows first")
        table[i, j] = r[value]
    return ys, xs, table


def colorbar(fig, im, ax, what: str, vmin: float, vmax: float, log: bool = True, **kwargs):
    """A colour bar for ``heatmap``'s image, labelled with what it shows and its range, with
    ticks at the powers of ten (log) in the data's own units."""
    bar = fig.colorbar(im, ax=ax, label=colorbar_label(what, vmin, vmax, log), **kwargs)
    if log:
        ticks = list(range(math.ceil(math.log10(vmin)), math.floor(math.log10(vmax)) + 1))
        step = max(1, len(ticks) // 5)
        ticks = ticks[::step]
        bar.set_ticks(ticks, labels=[f"1e{k}" if k else "1" for k in ticks])
    return bar


def colorbar_label(what: str, vmin: float, vmax: float, log: bool = True) -> str:
    """The colour bar's label, with its range stated: 'what (log scale, 1e-08 to 10, clipped)'."""
    if log:
        return f"{what}\n(log scale, {vmin:.0e} to {vmax:g}, clipped)"
    return f"{what}\n(scale {vmin:g} to {vmax:g}, clipped)"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "{:.3g}"):
    """A table for the page (IPython Markdown): numbers formatted with ``fmt``, strings as they are."""
    from IPython.display import Markdown

    header = [str(h) for h in header]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"every row must have {len(header)} entries (the header), got {len(row)}: {row!r}")
        # U+2212 in exponents: a browser may wrap "1.7e-39" after its hyphen, never at a minus
        cells = [fmt.format(v).replace("e-", "e\u2212") if isinstance(v, (float, np.floating)) else str(v)
                 for v in row]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return Markdown("\n".join(lines))


def num(x: float) -> str:
    """A number for the prose: 3 significant digits, scientific notation when far from 1."""
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return f"{x:.3g}" if 1e-2 <= abs(x) < 1e3 else f"{x:.1e}"


_STARTED: list[float] = []


def start() -> None:
    """Note the time a chapter starts to run (its first cell); ``runtime()`` reads it."""
    _STARTED[:] = [time.perf_counter()]


def runtime() -> str:
    """How long the chapter has run since ``start()``, for its last cell to glue: '42 s'."""
    if not _STARTED:
        raise ValueError("runtime() needs start() to have been called in the chapter's first cell")
    seconds = time.perf_counter() - _STARTED[0]
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
