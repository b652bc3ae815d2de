"""Static device checks of the library code (everything but tests/, benchmarks/ and .ci/), run by ``.ci/run``.

Rules (what fails on a GPU, or slows it, and the CPU never shows):

- ``factory``: a tensor factory (``torch.zeros``, ``torch.tensor``, ...) without ``device=``, outside data
  loading (``data/``: its tensors are made on the CPU and moved by the loops);
- ``cuda``: a call of a tensor's or module's ``cuda`` method (devices come from ``utils.device.get_device``);
- ``host-copy``: ``.numpy()`` / ``.tolist()`` of a value not moved with ``.cpu()`` first;
- ``sync``: ``.item()``, ``float(x)``, ``int(x)``, ``bool(x)`` and the project's syncing helpers
  (``reduce_mean``, ``FiniteMonitor.allow``/``check``) in a trainer's per-step code (``train_step``, and the loops
  of ``train_epoch``): each waits for the GPU.

Each occurrence is fixed or listed in ``.ci/device_lint_allow.txt`` as ``path | function | rule | code  # reason``
(``code``: the call as ``ast.unparse`` writes it; entries survive line moves). An entry without a reason, or one
that matches nothing any more, is an error too.

``python .ci/device_lint.py [ROOT]``: prints one line per problem, exits 1 if there is any.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = Path(__file__).with_name("device_lint_allow.txt")
EXCLUDED = ("tests", "benchmarks", ".ci", ".venv", "build", "shared")
FACTORIES = {"zeros", "ones", "empty", "full", "arange", "rand", "randn", "randint", "randperm", "tensor",
             "as_tensor", "linspace", "logspace", "eye", "empty_strided", "scalar_tensor", "normal", "asarray"}
FACTORY_FREE = ("data/",)  # data loading makes CPU tensors on purpose
SYNC_BUILTINS = {"float", "int", "bool"}
SYNC_HELPERS = {"reduce_mean", "allow", "check"}  # utils.distributed.reduce_mean, FiniteMonitor.allow/check


@dataclass(frozen=True)
class Finding:
    """One occurrence: where, which rule, the call's code."""

    path: str
    function: str
    rule: str
    code: str
    line: int

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.path, self.function, self.rule, self.code

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.code} (in {self.function})"


def _is_torch_factory(node: ast.Call) -> bool:
    f = node.func
    return (isinstance(f, ast.Attribute) and f.attr in FACTORIES and isinstance(f.value, ast.Name)
            and f.value.id == "torch")


def _moved_to_cpu(node: ast.AST) -> bool:
    """Whether a method chain ``a.b().cpu().c()`` contains ``.cpu()`` or ``.to('cpu')``."""
    while isinstance(node, (ast.Call, ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "cpu":
                return True
            if node.func.attr == "to" and any(isinstance(a, ast.Constant) and a.value == "cpu" for a in node.args):
                return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str, trainer: bool) -> None:
        self.path, self.trainer = path, trainer
        self.stack: list[str] = []
        self.per_step = 0  # >0 inside train_step or a loop of train_epoch (trainer files)
        self.findings: list[Finding] = []

    def _add(self, rule: str, node: ast.Call) -> None:
        function = ".".join(self.stack) or "<module>"
        self.findings.append(Finding(self.path, function, rule, ast.unparse(node), node.lineno))

    def _scope(self, node) -> None:
        self.stack.append(node.name)
        step = self.trainer and node.name == "train_step"
        self.per_step += step
        self.generic_visit(node)
        self.per_step -= step
        self.stack.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scope

    def visit_For(self, node: ast.For) -> None:
        loop = self.trainer and bool(self.stack) and self.stack[-1] == "train_epoch"
        self.visit(node.iter)
        self.per_step += loop
        for child in node.body + node.orelse:
            self.visit(child)
        self.per_step -= loop

    def visit_Call(self, node: ast.Call) -> None:
        f = node.func
        if _is_torch_factory(node) and not any(k.arg == "device" for k in node.keywords) \
                and not self.path.startswith(FACTORY_FREE):
            self._add("factory", node)
        if isinstance(f, ast.Attribute) and f.attr == "cuda" and not node.args:
            self._add("cuda", node)
        if isinstance(f, ast.Attribute) and f.attr in ("numpy", "tolist") and not _moved_to_cpu(f.value):
            self._add("host-copy", node)
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if self.per_step and (name == "item" or name in SYNC_HELPERS or (
                isinstance(f, ast.Name) and name in SYNC_BUILTINS and node.args
                and not isinstance(node.args[0], ast.Constant))):
            self._add("sync", node)
        self.generic_visit(node)


def library_files(root: Path) -> list[Path]:
    """The library's Python files under ``root`` (sorted)."""
    return sorted(p for p in root.rglob("*.py")
                  if p.relative_to(root).parts[0] not in EXCLUDED and "site-packages" not in p.parts)


def scan(root: Path) -> list[Finding]:
    """Every occurrence of a rule in the library files under ``root``."""
    findings = []
    for path in library_files(root):
        rel = path.relative_to(root).as_posix()
        visitor = _Visitor(rel, trainer=path.name == "trainer.py")
        visitor.visit(ast.parse(path.read_text(), filename=rel))
        findings += visitor.findings
    return findings


def read_allowlist(path: Path) -> tuple[dict[tuple[str, str, str, str], str], list[str]]:
    """(``{key: reason}``, problems) of an allowlist file."""
    entries, problems = {}, []
    if not path.is_file():
        return entries, problems
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spec, _, reason = line.partition("  # ")
        parts = [p.strip() for p in spec.split(" | ", 3)]
        if len(parts) != 4 or not reason.strip():
            problems.append(f"{path.name}:{n}: expected 'path | function | rule | code  # reason', got {line!r}")
            continue
        entries[tuple(parts)] = reason.strip()
    return entries, problems


def check(root: Path = ROOT, allowlist: Path = ALLOWLIST) -> list[str]:
    """Problems: occurrences not in the allowlist, malformed entries, entries that match nothing."""
    allowed, problems = read_allowlist(allowlist)
    findings = scan(root)
    problems += [str(f) for f in findings if f.key not in allowed]
    seen = {f.key for f in findings}
    problems += [f"{allowlist.name}: stale entry (matches nothing): {' | '.join(k)}" for k in allowed if k not in seen]
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]).resolve() if argv else ROOT
    problems = check(root, ALLOWLIST if root == ROOT else root / ".ci" / ALLOWLIST.name)
    for problem in problems:
        print(problem)
    if problems:
        print(f"device lint: {len(problems)} problem(s); fix them or list them with a reason in {ALLOWLIST.name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
