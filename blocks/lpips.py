"""LPIPS as the training losses use it (stage 1 and the conditioning AE): the metric's network, without trainable
parameters, with the original's always-active dropout by default."""
from __future__ import annotations

from torch import nn

from metrics.lpips_metric import load_lpips


class PinnedDropout(nn.Dropout):
    """``nn.Dropout`` whose train/eval mode is fixed when it is built: ``.train()``/``.eval()`` of a parent
    module leave it alone (the training losses' LPIPS keeps the original's active dropout everywhere)."""

    def __init__(self, p: float, active: bool) -> None:
        super().__init__(p)
        self.training = bool(active)

    def train(self, mode: bool = True) -> "PinnedDropout":
        return self


def make_lpips(vgg_weights: str | None = None, allow_random_backbone: bool = False,
               dropout: bool = False) -> nn.Module:
    """``lpips.LPIPS(net='vgg')`` (v0.1 linear heads shipped with the package) without network access.

    The VGG16 ImageNet backbone (``vgg16-397923af.pth``) is read from ``vgg_weights`` or, when that is None,
    the torch hub cache (``torch.hub.get_dir()/checkpoints``). A missing file raises ``FileNotFoundError``
    naming it and where to get it, unless ``allow_random_backbone`` (tests/demos only): then the backbone
    stays random and a warning is logged. The result maps frames ``(N, 3, H, W)`` in [-1, 1] to distances
    ``(N, 1, 1, 1)``, is in eval mode and has no trainable parameters. One implementation serves training
    and evaluation: this delegates to :func:`metrics.lpips_metric.load_lpips`.

    ``dropout=True`` (``Training.lpips_dropout``, the default of stage 1 and the AE) keeps the dropout
    (p = 0.5) before each linear head active whatever the module's mode, as in the original's losses,
    which never switch their LPIPS to eval mode (so it is random in training and validation alike).
    """
    model = load_lpips("cpu", vgg_weights, allow_random_backbone)
    for head in model.lins:
        layers = head.model
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Dropout):
                layers[i] = PinnedDropout(layer.p, dropout)
    return model
