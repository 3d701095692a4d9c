"""The package's layering: imports go one way (core <- nn <- models <- train <- eval <- experiment <- cli),
there is no import circle, no family is probed with hasattr outside the registry, and importing genjax
changes no global state."""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genjax"
LAYERS = ("genjax.core", "genjax.nn", "genjax.models", "genjax.train", "genjax.eval", "genjax.experiment",
          "genjax.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """The genjax modules ``path`` imports, anywhere in the file (``from a import b`` counts as ``a.b`` when
    that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                         for a in node.names)
    return {name for name in found if name in MODULES and name != "genjax"}


GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def layer(name: str) -> int:
    return next(i for i, prefix in enumerate(LAYERS) if name == prefix or name.startswith(prefix + "."))


def test_every_module_belongs_to_a_layer():
    assert all(isinstance(layer(name), int) for name in MODULES if name != "genjax")


def test_imports_go_down_the_layers():
    upward = [(a, b) for a, targets in GRAPH.items() if a != "genjax" for b in targets if layer(b) > layer(a)]
    assert not upward, upward


def test_no_import_circle():
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(GRAPH[name]):
            assert state.get(target) != "open", " -> ".join([*path, name, target])
            if target not in state:
                visit(target, [*path, name])
        state[name] = "done"

    for name in GRAPH:
        if name not in state:
            visit(name, [])


def test_no_hasattr_outside_the_registry():
    offenders = [f"{name}:{node.lineno}" for name, path in MODULES.items() if name != "genjax.models.registry"
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr"]
    assert not offenders, offenders


IMPORT_EVERYTHING = """
import importlib, json, os, signal, sys
import jax, matplotlib
def snapshot():
    return {"XLA_FLAGS": os.environ.get("XLA_FLAGS"), "backend": matplotlib.rcParams["backend"],
            "pyplot": "matplotlib.pyplot" in sys.modules, "x64": jax.config.jax_enable_x64,
            "rank_promotion": jax.config.jax_numpy_rank_promotion,
            "signals": [str(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)]}
before = snapshot()
for name in sys.argv[1:]:
    importlib.import_module(name)
import genjax
for name in genjax.__all__:
    getattr(genjax, name)
print(json.dumps({"before": before, "after": snapshot()}))
"""


def test_importing_genjax_and_the_benchmark_changes_no_global_state():
    names = [name for name in MODULES if name != "genjax"] + ["benchmarks.throughput"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "svg", "XLA_FLAGS": ""}
    proc = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING, *names], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["after"] == seen["before"] and seen["after"]["backend"] == "svg" and not seen["after"]["pyplot"]


def test_genjax_fit_is_the_loop_and_no_module_shadows_it():
    import genjax

    assert callable(genjax.fit) and "genjax.fit" not in MODULES
