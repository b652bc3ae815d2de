"""Outputs you can trust (issue 24): whole files whatever happens while they are written, checkpoint checksums,
output places checked before any work, messages that name the real file, the weights fetcher (against a local
HTTP server on 127.0.0.1) and the training-curve plot."""
from __future__ import annotations

import contextlib
import errno
import http.server
import json
import logging
import os
import re
import stat
import threading
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import imageio.v2 as imageio
import numpy as np
import pytest
import torch

from tests.helpers import ROOT, tiny_stage1_config, write_tiny_model
from utils import command
from utils.errors import CheckpointError, CheckpointWriteError, ChecksumMismatchError, MissingFileError, OutputPathError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp" in p.name or p.name.endswith((".part", ".staged"))]


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def read_only(folder: Path, monkeypatch):
    """``folder`` as on a read-only disk: mode 0555 (as root, which writes anywhere, the write check of
    utils.atomic meets EROFS there instead)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    import utils.atomic as atomic

    real = atomic._probe

    def probe(where):
        if Path(where).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, "Read-only file system")
        return real(where)

    monkeypatch.setattr(atomic, "_probe", probe)
    yield


# ------------------------------------------------------------------------------------ 1 whole files
def _video(seed: int, frames: int = 3) -> torch.Tensor:
    return torch.rand(frames, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("kind", ["gif", "mp4", "png"])
def test_a_write_killed_halfway_keeps_the_previous_file(kind, tmp_path, monkeypatch):
    import utils.media as media

    path = tmp_path / f"results.{kind}"
    save = {"gif": media.save_gif, "mp4": media.save_mp4, "png": lambda v, p: media.save_png(v[0], p)}[kind]
    save(_video(0), path)
    before = path.read_bytes()

    def killed(target, *args, **kwargs):  # the encoder dies after writing part of the file
        Path(target).write_bytes(before[: len(before) // 3])
        raise RuntimeError("killed while writing")

    monkeypatch.setattr(media.imageio, {"gif": "mimsave", "mp4": "get_writer", "png": "imwrite"}[kind], killed)
    if kind == "mp4":  # a failed MP4 is a warning (GIF and PNG are still written)
        assert save(_video(1), path) is None
    else:
        with pytest.raises(CheckpointWriteError, match=f"could not write {path}"):
            save(_video(1), path)
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


def test_two_runs_writing_one_file_leave_a_whole_file(tmp_path, monkeypatch):
    """Run A's writer is halfway through results.png when run B writes the whole file: one of the two whole
    files must remain (writing in place mixes them)."""
    import io

    import utils.media as media

    real, a_half, b_done = imageio.imwrite, threading.Event(), threading.Event()

    def interleaved(target, image):
        buf = io.BytesIO()
        real(buf, image, format="png")
        data = buf.getvalue()
        with open(target, "wb") as f:
            if threading.current_thread().name == "A":
                f.write(data[: len(data) // 2])
                f.flush()
                a_half.set()
                b_done.wait(10)
                f.write(data[len(data) // 2:])
            else:
                a_half.wait(10)
                f.write(data)

    monkeypatch.setattr(media.imageio, "imwrite", interleaved)
    path = tmp_path / "results.png"
    images = {"A": _video(1)[0], "B": _video(2)[0]}

    def run(name):
        media.save_png(images[name], path)
        if name == "B":
            b_done.set()

    threads = [threading.Thread(target=run, args=(n,), name=n) for n in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    got = np.asarray(imageio.imread(path))
    assert any(np.array_equal(got, media.to_uint8(img)) for img in images.values())
    assert _leftovers(tmp_path) == []


def test_files_and_folders_follow_the_umask(tmp_path):
    """Checkpoints came out 0600 (tempfile.mkstemp); under umask 022 they are 0644, as any file the user writes."""
    from training.checkpoint_set import write_set
    from training.runfolder import RunFolderLock
    from utils.checkpoint import atomic_save
    from utils.media import save_gif

    for mask, file_mode, dir_mode in ((0o022, 0o644, 0o755), (0o027, 0o640, 0o750)):
        root = tmp_path / f"u{mask:o}"
        with _umask(mask):
            atomic_save({"x": torch.zeros(2)}, root / "run" / "cINN.pth")
            write_set(root / "run", "latest_checkpoint", {"latest_checkpoint_GEN.pth": {"epoch": 0}}, 0)
            save_gif(_video(0), root / "run" / "media" / "a.gif")
            lock = RunFolderLock(root / "run").acquire()
            lock.release()
        files = ["cINN.pth", "latest_checkpoint_GEN.pth", "latest_checkpoint.set.json", "media/a.gif", ".run.lock"]
        assert {f: oct(_mode(root / "run" / f)) for f in files} == {f: oct(file_mode) for f in files}
        assert _mode(root / "run") == dir_mode and _mode(root / "run" / "media") == dir_mode


# ------------------------------------------------------------------------------------ 2 checksums
def _zero_64_bytes_of(path: Path, tensor: torch.Tensor) -> None:
    """Overwrite 64 bytes inside ``tensor``'s stored data with zeros (the file keeps its size and stays loadable)."""
    data = bytearray(path.read_bytes())
    at = bytes(data).find(tensor.numpy().tobytes()[:256])
    assert at > 0
    data[at + 128: at + 192] = bytes(64)
    size = path.stat().st_size
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


