"""The numbers of the paper (Dorkenwald et al., "Stochastic Image-to-Video Synthesis using cINNs", CVPR 2021) that
``reproduce_paper.py`` puts beside the measured ones, each with where it comes from.

Found in public material: BAIR (64x64) FVD 99.3 (Table 4, as quoted in the original repository's issue #5, and the
CVPR poster) and diversity VGG 0.98, I3D 1.93; Landscape (128x128) LPIPS 0.23, FID 10.5, DTFVD 0.59, FVD 134.4
(the CVPR poster on the project page). The iPER and DTDB tables were not found: the arXiv paper 2105.04551 (ar5iv)
and the project page could only be read up to their introduction here, and the original repository's README has
no table; their cells stay empty, marked "not found".

No torch here: ``reproduce_paper.py --help`` lists the metrics before torch is imported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from data.registry import dataset_info

SYNTHESIS = ("FVD", "DTFVD", "FID", "LPIPS")  # metrics.scoring.SYNTHESIS_METRICS (a test keeps them equal)
DIVERSITY = ("VGG", "I3D", "DTI3D")  # metrics.scoring.DIVERSITY_METRICS
ALL_METRICS = SYNTHESIS + DIVERSITY

PROJECT_PAGE = "https://compvis.github.io/image2video-synthesis-using-cINNs/"
POSTER = f"CVPR 2021 poster on the project page ({PROJECT_PAGE})"
TABLE4 = ("paper Table 4 (quoted in https://github.com/CompVis/image2video-synthesis-using-cINNs/issues/5) and "
          + POSTER)
NOT_FOUND = "not found"
NOT_FOUND_WHERE = ("not found: the table was not in the material that could be read (arXiv 2105.04551 on ar5iv and "
                   "the project page only up to their introduction; the original repository's README has no table)")


@dataclass(frozen=True)
class PaperTable:
    """The paper's numbers for one dataset (or DTDB texture): ``values`` per metric, ``sources`` per metric."""

    title: str  # e.g. "BAIR 64x64"
    values: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)

    def value(self, metric: str) -> float | None:
        """The paper's number for ``metric``; None where it was not found."""
        return self.values.get(metric)

    def source(self, metric: str) -> str:
        """Where the number comes from, or why the cell is empty."""
        return self.sources.get(metric, NOT_FOUND_WHERE)


def _table(title: str, values: Mapping[str, float], source: str) -> PaperTable:
    return PaperTable(title, dict(values), {m: source for m in values})


TABLES: dict[str, PaperTable] = {
    "bair": PaperTable("BAIR 64x64", {"FVD": 99.3, "VGG": 0.98, "I3D": 1.93},
                       {"FVD": TABLE4, "VGG": POSTER, "I3D": POSTER}),
    "landscape": _table("Landscape 128x128", {"LPIPS": 0.23, "FID": 10.5, "DTFVD": 0.59, "FVD": 134.4}, POSTER),
    "iPER": PaperTable("iPER 64x64"),
    **{f"DTDB/{t}": PaperTable(f"DTDB {t} 128x128") for t in dataset_info("DTDB").textures},
}


def paper_table(dataset: str, texture: str | None = None) -> PaperTable:
    """The paper's table of ``dataset`` (canonical name; DTDB with its ``texture``)."""
    key = f"{dataset}/{texture}" if texture else dataset
    if key not in TABLES:
        raise KeyError(f"no paper table for {key!r}; known: {', '.join(TABLES)}")
    return TABLES[key]
