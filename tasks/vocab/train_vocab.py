"""Trains the project's SentencePiece vocabulary on the embedded English corpus.

Run once (the model is committed); no network, no TensorFlow:

  python -m tasks.vocab.train_vocab [--vocab_size 8000] [--output_dir tasks/vocab]

Writes `synthpre_en_8k.model` (the binary SentencePiece model) and
`synthpre_en_8k.vocab` (one `piece<TAB>log-probability` per line, for reading).

T5-like settings (T5's cc_all.32000 model is a unigram SentencePiece model with pad 0,
EOS 1, unk 2 and no BOS; seqio appends the 100 sentinel ids at load time):
  * model_type=unigram, pad_id=0, eos_id=1, unk_id=2, bos_id=-1;
  * no byte fallback: T5's model has none, and an unknown character becomes unk (id 2)
    exactly as with T5's vocabulary, which keeps the two interchangeable in this code;
  * character_coverage=1.0: the corpus is English with few non-ASCII characters, so
    every character seen in training gets a piece;
  * normalization nmt_nfkc (T5's and SentencePiece's default), dummy prefix on;
  * trained on the corpus's `train` split only (validation paragraphs stay unseen);
  * deterministic: sentences fed in file order from an iterator (no sampling, no
    shuffling, no input path recorded in the model), one thread.
8,000 pieces (+100 sentinels = 8,100, padded to 8,192 in the model) instead of T5's
32,000: the embedded corpus is 4 MB, and a small vocabulary keeps embedding tables and
softmax cheap for the CPU-sized models this project runs offline. The paper's 32k
vocabulary remains available (`tasks.text_vocab.T5_VOCAB_PATH`).
"""
from __future__ import annotations

import argparse
import io
import os
import sys

from tasks import corpus

VOCAB_DIR = os.path.dirname(os.path.abspath(__file__))
MODEL_NAME = "synthpre_en_8k"
VOCAB_SIZE = 8000


def trainer_options(vocab_size: int) -> dict:
  """The SentencePieceTrainer options (see the module docstring for why)."""
  return dict(
      model_type="unigram",
      vocab_size=vocab_size,
      pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
      byte_fallback=False,
      character_coverage=1.0,
      normalization_rule_name="nmt_nfkc",
      add_dummy_prefix=True,
      input_sentence_size=0,  # use every sentence
      shuffle_input_sentence=False,
      max_sentence_length=8192,  # bytes; the longest corpus paragraph is < 2,000
      num_threads=1,
      minloglevel=1,
  )


def train(paragraphs: list[str], vocab_size: int) -> bytes:
  """Trains a SentencePiece model on `paragraphs`; returns the serialized model."""
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(sentence_iterator=iter(paragraphs), model_writer=model,
                                 **trainer_options(vocab_size))
  return model.getvalue()


def vocab_text(model: bytes) -> str:
  """The human-readable `piece<TAB>score` listing of a serialized model."""
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  sp = spm.SentencePieceProcessor(model_proto=model)
  return "".join(f"{sp.id_to_piece(i)}\t{sp.get_score(i):g}\n"
                 for i in range(sp.get_piece_size()))


def _write_atomic(path: str, data: bytes) -> None:
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--vocab_size", type=int, default=VOCAB_SIZE)
  parser.add_argument("--output_dir", default=VOCAB_DIR)
  parser.add_argument("--name", default=MODEL_NAME)
  args = parser.parse_args(argv)
  if args.vocab_size < 100:
    parser.error(f"--vocab_size must be at least 100, got {args.vocab_size}")
  model = train(corpus.paragraphs("train"), args.vocab_size)
  os.makedirs(args.output_dir, exist_ok=True)
  base = os.path.join(args.output_dir, args.name)
  _write_atomic(base + ".model", model)
  _write_atomic(base + ".vocab", vocab_text(model).encode("utf-8"))
  print(f"wrote {base}.model ({len(model)} bytes) and {base}.vocab")
  return 0


if __name__ == "__main__":
  sys.exit(main())