def _gen_state(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"epoch": 0, "state_dict": {"w": torch.randn(4096, generator=g)},
            "optim_state_dict": {"state": {0: {"exp_avg_sq": torch.rand(4096, generator=g) + 0.1}}}}


def test_zeroed_bytes_in_a_checkpoint_are_refused_on_resume(tmp_path, caplog):
    """The issue's reproduction: 64 zeroed bytes in a same-size latest_checkpoint_GEN.pth were resumed silently."""
    from training.checkpoint_set import MANIFEST_SUFFIX, write_set
    from training.checkpoints import load_checkpoint_set

    names = ["latest_checkpoint_GEN.pth", "latest_checkpoint_ENC.pth"]
    states = {n: _gen_state(i) for i, n in enumerate(names)}
    write_set(tmp_path, "latest_checkpoint", states, 0)
    assert set(load_checkpoint_set(tmp_path, "latest_checkpoint", names)) == set(names)
    gen = tmp_path / names[0]
    _zero_64_bytes_of(gen, states[names[0]]["optim_state_dict"]["state"][0]["exp_avg_sq"])
    loaded = torch.load(gen)["optim_state_dict"]["state"][0]["exp_avg_sq"]
    assert int((loaded == 0).sum()) == 16  # loadable, silently different
    with pytest.raises(ChecksumMismatchError, match=f"{re.escape(str(gen))} is not the file written with epoch 0"):
        load_checkpoint_set(tmp_path, "latest_checkpoint", names)
    # an older manifest (format 1: sizes only) and a folder without one still resume, with a warning
    manifest = tmp_path / f"latest_checkpoint{MANIFEST_SUFFIX}"
    old = json.loads(manifest.read_text())
    for info in old["files"].values():
        del info["blake2b"]
    manifest.write_text(json.dumps({**old, "format": 1}))
    with caplog.at_level(logging.WARNING):
        load_checkpoint_set(tmp_path, "latest_checkpoint", names)
    assert "records no checksums" in caplog.text and "latest_checkpoint_GEN.pth is used unverified" in caplog.text
    manifest.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_checkpoint_set(tmp_path, "latest_checkpoint", names)
    assert "has no checkpoint-set manifest" in caplog.text


