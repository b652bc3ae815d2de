"""The architecture (issue #22): layers that point one way (the import-linter contract of ``pyproject.toml``), no
import cycle anywhere (the top-level scripts included), project imports at module level outside the entry points,
and command lines that answer before torch is imported."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("utils", "data", "metrics", "blocks", "training", "stage1_VAE", "stage2_cINN", "evaluation", "models")
SCRIPTS = ("cli", "app", "generate_samples", "generate_transfer", "visualize_endpoint", "eval_synthesis_quality",
           "eval_diversity", "reproduce_paper")
# entry points whose function-level imports keep ``--help`` and argument errors free of torch (or, for cli.py, load
# only the command that runs)
LAZY_ENTRY_POINTS = {"cli", "generate_samples", "generate_transfer", "visualize_endpoint", "stage1_VAE.main",
                     "stage2_cINN.main", "stage2_cINN.AE.main", "reproduce_paper"}
TORCH_FREE = ("cli", "generate_samples", "generate_transfer", "visualize_endpoint", "stage1_VAE.main",
              "stage2_cINN.main", "stage2_cINN.AE.main", "stage1_VAE.config", "stage2_cINN.config",
              "stage2_cINN.AE.config", "stage2_cINN.arguments", "training.config", "data.registry", "data.config",
              "data.formats", "utils.command", "utils.config", "utils.choices", "reproduce_paper",
              "evaluation.paper_numbers")


def _source_files(root: Path) -> dict[str, Path]:
    """``{module name: file}`` of the project's code (not tests, benchmarks or the virtual environment)."""
    out = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if not (rel.parts[0] in PACKAGES or (len(rel.parts) == 1 and rel.stem in SCRIPTS)):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """``(imported project module, at module level)`` of every import statement of ``module``."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:  # the longest project module the name refers to
                name = name.rpartition(".")[0]
            if name and name != module:
                found.append((name, node.col_offset == 0))
    return found


def import_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """(module -> imported project modules, module -> function-level imports) of the code under ``root``."""
    files = _source_files(root)
    graph, lazy = {}, {}
    for module, path in files.items():
        imports = _imports(module, path, set(files))
        graph[module] = {m for m, _ in imports}
        lazy[module] = sorted({m for m, top in imports if not top})
    return graph, lazy


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere():
    graph, _ = import_graph()
    assert {"cli", "generate_samples", "data.registry", "training.run"} <= set(graph)  # the scripts are in it
    assert cycles(graph) == []


def test_project_imports_are_at_module_level_outside_the_entry_points():
    _, lazy = import_graph()
    offenders = {m: imports for m, imports in lazy.items() if imports and m not in LAZY_ENTRY_POINTS}
    assert offenders == {}


LINT_IMPORTS = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
                "--config", "pyproject.toml", "--no-cache"]  # `lint-imports`, with this interpreter


def test_layer_contract_holds():
    res = subprocess.run(LINT_IMPORTS, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if res.returncode != 0 and "No module named importlinter" in res.stderr:
        pytest.fail("import-linter is missing: pip install -r requirements.txt")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 kept, 0 broken" in res.stdout


def test_layer_contract_catches_an_upward_import(tmp_path):
    """A copy of the code in which a generic utility imports the evaluation layer breaks the contract."""
    for path in _source_files(ROOT).values():
        dest = tmp_path / path.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = tmp_path / "utils" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom evaluation import report  # planted\n")
    res = subprocess.run(LINT_IMPORTS, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert res.returncode != 0 and "utils.errors -> evaluation.report" in res.stdout, res.stdout[-3000:]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_command_lines_and_configs_answer_before_torch_is_imported(module):
    code = f"import importlib, sys; importlib.import_module({module!r}); print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "False", f"importing {module} imports torch"
