"""The report of ``reproduce_paper.py``: one table per dataset (metric | protocol | paper | measured | difference),
what the numbers depend on, and a figure; printed and written to ``<out>/reproduce_paper.{md,json,png}``
(atomically).

The difference is counted in standard deviations of the measured trials: (measured mean - paper) / std, with
the sample standard deviation (ddof 1) over the ``-n_trials`` trials. The paper's number is one pass (one sample
per test video), so this says how many trial-to-trial spreads it lies from the measured mean. It is not defined
for one trial (no spread), a spread of 0, or where the paper's number was not found.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import shlex
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evaluation.paper_numbers import ALL_METRICS, NOT_FOUND, paper_table
from evaluation.report import write_json
from evaluation.reproduce_plan import Item, run_path
from metrics.protocol import FITVID, compared_frames
from utils.atomic import atomic_write_text, atomic_write_with

logger = logging.getLogger(__name__)

REPORT_NAME = "reproduce_paper"
DIFFERENCE = ("(measured mean - paper) / std, std = the sample standard deviation (ddof 1) of the measured trials; "
              "not defined for 1 trial, a spread of 0 or a missing paper number")
HEADER = "| metric | protocol | paper | measured (mean +- std, trials) | (measured - paper) / std |"


def _num(value: float) -> str:
    """A number with 4 significant digits (1 decimal from 1000 on)."""
    return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4g}"


@dataclasses.dataclass(frozen=True)
class Row:
    """One metric of one dataset under one protocol: the paper's number and the measured trials."""

    metric: str
    protocol: str
    paper: float | None
    source: str
    mean: float
    std: float
    trials: tuple[float, ...]

    @property
    def difference(self) -> float | None:
        """(mean - paper) / std; None where it is not defined (see the module docstring)."""
        if self.paper is None or len(self.trials) < 2 or not self.std > 0:
            return None
        return (self.mean - self.paper) / self.std

    def cells(self) -> list[str]:
        """The table cells of this row."""
        paper = NOT_FOUND if self.paper is None else f"{self.paper:g}" + (" (one pass)" if self.protocol == FITVID
                                                                             else "")
        n = len(self.trials)
        measured = f"{_num(self.mean)} (1 trial)" if n == 1 else f"{_num(self.mean)} +- {self.std:.2g} ({n} trials)"
        if self.difference is not None:
            diff = f"{self.difference:+.2f}"
        else:
            diff = ("n/a: no paper number" if self.paper is None else "n/a: 1 trial" if n < 2 else "n/a: no spread")
        return [self.metric, self.protocol, paper, measured, diff]

    def record(self) -> dict[str, Any]:
        """The JSON form of this row."""
        return {"metric": self.metric, "protocol": self.protocol, "paper": self.paper, "paper_source": self.source,
                "mean": self.mean, "std": self.std, "n_trials": len(self.trials), "trials": list(self.trials),
                "difference_in_std": self.difference}


def rows_of(item: Item, runs: Mapping[str, Mapping[str, Any] | None]) -> list[Row]:
    """The rows of one dataset from its evaluations' payloads (synthesis, fitvid, diversity)."""
    table = paper_table(item.dataset, item.texture)
    rows = []
    for kind in ("synthesis", "fitvid", "diversity"):
        payload = runs.get(kind)
        if payload is None:
            continue
        for m in [m for m in ALL_METRICS if m in payload["metrics"]]:
            rows.append(Row(m, payload["protocol"], table.value(m), table.source(m), float(payload["metrics"][m]),
                            float(payload["std"][m]), tuple(float(t[m]) for t in payload["trials"])))
    return rows


def _counts(payload: Mapping[str, Any]) -> str:
    """What each metric used of what was available, in words."""
    parts = []
    for m, c in payload["counts"].items():
        if "fake" in c:
            parts.append(f"{m} {c['fake']} of {c['fake_available']} {c['unit']}")
        elif "used" in c:
            parts.append(f"{m} {c['used']} of {c['available']} {c['unit']}")
        else:
            parts.append(f"{m} {c['start_frames']} of {c['available']} start frames x {c['realisations']} "
                         "realisations")
    return ", ".join(parts)


