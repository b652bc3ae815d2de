"""``reproduce_paper.py`` (issue #26) end to end on the CPU: tiny models in the released layout for BAIR and
landscape, synthetic data in their layouts (iPER and DTDB absent), random-weight metric files in the released
layouts (a ``-weights_dir``) of which the Kinetics I3D computes FVD, and cheap stand-ins for the other networks;
plus the ``fitvid`` protocol and the paper's numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

import reproduce_paper
from data.frame_io import FrameReadError
from data.synthetic import write_synthetic_dataset
from evaluation import paper_numbers
from evaluation.backbones import Backbones
from evaluation.reproduce_report import Row
from metrics import protocol, scoring
from tests.eval_helpers import small_backbones, write_random_weights
from tests.helpers import write_tiny_model
from utils.checkpoint import file_sha256
from utils.errors import MissingFileError

pytestmark = pytest.mark.usefixtures("single_thread")  # tiny tensors: one intra-op thread

N_CLIPS = 16  # the paper's FVD and I3D diversity need 16 test clips (batches of exactly 16)


class FrameStats:
    """A cheap FID stand-in: per-channel mean and std of each frame."""

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.cat([frames.mean((2, 3)), frames.std((2, 3))], 1)


def cheap_lpips(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """An LPIPS stand-in: the mean squared difference of each frame pair, (N, 1, 1, 1)."""
    return ((x - y) ** 2).mean((1, 2, 3), keepdim=True)


def cheap_vgg(x: torch.Tensor) -> list[torch.Tensor]:
    """A VGG stand-in: five average-pooled copies of the frames (the five feature maps of VGG diversity)."""
    return [torch.nn.functional.avg_pool2d(x, 2 ** k) for k in range(5)]


class Downsampled:
    """Feeds an I3D extractor the videos at 16x16 (keeps the CPU test fast)."""

    def __init__(self, extractor) -> None:
        self.extractor = extractor

    def __call__(self, videos: torch.Tensor) -> torch.Tensor:
        b, t = videos.shape[:2]
        small = torch.nn.functional.interpolate(videos.flatten(0, 1), size=(16, 16), mode="area")
        return self.extractor(small.unflatten(0, (b, t)))


def _released_model(root: Path, dataset: str, data: dict, seed: int) -> None:
    """A tiny model in ``root/<dataset>`` (stage1/, stage2_AE/, stage2/) trained, by its config, on ``data``."""
    write_tiny_model(root / dataset, seed=seed)
    path = root / dataset / "stage2" / "config_stage2.yaml"
    config = yaml.safe_load(path.read_text())
    config["Data"].update({k: v for k, v in data.items() if k != "data_path"})
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("reproduce")
    data = {name: write_synthetic_dataset(name, root / "data" / name, n_videos=N_CLIPS, n_frames=17, size=32)
            for name in ("bair", "landscape")}
    for seed, name in enumerate(("bair", "landscape")):
        _released_model(root / "models", name, data[name], seed)
    weights = write_random_weights(root / "weights", i3d_only=True)  # FID/LPIPS/VGG: the stand-ins below
    loaded = small_backbones(weights, ["FVD", "DTFVD"])
    backbones = Backbones(fvd=Downsampled(loaded.fvd), dtfvd=Downsampled(loaded.dtfvd), fid=FrameStats(),
                          lpips=cheap_lpips, vgg=cheap_vgg, vgg_size=None,
                          weights=dict(loaded.weights), notes=dict(loaded.notes))
    base = ["-data_root", str(root / "data"), "-models", str(root / "models"), "-weights_dir", str(weights),
            "-gpu", "-1", "-workers", "0", "-bs", "16", "-n_trials", "2", "-fitvid_trials", "2", "-n_realiz", "2"]
    return {"root": root, "weights": weights, "backbones": backbones, "base": base}


def _run(setup, tag: str, capsys, *extra: str) -> tuple[dict, str]:
    result = reproduce_paper.main(setup["base"] + ["-out", str(setup["root"] / tag), *extra],
                                  backbones=setup["backbones"])
    return result, capsys.readouterr().out


def _table_lines(out: str, title: str = "") -> list[str]:
    """The printed table lines (of the table whose heading starts with ``### <title>``)."""
    lines, inside = [], not title
    for line in out.splitlines():
        if line.startswith("### "):
            inside = line.startswith(f"### {title}")
        if inside and (line.startswith("|") or line.startswith("### ")):
            lines.append(line)
    return lines


@pytest.fixture
def load_once(monkeypatch):
    """Each tiny model is loaded once for all the evaluations of the test (saves a second per evaluation)."""
    import evaluation.runner

    loaded, load = {}, evaluation.runner.load_model

    def cached(path, device, precision):
        key = (str(path), str(device), precision)
        if key not in loaded:
            loaded[key] = load(path, device, precision)
        return loaded[key]

    monkeypatch.setattr(evaluation.runner, "load_model", cached)


@pytest.mark.usefixtures("load_once")
def test_reproduce_end_to_end(setup, capsys, monkeypatch):
    result, out = _run(setup, "one", capsys)
    # skipped before any work, with what is missing
    plan = out.split("synthesis quality: bair")[0]  # printed before the first evaluation's table
    assert "2 of 7 dataset(s) will be evaluated" in plan
    for label in ("iPER", "DTDB fire", "DTDB clouds", "DTDB vegetation", "DTDB waterfall"):
        assert f"skip  {label}: missing" in plan
    assert "data: no folder" in plan and "iPER/stage2/config_stage2.yaml not found" in plan
    assert [s["dataset"] for s in result["skipped"]] == ["iPER"] + ["DTDB"] * 4

    bair, landscape = result["datasets"]
    assert (bair["dataset"], landscape["dataset"]) == ("bair", "landscape")
    assert [(r["metric"], r["protocol"]) for r in bair["rows"]] == [
        ("FVD", "paper"), ("DTFVD", "paper"), ("FID", "paper"), ("LPIPS", "paper"), ("FVD", "fitvid"),
        ("VGG", "paper"), ("I3D", "paper"), ("DTI3D", "paper")]
    rows = {(r["metric"], r["protocol"]): r for r in bair["rows"]}
    assert rows["FVD", "paper"]["paper"] == 99.3 and rows["VGG", "paper"]["paper"] == 0.98
    assert rows["I3D", "paper"]["paper"] == 1.93 and rows["DTFVD", "paper"]["paper"] is None
    assert rows["FVD", "paper"]["n_trials"] == 2 and rows["FVD", "fitvid"]["n_trials"] == 2
    fvd = rows["FVD", "paper"]
    assert fvd["difference_in_std"] == pytest.approx((fvd["mean"] - 99.3) / fvd["std"])
    # BAIR compares the same frames under paper and fitvid: with the same per-video seeds, the same FVD per trial
    assert rows["FVD", "fitvid"]["trials"] == pytest.approx(fvd["trials"], rel=1e-12)
    land = {r["metric"]: r for r in landscape["rows"]}
    assert [land[m]["paper"] for m in ("LPIPS", "FID", "DTFVD", "FVD")] == [0.23, 10.5, 0.59, 134.4]
    assert "fitvid" not in {r["protocol"] for r in landscape["rows"]}

    # printed tables
    tables = _table_lines(out)
    assert tables[0].startswith("### BAIR 64x64 (paper) - measured at 32x32 on 16 test clips")
    fvd_line = next(line for line in tables if line.startswith("| FVD | paper |"))
    assert f"| 99.3 | {fvd['mean']:.4g} +- {fvd['std']:.2g} (2 trials) | {fvd['difference_in_std']:+.2f} |" in fvd_line
    assert "| DTFVD | paper | not found |" in out and "n/a: no paper number" in out
    assert "| FVD | fitvid | 99.3 (one pass) |" in out

    # what the numbers depend on
    synthesis = bair["runs"]["synthesis"]
    assert synthesis["networks"]["FVD"]["sha256"] == file_sha256(setup["weights"] / "PI3D/model_rgb.pth")
    assert synthesis["n_videos"] == N_CLIPS and synthesis["precision"] == "fp32"
    assert synthesis["frames"].startswith("the start frame + generated frames 1-15 vs real frames 0-15")
    assert landscape["runs"]["synthesis"]["frames"].startswith("generated frames 1-16 vs real frames 0-15")
    assert bair["runs"]["fitvid"]["seeds"]["trials"] == [[249, 0], [249, 1]]
    assert result["environment"]["torch"] == torch.__version__ and result["environment"]["device"] == "cpu"
    folder = setup["root"] / "one"
    written = json.loads((folder / "reproduce_paper.json").read_text())
    assert written["datasets"][0]["rows"] == bair["rows"]
    markdown = (folder / "reproduce_paper.md").read_text()
    assert fvd_line in markdown and "SHA-256" in markdown and "## Skipped or failed" in markdown
    assert (folder / "reproduce_paper.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (folder / "runs" / "bair_fitvid.json").is_file()

    # the same seed, the same numbers (a second run of BAIR's FVD lines only)
    again, out_again = _run(setup, "two", capsys, "-datasets", "BAIR", "-metrics", "fvd", "-fitvid_trials", "0")
    assert "1 of 1 dataset(s) will be evaluated" in out_again
    assert [line for line in _table_lines(out_again) if line.startswith("| FVD")] == [fvd_line]
    assert again["datasets"][0]["rows"] == [rows["FVD", "paper"]]

    # an evaluation that fails costs only its own rows
    import evaluation.reproduce

    def unreadable(*args, **kwargs):
        raise FrameReadError("cannot read video x.mp4: corrupt")

    monkeypatch.setattr(evaluation.reproduce, "evaluate_diversity", unreadable)
    part, _ = _run(setup, "three", capsys, "-datasets", "BAIR", "-metrics", "fvd", "vgg", "-fitvid_trials", "0")
    assert part["datasets"][0]["rows"] == [rows["FVD", "paper"]]
    assert part["skipped"] == [{"dataset": "bair", "texture": None,
                                "missing": ["failed (diversity): cannot read video x.mp4: corrupt"]}]


def test_nothing_present_is_one_error_naming_what_is_missing(setup, tmp_path):
    with pytest.raises(MissingFileError, match="nothing to reproduce"):
        reproduce_paper.main(["-data_root", str(tmp_path), "-models", str(tmp_path), "-gpu", "-1",
                              "-weights_dir", str(setup["weights"]), "-out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_a_corrupt_model_is_listed_not_an_abort(setup, monkeypatch):
    """A weights file whose checksum differs from its run's record skips that dataset; the others are planned."""
    from evaluation import reproduce_plan
    from utils.errors import ChecksumMismatchError

    model_files = reproduce_plan.model_files

    def corrupt_bair(config, folder):
        if folder.parent.name == "bair":
            raise ChecksumMismatchError(f"{folder / 'cINN.pth'} is not the file written with epoch 3's set")
        return model_files(config, folder)

    monkeypatch.setattr(reproduce_plan, "model_files", corrupt_bair)
    args = reproduce_paper.parse_args(setup["base"] + ["-datasets", "BAIR", "landscape"])
    bair, landscape = reproduce_plan.check_items(args, setup["backbones"])
    assert bair.missing == [f"model: {bair.model_dir / 'cINN.pth'} is not the file written with epoch 3's set"]
    assert landscape.missing == []


def test_difference_in_standard_deviations_is_defined_only_with_a_spread():
    assert Row("FVD", "paper", 100.0, "", 104.0, 2.0, (102.0, 106.0)).difference == pytest.approx(2.0)
    assert Row("FVD", "paper", 100.0, "", 104.0, 0.0, (104.0,)).cells()[-1] == "n/a: 1 trial"
    assert Row("FVD", "paper", 100.0, "", 104.0, 0.0, (104.0, 104.0)).cells()[-1] == "n/a: no spread"
    assert Row("FVD", "paper", None, "", 104.0, 1.0, (103.0, 105.0)).cells()[2:] == [
        "not found", "104 +- 1 (2 trials)", "n/a: no paper number"]


def test_paper_numbers_name_their_source_and_the_metrics_of_the_evaluations():
    assert paper_numbers.SYNTHESIS == scoring.SYNTHESIS_METRICS and paper_numbers.DIVERSITY == scoring.DIVERSITY_METRICS
    bair = paper_numbers.paper_table("bair")
    assert bair.value("FVD") == 99.3 and "issues/5" in bair.source("FVD") and "poster" in bair.source("VGG")
    assert paper_numbers.paper_table("DTDB", "fire").value("FVD") is None
    assert paper_numbers.paper_table("iPER").source("FVD").startswith("not found")


def test_fitvid_protocol_takes_the_start_frame_and_15_generated_frames_for_every_dataset():
    seq = torch.arange(17.0).view(1, 17, 1, 1, 1).expand(1, 17, 3, 2, 2)
    fake = 100 + torch.arange(16.0).view(1, 16, 1, 1, 1).expand(1, 16, 3, 2, 2)
    for dataset in ("bair", "landscape", "iPER", "DTDB"):
        real, out = protocol.protocol_slices(dataset, seq, fake, "fitvid")
        assert real[0, :, 0, 0, 0].tolist() == list(range(16))
        assert out[0, :, 0, 0, 0].tolist() == [0] + [100 + k for k in range(15)]
        assert protocol.protocol_length(dataset, 16, "fitvid") == 16
    assert protocol.used_count("FVD", 7, "fitvid") == 7  # every video, no batches of 16
    assert protocol.default_trials("fitvid") == 100 and protocol.default_trials("paper") == 1
    with pytest.raises(protocol.ProtocolError, match="-seq_length must be 16"):
        protocol.check_fitvid_length("fitvid", 10)


def test_command_line_checks(tmp_path):
    import eval_diversity
    import eval_synthesis_quality
    from evaluation.synthesis import check_args

    for argv in (["-data_root", str(tmp_path / "absent")], ["-data_root", str(tmp_path), "-datasets", "kitti"],
                 ["-data_root", str(tmp_path), "-metrics", "PSNR"], ["-data_root", str(tmp_path), "-n_trials", "0"]):
        with pytest.raises(SystemExit) as info:
            reproduce_paper.parse_args(argv)
        assert info.value.code == 2
    args = reproduce_paper.parse_args(["-data_root", str(tmp_path), "-datasets", "dtdb", "sky", "-metrics", "lpips"])
    assert args.datasets == ["landscape", "DTDB"] and args.metrics == ["LPIPS"]  # the registry's order
    base = ["-dataset", "bair", "-data_path", str(tmp_path), "-protocol", "fitvid"]
    args = eval_synthesis_quality.parse_args(base)
    check_args(args)
    assert args.n_trials == 100  # the fitvid protocol's trial count unless -n_trials says otherwise
    assert eval_synthesis_quality.parse_args(base + ["-n_trials", "3"]).n_trials == 3
    with pytest.raises(protocol.ProtocolError, match="-seq_length must be 16"):
        check_args(eval_synthesis_quality.parse_args(base + ["-seq_length", "8"]))
    with pytest.raises(SystemExit):  # fitvid places the start frame: no choice of the diversity script
        eval_diversity.parse_args(base)
