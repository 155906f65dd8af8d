"""The training loop's periodic actions and user hooks (synthpre_jax/training/hooks.py)."""

import pytest

from synthpre_jax.training import hooks
from tests import train_utils as tu


def test_due_actions_follow_the_periods_and_the_last_step():
  def due(step, **kw):
    args = dict(log_period=4, eval_period=6, checkpoint_period=5, keep_steps=(3,),
                stop_requested=False)
    args.update(kw)
    return hooks.due_actions(step, 12, **args)

  assert due(1) == hooks.DueActions(log=False, evaluate=False, checkpoint=False, stop=False)
  assert due(3).checkpoint and not due(3).log  # a kept step
  assert due(4).log and not due(4).checkpoint
  assert due(5).checkpoint and not due(5).evaluate
  assert due(6).evaluate and due(6).checkpoint  # every evaluation is checkpointed
  assert due(12) == hooks.DueActions(log=True, evaluate=True, checkpoint=True, stop=False)
  assert due(7, stop_requested=True) == hooks.DueActions(False, False, True, True)
  assert not due(12, stop_requested=True).stop  # the last step finishes instead
  assert not due(6, eval_period=None).evaluate


def test_bad_hooks_get_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match=r"hooks\[0\].*every_n_steps"):
    hooks.every_n_steps(print, 0)
  with pytest.raises(ValueError, match=r"hooks\[1\].*every"):
    tu.run(str(tmp_path / "bad"), steps=2, hooks=[hooks.every_n_steps(print, 1), print])


def test_hooks_see_their_steps_and_metrics_and_change_nothing(tmp_path):
  seen = []

  def logger(info: hooks.StepInfo) -> None:  # e.g. a Weights & Biases logger
    seen.append((info.step, info.train_metrics is not None, info.eval_metrics is not None,
                 info.checkpointed, info.is_last))
    assert info.params is info.state.params

  plain = tu.run(str(tmp_path / "plain"), steps=6, log_period=2, eval_period=3)
  hooked = tu.run(str(tmp_path / "hooked"), steps=6, log_period=2, eval_period=3,
                  hooks=[hooks.every_n_steps(logger, 2)])
  # every 2nd step and the last; checkpoints at 3 (eval), 4 (period), 6 (last)
  assert seen == [(2, True, False, False, False), (4, True, False, True, False),
                  (6, True, True, True, True)]
  assert tu.same_bits(tu.flat_numpy(plain.state.params), tu.flat_numpy(hooked.state.params))
  assert plain.eval_metrics == hooked.eval_metrics
