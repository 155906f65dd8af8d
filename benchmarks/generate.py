"""Examples/s of the synthetic-task generators on ONE core, against plain Python.

For each simple task prints one JSON line: the project's compiled generator
(`tasks.synthetic.generators.generate_batch`, numba kernels) and a plain
one-example-at-a-time Python version of the same definitions written below (lists and
`random`, like the public reference generator), and the speed-up. `first_call_s` is the
first call's time: compiling the kernel, or loading it from the on-disk cache. Then one line timing the full paper-size Set
fixed split (1,050,000 generated, deduplicated, 1,000,000 + 10,000 written) into a
temporary cache directory (`--split_task`, `--no_split` to skip).

For each formal-language / procedural task (`FORMAL_TASKS`, paper layout) one line:
the catalogue's `generate_batch` (numpy, one example at a time) in examples/s.

  python benchmarks/generate.py [--tasks set,sort,union,dyck] [--num 100000] [--core 0]

The process pins itself to one core (os.sched_setaffinity) and sets the usual
single-thread variables before numpy loads. Figures depend on what else runs on the
machine; run it on a quiet one.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
  os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ALL_TASKS = (
    "identity", "reverse", "set", "deduplicate", "duplicate", "first_token",
    "last_token", "length", "longest_word", "count", "search", "delete", "sort",
    "replace", "union", "intersect", "set1_minus_set2", "set2_minus_set1")
# The formal-language and procedural tasks (tasks/synthetic/formal_config.py), timed on
# their paper layout through the catalogue's generate_batch (numpy, one example at a
# time: they have no plain-Python twin here).
FORMAL_TASKS = ("dyck", "shuffle_dyck", "ww", "stack", "eca", "eca_complex", "eca_rule110",
                "fst")


# ------------------------------------------------------------------ plain Python


class Plain:
  """The spec's definitions, one example at a time, with lists and `random`."""

  def __init__(self, cfg, rng: random.Random):
    self.c, self.r = cfg, rng
    self.pool = range(cfg.pool_low, cfg.pool_high + 1)
    self.lo, self.hi = cfg.min_len, cfg.max_len

  def toks(self, m):
    return self.r.choices(self.pool, k=m)

  def partition(self, n, k):
    sizes = [1] * k
    for b in self.r.choices(range(k), k=n - k):
      sizes[b] += 1
    return sizes

  def digits(self, n):
    return [self.c.pool_low + int(ch) for ch in str(n)]

  def seq(self):
    return self.toks(self.r.randint(self.lo, self.hi))

  def runs(self, shuffle):
    n = self.r.randint(self.lo, self.hi)
    k = self.r.randint(1, n)
    out = []
    for tok, size in zip(self.toks(k), self.partition(n, k)):
      out += [tok] * size
    if shuffle:
      self.r.shuffle(out)
    return out

  @staticmethod
  def unique(xs):
    seen, out = set(), []
    for x in xs:
      if x not in seen:
        seen.add(x)
        out.append(x)
    return out

  def body(self, a, b):
    return a + [self.c.arg_divider] + b

  # unary
  def identity(self):
    s = self.seq()
    return s, list(s)

  def reverse(self):
    s = self.seq()
    return s, s[::-1]

  def set(self):
    s = self.runs(True)
    return s, self.unique(s)

  def deduplicate(self):
    s = self.runs(False)
    return s, [x for i, x in enumerate(s) if i == 0 or s[i - 1] != x]

  def duplicate(self):
    s = self.seq()
    return s, [y for x in s for y in (x, x)]

  def first_token(self):
    s = self.seq()
    return s, s[:1]

  def last_token(self):
    s = self.seq()
    return s, s[-1:]

  def length(self):
    s = self.seq()
    return s, self.digits(len(s))

  def longest_word(self):
    w = self.r.randint(1, max(1, self.hi // 2))
    n = self.r.randint(max(self.lo - (w - 1), w), self.hi - (w - 1))
    words, toks, at = [], self.toks(n), 0
    for size in self.partition(n, w):
      words.append(toks[at:at + size])
      at += size
    body = list(words[0])
    for word in words[1:]:
      body += [self.c.word_divider] + word
    return body, max(words, key=len)

  # binary
  def count(self):
    n = self.r.randint(max(1, self.lo - 2), self.hi - 2)
    q = self.toks(1)[0]
    c = self.r.randint(0, n)
    s = [q] * c + self.toks(n - c)
    self.r.shuffle(s)
    return self.body(s, [q]), self.digits(s.count(q))

  @staticmethod
  def find(s, q):
    for i in range(len(s) - len(q) + 1):
      if s[i:i + len(q)] == q:
        return i
    return -1

  def present(self):
    while True:
      ql = self.r.randint(1, (self.hi - 1) // 3)
      sl = self.r.randint(2 * ql, self.hi - 1 - ql)
      if sl + 1 + ql >= self.lo:
        break
    q = self.toks(ql)
    r = self.r.randint(1, sl // ql)
    gaps = self.partition(sl - r * ql + r + 1, r + 1)
    s = []
    for i, g in enumerate(gaps):
      s += self.toks(g - 1)
      if i < r:
        s += q
    return s, q

  def absent(self):
    while True:
      if self.r.random() < 0.01:
        ql = self.r.randint(self.lo + 1, self.hi)
        sl = self.r.randint(0, ql - 1)
      else:
        sl = self.r.randint(self.lo, self.hi)
        ql = self.r.randint(self.lo, sl)
      if sl + 1 + ql <= self.hi:
        break
    while True:
      s, q = self.toks(sl), self.toks(ql)
      if self.find(s, q) < 0:
        return s, q

  def search(self):
    s, q = self.present() if self.r.random() < 0.5 else self.absent()
    yes = self.find(s, q) >= 0
    return self.body(s, q), [self.c.pool_low + (10 if yes else 11)]

  def delete(self):
    s, q = self.present() if self.r.random() < 0.75 else self.absent()
    at = self.find(s, q)
    return self.body(s, q), s if at < 0 else s[:at] + s[at + len(q):]

  def sort(self):
    m = self.r.randint(max(1, self.lo // 2), (self.hi - 1) // 2)
    order = self.toks(m)
    sl = self.r.randint(m, self.hi - 1 - m)
    s = []
    for tok, size in zip(self.r.choices(order, k=m), self.partition(sl, m)):
      s += [tok] * size
    self.r.shuffle(s)
    rank = {t: i for i, t in enumerate(order)}
    return self.body(s, order), sorted(s, key=rank.__getitem__)

  def replace(self):
    s = self.toks(self.r.randint(max(1, self.lo - 3), self.hi - 3))
    k = self.r.choice(sorted(set(s)))
    v = self.toks(1)[0]
    return self.body(s, [k, v]), [v if x == k else x for x in s]

  def two(self):
    t = self.r.randint(max(2, self.lo - 1), self.hi - 1)
    n1 = self.r.randint(0, t)
    pool = self.r.sample(self.pool, t // 2)
    return self.r.choices(pool, k=n1), self.r.choices(pool, k=t - n1)

  def union(self):
    a, b = self.two()
    return self.body(a, b), self.unique(a + b) or [self.c.empty_target]

  def intersect(self):
    a, b = self.two()
    sb = set(b)
    return self.body(a, b), [x for x in self.unique(a) if x in sb] or [self.c.empty_target]

  def set1_minus_set2(self):
    a, b = self.two()
    sb = set(b)
    return self.body(a, b), [x for x in self.unique(a) if x not in sb] or [
        self.c.empty_target]

  def set2_minus_set1(self):
    a, b = self.two()
    sa = set(a)
    return self.body(a, b), [x for x in self.unique(b) if x not in sa] or [
        self.c.empty_target]

  def example(self, task: str, prefix: list):
    body, target = getattr(self, task)()
    return prefix + body, target


# ------------------------------------------------------------------ timing


def _rate(fn, num: int, min_seconds: float) -> float:
  """num / seconds of the fastest of repeated fn(num) calls within ~min_seconds."""
  best, spent = float("inf"), 0.0
  while spent < min_seconds or best == float("inf"):
    t0 = time.perf_counter()
    fn(num)
    dt = time.perf_counter() - t0
    best, spent = min(best, dt), spent + dt
  return num / best


def bench_task(task: str, cfg, num: int, plain_num: int, min_seconds: float) -> dict:
  from tasks.synthetic import generators
  import numpy as np
  prefix = list(cfg.name_prefix(task)) + [cfg.task_divider]
  plain = Plain(cfg, random.Random(0))
  t0 = time.perf_counter()
  generators.generate_batch(task, cfg, "bench", 0, np.arange(64))  # compile / load
  first_call = time.perf_counter() - t0
  project = _rate(lambda n: generators.generate_batch(task, cfg, "bench", 0,
                                                      np.arange(n)), num, min_seconds)
  reference = _rate(lambda n: [plain.example(task, prefix) for _ in range(n)],
                    plain_num, min_seconds)
  return {"task": task, "plain_examples_per_s": round(reference),
          "project_examples_per_s": round(project),
          "speedup": round(project / reference, 1), "num": num, "plain_num": plain_num,
          "first_call_s": round(first_call, 2)}


def bench_catalog_task(name: str, num: int, min_seconds: float) -> dict:
  from tasks.synthetic import catalog
  import numpy as np
  e = catalog.get(name)
  rate = _rate(lambda n: e.generate_batch(e.task, e.cfg, "bench", 0, np.arange(n)), num,
               min_seconds)
  return {"task": name, "family": e.family, "project_examples_per_s": round(rate),
          "num": num}


def bench_split(task: str, cfg) -> dict:
  from tasks.fixed_splits import build as fixed_build, records as fixed_records
  from tasks.synthetic import generators
  with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    fixed = fixed_build.build_fixed_splits(
        task, cfg, batch_fn=generators.generate_batch, cache_dir=tmp, num_workers=1,
        num_generated=1_050_000, num_train=1_000_000, num_validation=10_000)
    seconds = time.perf_counter() - t0
    m = fixed.manifest
    size = sum(f["bytes"] for s in fixed_records.SPLITS for f in m["splits"][s]["files"])
    t0 = time.perf_counter()
    again = fixed_build.build_fixed_splits(
        task, cfg, batch_fn=generators.generate_batch, cache_dir=tmp, num_workers=1,
        num_generated=1_050_000, num_train=1_000_000, num_validation=10_000)
    reuse = time.perf_counter() - t0
    assert again.reused
  return {"split_build": task, "num_generated": m["num_examples_generated"],
          "duplicates_dropped": m["num_duplicates_dropped"], "train": 1_000_000,
          "validation": 10_000, "seconds": round(seconds, 2),
          "generate_seconds": m.get("generate_seconds"), "bytes": size,
          "reuse_check_seconds": round(reuse, 2)}


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--tasks", default=",".join(ALL_TASKS + FORMAL_TASKS),
                 help="comma-separated simple or formal task ids (default: all)")
  p.add_argument("--num", type=int, default=100_000,
                 help="examples per timed call of the project's generator")
  p.add_argument("--formal_num", type=int, default=5_000,
                 help="examples per timed call of a formal-language / procedural task")
  p.add_argument("--plain_num", type=int, default=5_000,
                 help="examples per timed call of the plain Python version")
  p.add_argument("--min_seconds", type=float, default=2.0,
                 help="repeat each measurement for about this long; the best counts")
  p.add_argument("--core", type=int, default=None,
                 help="the core to pin to (default: the first allowed one)")
  p.add_argument("--split_task", default="set")
  p.add_argument("--no_split", action="store_true", help="skip the fixed-split line")
  args = p.parse_args()
  core = args.core if args.core is not None else min(os.sched_getaffinity(0))
  os.sched_setaffinity(0, {core})

  tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
  unknown = [t for t in tasks if t not in ALL_TASKS + FORMAL_TASKS]
  if unknown:
    p.error(f"unknown task(s) {unknown}; known: {', '.join(ALL_TASKS + FORMAL_TASKS)}")
  # The generators without the SeqIO registrations (no TensorFlow) for the task lines.
  pkg = types.ModuleType("tasks")
  pkg.__path__ = [os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "tasks")]
  sys.modules.setdefault("tasks", pkg)
  from tasks.synthetic.config import PAPER
  for task in tasks:
    if task in FORMAL_TASKS:
      line = bench_catalog_task(task, args.formal_num, args.min_seconds)
    else:
      line = bench_task(task, PAPER, args.num, args.plain_num, args.min_seconds)
    print(json.dumps({**line, "core": core}), flush=True)
  if not args.no_split:
    if sys.modules.get("tasks") is pkg:  # now the real package: fixed_splits needs TF
      for name in [m for m in sys.modules if m == "tasks" or m.startswith("tasks.")]:
        del sys.modules[name]
    print(json.dumps({**bench_split(args.split_task, PAPER), "core": core}), flush=True)


if __name__ == "__main__":
  main()