def test_load_model_verifies_the_checksums_a_run_recorded(tmp_path):
    from stage2_cINN.pipeline import load_model
    from training.checkpoint_set import write_set
    from training.checkpoints import save_weights

    tiny = write_tiny_model(tmp_path / "m")
    stage1, stage2 = tiny["dirs"]["stage1"], tiny["dirs"]["stage2"]
    flow = torch.load(stage2 / "cINN.pth")
    ctx = SimpleNamespace(dist=SimpleNamespace(is_main=True), run_dir=stage2)
    save_weights(ctx, flow, "cINN.pth", 3)  # as the cINN trainer writes it: with cINN.set.json
    gen = torch.load(stage1 / "best_PFVD_GEN.pth")
    write_set(stage1, "best_PFVD", {"best_PFVD_GEN.pth": gen}, 0)
    assert json.loads((stage2 / "cINN.set.json").read_text())["files"]["cINN.pth"]["blake2b"]
    load_model(stage2)
    import training.checkpoint_set as sets

    digests, digest = [], sets.file_digest
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sets, "file_digest", lambda *a: digests.append(a) or digest(*a))
        load_model(stage2)
    assert digests == []  # unchanged files are verified once per process
    biggest = max(flow["state_dict"].values(), key=lambda t: t.numel())
    _zero_64_bytes_of(stage2 / "cINN.pth", biggest)
    with pytest.raises(ChecksumMismatchError, match=r"stage2/cINN.pth is not the file written with epoch 3.*delete "
                                                    r".*cINN.set.json"):
        load_model(stage2)
    (stage2 / "cINN.set.json").unlink()  # the user replaced it on purpose
    biggest = max(gen["state_dict"].values(), key=lambda t: t.numel())
    _zero_64_bytes_of(stage1 / "best_PFVD_GEN.pth", biggest)
    with pytest.raises(ChecksumMismatchError, match="stage1/best_PFVD_GEN.pth is not the file"):
        load_model(stage2)


# ------------------------------------------------------------------------------ 3 places checked first
SCRIPTS = {"generate_samples": ["-dataset", "demo"], "generate_transfer": ["-dataset", "demo"],
           "visualize_endpoint": ["-dataset", "bair", "-data_path", "."]}


@pytest.mark.parametrize("script", SCRIPTS)
def test_out_is_checked_before_the_model_is_loaded(script, tmp_path, monkeypatch, capsys):
    import importlib

    import stage2_cINN.pipeline as pipeline

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before -out was checked")

    monkeypatch.setattr(pipeline, "load_model", never)
    main = importlib.import_module(script).main
    (tmp_path / "a_file").write_text("x")
    with read_only(tmp_path / "ro", monkeypatch):
        for out, needle in ((tmp_path / "a_file", "is a file; expected a folder"),
                            (tmp_path / "ro" / "new" / "out", "cannot write there")):
            with pytest.raises(SystemExit) as exit_:
                command.run(main, [*SCRIPTS[script], "-gpu", "-1", "-out", str(out)])
            err = capsys.readouterr().err.strip().splitlines()
            assert exit_.value.code == 2 and err[-1].startswith(f"error: -out {out}") and needle in err[-1], err
    assert not (tmp_path / "ro" / "new").exists()


def test_unwritable_save_path_stops_before_anything_is_created(tmp_path, monkeypatch):
    from training.run import start_run_from_config

    with read_only(tmp_path / "ro", monkeypatch):
        cfg = tiny_stage1_config(str(tmp_path), save_path=str(tmp_path / "ro" / "runs"))
        with pytest.raises(OutputPathError, match=r"run folder \(Training.save_path/Training.savename\) .*ro/runs/"
                                                  r"tiny: cannot write there"):
            start_run_from_config(cfg, -1, "config_stage1.yaml")
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        start_run_from_config(tiny_stage1_config(str(tmp_path), save_path=str(tmp_path / "f")), -1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "ro"] and not list((tmp_path / "ro").iterdir())


def test_evaluation_result_paths_are_checked_before_any_work(tmp_path, monkeypatch):
    import eval_synthesis_quality
    import evaluation.synthesis as synthesis

    monkeypatch.setattr(synthesis, "prepare_run", lambda *a, **k: pytest.fail("started before -out was checked"))
    base = ["-dataset", "bair", "-gpu", "-1", "-data_path", str(tmp_path)]
    with pytest.raises(OutputPathError, match=f"-out {tmp_path} is a folder; expected a file name"):
        eval_synthesis_quality.main([*base, "-out", str(tmp_path)])
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="-work_dir .*is a file"):
        eval_synthesis_quality.main([*base, "-out", str(tmp_path / "r.json"), "-work_dir", str(tmp_path / "f")])


