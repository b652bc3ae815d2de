"""Run the README's CPU smoke recipe and check that every stage really trained and sampling wrote videos.

``python -m tests.smoke_recipe [--out DIR]`` runs the lines of the README's "CPU smoke run" block from the
repository root with ``R`` set to ``DIR`` (default: a temporary folder), then checks each run's
``metrics.csv`` for a finite training loss and the sampling output. ``tests/test_readme.py`` checks the same
recipe without training (its configs load, and its data gives every stage at least one full batch).
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "**CPU smoke run**"
# run folder (relative to R) -> a training-loss column its metrics.csv must hold
TRAINED = {"tiny": "train_gen/total", "tiny_ae": "train_rec_loss", "tiny_cinn": "train_nll"}


def recipe(readme: Path = ROOT / "README.md", marker: str = MARKER) -> tuple[str, list[list[str]]]:
    """(the default of ``R``, the commands of the first bash block after ``marker`` as argument lists with ``$R``
    left in place)."""
    text = readme.read_text()
    block = text.split(marker, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    default = lines[0].split("=", 1)[1]
    assert lines[0].startswith("R="), lines[0]
    return default, [shlex.split(line) for line in lines[1:]]


def substitute(command: list[str], out: Path) -> list[str]:
    return [arg.replace("$R", str(out)) for arg in command]


def check_trained(out: Path) -> dict[str, float]:
    """The last training loss of each stage's run; an AssertionError when a stage took no step."""
    losses = {}
    for run, column in TRAINED.items():
        rows = list(csv.DictReader((out / run / "metrics.csv").open()))
        assert rows and column in rows[-1] and rows[-1][column], f"{run}: no training step logged ({column})"
        losses[run] = float(rows[-1][column])
        assert math.isfinite(losses[run]), (run, losses[run])
    assert (out / "samples" / "results.gif").is_file(), "sampling wrote no results.gif"
    return losses


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="the recipe's R (default: a temporary folder)")
    args = p.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="smoke_"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    start = time.time()
    for command in recipe()[1]:
        command = substitute(command, out)
        t = time.time()
        subprocess.run([sys.executable, *command[1:]], cwd=ROOT, env=env, check=True)
        print(f"# {time.time() - t:.0f} s: {shlex.join(command)[:100]}", flush=True)
    losses = check_trained(out)
    print(f"# smoke recipe: every stage trained ({losses}); {time.time() - start:.0f} s in all, outputs in {out}")
    return losses


if __name__ == "__main__":
    main()
