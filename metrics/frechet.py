"""Feature sets and the Frechet distance between their Gaussian fits, in float64.

``d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))``. The trace term is computed without
a complex matrix square root: from the eigenvalues of the symmetric PSD matrix
``S1^(1/2) S2 S1^(1/2)`` (``S1^(1/2)`` from ``eigh``; eigenvalues at rounding level, negative ones
included, set to zero), or,
given the features themselves and fewer samples than dimensions, as the nuclear norm of
``A1 A2^T / sqrt((N1 - 1)(N2 - 1))`` with ``A`` the centred feature matrices (whose singular values
are the square roots of the nonzero eigenvalues of ``S1 S2``). Both stay finite, real and accurate
for rank-deficient covariances.

Also: batching helpers shared by the feature extractors of this package.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm import tqdm

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RealStats:
    """Mean (D,), covariance (D, D) and number of the real features of one metric."""

    mu: np.ndarray
    sigma: np.ndarray
    count: int


def _as_features(features: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"expected features of shape (N >= 2, D), got {f.shape}")
    return f


def statistics(features: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    f = _as_features(features)
    return f.mean(0), np.cov(f, rowvar=False)


def _zero_rounding_level(eigenvalues: np.ndarray, scale: float) -> np.ndarray:
    """Eigenvalues with those below the rounding level ``size * eps * scale`` set to exact zeros."""
    tol = eigenvalues.size * np.finfo(np.float64).eps * max(scale, 0.0)
    return np.where(eigenvalues > tol, eigenvalues, 0.0)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``tr((S1 S2)^(1/2))`` for symmetric PSD ``S1``, ``S2`` (possibly singular).

    Eigenvalues at rounding level (relative to the norms of the factors, as numpy's ``matrix_rank``)
    are treated as exact zeros: the null spaces of rank-deficient covariances then contribute nothing,
    where the square roots of rounding noise would add ~1e-8 relative per dimension.
    """
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    w1, v1 = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    w1 = _zero_rounding_level(w1, w1.max(initial=0.0))
    root1 = (v1 * np.sqrt(w1)) @ v1.T
    m = root1 @ sigma2 @ root1
    norm2 = float(np.linalg.eigvalsh((sigma2 + sigma2.T) / 2).max(initial=0.0))
    eig = _zero_rounding_level(np.linalg.eigvalsh((m + m.T) / 2), float(w1.max(initial=0.0)) * norm2)
    return float(np.sqrt(eig).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64.

    Rounding can make the result slightly negative (~1e-12 relative) for identical inputs; it is
    returned as computed.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"shape mismatch: {mu1.shape} vs {mu2.shape}, {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    tr_sqrt = trace_sqrt_product(sigma1, sigma2)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_sqrt)


def frechet_distance_from_features(features1: np.ndarray | torch.Tensor,
                                   features2: np.ndarray | torch.Tensor) -> float:
    """Frechet distance between the Gaussian fits of two feature sets (N1, D) and (N2, D)."""
    f1, f2 = _as_features(features1), _as_features(features2)
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature dimensions differ: {f1.shape[1]} vs {f2.shape[1]}")
    n1, n2, dim = f1.shape[0], f2.shape[0], f1.shape[1]
    if min(n1, n2) > dim:
        return frechet_distance(*statistics(f1), *statistics(f2))
    mu1, mu2 = f1.mean(0), f2.mean(0)
    a1, a2 = f1 - mu1, f2 - mu2
    diff = mu1 - mu2
    tr1 = float((a1 * a1).sum()) / (n1 - 1)
    tr2 = float((a2 * a2).sum()) / (n2 - 1)
    singular = np.linalg.svd(a1 @ a2.T, compute_uv=False)
    tr_sqrt = float(singular.sum()) / np.sqrt((n1 - 1) * (n2 - 1))
    return float(diff @ diff + tr1 + tr2 - 2.0 * tr_sqrt)


def frechet_distance_to_features(mu1: np.ndarray, sigma1: np.ndarray, features2: np.ndarray | torch.Tensor) -> float:
    """Frechet distance between N(mu1, sigma1) (e.g. cached real statistics) and the Gaussian fit of
    features (N2, D).

    With N2 <= D the trace term comes from the N2 x N2 matrix ``A2 S1 A2^T / (N2 - 1)`` (``A2`` the centred
    features), whose eigenvalues are the nonzero eigenvalues of ``S1 S2``: no D x D eigendecomposition.
    """
    f2 = _as_features(features2)
    mu1, sigma1 = np.asarray(mu1, np.float64), np.asarray(sigma1, np.float64)
    n2, dim = f2.shape
    if mu1.shape != (dim,) or sigma1.shape != (dim, dim):
        raise ValueError(f"shape mismatch: statistics of dimension {mu1.shape}, {sigma1.shape}; features {f2.shape}")
    if n2 > dim:
        return frechet_distance(mu1, sigma1, *statistics(f2))
    mu2 = f2.mean(0)
    a2 = f2 - mu2
    m = a2 @ ((sigma1 + sigma1.T) / 2) @ a2.T / (n2 - 1)
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sqrt(_zero_rounding_level(eig, float(eig.max(initial=0.0)))).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + float((a2 * a2).sum()) / (n2 - 1) - 2.0 * tr_sqrt)


def iter_batches(data: torch.Tensor | Iterable[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """Re-chunk a tensor, or an iterable of tensors, into tensors of at most ``batch_size`` along dim 0."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    chunks = [data] if isinstance(data, torch.Tensor) else data
    pending: list[torch.Tensor] = []
    count = 0
    for chunk in chunks:
        while chunk.shape[0] > 0:
            take = min(batch_size - count, chunk.shape[0])
            pending.append(chunk[:take])
            count += take
            chunk = chunk[take:]
            if count == batch_size:
                yield pending[0] if len(pending) == 1 else torch.cat(pending)
                pending, count = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else torch.cat(pending)


@torch.no_grad()
def extract_features(data: torch.Tensor | Iterable[torch.Tensor], fn: Callable[[torch.Tensor], torch.Tensor],
                     batch_size: int, desc: str = "features") -> np.ndarray:
    """Apply ``fn`` to batches of ``data`` (re-chunked to ``batch_size``); stack the outputs as float64 numpy."""
    outputs = [fn(batch).double().cpu() for batch in tqdm(iter_batches(data, batch_size), desc=desc, leave=False)]
    if not outputs:
        raise ValueError("no data to extract features from")
    return torch.cat(outputs).numpy()
