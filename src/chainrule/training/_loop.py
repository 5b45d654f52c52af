"""The epoch loop every trainer in chainrule runs: fit, the scikit-learn estimators and
the Titanic experiment.

:func:`run_epochs` calls a trainer's ``train_epoch(epoch) -> logs`` once per epoch and
does everything around it the same way for all of them: the learning-rate schedule,
keeping the best weights (measured on the weights actually kept), stopping rules and
callbacks, divergence, Ctrl-C, the progress bar, and the :class:`History`. It keeps no
state between calls, so trainings in several threads do not share anything here.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..tensor import Tensor
from ._errors import FitSettingError
from ._history import History
from ._progress import Progress

__all__ = ["BestWeights", "Callback", "EarlyStopping", "Schedule", "run_epochs"]

#: ``callback(epoch, logs)`` after every epoch; returning True stops training.
Callback = Callable[[int, dict[str, float]], "bool | None"]
#: ``schedule(epoch) -> factor``: the learning rate of an epoch is ``lr * factor``.
Schedule = Callable[[int], float]

# Divergence: the training loss is NaN/Inf, or above DIVERGENCE_FACTOR times the first
# epoch's loss for DIVERGENCE_EPOCHS epochs in a row.
DIVERGENCE_FACTOR = 10.0
DIVERGENCE_EPOCHS = 3


class BestWeights:
    """A copy of the parameters kept in place, so saving and restoring allocate nothing.

    The best weights may also be the parameters themselves (:meth:`hold_live`): then
    nothing is copied until they are about to change (:meth:`commit`). In a training
    whose epochs are one step each, the loss improves in most epochs, and the copy after
    each of them (the size of the model, every step) is what the loop would cost most.
    """

    def __init__(self, parameters: Sequence[Any], *, keep_now: bool = True) -> None:
        """Keep a copy of ``parameters``' values (``keep_now`` False: only allocate the
        copy, to be filled by the first :meth:`save`)."""
        self._parameters = list(parameters)
        self._saved: list[Any] = [
            (p.data.copy() if keep_now else np.empty_like(p.data))
            if isinstance(p, Tensor)
            else p.data
            for p in self._parameters
        ]
        # Saving runs after most epochs: a flat list of (copy, tensor) pairs keeps it cheap.
        self._tensors = [
            (saved, p) for saved, p in zip(self._saved, self._parameters) if isinstance(p, Tensor)
        ]
        self._values = [
            index for index, p in enumerate(self._parameters) if not isinstance(p, Tensor)
        ]
        self.live = False  # the parameters are the best weights (the copy is stale)

    def save(self) -> None:
        """Copy the current parameters into the kept copy."""
        for saved, tensor in self._tensors:
            saved[...] = tensor.data  # (for small arrays faster than np.copyto)
        for index in self._values:
            self._saved[index] = self._parameters[index].data
        self.live = False

    def hold_live(self) -> None:
        """The current parameters are the best weights: keep them where they are until
        :meth:`commit` (which must come before anything changes them)."""
        self.live = True

    def commit(self) -> None:
        """Copy best weights held live into the kept copy (before the parameters change)."""
        if self.live:
            self.save()

    def restore(self) -> None:
        """Put the kept copy back into the parameters (in place where possible)."""
        if self.live:
            return  # the parameters are the best weights
        for saved, parameter in zip(self._saved, self._parameters):
            if isinstance(parameter, Tensor) and parameter.data.flags.writeable:
                # In place: anything holding the parameter arrays (a compiled step) sees it.
                parameter.data[...] = saved
            elif isinstance(parameter, Tensor):
                parameter.data = saved.copy()
            else:
                parameter.data = saved

    def finite(self) -> bool:
        """Whether every kept value is finite."""
        kept = [p.data for p in self._parameters] if self.live else self._saved
        return all(bool(np.isfinite(value).all()) for value in kept)


class _InterruptShield:
    """Holds Ctrl-C back while the best weights exist only in parameters being changed.

    Installed for a whole training as the SIGINT handler (only over Python's default
    one, in the main thread): outside a hold it raises KeyboardInterrupt as the default
    does; inside one it notes the interrupt and :meth:`release` raises it. A hold lasts
    one optimizer step and the bookkeeping of its epoch.
    """

    def __init__(self) -> None:
        self.installed = False
        self.holding = False
        self.caught = False

    def install(self) -> bool:
        """Become the SIGINT handler; False (and nothing done) where that is not possible."""
        if (
            threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        ):
            return False
        signal.signal(signal.SIGINT, self._interrupted)
        self.installed = True
        return True

    def uninstall(self) -> None:
        """Put Python's default handler back (unless the program has set one of its own
        meanwhile)."""
        if self.installed:
            if signal.getsignal(signal.SIGINT) == self._interrupted:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            self.installed = False

    def _interrupted(self, signum: int, frame: Any) -> None:
        if not self.holding:
            raise KeyboardInterrupt
        self.caught = True

    def release(self) -> None:
        """End the hold; raise the KeyboardInterrupt that came during it, if one did."""
        self.holding = False
        if self.caught:
            self.caught = False
            raise KeyboardInterrupt


class _Verdicts:
    """Whether each epoch improved the monitor, decided before its step changes the weights.

    For epochs of one optimizer step each (see ``run_epochs``'s ``call_before_update``):
    the step calls :meth:`before_update` with the value the epoch will log under the
    monitor. An improving epoch's weights after the step will be the new best, so the
    best weights held live are not copied; otherwise they are copied before they change.
    """

    def __init__(self, best: BestWeights, shield: _InterruptShield, sign: float) -> None:
        self.best = best
        self.shield = shield
        self.sign = sign
        self.best_value = math.inf
        self.verdict: bool | None = None  # this epoch's, once its step has decided it

    def improves(self, value: float) -> bool:
        """Whether ``value`` of the monitor beats the best so far (NaN never does)."""
        return self.sign * value < self.best_value

    def before_update(self, value: float) -> None:
        # A loss that is not finite ends training as diverged, never as the best epoch.
        improving = math.isfinite(value) and self.improves(value)
        self.verdict = improving
        if improving:
            self.shield.holding = True  # until the epoch is recorded as the best
        else:
            self.best.commit()


class EarlyStopping:
    """Stop after ``patience`` epochs in which the monitored loss did not reach a new low.

    Args:
        patience: epochs without a new best before stopping (at least 1).
        monitor: the log watched (``"val_loss"`` or ``"loss"``).
    """

    def __init__(self, patience: int, monitor: str = "loss") -> None:
        self.patience = patience
        self.monitor = monitor
        self._best = math.inf
        self._waited = 0

    def __call__(self, epoch: int, logs: dict[str, float]) -> bool:
        value = logs[self.monitor]
        if value < self._best:
            self._best = value
            self._waited = 0
        else:
            self._waited += 1
        return self._waited >= self.patience


def make_schedule(lr_schedule: Any, epochs: int) -> Schedule | None:
    """``lr_schedule`` as a function epoch -> factor: "step", "cosine", a callable or None.

    ``"step"`` halves the learning rate every quarter of the epochs (factors 1, ½, ¼,
    ⅛); ``"cosine"`` follows ½·(1 + cos(π·(epoch − 1)/epochs)), from 1 towards 0.
    """
    if lr_schedule is None:
        return None
    if isinstance(lr_schedule, str):
        name = lr_schedule.strip().lower()
        if name == "step":
            every = max(1, epochs // 4)
            return lambda epoch: 0.5 ** ((epoch - 1) // every)
        if name == "cosine":
            return lambda epoch: 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / epochs))
        raise FitSettingError(
            f"unknown lr_schedule {lr_schedule!r}; use 'step', 'cosine', or a function "
            "epoch -> factor (the learning rate of an epoch is lr times the factor)"
        )
    if not callable(lr_schedule):
        raise FitSettingError(
            f"lr_schedule must be 'step', 'cosine' or a function epoch -> factor, not "
            f"{type(lr_schedule).__name__}"
        )
    return lr_schedule


def _factor(schedule: Schedule, epoch: int) -> float:
    factor = schedule(epoch)
    if (
        not isinstance(factor, (int, float, np.floating, np.integer))
        or isinstance(factor, bool)
        or not math.isfinite(float(factor))
        or float(factor) <= 0
    ):
        raise FitSettingError(
            f"lr_schedule({epoch}) returned {factor!r}; it must return a positive number "
            "(the factor the learning rate is multiplied by in that epoch)"
        )
    return float(factor)


def _exploded(loss: float, first: float | None) -> bool:
    if not math.isfinite(loss):
        return True
    return first is not None and loss > DIVERGENCE_FACTOR * first and loss - first > 1e-12


def run_epochs(
    history: History,
    train_epoch: Callable[[int], dict[str, float]],
    parameters: Sequence[Any],
    *,
    epochs: int,
    higher_is_better: bool = False,
    restore_best: bool = False,
    stop_rules: Sequence[Callback] = (),
    callbacks: Sequence[Callback] = (),
    progress: Progress | None = None,
    measure: Callable[[], float] | None = None,
    optimizer: Any = None,
    schedule: Schedule | None = None,
    first_epoch: int = 1,
    call_before_update: Callable[[Callable[[float], None] | None], None] | None = None,
) -> None:
    """Train for ``epochs`` epochs, filling ``history`` in place as each one ends.

    Args:
        history: receives the logs; its ``monitor`` names the log the best epoch is
            chosen by.
        train_epoch: ``train_epoch(epoch) -> logs``: one pass over the data; ``logs``
            holds ``loss`` and any other measurements (``val_loss``, ``accuracy`` ...).
        parameters: the model's parameters (saved when the monitor improves).
        epochs: the most epochs to run.
        higher_is_better: the monitor is a score (R², accuracy), not a loss.
        restore_best: end with the best epoch's weights even when training completes
            (early stopping). They are always restored after divergence or Ctrl-C.
        stop_rules: rules ``rule(epoch, logs) -> bool`` ending training early
            (``stop_reason`` "early_stopping").
        callbacks: the user's callbacks (``stop_reason`` "callback").
        progress: the bar to advance once per epoch.
        measure: the monitored loss of the weights the model holds now, measured (a
            forward pass). Used only when weights are restored and the monitor is the
            training loss: the best epoch is then confirmed on the weights kept, and
            after a divergence the initial weights are kept if they are better.
        optimizer: the optimizer whose ``lr`` the ``schedule`` sets.
        schedule: the learning-rate schedule (epoch -> factor of the optimizer's lr).
        first_epoch: the number of the first epoch (estimators continuing a fit).
        call_before_update: for trainers whose every epoch is one optimizer step and
            whose monitor is the training loss: ``call_before_update(hook)`` makes the
            step call ``hook(loss)`` with the loss the epoch will log, before the step
            changes the weights (``call_before_update(None)`` stops it). The best
            weights are then copied only when an epoch does not improve on them, not
            after every improving epoch. Give it only when nothing but chainrule's own
            code runs between the hook and the end of the step (Ctrl-C is held back
            there; a KeyboardInterrupt raised by other code could not be). Ignored
            when user callbacks are given (they may change the weights) or Ctrl-C
            cannot be held back for the moment the best weights are not copied
            (another thread, or a SIGINT handler of the program's own).
    """
    initial = BestWeights(parameters) if measure is not None else None
    # Until an epoch saves into it, the start is restored from ``initial`` when there
    # is one (see _restore): copying the weights twice before training is then wasted.
    best = BestWeights(parameters, keep_now=initial is None)
    sign = -1.0 if higher_is_better else 1.0
    shield = _InterruptShield()
    verdicts = _Verdicts(best, shield, sign)
    deferred = (
        call_before_update is not None
        and not callbacks
        and history.monitor == "loss"
        and not higher_is_better
        and shield.install()
    )
    first_loss: float | None = None
    exploded_epochs = 0
    base_lr = float(optimizer.lr) if (schedule is not None and optimizer is not None) else 0.0
    try:
        if deferred:
            assert call_before_update is not None
            call_before_update(verdicts.before_update)
        for epoch in range(first_epoch, first_epoch + epochs):
            if schedule is not None and optimizer is not None:
                optimizer.lr = base_lr * _factor(schedule, epoch)
                history.learning_rate.append(float(optimizer.lr))
            verdicts.verdict = None
            logs = train_epoch(epoch)
            history.record(epoch, logs)
            loss = logs["loss"]
            exploded_epochs = exploded_epochs + 1 if _exploded(loss, first_loss) else 0
            if first_loss is None and math.isfinite(loss):
                first_loss = loss
            if not math.isfinite(loss) or exploded_epochs >= DIVERGENCE_EPOCHS:
                history.diverged = history.stopped_early = True
                history.stop_reason = "diverged"
                history.diverged_epoch = epoch
                break
            verdict = verdicts.verdict
            if verdict is None:  # decided here, after the epoch (NaN never counts as better)
                verdict = verdicts.improves(logs[history.monitor])
            if verdict:
                verdicts.best_value = sign * logs[history.monitor]
                history.best_epoch = epoch
                history.best_loss = logs[history.monitor]
                if verdicts.verdict is None:
                    best.save()
                else:  # the weights after the epoch's step are the best: no copy yet
                    best.hold_live()
                    shield.release()
            if progress is not None and progress.shown:
                progress.update(_progress_text(logs))
            stop = False
            for callback in callbacks:
                stop = bool(callback(epoch, logs)) or stop
            if stop:
                history.stopped_early = True
                history.stop_reason = "callback"
                break
            ruled = False
            for rule in stop_rules:
                ruled = bool(rule(epoch, logs)) or ruled
            if ruled:
                history.stopped_early = True
                history.stop_reason = "early_stopping"
                break
    except KeyboardInterrupt:
        history.interrupted = True
        history.stop_reason = "interrupted"
    finally:
        if deferred:
            assert call_before_update is not None
            call_before_update(None)
        shield.uninstall()
        if progress is not None:
            progress.close()
    if history.interrupted or history.diverged or restore_best:
        _restore(history, best, initial, measure)
    if schedule is not None and optimizer is not None:
        optimizer.lr = base_lr


def _restore(
    history: History,
    best: BestWeights,
    initial: BestWeights | None,
    measure: Callable[[], float] | None,
) -> None:
    """End with the best weights, confirmed by a loss measured on them."""
    if history.best_epoch is None:  # no epoch completed: back to the start
        (initial or best).restore()
        history.restored = True
        return
    best.restore()
    history.restored = True
    if measure is None or history.monitor != "loss":
        return  # the monitor (val_loss) was measured on exactly these weights
    # The training loss of an epoch is a mean over weights that changed during it:
    # measure the kept weights themselves, and after a divergence compare with the start.
    kept = measure()
    if history.diverged and initial is not None:
        best.commit()  # the parameters are about to hold the start for a while
        initial.restore()
        at_start = measure()
        if not math.isfinite(kept) or at_start <= kept:
            history.best_epoch, history.best_loss = 0, at_start
            return
        best.restore()
    history.best_loss = kept


def _progress_text(logs: dict[str, float]) -> str:
    """The losses shown beside the progress bar: ``loss=0.1234 val_loss=0.2345``."""
    text = f"loss={logs['loss']:.4g}"
    if "val_loss" in logs:
        text += f" val_loss={logs['val_loss']:.4g}"
    return text
