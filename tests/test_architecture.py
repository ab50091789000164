"""The house rules, checked: torch only under ``learn/``, no import cycles, the floors hold.

The import graph is read from the source with :mod:`ast` (every ``import`` and
``from ... import``, at module level or inside functions, since a lazy import is
still a dependency); the run-time checks import modules in a fresh interpreter
and look at :data:`sys.modules`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "biosr"
HEAVY = ("torch", "lightning", "pytorch_lightning", "torchvision")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The biosr module `name` denotes (a module, or the package holding an attribute)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(biosr modules, top-level outside packages) that `module` imports anywhere in its body."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    inner: set[str] = set()
    outer: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "biosr" or name.startswith("biosr."):
                target = _resolve(name)
                if target and target != module:
                    inner.add(target)
            elif name:
                outer.add(name.partition(".")[0])
    return inner, outer


GRAPH = {m: _imports(m) for m in MODULES}


def _room(module: str) -> str:
    """The subpackage (or top-level module) a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_graph_was_read():
    # The checks below mean something only if the scan sees the known edges.
    assert "biosr.learn.train" in GRAPH["biosr.cli"][0]
    assert "torch" in GRAPH["biosr.learn.train"][1]
    assert "biosr.layout" in GRAPH["biosr.dataset.verify"][0]


def test_only_learn_imports_torch_or_lightning():
    offenders = {
        m: sorted(outer & set(HEAVY))
        for m, (_, outer) in GRAPH.items()
        if outer & set(HEAVY) and _room(m) != "learn"
    }
    assert not offenders, f"torch/Lightning imported outside biosr.learn: {offenders}"


def test_layout_imports_nothing_of_biosr():
    assert GRAPH["biosr.layout"][0] == set()


def test_learn_and_evaluate_do_not_import_each_other():
    crossing = {
        m: sorted(t for t in inner if {_room(m), _room(t)} == {"learn", "evaluate"})
        for m, (inner, _) in GRAPH.items()
    }
    crossing = {m: t for m, t in crossing.items() if t}
    assert not crossing, f"learn and evaluate must meet only through files: {crossing}"


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v][0]:
            # A package's __init__ importing its own submodules is not a cycle of rooms.
            if v.startswith(w + "."):
                continue
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
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert _cycles() == []


def _modules_after(code: str) -> set[str]:
    """Top-level names in sys.modules after running `code` in a fresh interpreter."""
    tail = "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    probe = f"{code}\n{tail}"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=SRC.parent
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_importing_every_module_outside_learn_loads_no_torch():
    outside = [m for m in MODULES if _room(m) not in ("learn", "demo", "cli")]
    loaded = _modules_after("\n".join(f"import {m}" for m in outside))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["verify", "--help"], ["verify", "{root}"], ["info", "{root}"]],
    ids=["help", "verify-help", "verify", "info"],
)
def test_light_commands_import_no_torch(argv, tiny_dataset):
    args = [a.format(root=tiny_dataset) for a in argv]
    code = (
        "import sys\nfrom biosr.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
    )
    loaded = _modules_after(code)
    assert "biosr" in loaded
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
