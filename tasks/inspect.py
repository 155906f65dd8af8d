"""Look at the data: examples and length statistics of any registered task.

  python -m tasks.inspect set --num 5              # 5 examples of `set` (T5 ids)
  python -m tasks.inspect set_tiny --stats --num 2000
  python -m tasks.inspect set --config tiny        # same as set_tiny
  python -m tasks.inspect all --stats --config tiny
  python -m tasks.inspect scan_simple --num 3      # any SeqIO task: ids and decoded text
  python -m tasks.inspect mtop --downstream_data_dir /data/downstream
  python -m tasks.inspect rotate_tiny --mixture_or_task_module my_tasks

Synthetic examples are drawn straight from the TF-free generators (`tasks.synthetic.catalog`),
exactly as the SeqIO tasks produce them before EOS: example i of a split is
`generate(task, cfg, split, seed, i)`, with seed 0 by default (`registry.DATA_SEED`).
Ids are printed raw, except the structural / special ids, which are printed by name
(<task_div>, <arg_div>, <word_div>, <empty>; LIME's <sep>, <UPPER>, :, [, ] ...; the
nesting language's span-corruption sentinels <extra_id_j>).

Statistics (EOS excluded from the lengths): min / mean / max and a 10-bin text
histogram of input and target lengths, the share of drawn examples whose inputs repeat
an earlier one, and the task's max lengths (EOS included) from
`synthpre_jax.data.task_metadata` (loaded for --stats wherever seqio is installed),
else from the same generator function the registry calls.

Any other registered SeqIO task or mixture (SCAN, natural, downstream text-file tasks
with their data, `_fixed` splits, `<task>_train<N>` subsets, tasks of the module named by
`--mixture_or_task_module`) is read through SeqIO (`tasks.seqio_examples`): unshuffled,
preprocessed, untrimmed, EOS removed, and decoded with the task's vocabulary when it is a
text vocabulary. That path loads TensorFlow; `--help` and synthetic examples do not.

An unknown task name exits with code 2 and lists the registered tasks, closest first.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from typing import Any, Optional, Sequence

import numpy as np

import tasks  # the package, already imported when this module runs (register_all)
from synthpre_jax.data import task_metadata, task_modules
from tasks.synthetic import catalog

# seqio (and TensorFlow) are optional here: `tasks.seqio_examples`, the SeqIO registry
# (`tasks.register_all`) and the text-file tasks are imported where a SeqIO task is read.

# = tasks.registry.DATA_SEED (not imported: the registry needs TensorFlow).
DEFAULT_SEED = 0
DEFAULT_NUM = {"examples": 5, "stats": 2000}
HIST_BINS = 10
BAR_WIDTH = 40


class UsageError(Exception):
  """A bad task name or option combination (exit code 2)."""


# ------------------------------------------------------------------ rendering


def render_ids(ids: np.ndarray, names: dict[int, str]) -> str:
  """`[12, 7, <task_div>, ...]`: raw ids, special ids by name."""
  return "[" + ", ".join(names.get(i, str(i)) for i in np.asarray(ids).tolist()) + "]"


def _draw(spec: catalog.SyntheticTask, split: str, seed: int, start: int, num: int):
  """Examples start..start+num-1 as (inputs, targets) pairs, drawn as one batch."""
  return list(spec.generate_batch(spec.task, spec.cfg, split, seed,
                                  np.arange(start, start + num, dtype=np.int64)))


def _header(spec: catalog.SyntheticTask, split: str, seed: int, start: int,
            num: int) -> str:
  return (f"== {spec.name}: {num} example(s) of split {split!r}, seed {seed}, indices "
          f"{start}..{start + num - 1} ==\n   {spec.describe()}")


def format_examples(spec: catalog.SyntheticTask, split: str, seed: int, start: int,
                    num: int) -> str:
  names = spec.special_names()
  lines = [_header(spec, split, seed, start, num),
           "   special ids: " + ", ".join(f"{n}={i}" for i, n in names.items())]
  if spec.family == "simple":
    lines.append(f"   inputs start with the task's name prefix "
                 f"{list(spec.cfg.name_prefix(spec.task))} and <task_div>")
  for i, (inputs, targets) in enumerate(_draw(spec, split, seed, start, num), start):
    lines.append(f"example {i}")
    lines.append(f"  inputs  ({len(inputs)}): {render_ids(inputs, names)}")
    lines.append(f"  targets ({len(targets)}): {render_ids(targets, names)}")
  return "\n".join(lines)


def histogram(values: Sequence[int], bins: int = HIST_BINS,
              width: int = BAR_WIDTH) -> list[str]:
  """Text histogram of integer values: at most `bins` equal-width integer bins."""
  v = np.asarray(values, np.int64)
  lo, hi = int(v.min()), int(v.max())
  bin_width = math.ceil((hi - lo + 1) / bins)
  nbins = math.ceil((hi - lo + 1) / bin_width)
  counts = np.bincount((v - lo) // bin_width, minlength=nbins)
  top = int(counts.max())
  label_w = len(str(hi))
  out = []
  for b, c in enumerate(counts.tolist()):
    a, z = lo + b * bin_width, min(lo + (b + 1) * bin_width - 1, hi)
    label = f"{a:>{label_w}}" if bin_width == 1 else f"{a:>{label_w}}-{z:<{label_w}}"
    bar = "#" * (round(width * c / top) if c else 0)
    out.append(f"    {label} |{bar:<{width}}| {c}")
  return out


def _has_seqio() -> bool:
  return importlib.util.find_spec("seqio") is not None


def _registry_max_lengths(name: str) -> Optional[dict[str, int]]:
  """The registry's max lengths of `name` (loading the registry where seqio exists)."""
  if _has_seqio():
    tasks.register_all()
  if "tasks.registry" not in sys.modules:
    return None
  found = task_metadata.max_lengths(name)
  return None if found is None else dict(found)


