"""The static device check of ``.ci/run`` (``.ci/device_lint.py``): each rule catches its planted violation, the
allowlist silences an entry only with a reason and reports stale entries, and the repository passes."""
from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lint():
    spec = importlib.util.spec_from_file_location("device_lint", ROOT / ".ci" / "device_lint.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["device_lint"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules["device_lint"]


PLANTED = {
    "metrics/planted.py": """
        import torch
        def make(x):
            a = torch.zeros(3)                      # factory
            b = torch.zeros(3, device=x.device)     # fine
            c = x.cuda()                            # cuda
            d = x.numpy()                           # host-copy
            e = x.detach().cpu().numpy()            # fine
            f = x.sum(1).tolist()                   # host-copy
            return a, b, c, d, e, f
        """,
    "data/loading.py": """
        import torch
        def clip():
            return torch.zeros(3)                   # fine: data loading makes CPU tensors
        """,
    "stage9/trainer.py": """
        class Trainer:
            def train_step(self, x):
                return float(x.mean())              # sync
            def train_epoch(self, loader):
                for batch in loader:
                    loss = self.train_step(batch)
                    print(loss.item())              # sync
                return float(loss)                  # fine: once per epoch
        """,
    "tests/test_x.py": "import torch\nx = torch.zeros(3).cuda()\n",  # not library code
}


@pytest.fixture
def tree(tmp_path) -> Path:
    for rel, text in PLANTED.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    return tmp_path


def test_each_rule_catches_its_planted_violation(lint, tree):
    found = {(f.path, f.function, f.rule, f.code) for f in lint.scan(tree)}
    assert found == {
        ("metrics/planted.py", "make", "factory", "torch.zeros(3)"),
        ("metrics/planted.py", "make", "cuda", "x.cuda()"),
        ("metrics/planted.py", "make", "host-copy", "x.numpy()"),
        ("metrics/planted.py", "make", "host-copy", "x.sum(1).tolist()"),
        ("stage9/trainer.py", "Trainer.train_step", "sync", "float(x.mean())"),
        ("stage9/trainer.py", "Trainer.train_epoch", "sync", "loss.item()"),
    }


def test_the_allowlist_needs_a_reason_and_reports_stale_entries(lint, tree, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("metrics/planted.py | make | factory | torch.zeros(3)  # a reason\n"
                     "metrics/planted.py | make | cuda | x.cuda()\n"
                     "metrics/gone.py | f | factory | torch.ones(1)  # the code was removed\n")
    problems = lint.check(tree, allow)
    assert not any("torch.zeros(3)" in p for p in problems)  # allowed with a reason
    assert any("expected 'path | function | rule | code  # reason'" in p for p in problems)  # no reason
    assert any("[cuda] x.cuda()" in p for p in problems)  # so it is not allowed
    assert any("stale entry" in p and "metrics/gone.py" in p for p in problems)
    assert len([p for p in problems if p.startswith(("metrics/", "stage9/"))]) == 5


def test_the_repository_passes(lint, capsys):
    assert lint.main([]) == 0, capsys.readouterr().out
