"""The logs of a training run: ``metrics.csv`` (one row per epoch), its curves ``metrics.png`` (:mod:`training.plot`:
redrawn after an epoch when the last drawing is at least ``PLOT_INTERVAL_S`` old, so after every epoch of a real
run, and at the end of the run) and wandb (online/offline/disabled), rank 0 only."""
from __future__ import annotations

import csv
import io
import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping

from training.plot import plot_metrics
from utils.atomic import atomic_write_text
from utils.config import strip_private

logger = logging.getLogger(__name__)

PLOT_INTERVAL_S = 60.0  # a drawing takes about a second: epochs shorter than this are drawn together


class CSVLogger:
    """Append one row per epoch to a CSV file; new columns extend the header."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _rows(self) -> list[dict]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def _write(self, rows: list[Mapping[str, Any]]) -> None:
        fields: list[str] = []
        for r in rows:
            fields += [k for k in r if k not in fields]
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(out.getvalue(), self.path)

    def log(self, row: Mapping[str, Any]) -> None:
        self._write(self._rows() + [dict(row)])

    def drop_epochs_from(self, epoch: int) -> int:
        """Remove the rows of ``epoch`` and later (a resumed run logs them again); returns how many."""
        rows = self._rows()
        kept = [r for r in rows if not _epoch_at_least(r.get("epoch"), epoch)]
        if len(kept) != len(rows):
            self._write(kept)
        return len(rows) - len(kept)


def _epoch_at_least(value: Any, epoch: int) -> bool:
    try:
        return int(float(value)) >= epoch
    except (TypeError, ValueError):
        return False


def resolve_wandb_mode(mode: str | None) -> str:
    """'online'/'offline'/'disabled'; None -> online if a wandb login exists, else disabled."""
    env = os.environ.get("WANDB_MODE")
    if env:
        return env
    if mode is not None:
        if mode not in ("online", "offline", "disabled"):
            raise ValueError(f"Logging.mode must be online|offline|disabled, got {mode!r}")
        if mode == "online" and not _wandb_logged_in():
            logger.warning("Logging.mode is 'online' but no wandb login was found: logging offline instead")
            return "offline"
        return mode
    return "online" if _wandb_logged_in() else "disabled"


def _wandb_logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


class RunLogger:
    """wandb + CSV logging for rank 0; every method is a no-op on other ranks."""

    def __init__(self, run_dir: Path, config: Mapping, is_main: bool = True, name: str = "run"):
        self.is_main = is_main
        self.csv = CSVLogger(Path(run_dir) / "metrics.csv")
        # the curves are part of a run's media: Training.save_media: False (tests, quick runs) leaves them out
        self.draw_curves = bool((config.get("Training") or {}).get("save_media", True))
        self._plot_failed, self._unplotted = False, False
        self._plotted_at = time.monotonic()  # a run's first drawing comes after PLOT_INTERVAL_S or at its end
        self.wandb = None
        if not is_main:
            return
        log_cfg = config.get("Logging", {})
        mode = resolve_wandb_mode(log_cfg.get("mode"))
        if mode != "disabled":
            try:
                import wandb  # optional at run time: its absence or failure leaves the CSV

                self.wandb = wandb.init(
                    project=log_cfg.get("project") or "image2video", entity=log_cfg.get("entity"),
                    name=name, dir=str(run_dir), mode=mode, config=strip_private(config),
                )
            except Exception as exc:
                logger.warning("wandb could not start (%s); logging to CSV only", exc)

    def log_step(self, logs: Mapping[str, float], step: int) -> None:
        if self.is_main and self.wandb is not None:
            self.wandb.log(dict(logs), step=step)

    def log_epoch(self, row: Mapping[str, Any], step: int | None = None) -> None:
        if not self.is_main:
            return
        self.csv.log(row)
        self._unplotted = self.draw_curves
        if self._unplotted and time.monotonic() - self._plotted_at >= PLOT_INTERVAL_S:
            self.plot()
        if self.wandb is not None:
            self.wandb.log({f"epoch/{k}": v for k, v in row.items()}, step=step)

    def plot(self) -> None:
        """Redraw ``metrics.png`` beside ``metrics.csv``; a failure is logged once and never stops the run."""
        self._plotted_at, self._unplotted = time.monotonic(), False
        try:
            plot_metrics(self.csv.path)
        except Exception as exc:  # a plot is a convenience: the CSV is the record
            if not self._plot_failed:
                logger.warning("could not draw %s (%s: %s); metrics.csv is written as before",
                               self.csv.path.with_name("metrics.png"), type(exc).__name__, exc)
            self._plot_failed = True

    def drop_epochs_from(self, epoch: int) -> None:
        """On resume: drop ``metrics.csv`` rows of ``epoch`` and later, which the run logs again."""
        if self.is_main and (n := self.csv.drop_epochs_from(epoch)):
            logger.info("%s: dropped %d row(s) of epoch %d and later (resumed there)", self.csv.path, n, epoch)

    def finish(self) -> None:
        if self.is_main and self._unplotted:
            self.plot()
        if self.wandb is not None:
            self.wandb.finish()
