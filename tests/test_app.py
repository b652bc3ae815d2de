"""The Gradio app (app.py) on the bundled demo model: its functions in-process, the launched server through
gradio_client, and the page in a real headless Chromium. One server (``python app.py`` run in-process through
``app.main``) serves the module; a guard records any connection that leaves 127.0.0.1."""
from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import os
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import app as app_mod  # first: app.py turns analytics off and the Hub offline before gradio is imported
from data.images import list_images, read_image
from data.registry import dataset_info
from data.videos import read_video
from generate_samples import generate
from generate_transfer import load_query
from stage2_cINN.loading import MissingFilesError
from stage2_cINN.pipeline import load_model
from tests.helpers import write_tiny_model
from utils.media import frame_strip, to_uint8

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1200,1000"]


def _local(host) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


class NetGuard:
    """Refuses and records every connection and name lookup that is not for the loopback interface."""

    def __init__(self):
        self.outside: list = []
        self._mp = pytest.MonkeyPatch()

    def __enter__(self) -> "NetGuard":
        connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

        def guarded_connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
                self.outside.append(address)
                raise OSError(f"test guard: connection to {address} refused (only 127.0.0.1)")
            return connect(sock, address)

        def guarded_getaddrinfo(host, *args, **kwargs):
            if not _local(host.decode() if isinstance(host, bytes) else host):
                self.outside.append(host)
                raise socket.gaierror(f"test guard: lookup of {host} refused")
            return getaddrinfo(host, *args, **kwargs)

        self._mp.setattr(socket.socket, "connect", guarded_connect)
        self._mp.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
        return self

    def __exit__(self, *exc) -> None:
        self._mp.undo()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    """``python app.py --port P -gpu -1`` (the demo model), in-process and not blocking; yields its parts."""
    port = _free_port()
    printed = io.StringIO()
    with NetGuard() as guard:
        with contextlib.redirect_stdout(printed):
            ui, app = app_mod.main(["--port", str(port), "-gpu", "-1"], block=False)
        yield {"ui": ui, "app": app, "url": ui.local_url, "port": port, "printed": printed.getvalue(),
               "guard": guard}
        ui.close()


@pytest.fixture(scope="module")
def frame() -> Path:
    return list_images(dataset_info("demo").image_dir())[2]


def _png(path) -> np.ndarray:
    import imageio.v2 as imageio

    return np.asarray(imageio.imread(path))


def test_main_prints_its_local_url_and_builds_the_demo_tabs(served):
    assert f"Running on http://127.0.0.1:{served['port']}/" in served["printed"]
    names = {fn.api_name for fn in served["ui"].fns.values()}
    assert {"sample", "transfer"} <= names and "endpoint" not in names  # the demo model has no control
    assert served["app"].image_files == list_images(ROOT / "assets/GT_samples/demo")
    assert "sample1" in served["app"].clips  # assets/GT_samples/landscape/transfer