def test_compare_reports_missing_weights_before_reading_any_video(tmp_path, monkeypatch):
    import evaluation.compare as compare
    from utils.media import save_gif

    for side in ("real", "fake"):
        for i in range(2):
            save_gif(_video(i, frames=4), tmp_path / side / f"v{i}.gif")
    (tmp_path / "weights").mkdir()
    read = []
    monkeypatch.setattr(compare, "read_video", lambda path: read.append(path) or pytest.fail("a video was read"))
    with pytest.raises(MissingFileError, match=r"missing metric weights:\nweights file for kinetics_i3d not found: "
                                               r".*weights/PI3D/model_rgb.pth.*models.fetch_weights kinetics_i3d"):
        compare.main(["--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--fvd", "--dtfvd",
                      "--gpu", "-1", "--weights_dir", str(tmp_path / "weights")])
    assert read == []


# ------------------------------------------------------------------------------------ 5 messages
def test_a_full_disk_names_the_checkpoint_not_its_staged_copy(tmp_path, monkeypatch):
    import utils.checkpoint as ck
    from training.checkpoint_set import write_set

    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(ck.torch, "save", save)
    with pytest.raises(CheckpointWriteError) as err:
        write_set(tmp_path, "latest_checkpoint", {"latest_checkpoint_GEN.pth": {}, "latest_checkpoint_ENC.pth": {}}, 1)
    msg = str(err.value)
    assert msg.startswith(f"could not write {tmp_path / 'latest_checkpoint_ENC.pth'}: no space left") and \
        ".staged" not in msg, msg


def test_random_bytes_are_not_a_checkpoint_and_no_unsafe_advice(tmp_path):
    from utils.checkpoint import load_checkpoint

    (tmp_path / "cINN.pth").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "cINN.pth")
    msg = str(err.value)
    assert "cINN.pth: not a PyTorch checkpoint, or a corrupt one" in msg
    assert "weights_only" not in msg and "False" not in msg, msg


def test_a_start_frame_below_16_px_is_warned_with_its_size(tmp_path, caplog):
    from data.images import read_image

    imageio.imwrite(tmp_path / "dot.png", np.full((1, 1, 3), 200, np.uint8))
    imageio.imwrite(tmp_path / "strip.png", np.full((12, 40, 3), 200, np.uint8))
    imageio.imwrite(tmp_path / "fine.png", np.full((16, 16, 3), 200, np.uint8))
    with caplog.at_level(logging.WARNING, logger="data.images"):
        for name in ("dot", "strip", "fine"):
            assert read_image(tmp_path / f"{name}.png", 64).shape == (3, 64, 64)
    assert "dot.png is only 1x1 px (width x height), below 16x16" in caplog.text
    assert "strip.png is only 40x12 px" in caplog.text and "fine.png is only" not in caplog.text


