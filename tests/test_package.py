"""The shape of the package: arrows point down the pipeline, no cycles, no private imports, torch-free parts.

Read from the source with ``ast`` (nothing is imported), so a new module is checked the day it lands.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hearai"

# Pipeline order (docs/architecture.md): a module may import its own stage or earlier ones, never later ones.
STAGES = [
    ("hearai.errors", "hearai.validation", "hearai.fsutil", "hearai.jsontext", "hearai.machine"),
    ("hearai.audio",),
    ("hearai.featureconfig",),
    ("hearai.windows",),
    ("hearai.features", "hearai.explain", "hearai.plots"),
    ("hearai.data",),
    ("hearai.models", "hearai.augment", "hearai.weights", "hearai.ear.table"),
    ("hearai.train", "hearai.transfer"),
    ("hearai.interface", "hearai.artifact", "hearai.runtime", "hearai.export", "hearai.pretrained", "hearai.ear"),
    ("hearai.detect",),
    ("hearai.sedeval", "hearai.ear.heads"),
    ("hearai.teach", "hearai.ear.corrections", "hearai.ear.kept"),
    ("hearai.runs",),
    ("hearai.evaluate",),
    ("hearai.crossval",),
    ("hearai.serve",),
    ("hearai.demo", "hearai.cli"),
]
# What runs without torch: the ONNX deployment path (a test also runs it where torch cannot be imported).
TORCH_FREE = ("hearai.errors", "hearai.validation", "hearai.fsutil", "hearai.jsontext", "hearai.machine",
              "hearai.audio",
              "hearai.featureconfig", "hearai.windows", "hearai.weights", "hearai.ear.table", "hearai.interface",
              "hearai.runtime",
              "hearai.detect", "hearai.serve", "hearai.cli")


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


MODULES = _modules()


def _imports(tree: ast.Module, *, top_level_only: bool) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for each import; top level only, or also inside functions."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [alias.name for alias in node.names]))
    return out


def _stage(module: str) -> int:
    """The stage of the longest prefix naming ``module`` (a package's parts may sit in different stages)."""
    matches = [(len(p), index) for index, prefixes in enumerate(STAGES) for p in prefixes
               if module == p or module.startswith(p + ".")]
    if not matches:
        raise AssertionError(f"{module} is in no stage of tests/test_package.py: place it in the pipeline")
    return max(matches)[1]


def _hearai_targets(module: str, imported: str, names: list[str]) -> list[str]:
    """The hearai modules an import statement reaches (``from hearai.x import y`` may name module x.y)."""
    if not imported.startswith("hearai"):
        return []
    targets = [imported] if imported in MODULES else []
    targets += [f"{imported}.{n}" for n in names if f"{imported}.{n}" in MODULES]
    return [t for t in targets if t != module and t != "hearai"]


def test_every_module_sits_in_a_stage_and_imports_nothing_later():
    late = []
    for module, tree in MODULES.items():
        if module == "hearai":
            continue
        for imported, names in _imports(tree, top_level_only=False):
            for target in _hearai_targets(module, imported, names):
                if _stage(target) > _stage(module):
                    late.append(f"{module} -> {target}")
    assert late == []


def test_no_import_cycle():
    graph = {m: {t for imported, names in _imports(tree, top_level_only=True)
                 for t in _hearai_targets(m, imported, names)} for m, tree in MODULES.items()}
    # A package imports its submodules to re-export them; that edge is not a cycle back into the package.
    for module in graph:
        graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
    visiting, done, cycles = set(), set(), []

    def visit(node: str, path: list[str]) -> None:
        if node in done:
            return
        if node in visiting:
            cycles.append(" -> ".join(path[path.index(node):] + [node]))
            return
        visiting.add(node)
        for child in sorted(graph.get(node, ())):
            visit(child, path + [node])
        visiting.discard(node)
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


def test_no_private_name_is_imported_from_another_module():
    private = [f"{module}: from {imported} import {name}" for module, tree in MODULES.items()
               for imported, names in _imports(tree, top_level_only=False) if imported.startswith("hearai")
               for name in names if name.startswith("_") and not name.endswith("__")]
    assert private == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(TORCH_FREE)))
def test_the_deployment_path_imports_no_torch_at_module_level(module):
    """Top-level imports only: torch may be imported inside a function a torch model needs."""
    seen, pending = set(), [module]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for imported, names in _imports(MODULES[current], top_level_only=True):
            assert not imported.split(".")[0] == "torch", f"{module} reaches torch through {current}"
            pending += _hearai_targets(current, imported, names)


def test_each_cli_module_stays_small():
    sizes = {path.name: len(path.read_text().splitlines()) for path in (PACKAGE / "cli").glob("*.py")}
    assert max(sizes.values()) <= 300, sizes
