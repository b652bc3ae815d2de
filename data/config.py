"""The ``Data`` section of every stage's config (the original's keys): which dataset, where, clip length, image
size, augmentation. Read by :func:`data.dataset.get_dataset`; no torch here, so configs are checked before
torch is imported."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from data.registry import get_layout
from utils.config import Described, Key, NonNegFloat, NonNegInt, PosInt, Probability, Text, opt, req


def _dataset_with_data(name: str) -> str:
    get_layout(name)  # ValueError listing the known names (and for a name without data of its own)
    return name


DatasetName = Annotated[Text, AfterValidator(_dataset_with_data), Described("a known dataset name")]

AUGMENTATION_SCHEMA: dict = {
    "brightness": Key(NonNegFloat, 0.0), "contrast": Key(NonNegFloat, 0.0), "saturation": Key(NonNegFloat, 0.0),
    "hue": Key(NonNegFloat, 0.0), "prob_hflip": Key(Probability, 0.5),
}

DATA_SCHEMA: dict = {
    "sequence_length": req(PosInt),
    "img_size": req(PosInt),
    "dataset": req(DatasetName),
    "data_path": req(Text),
    "aug": True,
    "texture": opt(Text),
    "image_format": opt(Text),  # None -> any of png/jpg/jpeg/bmp
    "iter_train": Key(PosInt, 1),
    "iter_eval": Key(PosInt, 1),
    "iter_test": Key(PosInt, 1),
    "reverse": False,
    "test_size": opt(PosInt),  # iPER: number of test clips (None -> 1000)
    "split_dir": opt(Text),  # folder with the split lists (landscape/iPER); default: the packaged lists
    "crop_margin": opt(NonNegInt),  # train crop margin; None -> 16 for landscape/DTDB, 0 otherwise
    "Augmentation": AUGMENTATION_SCHEMA,
}
