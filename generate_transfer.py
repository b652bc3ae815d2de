"""Transfer motion between videos: ``python generate_transfer.py -dataset landscape -gpu 0``.

Each video in ``assets/GT_samples/<dataset>/transfer/`` (or ``-videos``: a video file or a folder of them) is a query
(a folder of frames or a .mp4/.webm/.mov/.avi/.mkv/.m4v/.gif file; only its first frames are decoded). Its motion,
encoded by stage 1 from the posterior mean and mapped to the residual space by the cINN, is put on the start frames
of the other query videos (or of ``-images``: an image, a video or a folder of them). The first ``-query_frames``
frames of a query are read: frame 0 is its start frame, frames 1-16 are encoded (17, the default) or frames 1-15
(16: what the original script read and encoded). Writes ``transfer_<query>.gif`` and ``.mp4`` per query
(``<query>``: the folder's name or the file's stem, e.g. ``transfer_sample11.gif``): top row the query video and the
target start frames, bottom row the query start frame and the transferred videos.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from data.formats import unique_names
from data.registry import dataset_info
from stage2_cINN.arguments import add_model_arguments, finish_model_arguments, image_source, model_dir, video_source
from utils.atomic import check_writable_folder
from utils.command import int_at_least, parser, positive_float, positive_int, run, str2bool
from utils.errors import ArgumentError

if TYPE_CHECKING:  # torch is imported once the arguments are checked
    import torch

logger = logging.getLogger("generate_transfer")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = parser(__doc__)
    add_model_arguments(p, "model folder with config_stage2.yaml and cINN.pth", seq_help="frames per transferred video")
    p.add_argument("-videos", default=None, type=video_source,
                   help="a query video (file) or a folder of them (default: assets/GT_samples/<ds>/transfer)")
    p.add_argument("-images", default=None, type=image_source,
                   help="a target start frame, a video (its first frame) or a folder of them (default: the queries' "
                        "first frames)")
    p.add_argument("-n_targets", type=positive_int, default=5, help="target start frames per query")
    p.add_argument("-use_mean", type=str2bool, default=True, help="encode the query with the posterior mean")
    p.add_argument("-query_frames", type=int_at_least(16, "16 or 17"), default=None,
                   help="frames read per query: 17 (default: start frame + the 16 frames stage 1 encodes in "
                        "training) or 16 (the original script: frames 1-15 are encoded)")
    p.add_argument("-out", default=None, type=Path, help="output folder (default: assets/results/<dataset>/transfer)")
    p.add_argument("-fps", type=positive_float, default=3.0, help="frames per second of the GIF/MP4")
    return finish_model_arguments(p, p.parse_args(argv))


def load_query(path: Path, size: int, n_frames: int) -> "torch.Tensor":
    """The first ``n_frames`` frames of a video (only those are decoded), resized: (1, n_frames, 3, size, size)."""
    from data.augment import resize_clip
    from data.videos import read_video, video_length

    found = video_length(path)
    if found < n_frames:
        raise ArgumentError(f"query video {path} has {found} frames; transfer needs {n_frames} (its start frame and "
                            f"the {n_frames - 1} frames whose motion is encoded)")
    v = read_video(path, n_frames)
    return resize_clip(v, size).clamp(-1, 1).unsqueeze(0)  # as the original: no antialiasing


def main(argv: Sequence[str] | None = None) -> list[Path]:
    args = parse_args(argv)
    info = dataset_info(args.dataset)
    video_dir = args.videos or info.clip_dir(args.texture)
    out = check_writable_folder(args.out or info.results_dir(args.texture, "transfer"), "-out")  # before any work
    # torch and the model's code are imported once the arguments are checked (fast --help and argument errors)
    import torch

    from data.images import check_start_frames, list_start_frames, read_images
    from data.videos import list_videos, video_length
    from stage2_cINN.pipeline import load_model
    from utils.device import get_device
    from utils.media import grid, save_gif, save_mp4, side_by_side

    queries = list_videos(video_dir)
    for query in queries:  # an empty or damaged file stops here, naming it, before the model is loaded
        video_length(query)
    target_files = check_start_frames(list_start_frames(args.images)[: args.n_targets]) if args.images else None
    if target_files is None and len(queries) < 2:
        raise ArgumentError(f"-videos {video_dir}: one query video and no -images; the motion is put on the start "
                            "frames of the other queries or of -images, so give -images (or a folder of videos)")
    pipe = load_model(model_dir(args), get_device(args.gpu), args.precision)
    n = args.query_frames or pipe.frames_per_pass + 1
    if not pipe.frames_per_pass <= n <= pipe.frames_per_pass + 1:
        raise ArgumentError(f"-query_frames must be {pipe.frames_per_pass} or {pipe.frames_per_pass + 1}, got {n}")
    clips = {name: load_query(q, pipe.img_size, n) for name, q in zip(unique_names(queries), queries)}
    images = read_images(target_files, pipe.img_size) if target_files else None
    written = []
    for name, query in clips.items():
        if images is not None:
            targets = images
        else:
            targets = torch.stack([c[0, 0] for k, c in clips.items() if k != name][: args.n_targets])
        moved = pipe.transfer(query, targets, args.seq_length, use_mean=args.use_mean).cpu()
        top = side_by_side([query[0, 1:], *targets])
        bottom = side_by_side([query[0, 0], *moved])
        video = grid([top, bottom])
        written.append(save_gif(video, out / f"transfer_{name}.gif", fps=args.fps))
        save_mp4(video, out / f"transfer_{name}.mp4", fps=args.fps)
    logger.info("wrote %d transfer GIFs to %s", len(written), out)
    return written


if __name__ == "__main__":
    run(main)
