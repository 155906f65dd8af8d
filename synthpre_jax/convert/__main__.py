"""Command line of `python -m synthpre_jax.convert {from-hf,from-t5x,to-hf} SRC OUT`."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from synthpre_jax import checkpoints
from synthpre_jax.convert import commands
from synthpre_jax.convert.project import ConversionError

_GIN_HELP = ("target Gin model file (e.g. models/t5_1_0_small.gin): the converted "
             "architecture must match it; a different vocab_size is refused, not resized")


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="python -m synthpre_jax.convert",
      description="Convert T5 checkpoints between Hugging Face, T5X and this project.")
  sub = parser.add_subparsers(dest="command", required=True)
  for name, src_help in (("from-hf", "directory with config.json + model.safetensors "
                          "(or pytorch_model.bin, needs torch)"),
                         ("from-t5x", "T5X model dir, checkpoint_<step> dir or its "
                          "`checkpoint` file (msgpack + TensorStore, or Orbax)")):
    p = sub.add_parser(name, help=f"{src_help} -> project checkpoint + model.gin")
    p.add_argument("src", help=src_help)
    p.add_argument("out", help="output directory (must not exist or be empty)")
    p.add_argument("--gin_model", default=None, help=_GIN_HELP)
    p.add_argument("--activation_dtype", default="bfloat16",
                   choices=("bfloat16", "float32", "float16"),
                   help="ACTIVATION_DTYPE written into model.gin (parameters stay float32)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    if name == "from-t5x":
      p.add_argument("--dropout_rate", type=float, default=0.1,
                     help="DROPOUT_RATE written into model.gin")
  p = sub.add_parser("to-hf", help="project checkpoint -> config.json + model.safetensors")
  p.add_argument("src", help="a run's MODEL_DIR, its checkpoints/ dir or one step dir")
  p.add_argument("out", help="output directory (must not exist or be empty)")
  p.add_argument("--gin_model", default=None,
                 help="Gin model file of the checkpoint (default: the checkpoint's meta)")
  p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
  # Relative paths are taken from the working directory, once, here.
  args.src, args.out = checkpoints.absolute_path(args.src), checkpoints.absolute_path(args.out)
  try:
    if args.command == "from-hf":
      lines = commands.from_hf(args.src, args.out, gin_model=args.gin_model,
                               activation_dtype=args.activation_dtype,
                               overwrite=args.overwrite)
    elif args.command == "from-t5x":
      lines = commands.from_t5x(args.src, args.out, gin_model=args.gin_model,
                                activation_dtype=args.activation_dtype,
                                dropout_rate=args.dropout_rate, overwrite=args.overwrite)
    else:
      lines = commands.to_hf(args.src, args.out, gin_model=args.gin_model,
                             overwrite=args.overwrite)
  except ConversionError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print("\n".join(lines))
  return 0


if __name__ == "__main__":
  sys.exit(main())