def run_record(item: Item, kind: str, payload: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """What one evaluation's numbers depend on (from its result payload)."""
    record = {"result_file": str(path), "protocol": payload["protocol"], "n_trials": payload["n_trials"],
              "n_videos": payload["n_videos"], "precision": payload["precision"], "seq_length": payload["seq_length"],
              "counts": payload["counts"], "counts_text": _counts(payload), "seeds": payload["seeds"],
              "networks": {m: {"backbone": payload["backbones"].get(m), **payload["weights"][m]}
                           for m in payload["weights"]}}
    if kind == "diversity":
        record.update(n_realiz=payload["n_realiz"], frames="the generated frames of different realisations")
    else:
        record.update(frames_per_video=payload["frames_per_video"],
                      frames=compared_frames(item.dataset, payload["seq_length"], payload["protocol"]))
    return record


def environment(device: torch.device, world_size: int) -> dict[str, Any]:
    """torch, CUDA, device, ranks, Python and numpy versions."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device), "device_name": name,
            "world_size": world_size, "python": platform.python_version(), "numpy": np.__version__}


def dataset_record(item: Item, runs: Mapping[str, Mapping[str, Any] | None], args: argparse.Namespace
                   ) -> dict[str, Any]:
    """The JSON record of one dataset: its table and what each of its evaluations depends on."""
    return {"dataset": item.dataset, "texture": item.texture, "title": paper_table(item.dataset, item.texture).title,
            "img_size": item.img_size, "test_clips": item.clips, "data_dir": str(item.data_dir),
            "model_dir": str(item.model_dir), "rows": [r.record() for r in rows_of(item, runs)],
            "runs": {k: run_record(item, k, p, run_path(args, item, k)) for k, p in runs.items() if p is not None}}


def table_text(record: Mapping[str, Any]) -> str:
    """The markdown table of one dataset record (printed as it is)."""
    size = f"{record['img_size']}x{record['img_size']}" if record["img_size"] else "?"
    lines = [f"### {record['title']} (paper) - measured at {size} on {record['test_clips']} test clips", "", HEADER,
             "|---|---|---|---|---|"]
    for row in record["rows"]:
        cells = Row(row["metric"], row["protocol"], row["paper"], row["paper_source"], row["mean"], row["std"],
                    tuple(row["trials"])).cells()
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def depends_text(record: Mapping[str, Any]) -> str:
    """The markdown list of what one dataset's numbers depend on."""
    lines = [f"**{record['title']}**: data `{record['data_dir']}`, model `{record['model_dir']}`", ""]
    for kind, run in record["runs"].items():
        trials = ", ".join(f"[{s}, {t}]" for s, t in run["seeds"]["trials"])
        lines.append(f"- {kind}: protocol `{run['protocol']}`, {run['n_trials']} trial(s) (seeds [seed, trial]: "
                     f"{trials}; per video: {run['seeds']['per_video']}), {run['n_videos']} test videos, "
                     f"{run['frames']}, precision {run['precision']}; used: {run['counts_text']}; result file "
                     f"`{run['result_file']}`")
        for m, net in run["networks"].items():
            lines.append(f"  - {m}: {net.get('backbone')}; weights `{net.get('file')}`, SHA-256 `{net.get('sha256')}`")
    return "\n".join(lines)


def skipped_text(skipped: Sequence[Mapping[str, Any]]) -> str:
    """The markdown list of the skipped datasets with what they lack."""
    lines = []
    for s in skipped:
        label = f"{s['dataset']} {s['texture']}" if s["texture"] else s["dataset"]
        lines.append(f"- {label}: " + "; ".join(s["missing"]))
    return "\n".join(lines) if lines else "none"


def markdown(report: Mapping[str, Any]) -> str:
    """``reproduce_paper.md``."""
    env = report["environment"]
    parts = ["# Reproducing the paper's tables", "",
             f"`{report['command']}`", "",
             f"Measured: mean +- sample std over the trials (trial count in brackets). Difference: {DIFFERENCE}. "
             "Paper numbers and their sources: `evaluation/paper_numbers.py`.", ""]
    for record in report["datasets"]:
        parts += [table_text(record), ""]
    parts += [f"![paper vs measured]({report['figure']})", "", "## Skipped or failed", "",
              skipped_text(report["skipped"]), "", "## What the numbers depend on", "",
              f"torch {env['torch']} (CUDA {env['cuda']}), device {env['device']} ({env['device_name']}), "
              f"{env['world_size']} rank(s), Python {env['python']}, numpy {env['numpy']}; the FVD network "
              f"`-i3d {report['settings']['i3d']}` (hassony2 and the TF-Hub weights of `-i3d torchscript` give "
              "different FVDs, see README: Reproducing the paper).", ""]
    for record in report["datasets"]:
        parts += [depends_text(record), ""]
    return "\n".join(parts)


def figure(report: Mapping[str, Any], path: Path) -> Path:
    """A PNG of measured / paper per metric (1 = the paper's number; error bars: std / paper), one panel per
    dataset (matplotlib, Agg); metrics without a paper number are named under the panel."""
    records = report["datasets"]
    fig = Figure(figsize=(6.4, 2.4 * len(records)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(records), 1, squeeze=False)[:, 0]
    for ax, record in zip(axes, records):
        rows = [r for r in record["rows"] if r["paper"] is not None]
        x = list(range(len(rows)))
        ax.bar(x, [r["mean"] / r["paper"] for r in rows], yerr=[r["std"] / r["paper"] for r in rows],
               color="tab:blue", capsize=4, label="measured / paper")
        ax.axhline(1.0, color="0.3", linestyle="--", linewidth=1, label="paper")
        ax.set_xticks(x, [f"{r['metric']} ({r['protocol']})\n{r['paper']:g} vs {_num(r['mean'])}" for r in rows],
                      fontsize=7)
        missing = [f"{r['metric']} ({r['protocol']})" for r in record["rows"] if r["paper"] is None]
        ax.set_title(record["title"] + (f"; no paper number: {', '.join(missing)}" if missing else ""), fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel("measured / paper", fontsize=7)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    atomic_write_with(lambda f: fig.savefig(f, format="png", dpi=100), path)
    return path


def write_report(args: argparse.Namespace, results: Sequence[tuple[Item, Mapping[str, Any]]],
                 skipped: Sequence[Item], device: torch.device, world_size: int) -> dict[str, Any]:
    """Print the tables and write ``reproduce_paper.md``, ``.json`` and ``.png`` to ``-out``; the report."""
    out = Path(args.out)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    command = shlex.join(["python", "reproduce_paper.py", *getattr(args, "argv", [])])
    report = {"script": REPORT_NAME, "command": command,
              "settings": settings, "environment": environment(device, world_size), "difference": DIFFERENCE,
              "figure": f"{REPORT_NAME}.png",
              "datasets": [dataset_record(item, runs, args) for item, runs in results],
              "skipped": [{"dataset": i.dataset, "texture": i.texture, "missing": list(i.missing)} for i in skipped]}
    figure(report, out / f"{REPORT_NAME}.png")
    write_json(out / f"{REPORT_NAME}.json", report)
    atomic_write_text(markdown(report), out / f"{REPORT_NAME}.md")
    print("\n\n".join(table_text(r) for r in report["datasets"]))
    if skipped:
        print("\nskipped or failed:\n" + skipped_text(report["skipped"]))
    print(f"\nreport written to {out / REPORT_NAME}.md, .json and .png")
    return report