def test_command_line_errors_come_before_the_model_is_loaded(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        app_mod.parse_args(["--port", "70000"])
    assert exc.value.code == 2 and "--port must be from 1 to 65535" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # checked by the parser
        app_mod.main(["-ckpt_path", str(tmp_path / "nope"), "-gpu", "-1"], block=False)
    assert exc.value.code == 2 and "argument -ckpt_path/-chkpt: folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFilesError, match="missing model files"):  # printed by cli.run, no traceback
        app_mod.main(["-ckpt_path", str(tmp_path / "empty"), "-gpu", "-1"], block=False)
    with pytest.raises(SystemExit) as exc:
        app_mod.main(["-images", str(tmp_path / "none"), "-gpu", "-1"], block=False)
    assert exc.value.code == 2 and "argument -images: folder not found" in capsys.readouterr().err


def test_sample_gives_the_script_videos_for_the_seed(served, frame):
    app = served["app"]
    start, mp4, files, info = app.sample(str(frame), 1, 17, 7)  # 17 frames: a second pass of G
    assert Path(mp4).suffix == ".mp4" and Path(mp4).stat().st_size > 0
    assert sorted(Path(f).name for f in files) == ["results.gif", "results.mp4", "results.png"]
    assert "1 video(s) of 17 frames at 64x64 px" in info and "s on cpu" in info
    x0 = read_image(frame, 64)
    assert np.array_equal(_png(start), to_uint8(x0))
    expected = generate(app.pipe, x0[None], 1, 17, 1, 7)[0]  # generate_samples.py's video for seed 7
    strips = torch.cat([frame_strip(v) for v in expected], dim=-2)  # (3, 64, 17*64)
    assert np.array_equal(_png(next(f for f in files if f.endswith(".png"))), to_uint8(strips))


@pytest.mark.parametrize("args, message", [
    ((None, 2, 16, 0), "No start frame"),
    (("README.md", 2, 16, 0), "The start frame README.md is not a readable image"),
    (({"path": None}, 2, 16, 0), "No start frame"),  # the page's payload without a file
    (("FRAME", 0, 16, 0), "number of samples must be a whole number from 1 to 8, got 0"),
    (("FRAME", 9, 16, 0), "number of samples"),
    (("FRAME", 2, 15, 0), "sequence length must be a whole number from 16"),
    (("FRAME", 2.5, 16, 0), "number of samples"),
    (("FRAME", 2, 16, "x"), "seed"),
])
def test_bad_input_is_a_message_in_the_page(served, frame, args, message):
    args = tuple(str(frame) if a == "FRAME" else str(ROOT / a) if a == "README.md" else a for a in args)
    with pytest.raises(app_mod.gr.Error, match=message):
        served["app"].sample(*args)


def test_transfer_shows_query_and_result_side_by_side(served, frame):
    app = served["app"]
    mp4, files, info = app.transfer("sample3", str(frame), 16)
    assert mp4.endswith("transfer.mp4") and "1 video (the motion of sample3) of 16 frames" in info
    video = read_video(next(f for f in files if f.endswith(".gif")))
    assert video.shape == (16, 3, 68, 2 * 68)  # (T, 3, H + pad, 2 * (W + pad)): query | result
    with pytest.raises(app_mod.gr.Error, match="Unknown query clip 'nope'"):
        app.transfer("nope", str(frame), 16)


def test_transfer_takes_an_uploaded_query_video(served, frame, real_mp4s, tmp_path):
    app = served["app"]
    upload = {"path": str(real_mp4s["sample11"]), "orig_name": "my clip.mp4"}  # the page's file payload
    mp4, files, info = app.transfer("sample3", str(frame), 16, upload)
    assert "1 video (the motion of my clip.mp4) of 16 frames" in info
    query = load_query(real_mp4s["sample11"], 64, 17)[0, 1:]  # the upload, not sample3, is the query
    shown = read_video(next(f for f in files if f.endswith(".gif")))[:, :, 2:66, 2:66]
    assert (shown - query).abs().mean() < 0.02
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    for bad, message in (({"path": str(tmp_path / "broken.mp4"), "orig_name": "broken.mp4"},
                          "The query video broken.mp4 cannot be used: cannot read video broken.mp4: not a readable"),
                         ({"path": str(ROOT / "README.md"), "orig_name": "README.md"}, "README.md is not a video")):
        with pytest.raises(app_mod.gr.Error, match=message):
            app.transfer("sample3", str(frame), 16, bad)


def test_the_page_says_which_model_runs_and_what_each_button_does(served):
    ui = served["ui"]
    header = next(b.value for b in ui.blocks.values() if getattr(b, "elem_id", None) == "header")
    assert "`models/demo/stage2`" in header and "trained on `folder`" in header and "64 px" in header
    assert "small model" in header and "on a CPU" in header and "not from the method" in header
    assert "python app.py -ckpt_path models/landscape/stage2" in header and "Pretrained models" in header
    buttons = {b.elem_id: b.value for b in ui.blocks.values() if isinstance(b, app_mod.gr.Button)}
    assert buttons == {"sample-generate": "Generate videos from the start frame",
                       "transfer-generate": "Put the query's motion on the start frame"}
    tabs = [b.label for b in ui.blocks.values() if isinstance(b, app_mod.gr.Tab)]
    assert tabs == ["Sample", "Transfer motion"]
    pipe = served["app"].pipe  # another model: no demo note
    assert "small model" not in app_mod.model_header(pipe, "runs/mine/cinn", demo=False)


def test_endpoint_tab_on_a_control_model(tmp_path):
    tiny = write_tiny_model(tmp_path / "control", control=True, seed=3)
    pipe = load_model(tiny["dirs"]["stage2"])
    app = app_mod.DemoApp(pipe, *app_mod.sample_dirs(tiny["dirs"]["stage2"]))
    assert app.image_dir == (ROOT / "assets/GT_samples/bair").resolve()  # the config's Data.dataset
    names = {fn.api_name for fn in app_mod.build_ui(app).fns.values()}
    assert "endpoint" in names and "sample" not in names
    image = str(app.image_files[0])
    lo = app_mod.POS_MIN
    a = app.endpoint(image, lo[0] + 0.001, lo[1] + 0.05, lo[2] + 0.01, 1, 16, 0)
    b = app.endpoint(image, lo[0] + 0.42, lo[1] + 0.50, lo[2] + 0.12, 1, 16, 0)  # other bins, same seed
    assert "1 video(s) of 16 frames at 32x32 px" in a[3]
    png_a, png_b = (_png(next(f for f in r[2] if f.endswith(".png"))) for r in (a, b))
    assert png_a.shape == (32, 16 * 32, 3) and not np.array_equal(png_a, png_b)  # the endpoint steers
    with pytest.raises(app_mod.gr.Error, match="three numbers"):
        app.endpoint(image, "left", 0, 0, 1, 16, 0)


def test_gradio_client_calls_the_stable_api_names(served, frame):
    from gradio_client import Client, handle_file

    client = Client(served["url"], verbose=False, analytics_enabled=False, download_files=tempfile.mkdtemp())
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in api["/sample"]["parameters"]] == ["image", "n", "length", "seed"]
    assert [p["parameter_name"] for p in api["/transfer"]["parameters"]] == ["clip", "image", "length", "video"]
    assert api["/transfer"]["parameters"][3]["parameter_has_default"]  # calls with three arguments still work
    with pytest.raises(Exception, match="number of samples must be a whole number from 1 to 8, got 0"):
        client.predict(handle_file(frame), 0, 16, 0, api_name="/sample")
    with pytest.raises(Exception, match="The start frame README.md is not a readable image"):
        client.predict(handle_file(ROOT / "README.md"), 1, 16, 0, api_name="/sample")
    # the server stayed up: the next call works
    start, video, files, info = client.predict(handle_file(frame), 1, 16, 3, api_name="/sample")
    assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 0
    assert len(files) == 3 and "1 video(s) of 16 frames" in info
    assert served["guard"].outside == []


