"""Golden tensors from the reference implementation: every ``golden_*.pt`` fixture is reproduced.

A fixture holds ``config_stage1``, ``config_cinn``, ``state_dict`` (per network), ``inputs`` and ``outputs``
(keys such as ``decoder(x0,z)``). The fixture alone drives each check; nothing is special-cased per file.
"""
import os
from pathlib import Path

import pytest
import torch

from stage1_VAE.modules import build_stage1

_REPO_ROOT = Path(__file__).resolve().parents[1]
_FIXTURES = Path(os.environ.get("I2V_FIXTURES", _REPO_ROOT.parent / "shared" / "fixtures"))
_GOLDEN = sorted(p.name for p in _FIXTURES.glob("golden_*.pt")) if _FIXTURES.is_dir() else []
_PARAMS = _GOLDEN or [
    pytest.param(None, marks=pytest.mark.skip(reason=f"no golden_*.pt fixtures in {_FIXTURES} (set $I2V_FIXTURES)"))
]

RTOL = 1e-4


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    """float32 agreement: ~1e-4 relative to the element and to the tensor's scale."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    scale = max(expected.abs().max().item(), 1e-6)
    torch.testing.assert_close(actual, expected, rtol=RTOL, atol=RTOL * scale, msg=lambda m: f"{name}: {m}")


def _output(fx: dict, key: str):
    assert key in fx["outputs"], f"fixture lacks outputs['{key}'] (has {sorted(fx['outputs'])})"
    return fx["outputs"][key]


def _check_stage1(fx: dict) -> None:
    with torch.device("meta"):  # skip random init: every tensor comes from the fixture (assign=True)
        nets = build_stage1(fx["config_stage1"])
    for name, net in nets.items():
        net.load_state_dict(fx["state_dict"][name], strict=True, assign=True)
        net.eval()
    inp = fx["inputs"]
    x0, z, seq = inp["x0"], inp["z"], inp["seq"]
    with torch.no_grad():
        decoded = nets["decoder"](x0, z)
        _assert_close(decoded, _output(fx, "decoder(x0,z)"), "decoder(x0,z)")

        mu, logvar = nets["encoder"].encode(seq)
        _assert_close(mu, _output(fx, "encoder.mu(seq)"), "encoder.mu(seq)")
        _assert_close(logvar, _output(fx, "encoder.logvar(seq)"), "encoder.logvar(seq)")

        logit, fmaps = nets["disc_t"](seq)
        _assert_close(logit, _output(fx, "disc_t.logit(seq)"), "disc_t.logit(seq)")
        expected_fmaps = _output(fx, "disc_t.fmaps(seq)")
        assert len(fmaps) == len(expected_fmaps) == 4
        for i, (got, exp) in enumerate(zip(fmaps, expected_fmaps)):
            _assert_close(got, exp, f"disc_t.fmaps(seq)[{i}]")

        _assert_close(nets["disc_s"](seq[:, 0]), _output(fx, "disc_s.logit(seq[:,0])"), "disc_s.logit(seq[:,0])")


@pytest.mark.parametrize("path", _PARAMS)
def test_golden(path, fixtures_dir):
    fx = torch.load(fixtures_dir / path, map_location="cpu", weights_only=False)
    assert {"config_stage1", "state_dict", "inputs", "outputs"} <= set(fx), f"{path}: unexpected layout {sorted(fx)}"
    _check_stage1(fx)
