"""An LSTM whose input embedding is taken from a pre-trained T5 checkpoint (everything
else keeps its default init): the third arm of Wang, Khabsa, Ma 2020, "To Pretrain or
Not to Pretrain".

`LSTMEmbeddingFromT5` is an init transform for `synthpre_jax.training.trainer.train(
init_transform=...)`, `(params, mesh, param_shardings, seed) -> (params, log lines)`,
applied at step 0 only, like `moment_matching.MomentMatchingInit`. It reads only the
`token_embedder/embedding` tensor of the checkpoint (an Orbax partial restore; the
rest of the checkpoint is never loaded) and places it in the LSTM's own
`token_embedder/embedding` sharding. Shapes must agree exactly: the LSTM's
`emb_dim` must be the T5 `d_model` and the vocabularies the same size.

`rescale=True` multiplies the copied table by (SD of the fresh LSTM embedding / SD of
the T5 one), keeping its directions but matching the LSTM's init scale (why:
docs/init_transforms.md); the default copies it exactly.
No Gin here; `synthpre_jax.cli.train` binds it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from flax import traverse_util

from synthpre_jax import checkpoints
from synthpre_jax.checkpoints import checksums
from synthpre_jax.evaluation import results
from synthpre_jax.init import param_groups

EMBEDDING = param_groups.EMBEDDING


def read_embedding(params_path: Any) -> np.ndarray:
  """The `token_embedder/embedding` array of a saved parameter tree, read alone once the
  step's checksums verify (checksums.CorruptCheckpointError otherwise)."""
  checksums.verify(epath.Path(params_path).parent, ("params",))
  item = {"token_embedder": {"embedding": 0}}
  restore_args = {"token_embedder": {"embedding": ocp.RestoreArgs(restore_type=np.ndarray)}}
  restored = ocp.PyTreeCheckpointer().restore(
      params_path, args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args,
                                               partial_restore=True))
  return np.asarray(restored["token_embedder"]["embedding"])


@dataclasses.dataclass(frozen=True)
class LSTMEmbeddingFromT5:
  """Copies `token_embedder/embedding` of the T5 checkpoint `checkpoint` (a run's
  MODEL_DIR, its checkpoints/ directory or one checkpoints/<step> directory) into the
  model's embedding. `checkpoint_step` picks a MODEL_DIR's step ('latest', 'best',
  'first_ge:0.99' or a number; synthpre_jax.evaluation.results.select_step). `rescale`: see the
  module doc."""
  checkpoint: str
  rescale: bool = False
  checkpoint_step: Union[str, int] = "first_ge:0.99"

  def __post_init__(self):
    if not self.checkpoint:
      raise ValueError("LSTMEmbeddingFromT5 needs the pre-trained T5 checkpoint "
                       "(EMBEDDING_CHECKPOINT).")

  @property
  def description(self) -> str:
    how = "rescaled to the LSTM init's SD" if self.rescale else "copied exactly"
    return f"input embedding from T5 checkpoint {self.checkpoint} ({how})"

  def resolve(self) -> tuple[Any, Optional[int], str]:
    """(params path, step, how the step was chosen) of the embedding's checkpoint."""
    return results.resolve_checkpoint(self.checkpoint, self.checkpoint_step,
                                      macro="EMBEDDING_CHECKPOINT")

  def embedding_source(self) -> Any:
    """The params path whose embedding is copied (the trainer checks its vocabulary)."""
    return self.resolve()[0]

  def __call__(self, params: Any, mesh: Any, param_shardings: Any,
               seed: int) -> tuple[Any, list[str]]:
    del mesh, seed  # the shardings carry the mesh; nothing is drawn
    flat = dict(checkpoints.flat_names(params))
    if EMBEDDING not in flat:
      raise ValueError(f"The model has no {EMBEDDING!r} parameter to replace; "
                       "LSTMEmbeddingFromT5 is for the LSTM models (LSTMConfig).")
    path, _, how = self.resolve()
    saved = checkpoints.params_metadata(path)
    if EMBEDDING not in saved:
      raise ValueError(f"Checkpoint {path} has no {EMBEDDING!r} tensor; point "
                       "EMBEDDING_CHECKPOINT at a T5 run.")
    want = tuple(flat[EMBEDDING].shape)
    have = tuple(saved[EMBEDDING])
    if have[0] != want[0]:
      raise ValueError(
          f"Vocabulary sizes differ: the T5 checkpoint {path} has {have[0]} embedding "
          f"rows, the LSTM {want[0]}. Set LSTMConfig.vocab_size = {have[0]} (the T5 "
          "model's vocabulary) and train on the same vocabulary.")
    if have[1:] != want[1:]:
      raise ValueError(
          f"Embedding widths differ: the T5 checkpoint {path} has d_model {have[1]}, the "
          f"LSTM emb_dim {want[1]}. Set LSTMConfig.emb_dim = {have[1]} (the T5 d_model).")
    table = read_embedding(path).astype(np.float32)
    src_sd = float(table.std())
    lines = [f"LSTM input embedding from {path} ({how}): {EMBEDDING} {have}, mean "
             f"{float(table.mean()):.4g} SD {src_sd:.4g}"]
    if self.rescale:
      fresh_sd = float(jnp.std(flat[EMBEDDING].astype(jnp.float32)))
      if src_sd <= 0.0:
        raise ValueError(f"The T5 embedding in {path} is constant (SD 0); cannot rescale.")
      table = table * np.float32(fresh_sd / src_sd)
      lines.append(f"  rescaled by {fresh_sd / src_sd:.4g} to the fresh embedding's SD "
                   f"{fresh_sd:.4g}")
    else:
      lines.append("  copied exactly (no rescaling)")
    dtype = flat[EMBEDDING].dtype
    table = table.astype(dtype)
    sharding = None if param_shardings is None else checkpoints.flat_names(
        param_shardings)[EMBEDDING]
    if sharding is None:
      flat[EMBEDDING] = jnp.asarray(table)
    else:
      flat[EMBEDDING] = jax.make_array_from_callback(table.shape, sharding,
                                                     lambda index: table[index])
    others = len(flat) - 1
    lines.append(f"  the other {others} tensors keep their default init")
    return traverse_util.unflatten_dict(flat, sep="/"), lines