def test_user_mistakes_are_one_log_line_and_no_traceback(served, frame, tmp_path, capfd, caplog):
    """Issue 24: what the server prints for a user's mistakes (Gradio prints a traceback for every exception
    unless told otherwise): no traceback, one log line per refused request."""
    import logging

    from gradio_client import Client, handle_file

    capfd.readouterr()
    tiny = tmp_path / "tiny.png"
    import imageio.v2 as imageio

    imageio.imwrite(tiny, np.zeros((1, 1, 3), np.uint8))
    client = Client(served["url"], verbose=False, analytics_enabled=False, download_files=tempfile.mkdtemp())
    mistakes = [((handle_file(frame), 0, 16, 0), "/sample"), ((handle_file(ROOT / "README.md"), 1, 16, 0), "/sample"),
                (("nope", handle_file(frame), 16), "/transfer"), (("sample1", handle_file(frame), 5), "/transfer")]
    with caplog.at_level(logging.INFO, logger="app"):
        for args, api in mistakes:
            with pytest.raises(Exception):
                client.predict(*args, api_name=api)
    printed = "".join(capfd.readouterr())
    assert "Traceback" not in printed and "gradio.exceptions.Error" not in printed, printed
    refused = [r for r in caplog.records if r.name == "app"]
    assert len(refused) == len(mistakes) and all("request refused: " in r.getMessage() for r in refused)
    with caplog.at_level(logging.WARNING, logger="data.images"):  # a 1x1 start frame: a warning naming its size
        served["app"].sample(str(tiny), 1, 16, 0)
    assert "tiny.png is only 1x1 px" in caplog.text


def _browser():
    """A headless Chromium driven through the system chromedriver, or the reason why there is none."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package (pip install -r requirements.txt)")
    if missing:
        reason = (f"browser test needs {', '.join(missing)}: apt-get install -y chromium chromium-driver "
                  "(.ci/run installs them)")
        if os.environ.get("I2V_REQUIRE_BROWSER") == "1":  # set by .ci/run: in CI a missing browser fails
            pytest.fail(reason)
        pytest.skip(reason)
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tempfile.mkdtemp(prefix='i2v_chromium_')}"]:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)  # no Selenium Manager download


def test_page_in_a_headless_browser_generates_a_video(served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser()
    try:
        driver.get(served["url"])
        button = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "sample-generate"))
        driver.find_element(By.CSS_SELECTOR, "#sample-image button[aria-label='Remove Image']").click()
        button.click()  # no start frame: a message in the page
        WebDriverWait(driver, 30).until(lambda d: "No start frame" in d.find_element(By.TAG_NAME, "body").text)
        driver.find_element(By.CSS_SELECTOR, ".toast-close").click()
        driver.find_elements(By.CSS_SELECTOR, "#sample-examples button.gallery-item")[2].click()  # a sample frame
        n = driver.find_element(By.CSS_SELECTOR, "#sample-n input[type=number]")
        n.clear()
        n.send_keys("2", Keys.TAB)  # two samples, typed into the page
        button.click()

        def video_src(d):
            srcs = [v.get_attribute("src") for v in d.find_elements(By.CSS_SELECTOR, "#sample-video video")]
            return next((s for s in srcs if s), None)

        src = WebDriverWait(driver, 90).until(video_src)
        assert src.startswith(served["url"]) and src.endswith(".mp4")
        info = WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#sample-info textarea").get_attribute("value"))
        assert "2 video(s) of 16 frames" in info
        shot = Path(os.environ.get("I2V_APP_SCREENSHOT", tmp_path / "app.png"))
        _save_small_png(driver.get_screenshot_as_png(), shot)
        urls = [json.loads(e["message"])["message"]["params"].get("request", {}).get("url", "")
                for e in driver.get_log("performance")]
    finally:
        driver.quit()
    outside = [u for u in urls if u.split(":")[0] in ("http", "https", "ws", "wss")
               and not u.startswith(served["url"].rstrip("/"))]
    assert outside == [], f"the page fetched from outside the server: {outside}"
    assert served["guard"].outside == []


def _save_small_png(png: bytes, path: Path) -> None:
    """The screenshot with a 128-colour palette (a few hundred KB -> about a third)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(128).save(path, optimize=True)
