"""The architecture's rules, checked on the source (README, "Design"):

- the library (`synthpre_jax`) never imports the task modules (`tasks`), and every
  library module imports with `tasks` made unimportable;
- the import graph of `synthpre_jax` and `tasks` has no cycle;
- function-level imports are only of optional dependencies (or of project modules that
  need one, e.g. the SeqIO registrations that `tasks` defers on TensorFlow-free hosts);
- the library's packages form layers (`LAYERS`): a module imports its own layer or
  lower ones only;
- no module is over 500 lines.
"""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("synthpre_jax", "tasks")
MAX_LINES = 500
# Imported inside functions on purpose: optional, heavy, or absent on lean hosts.
OPTIONAL = {"tensorflow", "seqio", "tensorflow_datasets", "matplotlib", "torch",
            "transformers", "safetensors", "tensorstore", "numba", "rouge_score", "clu",
            "tqdm", "crc32c", "google_crc32c", "sentencepiece", "ml_dtypes", "nltk"}


def _modules() -> dict[str, pathlib.Path]:
  found = {}
  for package in PACKAGES:
    for path in sorted((REPO / package).rglob("*.py")):
      parts = path.relative_to(REPO).with_suffix("").parts
      if parts[-1] == "__init__":
        parts = parts[:-1]
      found[".".join(parts)] = path
  return found


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> list[tuple[str, bool, int]]:
  """(imported module, at module level?, line) for every import in the file."""
  tree = ast.parse(path.read_text())
  is_package = path.name == "__init__.py"
  out = []

  def visit(node: ast.AST, top: bool) -> None:
    for child in ast.iter_child_nodes(node):
      if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
        continue  # imports for type annotations only: not run
      inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                             ast.Lambda))
      if isinstance(child, ast.Import):
        out.extend((a.name, top, child.lineno) for a in child.names)
      elif isinstance(child, ast.ImportFrom):
        if child.level:
          base = name.split(".")
          base = base[:len(base) - child.level + (1 if is_package else 0)]
          module = ".".join(base + ([child.module] if child.module else []))
        else:
          module = child.module or ""
        for a in child.names:
          sub = f"{module}.{a.name}"
          out.append((sub if sub in MODULES else module, top, child.lineno))
      visit(child, inner)

  visit(tree, True)
  return out


def test_the_library_never_imports_tasks():
  bad = [f"{name}:{line} imports {mod}" for name, path in MODULES.items()
         if name.startswith("synthpre_jax")
         for mod, _, line in _imports(name, path) if mod.split(".")[0] == "tasks"]
  assert bad == []


def test_every_library_module_imports_without_tasks():
  names = sorted(n for n in MODULES if n.startswith("synthpre_jax")
                 and not n.endswith("__main__"))
  code = ("import importlib, sys\n"
          "class NoTasks:\n"
          "  def find_spec(self, name, path=None, target=None):\n"
          "    if name == 'tasks' or name.startswith('tasks.'):\n"
          "      raise ImportError('tasks is not importable here')\n"
          "sys.meta_path.insert(0, NoTasks())\n"
          f"for name in {names!r}:\n"
          "  importlib.import_module(name)\n"
          "assert not any(m == 'tasks' or m.startswith('tasks.') for m in sys.modules)\n"
          "print('imported', len(sys.argv), 'ok')\n")
  env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]


def test_the_import_graph_has_no_cycle():
  graph = {name: sorted({mod for mod, top, _ in _imports(name, path)
                         if top and mod in MODULES and mod != name})
           for name, path in MODULES.items()}
  state: dict[str, int] = {}
  cycles = []

  def walk(node: str, stack: list[str]) -> None:
    state[node] = 1
    for nxt in graph[node]:
      if state.get(nxt) == 1:
        cycles.append(" -> ".join(stack[stack.index(nxt):] + [node, nxt])
                      if nxt in stack else f"{node} -> {nxt}")
      elif nxt not in state:
        walk(nxt, stack + [node])
    state[node] = 2

  for node in sorted(graph):
    if node not in state:
      walk(node, [])
  assert cycles == []


def _needs_optional() -> set[str]:
  """Project modules that import an optional dependency at module level, directly or
  through other project modules (importing one is importing an optional dependency)."""
  top = {name: {mod for mod, at_top, _ in _imports(name, path) if at_top}
         for name, path in MODULES.items()}
  needs = {name for name, mods in top.items()
           if any(m.split(".")[0] in OPTIONAL for m in mods)}
  grew = True
  while grew:
    more = {name for name, mods in top.items() if name not in needs and mods & needs}
    needs |= more
    grew = bool(more)
  return needs


def test_function_level_imports_are_of_optional_dependencies_only():
  optional_modules = _needs_optional()
  bad = [f"{name}:{line} imports {mod} inside a function"
         for name, path in MODULES.items()
         for mod, top, line in _imports(name, path)
         if not top and mod.split(".")[0] not in OPTIONAL and mod not in optional_modules]
  assert bad == []


def test_no_module_is_over_500_lines():
  paths = {**MODULES, **{f"benchmarks.{p.stem}": p
                         for p in sorted((REPO / "benchmarks").glob("*.py"))}}
  long = {name: n for name, path in paths.items()
          if (n := len(path.read_text().splitlines())) > MAX_LINES}
  assert long == {}


# The library's layers, lowest first (README, "Design"). Two modules are shared
# vocabulary of the lower layers: the training state (saved and restored by
# checkpoints/) and the parameter groupings by T5X name (transfer modes, moment matching).
LAYERS = (
    ("synthpre_jax", "synthpre_jax.partitioning", "synthpre_jax.distributed",
     "synthpre_jax.models", "synthpre_jax.data", "synthpre_jax.decoding",
     "synthpre_jax.training.train_state", "synthpre_jax.init.param_groups"),
    ("synthpre_jax.checkpoints",),
    ("synthpre_jax.training",),
    ("synthpre_jax.evaluation",),
    ("synthpre_jax.init",),
    ("synthpre_jax.cli", "synthpre_jax.convert"),
    ("synthpre_jax.study",),
    ("synthpre_jax.train", "synthpre_jax.evaluate", "synthpre_jax.report",
     "synthpre_jax.param_stats", "synthpre_jax.study.__main__"),
)


def _layer(module: str) -> int:
  """The layer of the longest LAYERS prefix of `module`."""
  best, layer = -1, None
  for i, prefixes in enumerate(LAYERS):
    for prefix in prefixes:
      if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
        best, layer = len(prefix), i
  assert layer is not None, f"{module} is in no layer: add it to LAYERS"
  return layer


def test_the_library_imports_only_its_own_or_lower_layers():
  bad = [f"{name}:{line} (layer {_layer(name)}) imports {mod} (layer {_layer(mod)})"
         for name, path in MODULES.items() if name.startswith("synthpre_jax")
         for mod, _, line in _imports(name, path)
         if mod.startswith("synthpre_jax") and _layer(mod) > _layer(name)]
  assert bad == []
