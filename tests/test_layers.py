"""The package's imports follow DESIGN.md's layout: no cycles, and no import from a lower layer to a
higher one, whether at module level or inside a function (the lazy re-exports of fewgan/__init__.py
are the one exception: they are how ``import fewgan`` stays cheap)."""

from __future__ import annotations

import ast
from pathlib import Path

import fewgan

ROOT = Path(fewgan.__file__).parent

#: DESIGN.md's order, lowest first; a module may import only from its own layer or a lower one.
LAYERS = (
    ("fewgan.errors",),
    ("fewgan.config",),
    ("fewgan.run",),
    ("fewgan.data",),
    ("fewgan.ops",),
    ("fewgan.model",),
    ("fewgan.metrics",),
    ("fewgan.augment",),
    ("fewgan.singan", "fewgan.stylegan2", "fewgan.gpnn"),   # the methods never import each other
    ("fewgan.report",),
    ("fewgan.trained",),
    ("fewgan.api",),
    ("fewgan.pipeline",),
    ("fewgan.cli",),
    ("fewgan.__main__",),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    name = ".".join(("fewgan",) + parts)
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def _graph() -> dict[str, set[str]]:
    """``{module: {modules it imports}}`` over every import statement in the package's source."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_package else mod.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # ``from pkg import sub`` imports the module pkg.sub; ``from mod import name`` imports mod
                names = [f"{source}.{a.name}" if f"{source}.{a.name}" in files else source for a in node.names]
            for name in names:
                while name and name not in files:
                    name = name.rpartition(".")[0]
                if name and name != mod and name != "fewgan":
                    targets.add(name)
        graph[mod] = targets
    return graph


def _layer(mod: str) -> tuple[int, str]:
    for i, group in enumerate(LAYERS):
        for prefix in group:
            if mod == prefix or mod.startswith(prefix + "."):
                return i, prefix
    raise AssertionError(f"{mod} is in no layer of DESIGN.md: add it to the layout and to LAYERS")


def test_every_module_has_a_layer():
    for mod in _graph():
        if mod != "fewgan":
            _layer(mod)


def test_no_upward_imports():
    bad = []
    for mod, targets in _graph().items():
        if mod == "fewgan":  # lazy re-exports of the API
            continue
        (i, home) = _layer(mod)
        for t in targets:
            (j, other) = _layer(t)
            if j > i or (j == i and other != home):
                bad.append(f"{mod} -> {t}")
    assert not bad, "imports against DESIGN.md's order:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = {m: t for m, t in _graph().items() if m != "fewgan"}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    """The walk is not vacuous: the API imports the method packages inside its functions."""
    graph = _graph()
    assert "fewgan.singan.train" in graph["fewgan.api"] and "fewgan.trained" in graph["fewgan.api"]
    assert "fewgan.metrics.evaluate" in graph["fewgan.trained"]
    assert {"fewgan.augment.ada", "fewgan.augment._common"} <= graph["fewgan.augment"] | graph["fewgan.augment.ada"]