def _length_lines(examples: Sequence[tuple], num: int,
                  bounds: Optional[dict[str, int]]) -> list[str]:
  """Length statistics (EOS excluded) and histograms of (inputs, targets) pairs, and
  the duplicate-input rate; `bounds` are max lengths with EOS (None: unknown)."""
  lines = []
  for feature, k in (("inputs", 0), ("targets", 1)):
    lens = [len(ex[k]) for ex in examples]
    bound = None if bounds is None else bounds[feature] - 1
    over = 0 if bound is None else sum(n > bound for n in lens)
    lines.append(f"{feature} length (EOS excluded): min {min(lens)}, mean "
                 f"{np.mean(lens):.1f}, max {max(lens)}"
                 + (f" (bound {bound})" if bound is not None else "")
                 + (f"  WARNING: {over} longer than the bound" if over else ""))
    lines += histogram(lens)
  seen, dups = set(), 0
  for ex in examples:
    key = np.asarray(ex[0], np.int32).tobytes()
    dups += key in seen
    seen.add(key)
  lines.append(f"duplicate inputs: {100 * dups / num:.2f}% ({dups} of {num} drawn "
               f"examples repeat an earlier example's inputs)")
  return lines


def format_stats(spec: catalog.SyntheticTask, split: str, seed: int, start: int,
                 num: int) -> str:
  examples = _draw(spec, split, seed, start, num)
  lines = [_header(spec, split, seed, start, num)]
  computed = spec.max_lengths()
  registered = _registry_max_lengths(spec.name)
  source = "task_metadata"
  if registered is None:
    registered, source = computed, "computed by the generator; registry not loaded"
  elif registered != computed:
    lines.append(f"   WARNING: registry max lengths {registered} differ from the "
                 f"generator's {computed}: tasks/synthetic/catalog.py is out of date")
  lines.append(f"   max lengths (EOS included; {source}): inputs "
               f"{registered['inputs']}, targets {registered['targets']}")
  return "\n".join(lines + _length_lines(examples, num, registered))


# ------------------------------------------------------------------ any SeqIO task


def _seqio_examples() -> Any:
  """`tasks.seqio_examples` (needs seqio: imported on first use)."""
  from tasks import seqio_examples  # pylint: disable=g-import-not-at-top
  return seqio_examples


def _seqio_header(task: Any, split: str, seed: int, start: int, num: int) -> list[str]:
  seqio_examples = _seqio_examples()
  return [f"== {task.name}: {num} example(s) of split {split!r}, seed {seed}, indices "
          f"{start}..{start + num - 1} (unshuffled, preprocessed, untrimmed) ==",
          f"   {seqio_examples.describe(task)}"]


def _seqio_draw(task: Any, split: str, seed: int, start: int, num: int) -> list:
  examples = _seqio_examples().draw(task, split, seed, start, num)
  if not examples:
    raise UsageError(f"split {split!r} of {task.name!r} has no example at index {start}")
  return examples


def format_seqio_examples(task: Any, split: str, seed: int, start: int, num: int) -> str:
  """Examples of a SeqIO task: ids (EOS removed) and, for text vocabularies, text."""
  examples = _seqio_draw(task, split, seed, start, num)
  lines = _seqio_header(task, split, seed, start, len(examples))
  for i, ex in enumerate(examples, start):
    lines.append(f"example {i}")
    for feature, ids, text in (("inputs ", ex.inputs, ex.inputs_text),
                               ("targets", ex.targets, ex.targets_text)):
      lines.append(f"  {feature} ({len(ids)}): {render_ids(ids, {})}")
      if text is not None:
        lines.append(f"  {feature} text: {text!r}")
  return "\n".join(lines)


