"""A web page for the model: ``python app.py`` (the bundled demo model, CPU is fine) or
``python app.py -ckpt_path models/landscape/stage2 -gpu 0 [-precision bf16]``; prints the URL
(http://127.0.0.1:7860 or the next free port).

Tabs: "Sample" (n videos from one start frame), "Transfer motion" (the motion of a sample clip or of an uploaded
video put on a start frame) and, for an end-effector control model (BAIR, ``models/bair/stage2_control``),
"Endpoint". The header names the model (and says when it is the small CPU-trained demo). Scripts call the same
functions through ``gradio_client`` as ``/sample`` (image, n, length, seed), ``/transfer`` (clip, image, length,
video: an uploaded query that replaces the clip) and ``/endpoint`` (image, x, y, z, n, length, seed). The server
listens on 127.0.0.1 only (``--share`` adds a public gradio.live link), Gradio's analytics are off and the page uses
system fonts, so nothing is fetched from the internet.
"""
from __future__ import annotations

import os

# before gradio is imported: no telemetry and no version check (both would call out at start-up)
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Sequence  # noqa: E402

import gradio as gr  # noqa: E402
import torch  # noqa: E402

from data.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_video_file, suffix_list  # noqa: E402
from data.images import list_images, read_image  # noqa: E402
from data.registry import DATASETS, dataset_info  # noqa: E402
from data.videos import list_videos  # noqa: E402
from generate_samples import generate, write_results  # noqa: E402
from generate_transfer import load_query  # noqa: E402
from stage2_cINN.arguments import add_precision_argument, dataset_of_model, is_demo_model  # noqa: E402
from stage2_cINN.modules.control import POS_MAX, POS_MIN  # noqa: E402
from stage2_cINN.pipeline import load_model  # noqa: E402
from utils.command import add_gpu_argument, existing_folder, parser, run  # noqa: E402
from utils.device import get_device  # noqa: E402
from utils.errors import I2VError  # noqa: E402
from utils.media import save_gif, save_mp4, save_png, side_by_side  # noqa: E402
from utils.paths import REPO_ROOT  # noqa: E402

logger = logging.getLogger("app")

DEMO_MODEL = dataset_info("demo").model_dir()
MAX_SAMPLES, MIN_LENGTH, MAX_LENGTH = 8, 16, 128
FPS = 3.0  # as the scripts write their GIFs/MP4s
KEEP_RUNS = 32  # result folders kept on disk (Gradio serves copies from its own cache)
# system fonts only: a Google font in the theme would make every page view fetch it from the internet
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "monospace"])


def user_error(message: str) -> gr.Error:
    """A mistake of the page's user: shown in the page, one log line in the terminal, no traceback (Gradio prints
    the traceback of every other exception)."""
    logger.info("request refused: %s", message)
    return gr.Error(message, print_exception=False)


