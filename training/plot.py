"""The training curves of a run: ``metrics.csv`` (one row per epoch) drawn as ``metrics.png`` beside it, one panel
per logged value against the epoch. :class:`training.logger.RunLogger` redraws it after each epoch;
``python -m training.plot RUN_DIR [RUN_DIR ...]`` (or ``i2v-plot``) draws it for a finished run.

matplotlib's Agg canvas is used directly (no pyplot, no display, no global backend switch); the PNG is written
atomically (:func:`utils.atomic.atomic_write_with`).
"""
from __future__ import annotations

import argparse
import csv
import logging
import math
from pathlib import Path
from typing import Sequence

from utils.atomic import atomic_write_with
from utils.command import parser, run
from utils.errors import MissingFileError

logger = logging.getLogger(__name__)

PNG_NAME = "metrics.png"
COLUMNS = 4  # panels per row
PANEL = (3.2, 2.2)  # inches per panel


def _number(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_curves(csv_path: str | Path) -> dict[str, tuple[list[float], list[float]]]:
    """``{column: (epochs, values)}`` of every numeric column of a ``metrics.csv`` (rows without a value skipped)."""
    with Path(csv_path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for i, row in enumerate(rows):
        epoch = _number(row.get("epoch"))
        x = epoch if epoch is not None else float(i)
        for key, text in row.items():
            value = _number(text)
            if key is None or key == "epoch" or value is None:
                continue
            xs, ys = curves.setdefault(key, ([], []))
            xs.append(x)
            ys.append(value)
    return curves


def plot_metrics(csv_path: str | Path, png_path: str | Path | None = None) -> Path | None:
    """Draw the curves of ``csv_path`` into ``png_path`` (default: ``metrics.png`` beside it); None when the file
    holds no numeric column yet."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # imported when drawn: not on every run's start
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    csv_path = Path(csv_path)
    png_path = Path(png_path) if png_path is not None else csv_path.with_name(PNG_NAME)
    curves = read_curves(csv_path)
    if not curves:
        return None
    cols = min(COLUMNS, len(curves))
    rows = math.ceil(len(curves) / cols)
    width, height = PANEL[0] * cols, PANEL[1] * rows + 0.4
    fig = Figure(figsize=(width, height), dpi=80)  # no layout engine: it draws the figure several times
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=0.45 / width * cols / 2, right=0.98, bottom=0.35 / height, top=1 - 0.55 / height,
                        hspace=0.45, wspace=0.3)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True).flat
    for ax, (name, (xs, ys)) in zip(axes, curves.items()):
        ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, linewidth=1.2)
        ax.set_title(name, fontsize=8, pad=2)
        ax.tick_params(labelsize=7, labelbottom=True)
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.grid(alpha=0.3)
    axes[0].xaxis.set_major_locator(MaxNLocator(5, integer=True))  # shared by all panels
    for ax in list(fig.axes)[len(curves):]:
        ax.set_visible(False)
    fig.suptitle(f"{csv_path.parent.name}: {csv_path.name} by epoch", fontsize=10)
    atomic_write_with(lambda f: fig.savefig(f, format="png"), png_path)
    return png_path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__, prog="python -m training.plot")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="run folder(s) holding metrics.csv "
                                                                         "(or the CSV file itself)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[Path]:
    args = parse_args(argv)
    csvs = [r / "metrics.csv" if r.is_dir() else r for r in args.runs]
    missing = [str(c.resolve()) for c in csvs if not c.is_file()]
    if missing:
        raise MissingFileError(f"no metrics.csv at {', '.join(missing)} (a run folder writes it after its first "
                               "epoch)")
    written = []
    for path in csvs:
        png = plot_metrics(path)
        print(f"{path}: no numeric rows yet" if png is None else f"wrote {png}")
        written += [png] if png is not None else []
    return written


if __name__ == "__main__":
    run(main)