def format_seqio_stats(task: Any, split: str, seed: int, start: int, num: int) -> str:
  """Length statistics of a SeqIO task's examples (EOS excluded)."""
  examples = _seqio_draw(task, split, seed, start, num)
  pairs = [(ex.inputs, ex.targets) for ex in examples]
  lines = _seqio_header(task, split, seed, start, len(pairs))
  bounds = _seqio_examples().max_lengths(task.name)
  lines.append("   max lengths (EOS included; task_metadata): "
               + (f"inputs {bounds['inputs']}, targets {bounds['targets']}" if bounds
                  else "not registered for this task"))
  return "\n".join(lines + _length_lines(pairs, len(pairs), bounds))


# ------------------------------------------------------------------ command line


def _resolve_seqio(name: str, config: Optional[str]) -> list[Any]:
  """The SeqIO task `name` (a mixture: its tasks); UsageError if unknown."""
  if not _has_seqio():
    raise UsageError(f"unknown synthetic task {name!r}. Registered synthetic tasks "
                     f"(closest first): {', '.join(catalog.closest_names(name))}")
  if config is not None:
    raise UsageError(f"--config applies to synthetic tasks only, not {name!r}")
  tasks.register_all()
  try:
    return _seqio_examples().resolve(name)
  except ValueError as e:
    raise UsageError(str(e)) from e


def resolve(name: str, config: Optional[str]) -> list[Any]:
  """The tasks that `name` (a task, or `all`) and `--config` select: catalog entries
  (synthetic, TF-free), else SeqIO tasks."""
  synthetic = catalog.synthetic_tasks()
  if name == "all":
    return [t for t in synthetic.values() if config in (None, t.config_name)]
  if name not in synthetic:
    return _resolve_seqio(name, config)
  spec = synthetic[name]
  if config is None or config == spec.config_name:
    return [spec]
  if config == "tiny" and name + "_tiny" in synthetic:
    return [synthetic[name + "_tiny"]]
  raise UsageError(f"--config {config} conflicts with task {name!r} (a "
                   f"{spec.config_name} task); drop --config or the '_tiny' suffix")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(
      prog="python -m tasks.inspect",
      description="Show examples (default) or length statistics (--stats) of a "
                  "registered task: synthetic ones from their TF-free generators, any "
                  "other SeqIO task or mixture through SeqIO (decoded text included).")
  p.add_argument("task", help="a registered task (e.g. set, set_tiny, lime_deduct, "
                              "nesting_language, scan_simple, mtop) or 'all' (every "
                              "synthetic task)")
  p.add_argument("--stats", action="store_true",
                 help="print length statistics instead of examples")
  p.add_argument("--num", type=int, default=None,
                 help="examples to draw (default 5, or 2000 with --stats)")
  p.add_argument("--split", default="train", help="split (default train)")
  p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                 help=f"data seed (default {DEFAULT_SEED}, the registry's DATA_SEED)")
  p.add_argument("--start", type=int, default=0, help="first example index (default 0)")
  p.add_argument("--config", choices=("paper", "tiny"), default=None,
                 help="id layout: paper (T5 ids) or tiny; 'set --config tiny' is "
                      "set_tiny. Default: as the task name says")
  p.add_argument("--mixture_or_task_module", default=None,
                 help="module(s) registering more tasks, imported first (e.g. my_tasks "
                      "on PYTHONPATH; 'a,b' for several), as train's "
                      "MIXTURE_OR_TASK_MODULE")
  p.add_argument("--downstream_data_dir", default=None,
                 help="directory of the downstream text-file tasks' <task>/ folders "
                      "(default: $SYNTHPRE_DOWNSTREAM_DATA_DIR)")
  args = p.parse_args(argv)
  if args.num is None:
    args.num = DEFAULT_NUM["stats" if args.stats else "examples"]
  for flag in ("num", "seed", "start"):
    if getattr(args, flag) < (1 if flag == "num" else 0):
      p.error(f"--{flag} must be {'>= 1' if flag == 'num' else '>= 0'}")
  return args


def _setup(args: argparse.Namespace) -> None:
  """Imports --mixture_or_task_module and sets --downstream_data_dir (UsageError)."""
  if args.mixture_or_task_module:
    try:
      task_modules.import_task_modules(args.mixture_or_task_module)
    except ValueError as e:
      raise UsageError(str(e)) from e
  if args.downstream_data_dir:
    # pylint: disable=g-import-not-at-top  (optional dependency: seqio and TensorFlow)
    from tasks.downstream import text_files
    text_files.set_data_dir(args.downstream_data_dir)


def _formatter(spec: Any, stats: bool):
  if isinstance(spec, catalog.SyntheticTask):
    return format_stats if stats else format_examples
  return format_seqio_stats if stats else format_seqio_examples


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = parse_args(argv)
  try:
    _setup(args)
    specs = resolve(args.task, args.config)
    for n, spec in enumerate(specs):
      if n:
        print()
      fmt = _formatter(spec, args.stats)
      print(fmt(spec, args.split, args.seed, args.start, args.num), flush=True)
  except (UsageError, FileNotFoundError, ValueError) as e:  # bad name, option or data
    print(f"python -m tasks.inspect: error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