# ------------------------------------------------------------------------------------ 6 fetching weights
class _Files(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` with HTTP Range support; a path in ``cut`` has its next answer cut halfway."""

    files: dict[str, bytes] = {}
    cut: set[str] = set()
    ranges: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        wanted = self.headers.get("Range")
        self.ranges.append((self.path, wanted))
        start = int(wanted.split("=")[1].split("-")[0]) if wanted else 0
        if start >= len(data):  # as real servers do: 416 with the file's size
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.cut:
            self.cut.discard(self.path)
            body = body[: len(body) // 2]
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server and two stand-in weights entries (vgg16 with a full SHA-256, a hub-style file whose
    name carries its hash prefix) that point at it."""
    import hashlib

    from metrics.weights import WEIGHTS

    rng = np.random.default_rng(0)
    vgg, other = rng.bytes(300_000), rng.bytes(50_000)
    prefix = hashlib.sha256(other).hexdigest()[:8]
    _Files.files = {"/vgg16.pth": vgg, "/other.pth": other}
    _Files.cut, _Files.ranges = set(), []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setitem(WEIGHTS, "vgg16", replace(WEIGHTS["vgg16"], url=f"{url}/vgg16.pth",
                                                  sha256=hashlib.sha256(vgg).hexdigest()))
    monkeypatch.setitem(WEIGHTS, "fid_inception", replace(WEIGHTS["fid_inception"], url=f"{url}/other.pth",
                                                          relative_path=f"other-{prefix}.pth", sha256=None))
    yield SimpleNamespace(url=url, vgg=vgg, other=other, prefix=prefix)
    httpd.shutdown()
    httpd.server_close()


def test_fetch_downloads_checks_and_resumes(server, tmp_path, capsys):
    from models import fetch_weights

    dest = tmp_path / "w"
    _Files.cut = {"/vgg16.pth"}  # the connection breaks halfway through the first download
    with pytest.raises(SystemExit) as exit_:
        command.run(fetch_weights.main, ["vgg16", "--dest", str(dest)])
    out, err = capsys.readouterr()
    part = dest / "vgg16-397923af.pth.part"
    assert exit_.value.code == 2 and f"{server.url}/vgg16.pth -> {dest / 'vgg16-397923af.pth'}" in out
    assert err.strip().splitlines()[-1].startswith("error: could not download vgg16")
    assert 0 < part.stat().st_size < len(server.vgg) and not (dest / "vgg16-397923af.pth").exists()
    outcomes = fetch_weights.main(["vgg16", "fid_inception", "--dest", str(dest)])
    assert ("/vgg16.pth", f"bytes={part.stat().st_size if part.exists() else len(server.vgg) // 2}-") in _Files.ranges
    assert (dest / "vgg16-397923af.pth").read_bytes() == server.vgg
    assert (dest / f"other-{server.prefix}.pth").read_bytes() == server.other and _leftovers(dest) == []
    assert [(o.name, o.status) for o in outcomes] == [("vgg16", "downloaded"), ("fid_inception", "downloaded")]
    assert "SHA-256 verified" in outcomes[0].detail and f"prefix {server.prefix} verified" in outcomes[1].detail
    again = fetch_weights.main(["vgg16", "--dest", str(dest)])  # present: checked, not fetched again
    assert again[0].status == "ok" and len([r for r in _Files.ranges if r[0] == "/vgg16.pth"]) == 2


def test_fetch_a_part_as_long_as_the_file_or_longer(server, tmp_path):
    """A whole ``.part`` (HTTP 416, same size) is checked and kept; a longer one (416, other size) is fetched again."""
    from models import fetch_weights

    part = tmp_path / "vgg16-397923af.pth.part"
    part.write_bytes(server.vgg)
    assert fetch_weights.main(["vgg16", "--dest", str(tmp_path)])[0].status == "downloaded"
    assert ("/vgg16.pth", f"bytes={len(server.vgg)}-") in _Files.ranges
    target = tmp_path / "vgg16-397923af.pth"
    assert target.read_bytes() == server.vgg and not part.exists()
    target.unlink()
    part.write_bytes(b"x" * (len(server.vgg) + 1000))  # e.g. left by another version of the file
    assert fetch_weights.main(["vgg16", "--dest", str(tmp_path)])[0].status == "downloaded"
    assert target.read_bytes() == server.vgg and _leftovers(tmp_path) == []


def test_a_bad_checksum_does_not_stop_the_other_files(server, tmp_path, capsys):
    from models import fetch_weights

    (tmp_path / "vgg16-397923af.pth").write_bytes(b"not vgg")  # present, another file
    with pytest.raises(SystemExit) as exit_:
        command.run(fetch_weights.main, ["vgg16", "fid_inception", "--dest", str(tmp_path)])
    out, err = capsys.readouterr()
    assert (tmp_path / f"other-{server.prefix}.pth").read_bytes() == server.other  # fetched after the refusal
    assert exit_.value.code == 2 and "fid_inception" in out and "downloaded" in out
    assert err.strip().splitlines()[-1].startswith("error: ") and "vgg16-397923af.pth (vgg16)" in err


def test_fetch_refuses_a_file_with_another_checksum(server, tmp_path):
    from models import fetch_weights

    _Files.files["/vgg16.pth"] = b"not the published file" * 100
    with pytest.raises(fetch_weights.DownloadChecksumError, match=r"vgg16.pth gave a file whose SHA-256 [0-9a-f]{64}, "
                                                                  r"expected [0-9a-f]{64}.*removed"):
        fetch_weights.main(["vgg16", "--dest", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


def test_fetch_offline_prints_every_url_and_target(tmp_path, monkeypatch, capsys):
    import socket

    from metrics.weights import WEIGHTS
    from models import fetch_weights

    with socket.socket() as s:  # a port nobody listens on: connection refused, as offline
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    for name in ("kinetics_i3d", "vgg16"):
        monkeypatch.setitem(WEIGHTS, name, replace(WEIGHTS[name], url=f"{closed}/{name}"))
    with pytest.raises(SystemExit) as exit_:
        command.run(fetch_weights.main, ["kinetics_i3d", "vgg16", "--dest", str(tmp_path)])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    for name in ("kinetics_i3d", "vgg16"):
        assert f"{closed}/{name} -> {tmp_path / WEIGHTS[name].relative_path}" in out
    assert list(tmp_path.iterdir()) == []


def test_loaders_readme_messages_and_fetcher_name_the_same_paths(tmp_path, monkeypatch, capsys):
    """models/README.md's table, the loaders' default paths, the missing-file messages and the fetcher's targets."""
    from metrics.weights import WEIGHTS, default_weights_path, weights_path
    from models import fetch_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    table = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", (ROOT / "models/README.md").read_text(), re.M))
    assert set(table) == set(WEIGHTS)
    fetch_weights.main(["--list"])
    listed = capsys.readouterr().out
    for name, documented in table.items():
        path = Path(documented.replace("$TORCH_HOME", str(tmp_path / "th")).replace("models/", f"{ROOT}/models/", 1))
        assert default_weights_path(name) == path, name
        assert f"-> {path} " in listed, name
        if not path.is_file():
            with pytest.raises(MissingFileError) as err:
                weights_path(name)
            assert f"place it at {path} " in str(err.value) and f"models.fetch_weights {name}" in str(err.value)
        expected = WEIGHTS[name].sha256
        prefix = re.search(r"-([0-9a-f]{8})\.", path.name)
        assert expected is None or prefix is None or expected.startswith(prefix[1]), name  # hub name = hash prefix
        assert default_weights_path(name, tmp_path / "w") == tmp_path / "w" / WEIGHTS[name].relative_path


# ------------------------------------------------------------------------------------ 7 training curves
def test_training_curves_are_drawn_beside_metrics_csv(tmp_path, monkeypatch, capsys):
    import training.logger as tl
    from training.plot import main as plot_main

    monkeypatch.setattr(tl, "PLOT_INTERVAL_S", 0.0)  # every epoch (a real epoch lasts longer than the interval)
    log = tl.RunLogger(tmp_path, {"Logging": {"mode": "disabled"}})
    png = tmp_path / "metrics.png"
    log.log_epoch({"epoch": 0, "gen/total": 2.0, "val_L1": 0.5})
    first = png.read_bytes()
    log.log_epoch({"epoch": 1, "gen/total": 1.0, "val_L1": 0.25, "val_FVD": 300.0})
    assert png.read_bytes() != first and imageio.imread(png).ndim == 3 and _leftovers(tmp_path) == []
    png.unlink()
    assert plot_main([str(tmp_path)]) == [png] and f"wrote {png}" in capsys.readouterr().out
    quiet = tl.RunLogger(tmp_path / "quiet", {"Logging": {"mode": "disabled"}, "Training": {"save_media": False}})
    quiet.log_epoch({"epoch": 0, "gen/total": 2.0})
    quiet.finish()
    assert (tmp_path / "quiet" / "metrics.csv").is_file() and not (tmp_path / "quiet" / "metrics.png").exists()
    with pytest.raises(SystemExit) as exit_:
        command.run(plot_main, [str(tmp_path / "nothing")])
    assert exit_.value.code == 2 and "no metrics.csv at" in capsys.readouterr().err
