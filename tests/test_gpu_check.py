"""``benchmarks/gpu_check.py`` on the CPU with --smoke (``.ci/run`` runs all of it; here without the pytest and
training sections and the compiled sampling, for time): every check runs and the JSON and Markdown are written."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def gpu_check():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check

    yield gpu_check
    sys.path.remove(str(ROOT / "benchmarks"))


def test_smoke_run_writes_every_measurement(gpu_check, tmp_path):
    assert gpu_check.main(["--device", "cpu", "--smoke", "--out", str(tmp_path), "--skip", "tests,training",
                           "--variants", "fp32,bf16,bf16+channels_last"]) == 0
    report = json.loads((tmp_path / "gpu_check_cpu_smoke.json").read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) == {"tiny 32px fp32", "tiny 32px bf16", "tiny 32px bf16+channels_last", "features"}
    assert all(c["status"] == "ok" for c in checks.values()), checks
    fp32 = checks["tiny 32px fp32"]["metrics"]
    assert fp32["videos_per_s"] > 0 and fp32["gflop_per_call"] > 1 and fp32["tflops"] > 0
    assert checks["tiny 32px bf16"]["metrics"]["psnr_vs_fp32"] > 15  # the same videos, in bfloat16
    assert checks["features"]["metrics"]["videos_per_s"] > 0
    md = (tmp_path / "gpu_check_cpu_smoke.md").read_text()
    assert md.startswith("# gpu_check:") and md.count("| ok |") == 4


def test_a_spent_budget_skips_and_still_writes(gpu_check, tmp_path):
    assert gpu_check.main(["--device", "cpu", "--smoke", "--out", str(tmp_path), "--budget", "0"]) == 0
    report = json.loads((tmp_path / "gpu_check_cpu_smoke.json").read_text())
    assert report["checks"] and {c["status"] for c in report["checks"]} == {"skipped"}


def test_bf16_peaks_by_device_name(gpu_check, monkeypatch):
    assert gpu_check.peak_bf16_tflops(torch.device("cpu")) is None
    for name, peak in (("NVIDIA H200", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H100 80GB HBM3", 989.0),
                       ("NVIDIA A100-SXM4-80GB", 312.0), ("Tesla V100-SXM2-16GB", None)):
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, name=name: name)
        assert gpu_check.peak_bf16_tflops(torch.device("cuda", 0)) == peak, name