def _user_errors(call):
    """A page call whose project errors (:class:`I2VError`: unreadable input and the like) become page messages."""
    @functools.wraps(call)  # Gradio reads the parameters (API names, the progress tracker) from the signature
    def wrapped(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except I2VError as exc:
            raise user_error(str(exc)) from None
    return wrapped


def _whole(value, name: str, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi], else a :func:`user_error` naming the field."""
    try:
        v = float(value)
        ok = v.is_integer() and lo <= v <= hi
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise user_error(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")
    return int(v)


def sample_dirs(model_dir: Path, images: Path | None = None) -> tuple[Path, Path]:
    """Sample start frames and query clips of the model's dataset (``Data.dataset``; the demo model and
    self-made ``folder`` datasets use the demo frames; datasets without clips use landscape's)."""
    dataset, texture = dataset_of_model(model_dir)
    info = DATASETS.get(dataset or "")
    if info is None or not info.has_models:
        info, texture = DATASETS["demo"], None
    clips = info.clip_dir(texture)
    return (Path(images) if images else info.image_dir(texture),
            clips if clips.is_dir() else DATASETS["landscape"].clip_dir())


def _upload(file) -> tuple[str | None, str]:
    """(path, name shown) of a file argument: a path, or the page's file payload ({"path", "orig_name", ...})."""
    if isinstance(file, dict):
        path = file.get("path")
        return path, file.get("orig_name") or Path(str(path)).name
    return file, Path(str(file)).name


def model_header(pipe, model_name: str, demo: bool) -> str:
    """The page's header: which model runs (and for the bundled demo, what it is and where the paper's models are)."""
    data = pipe.config.get("Data", {})
    trained = f"trained on `{data.get('dataset')}`" + (f" ({data['texture']})" if data.get("texture") else "")
    lines = ["### Stochastic image-to-video synthesis with cINNs",
             f"Model `{model_name}`: {trained}, {pipe.img_size} px, {pipe.frames_per_pass} frames per pass, "
             f"on {pipe.device}."]
    if demo:
        lines.append("**This is the bundled demo**: a small model (64 px, reduced channels) trained for 23 minutes on "
                     "a CPU from ten sky time-lapse clips. Its blurry videos and weak motion come from that, not from "
                     "the method. For the paper's models, download the released weights (README, *Pretrained models of "
                     "the paper*) and start `python app.py -ckpt_path models/landscape/stage2` (or another model "
                     "folder).")
    return "\n\n".join(lines)


class DemoApp:
    """The loaded pipeline and the page's three calls; bad input raises ``gr.Error`` (shown in the page, one log
    line in the terminal: :func:`user_error`)."""

    def __init__(self, pipe, image_dir: Path, clip_dir: Path, model_name: str = "", demo: bool = False):
        self.pipe, self.model_name, self.demo = pipe, model_name, demo
        self.image_dir, self.clip_dir = Path(image_dir).resolve(), Path(clip_dir).resolve()
        self.image_files = list_images(self.image_dir) if self.image_dir.is_dir() else []
        self.clips = {p.name: p for p in list_videos(self.clip_dir)} if self.clip_dir.is_dir() else {}
        self._tmp = tempfile.TemporaryDirectory(prefix="i2v_app_")  # removed when the app goes away
        self._runs: list[Path] = []

    # ------------------------------------------------------------------ helpers
    def _run_dir(self) -> Path:
        run = Path(tempfile.mkdtemp(dir=self._tmp.name))
        self._runs.append(run)
        while len(self._runs) > KEEP_RUNS:
            shutil.rmtree(self._runs.pop(0), ignore_errors=True)
        return run

    def _start_frame(self, image) -> torch.Tensor:
        """(3, S, S) in [-1, 1], read and resized as the scripts read start frames. ``image``: a path, or the
        page's file payload ({"path", "orig_name", ...}: the calls take their inputs unprocessed, so that
        every bad input gets this app's message rather than Gradio's preprocessing error)."""
        path, name = _upload(image)
        if path is None or str(path) == "":
            raise user_error("No start frame: pick one of the sample frames below the image or upload an image.")
        try:
            return read_image(path, self.pipe.img_size)
        except I2VError:  # data.images reports unreadable files this way
            raise user_error(f"The start frame {name} is not a readable image "
                             f"({suffix_list(IMAGE_SUFFIXES)}).") from None

    def _query(self, clip, video) -> tuple[torch.Tensor, str]:
        """The query (1, frames_per_pass + 1, 3, S, S) and its name: the uploaded ``video`` if any, else ``clip``."""
        path, name = _upload(video) if video else (None, "")
        if path:
            if not is_video_file(name):
                raise user_error(f"The query video {name} is not a video file ({suffix_list(VIDEO_SUFFIXES)}).")
        elif clip in self.clips:
            path, name = self.clips[clip], clip
        else:
            raise user_error(f"Unknown query clip {clip!r}: choose one of {', '.join(self.clips) or '(none found)'} "
                           "or upload a video")
        try:
            return load_query(Path(path), self.pipe.img_size, self.pipe.frames_per_pass + 1), name
        except I2VError as exc:  # empty, damaged, or shorter than start frame + one pass of the generator
            raise user_error(f"The query video {name} cannot be used: {str(exc).replace(str(path), name)}") from None

    def _settings(self, n, length, seed) -> tuple[int, int, int]:
        return (_whole(n, "number of samples", 1, MAX_SAMPLES),
                _whole(length, "sequence length", MIN_LENGTH, MAX_LENGTH),
                _whole(seed, "seed", 0, 2 ** 63 - 1))

    def _info(self, what: str, video: torch.Tensor, took: float) -> str:
        t, _, h, w = video.shape[-4:]
        return f"{what} of {t} frames at {h}x{w} px in {took:.1f} s on {self.pipe.device}"

    def _results(self, x0: torch.Tensor, videos: torch.Tensor, took: float, progress) -> tuple:
        """Start frame PNG, one MP4 (start frame, then the samples), downloads, timing."""
        progress(0.9, desc="writing the videos")
        out = self._run_dir()
        start = save_png(x0, out / "start_frame.png")
        gif = write_results(x0[None], videos, out, FPS)  # results.gif/.mp4/.png, as generate_samples.py
        mp4 = out / "results.mp4"
        files = [str(f) for f in (gif, mp4, out / "results.png") if f.is_file()]
        info = self._info(f"{videos.shape[1]} video(s)", videos[0, 0], took)
        return str(start), str(mp4) if mp4.is_file() else None, files, info

    # ------------------------------------------------------------------ the page's calls
    @_user_errors
    def sample(self, image, n, length, seed, progress=gr.Progress(track_tqdm=True)) -> tuple:
        """/sample: ``n`` videos from one start frame, reproducible from ``seed`` (as generate_samples.py)."""
        n, length, seed = self._settings(n, length, seed)
        x0 = self._start_frame(image)
        progress(0.0, desc="sampling")
        t0 = time.perf_counter()
        videos = generate(self.pipe, x0[None], n, length, 1, seed)  # (1, n, T, 3, H, W)
        return self._results(x0, videos, time.perf_counter() - t0, progress)

    @_user_errors
    def transfer(self, clip, image, length, video=None, progress=gr.Progress(track_tqdm=True)) -> tuple:
        """/transfer: the motion of a sample clip (or of an uploaded ``video``, which replaces it) on a start frame ->
        (query | result) MP4, downloads, timing."""
        length = _whole(length, "sequence length", MIN_LENGTH, MAX_LENGTH)
        x0 = self._start_frame(image)
        progress(0.0, desc="transferring")
        t0 = time.perf_counter()
        query, clip = self._query(clip, video)
        moved = self.pipe.transfer(query, x0[None], length, use_mean=True).cpu()  # (1, T, 3, H, W)
        took = time.perf_counter() - t0
        video = side_by_side([query[0, 1:], moved[0]])  # the query's motion, then the result
        out = self._run_dir()
        files = [save_gif(video, out / "transfer.gif", FPS), save_mp4(video, out / "transfer.mp4", FPS)]
        files = [str(f) for f in files if f is not None]
        mp4 = files[-1] if files[-1].endswith(".mp4") else None
        return mp4, files, self._info(f"1 video (the motion of {clip})", moved[0], took)

    @_user_errors
    def endpoint(self, image, x, y, z, n, length, seed, progress=gr.Progress(track_tqdm=True)) -> tuple:
        """/endpoint: ``n`` videos of a control model that end with the arm at (x, y, z)."""
        n, length, seed = self._settings(n, length, seed)
        try:
            pos = [float(v) for v in (x, y, z)]
        except (TypeError, ValueError):
            pos = [math.nan]
        if not all(math.isfinite(v) for v in pos):
            raise user_error(f"the endpoint needs three numbers x, y, z, got {(x, y, z)!r}")
        cond = torch.tensor([pos])  # (1, 3)
        x0 = self._start_frame(image)
        progress(0.0, desc="sampling")
        t0 = time.perf_counter()
        videos = generate(self.pipe, x0[None], n, length, 1, seed, cond=cond)  # (1, n, T, 3, H, W)
        return self._results(x0, videos, time.perf_counter() - t0, progress)


# ---------------------------------------------------------------------- the page
def _start_frame_input(app: DemoApp, prefix: str, label: str = "start frame") -> gr.Image:
    default = str(app.image_files[0]) if app.image_files else None
    image = gr.Image(default, type="filepath", sources=["upload", "clipboard"], label=label, height=220,
                     elem_id=f"{prefix}-image")
    if app.image_files:
        gr.Examples([[str(f)] for f in app.image_files], inputs=[image], label="sample start frames",
                    elem_id=f"{prefix}-examples")
    return image


def _settings_inputs(prefix: str) -> list:
    return [gr.Slider(1, MAX_SAMPLES, value=4, step=1, label="number of samples", elem_id=f"{prefix}-n"),
            gr.Slider(MIN_LENGTH, MAX_LENGTH, value=16, step=1, label="sequence length (frames)",
                   elem_id=f"{prefix}-length"),
            gr.Number(42, precision=0, minimum=0, label="seed", elem_id=f"{prefix}-seed")]


def _result_outputs(prefix: str, start: bool = True) -> list:
    """[start frame,] video, downloads, time taken: the outputs of one call, in its return order."""
    video = gr.Video(label="start frame, then the samples" if start else "query clip | result",
                     elem_id=f"{prefix}-video", autoplay=True, loop=True, interactive=False, height=240)
    with gr.Row():
        first = [gr.Image(label="model input", type="filepath", interactive=False, buttons=[],
                          height=120, scale=1)] if start else []
        info = gr.Textbox(label="time taken", interactive=False, elem_id=f"{prefix}-info", scale=2)
    files = gr.File(label="downloads", file_count="multiple", interactive=False)
    return first + [video, files, info]


def _button(label: str, prefix: str) -> gr.Button:
    """The tab's primary button; its label says what it does."""
    return gr.Button(label, variant="primary", elem_id=f"{prefix}-generate")


def _listen(button: gr.Button, fn, inputs: list, outputs: list, name: str) -> None:
    # one generation at a time, whichever tab asks (the model is shared)
    # inputs unprocessed (files still go through Gradio's upload checks): the call checks them itself
    button.click(fn, inputs, outputs, api_name=name, concurrency_id="model", concurrency_limit=1, preprocess=False)


def _sample_tab(app: DemoApp) -> None:
    with gr.Row():
        with gr.Column():
            image = _start_frame_input(app, "sample")
            settings = _settings_inputs("sample")
            button = _button("Generate videos from the start frame", "sample")
        with gr.Column():
            outputs = _result_outputs("sample")
    _listen(button, app.sample, [image, *settings], outputs, "sample")


def _transfer_tab(app: DemoApp) -> None:
    names = list(app.clips)
    with gr.Row():
        with gr.Column():
            clip = gr.Dropdown(names, value=names[0] if names else None, label=f"query clip ({app.clip_dir.name})",
                               elem_id="transfer-clip")
            video = gr.File(label="or upload a query video (mp4, gif, webm, ...; replaces the clip above)",
                            file_types=list(VIDEO_SUFFIXES), file_count="single", height=100,
                            elem_id="transfer-upload")
            image = _start_frame_input(app, "transfer", "start frame to put the motion on")
            length = gr.Slider(MIN_LENGTH, MAX_LENGTH, value=16, step=1, label="sequence length (frames)")
            button = _button("Put the query's motion on the start frame", "transfer")
        with gr.Column():
            outputs = _result_outputs("transfer", start=False)
    _listen(button, app.transfer, [clip, image, length, video], outputs, "transfer")


def _endpoint_tab(app: DemoApp) -> None:
    with gr.Row():
        with gr.Column():
            image = _start_frame_input(app, "endpoint")
            gr.Markdown("End-effector position at the last frame (BAIR coordinates; 10 bins per axis).")
            # each axis covers the 10 bins of the control code (values beyond them fall into the end bins)
            pos = [gr.Slider(math.floor(lo * 1e3) / 1e3, math.ceil((lo + span) * 1e3) / 1e3,
                             value=round(lo + span / 2, 3), step=0.001, label=f"endpoint {axis}")
                   for axis, lo, span in zip("xyz", POS_MIN, POS_MAX)]
            settings = _settings_inputs("endpoint")
            button = _button("Generate videos that end at this endpoint", "endpoint")
        with gr.Column():
            outputs = _result_outputs("endpoint")
    _listen(button, app.endpoint, [image, *pos, *settings], outputs, "endpoint")


def build_ui(app: DemoApp) -> gr.Blocks:
    """The page: Sample and Transfer tabs, or the Endpoint tab for a control model."""
    pipe = app.pipe
    with gr.Blocks(title="Image-to-video cINN", analytics_enabled=False, delete_cache=(1800, 3600)) as ui:
        gr.Markdown(model_header(pipe, app.model_name, app.demo), elem_id="header")
        with gr.Tabs():
            if pipe.control:
                with gr.Tab("Endpoint"):
                    _endpoint_tab(app)
            else:
                with gr.Tab("Sample"):
                    _sample_tab(app)
                with gr.Tab("Transfer motion"):
                    _transfer_tab(app)
    return ui


def launch(ui: gr.Blocks, app: DemoApp, port: int | None = None, share: bool = False) -> str:
    """Start the server on 127.0.0.1 without blocking; returns (and prints) the URL."""
    ui.launch(server_name="127.0.0.1", server_port=port, share=share, prevent_thread_lock=True, quiet=True,
              show_error=True, theme=THEME, allowed_paths=[str(app.image_dir), str(app.clip_dir)],
              footer_links=["api", "settings"], run_history=False, ssr_mode=False, mcp_server=False, pwa=False)
    print(f"Running on {ui.local_url}" + (f" and {ui.share_url}" if ui.share_url else ""), flush=True)
    return ui.local_url


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    p.add_argument("-ckpt_path", "-chkpt", default=None, type=existing_folder,
                   help="model folder with config_stage2.yaml and cINN.pth (default: the demo model "
                        "models/demo/stage2)")
    add_gpu_argument(p)
    add_precision_argument(p)
    p.add_argument("-images", default=None, type=existing_folder,
                   help="folder of sample start frames (default: assets/GT_samples/<dataset>)")
    p.add_argument("--port", "-port", type=int, default=None, help="port (default: the first free one from 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs internet)")
    args = p.parse_args(argv)
    if args.port is not None and not 1 <= args.port <= 65535:
        p.error(f"--port must be from 1 to 65535, got {args.port}")
    if args.port is not None and not _port_free(args.port):
        p.error(f"--port {args.port}: 127.0.0.1:{args.port} is in use; pick another or leave --port out")
    return args


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main(argv: Sequence[str] | None = None, block: bool = True) -> tuple[gr.Blocks, DemoApp]:
    args = parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests to 127.0.0.1
    model_dir = Path(args.ckpt_path) if args.ckpt_path else DEMO_MODEL
    if args.images:
        list_images(args.images)  # a missing or empty folder stops here, before the model is loaded
    device = get_device(args.gpu)
    pipe = load_model(model_dir, device, args.precision)
    name = model_dir.resolve()
    app = DemoApp(pipe, *sample_dirs(model_dir, args.images),
                  model_name=str(name.relative_to(REPO_ROOT) if name.is_relative_to(REPO_ROOT) else name),
                  demo=is_demo_model(model_dir))
    ui = build_ui(app)
    launch(ui, app, args.port, args.share)
    if block:
        ui.block_thread()
    return ui, app


if __name__ == "__main__":
    run(main)
