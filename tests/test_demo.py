"""The bundled demo model (models/demo): it loads, samples differ with the residual, and the videos start
at the given start frame."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data.images import list_images, read_images
from data.registry import dataset_info
from stage2_cINN.pipeline import load_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipe():
    return load_model(ROOT / "models" / "demo" / "stage2")


@pytest.fixture(scope="module")
def x0(pipe):
    return read_images(list_images(dataset_info("demo").image_dir()), pipe.img_size)


def test_demo_model_loads_in_the_released_layout(pipe):
    assert pipe.img_size == 64 and not pipe.control
    assert (ROOT / "models/demo/stage1/config_stage1.yaml").is_file()
    assert (ROOT / "models/demo/stage2_AE/Encoder_stage2.pth").is_file()


def test_samples_differ_with_the_residual(pipe, x0):
    g = torch.Generator().manual_seed(0)
    r1, r2 = torch.randn(len(x0), pipe.z_dim, generator=g), torch.randn(len(x0), pipe.z_dim, generator=g)
    a, b = pipe.sample(x0, 16, residual=r1), pipe.sample(x0, 16, residual=r2)
    assert a.shape == (len(x0), 16, 3, 64, 64)
    assert torch.equal(a, pipe.sample(x0, 16, residual=r1))  # reproducible
    per_video = (a - b).abs().flatten(1).mean(1)
    assert (per_video > 1e-3).all(), per_video


def test_first_frames_stay_close_to_the_start_frame(pipe, x0):
    video = pipe.sample(x0, 16, residual=torch.randn(len(x0), pipe.z_dim, generator=torch.Generator().manual_seed(1)))
    first = (video[:, 0] - x0).abs().flatten(1).mean(1)  # each video's first frame vs its own start frame
    other = (video[:, 0] - x0.roll(1, dims=0)).abs().flatten(1).mean(1)  # vs another start frame
    assert (first < 0.2).all(), first
    assert (first < other).all(), (first, other)


def test_motion_figures_measure_the_issue_goals_on_known_videos():
    from models.demo.evaluate_demo import check_goals, motion_figures

    x0 = torch.zeros(1, 3, 8, 8)
    ramp = torch.arange(16).float().view(1, 1, 16, 1, 1, 1) * (2 / 127.5)  # +2 grey levels per frame (0-255)
    pattern = torch.zeros(3, 8, 8)
    pattern[:, :4] = 10 / 127.5  # a structure of +10 on the top half
    base = torch.zeros(1, 1, 16, 3, 8, 8) + ramp
    videos = torch.cat([base + 1 / 127.5, base + 7 / 127.5 + pattern], dim=1)  # (1, 2, 16, 3, 8, 8)
    fig = motion_figures(videos, x0)
    assert fig["first"] == pytest.approx(4 + 2.5, abs=1e-3)  # frame 0 at +1 and +7 (+10 on half) vs 0
    assert fig["steps"] == pytest.approx([2.0] * 15, abs=1e-3) and fig["step_max_over_median"] == pytest.approx(1.0)
    assert fig["drift"] == pytest.approx(30.0, abs=1e-3)
    assert fig["spread"] == pytest.approx(6 + 5, abs=1e-3)  # colour offset 6, structure 10 on half the pixels
    assert fig["spread_no_colour"] == pytest.approx(5.0, abs=1e-3)  # offset removed, structure (+-5) kept
    flicker = videos.clone()
    flicker[:, :, -1] += 20 / 127.5  # a tint on the last frame
    rows = {r["key"]: r for r in check_goals({"held_out": motion_figures(flicker, x0)})}
    assert not rows["step_max_over_median"]["met"] and not rows["step_max"]["met"]
    assert rows["drift"]["met"] and rows["spread"]["met"]
