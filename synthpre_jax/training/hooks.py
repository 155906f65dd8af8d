"""Periodic actions of the training loop, and the hooks users add to it.

The loop (`trainer.train`) decides at every step which of its own actions are due
(`due_actions`: log, evaluate, checkpoint, stop on SIGTERM), runs them, then calls every
user hook that is due with a `StepInfo`. A hook is any callable with an `every`
attribute (`Hook`); `every_n_steps(fn, n)` makes one from a function. Examples: a Weights
& Biases logger (`StepInfo.train_metrics` is set on logging steps), a custom evaluation
on `StepInfo.params`, an early stop (raise an exception: the loop records the finished
save's checksums and re-raises it). Hooks run on every process of a multi-process run:
a logger that writes files or calls a service guards itself with
`jax.process_index() == 0`. A hook bound in Gin (`train.hooks = [@my_logger()]`) lives in
a module the Gin file imports (`import my_hooks`), so the run's config.gin replays it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Protocol, Sequence, runtime_checkable


@dataclasses.dataclass(frozen=True)
class StepInfo:
  """What a hook sees after step `step` (1-based: steps done) and the loop's actions.

  `train_metrics` / `eval_metrics` are the metrics logged / evaluated at this step
  (None when none were); `params` and `state` are the live (sharded) arrays: read them,
  do not keep or donate them.
  """
  step: int
  train_steps: int
  state: Any
  train_metrics: Optional[dict[str, float]] = None
  eval_metrics: Optional[dict[str, float]] = None
  checkpointed: bool = False

  @property
  def params(self) -> Any:
    return self.state.params

  @property
  def is_last(self) -> bool:
    return self.step == self.train_steps


@runtime_checkable
class Hook(Protocol):
  """A callable run after every `every`-th step and after the last one."""
  every: int

  def __call__(self, info: StepInfo) -> None:
    ...


@dataclasses.dataclass(frozen=True)
class _EveryNSteps:
  fn: Callable[[StepInfo], None]
  every: int

  def __call__(self, info: StepInfo) -> None:
    self.fn(info)


def every_n_steps(fn: Callable[[StepInfo], None], every: int) -> Hook:
  """`fn` as a hook run every `every` steps (and after the last step)."""
  hook = _EveryNSteps(fn, every)
  check_hooks([hook])
  return hook


def check_hooks(hooks: Sequence[Any]) -> None:
  """Raises ValueError naming the first entry that is not a Hook with every >= 1."""
  for i, hook in enumerate(hooks):
    every = getattr(hook, "every", None)
    if not callable(hook) or isinstance(every, bool) or not isinstance(every, int) \
        or every < 1:
      raise ValueError(
          f"hooks[{i}] = {hook!r} is not a hook: it must be callable with an int "
          "attribute `every` >= 1 (wrap a function with "
          "synthpre_jax.training.hooks.every_n_steps(fn, n)).")


def is_due(every: int, step: int, train_steps: int) -> bool:
  """True at every `every`-th step and at the last step."""
  return step % every == 0 or step == train_steps


@dataclasses.dataclass(frozen=True)
class DueActions:
  """The loop's own actions at one step (see `due_actions`)."""
  log: bool
  evaluate: bool
  checkpoint: bool
  stop: bool


def due_actions(step: int, train_steps: int, *, log_period: int,
                eval_period: Optional[int], checkpoint_period: int,
                keep_steps: Sequence[int], stop_requested: bool) -> DueActions:
  """Which built-in actions run after step `step`.

  Logging every `log_period` steps, evaluation every `eval_period` (None: never), a
  checkpoint every `checkpoint_period` steps and at every evaluation (so keep-best can
  choose among all evaluated steps), at kept steps and before a SIGTERM stop; all of
  them at the last step, where a SIGTERM no longer stops the run.
  """
  is_last = step == train_steps
  log = is_due(log_period, step, train_steps)
  evaluate = eval_period is not None and is_due(eval_period, step, train_steps)
  stop = stop_requested and not is_last
  checkpoint = (is_due(checkpoint_period, step, train_steps) or evaluate or stop
                or step in keep_steps)
  return DueActions(log=log, evaluate=evaluate, checkpoint=checkpoint, stop=stop)
