"""The public entry: :func:`compile` and the :class:`CompiledStep` it returns."""

from __future__ import annotations

import functools
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..graph import grad_mode, grad_mode_set, recording
from ..tensor import Tensor, _constant
from .checking import _same_bits
from .planning import _Program
from .recording import (
    CompileError,
    _array_of,
    _BackwardEvent,
    _Recorder,
    _Replayer,
    _Uncompilable,
)
from .straightline import Program

__all__ = ["CompileError", "CompileStats", "CompiledStep", "compile"]

_EAGER = "eager"


def _signature(arguments: tuple[Any, ...], with_values: bool) -> tuple[Any, ...]:
    key: list[Any] = []
    for argument in arguments:
        if type(argument) is np.ndarray:  # the common case first: it runs on every call
            key.append((argument.shape, argument.dtype))
            continue
        array = _array_of(argument)
        if isinstance(array, np.ndarray):
            key.append((type(argument), array.shape, array.dtype))
        elif with_values:
            if not isinstance(argument, (int, float, bool, str, type(None))):
                raise TypeError(
                    "chainrule.compile(fn, optimizer=...) takes numpy arrays, Tensors and "
                    f"plain numbers/strings as arguments, not {type(argument).__name__}; "
                    "convert it to a numpy array (or compile without optimizer=)"
                )
            key.append((type(argument), argument))
        else:
            key.append(type(argument))
    return tuple(key)


def _leaf_copy(data: np.ndarray) -> Tensor:
    """A new leaf Tensor holding a copy of ``data``."""
    return _constant(data.copy())


def _detached(value: Any) -> Any:
    """Returned tensors are copies: the step's own tensors are overwritten next call."""
    if isinstance(value, Tensor):
        return _leaf_copy(value.data)
    if isinstance(value, tuple):
        return tuple(_detached(v) for v in value)
    if isinstance(value, list):
        return [_detached(v) for v in value]
    return value


@dataclass
class CompileStats:
    """What a compiled step has done so far (for tests, benchmarks and curiosity).

    Attributes:
        traces: programs recorded (one per new signature, plus re-recordings).
        replays: calls served from a recording.
        flat_replays: calls that did not run the Python step at all (``optimizer=`` form).
        eager_calls: calls that ran eagerly (recordings excluded).
        divergences: calls that left the recording midway (another path through the step).
        notes: why a trace could not be used as asked, newest last.
    """

    traces: int = 0
    replays: int = 0
    flat_replays: int = 0
    eager_calls: int = 0
    divergences: int = 0
    notes: list[str] = field(default_factory=list)


class CompiledStep:
    """A step function that records itself once per signature and replays after that.

    Made by :func:`compile`; call it with the arguments the wrapped function takes.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        optimizer: Any = None,
        max_traces: int = 8,
        max_divergences: int = 3,
        verify: bool = True,
    ) -> None:
        self.fn = fn
        self.optimizer = optimizer
        self.max_traces = max_traces
        self.max_divergences = max_divergences
        self.verify = verify
        self.stats = CompileStats()
        #: With ``optimizer``: called with the step's loss (a float) after backward and
        #: right before the optimizer changes the parameters. The training loop decides
        #: there whether the weights it holds as the best must be copied before they
        #: change (see chainrule.training's BestWeights).
        self.before_update: Callable[[float], None] | None = None
        self._programs: OrderedDict[tuple[Any, ...], _Program | str] = OrderedDict()
        self._divergences: dict[tuple[Any, ...], int] = {}
        self._not_flat: set[tuple[Any, ...]] = set()  # signatures whose flat check failed
        # One replayer per program, made on its first replay and reset on every call.
        self._replayers: weakref.WeakKeyDictionary[_Program, _Replayer] = (
            weakref.WeakKeyDictionary()
        )
        self._last_replayer: _Replayer | None = None
        # The flat form's forward instructions as one function, per program.
        self._flat_forwards: weakref.WeakKeyDictionary[_Program, Program] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.RLock()
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        form = "with optimizer" if self.optimizer is not None else "step"
        return f"<chainrule.compile {form} {name}: {self.stats.traces} trace(s)>"

    # -- eager forms --

    def _eager(self, arguments: tuple[Any, ...]) -> Any:
        if self.optimizer is None:
            return self.fn(*arguments)
        self.optimizer.zero_grad()
        loss = self.fn(*arguments)
        _check_loss(loss)
        loss.backward()
        self._update(loss)
        return loss

    def check_again(self) -> None:
        """Verify the next flat replay of every kept trace again (with ``verify``).

        For a step kept across uses (fit keeps a model's step between fit calls) whose
        ``fn`` may read numbers other than its arguments and the parameters, which may
        have changed since the trace was checked.
        """
        for program in self._programs.values():
            if isinstance(program, _Program):
                program.verified = False

    def _note(self, message: str) -> None:
        self.stats.notes.append(message)
        del self.stats.notes[:-20]

    # -- the call --

    def __call__(self, *arguments: Any) -> Any:
        # The programs' buffers are shared by every call: a call from another thread
        # waits for the running one to finish (re-entry from the same thread passes).
        with self._lock:
            return self._call(arguments)

    def _call(self, arguments: tuple[Any, ...]) -> Any:
        mode = grad_mode()
        if mode.recorder is not None or mode.detect_anomaly:
            # Inside another recording (its recorder sees these ops) or while debugging.
            self.stats.eager_calls += 1
            return _detached(self._eager(arguments))
        key = _signature(arguments, with_values=self.optimizer is not None)
        program = self._programs.get(key)
        if program is _EAGER:
            self.stats.eager_calls += 1
            return _detached(self._eager(arguments))
        if isinstance(program, _Program) and not program.parameters_in_place():
            self._note("a parameter's data array was replaced; recording again")
            program = None
        if not isinstance(program, _Program):
            return self._record(key, arguments)
        self._programs.move_to_end(key)
        if program.flat:
            result = self._replay_flat(key, program, arguments)
            if result is None:  # the first-replay check failed: record without the flat form
                return self._record(key, arguments)
            return result
        return self._replay(key, program, arguments)

    def _record(self, key: tuple[Any, ...], arguments: tuple[Any, ...]) -> Any:
        # With optimizer= the program is planned before the update (see below), so the
        # values eager backward computes are still the ones to check kernels against.
        recorder = _Recorder(keep_contributions=self.optimizer is not None)
        self.stats.traces += 1
        with recording(recorder):
            if self.optimizer is None:
                result = self.fn(*arguments)
            else:
                self.optimizer.zero_grad()
                result = self.fn(*arguments)
                _check_loss(result)
                result.backward()
        result = _detached(result)
        flat_candidate = self.optimizer is not None and key not in self._not_flat
        try:
            # With optimizer=, the program is planned before the update, while the
            # parameters still hold the values the recorded ops saw: the planner then
            # checks its kernels against the recorded values instead of running every
            # row again (the update reads only the gradients, which planning leaves alone).
            program = _Program(
                recorder.events, arguments, flat_candidate, self.optimizer is not None
            )
        except _Uncompilable as reason:
            self._note(f"runs eagerly: {reason}")
            self._store(key, _EAGER)
            return result
        finally:
            if self.optimizer is not None:
                self._update(result)
        if flat_candidate and not program.flat:
            self._note(f"replays by calling fn again: {program.fallback_reason}")
        self._store(key, program)
        return result

    def _store(self, key: tuple[Any, ...], program: _Program | str) -> None:
        self._programs[key] = program
        self._programs.move_to_end(key)
        while len(self._programs) > self.max_traces:
            self._programs.popitem(last=False)

    def _replay(self, key: tuple[Any, ...], program: _Program, arguments: tuple[Any, ...]) -> Any:
        replayer = self._last_replayer  # the common case: the same program as last call
        if replayer is None or replayer.events is not program.events:
            replayer = self._replayers.get(program)
            if replayer is None:
                replayer = self._replayers[program] = _Replayer(program.events)
            self._last_replayer = replayer
        replayer.start()
        if self.optimizer is not None:
            self.optimizer.zero_grad()
        try:
            with replayer.block:
                result = self.fn(*arguments)
                if self.optimizer is not None:
                    _check_loss(result)
                    result.backward()
        except BaseException:
            self._programs.pop(key, None)  # state unknown: record again next time
            raise
        if self.optimizer is not None:
            self._update(result)
        if replayer.diverged or replayer.cursor != replayer.count:
            self._diverged(key, program)
        else:
            self.stats.replays += 1
        return _detached(result)

    def _update(self, loss: Tensor) -> None:
        """The optimizer's step, after the update hook has seen the loss."""
        if self.before_update is not None:
            self.before_update(float(loss.data))
        self.optimizer.step()

    def _diverged(self, key: tuple[Any, ...], program: _Program) -> None:
        self.stats.divergences += 1
        count = self._divergences[key] = self._divergences.get(key, 0) + 1
        if count > self.max_divergences:
            name = getattr(self.fn, "__qualname__", "the step")
            warnings.warn(
                f"chainrule.compile: {name} applied different ops on "
                f"{count} calls with the same argument shapes (Python "
                "control flow that depends on data?); running it eagerly from now on",
                RuntimeWarning,
                stacklevel=3,
            )
            self._store(key, _EAGER)
        else:
            self._programs.pop(key, None)  # record the new path on the next call

    def _replay_flat(
        self, key: tuple[Any, ...], program: _Program, arguments: tuple[Any, ...]
    ) -> Any:
        for index, buffer in program.argument_bindings:
            np.copyto(buffer, _array_of(arguments[index]))
        forward = self._flat_forwards.get(program)
        if forward is None:
            forward = self._flat_forwards[program] = Program(program.flat_forward)
        forward()
        backward_event = program.events[-1]
        assert isinstance(backward_event, _BackwardEvent)
        root = backward_event.root
        if self.verify and not program.verified:
            with grad_mode_set(enabled=False):
                eager_loss = self.fn(*arguments)
            if not _same_bits(_array_of(eager_loss), root.data):
                # Its buffers were planned for the flat form; record afresh without it.
                self._not_flat.add(key)
                self._programs.pop(key, None)
                self._note(
                    "replays by calling fn again: the traced loss differed from fn's "
                    "(fn depends on numbers other than its arguments and the parameters)"
                )
                return None
            program.verified = True
        assert self.optimizer is not None
        self.optimizer.zero_grad()
        backward_event.replay()
        result = _leaf_copy(root.data)
        self._update(result)
        self.stats.replays += 1
        self.stats.flat_replays += 1
        return result


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, Tensor):
        raise CompileError(
            "with optimizer=, the compiled function must return the loss as a chainrule "
            f"Tensor, not {type(loss).__name__}"
        )
    if not loss.requires_grad:
        raise CompileError(
            "the loss returned to chainrule.compile does not depend on any tensor that "
            "requires grad: are the model's parameters made with requires_grad=True?"
        )


def compile(
    fn: Callable[..., Any],
    *,
    optimizer: Any = None,
    max_traces: int = 8,
    max_divergences: int = 3,
    verify: bool = True,
) -> CompiledStep:
    """Compile an eager training step: record it once, replay it into preallocated buffers.

    Args:
        fn: without ``optimizer``, any function of arrays/Tensors that applies Tensor ops
            and calls ``backward()`` (a whole training step). It is called on every call;
            its ops are served from the recording. With ``optimizer``, a function
            returning the loss Tensor, pure in its arguments and the parameters: it is
            traced once per signature and then not called again.
        optimizer: an optimizer (``zero_grad()``, ``step()``) whose step follows
            ``backward()``. Each call then is ``zero_grad(); loss = fn(*args);
            loss.backward(); optimizer.step()`` and returns a copy of the loss.
        max_traces: how many signatures (shapes, dtypes) keep a program.
        max_divergences: calls that may leave their recording before the step is run
            eagerly for good (with a RuntimeWarning).
        verify: with ``optimizer``, check the first replay of each trace against an eager
            call of ``fn`` bit for bit (falling back to calling ``fn`` if they differ).

    Returns:
        A :class:`CompiledStep`, called like ``fn``. Its ``stats`` say what it did.
    """
    if not callable(fn):
        raise TypeError(f"chainrule.compile needs a function, not {type(fn).__name__}")
    if optimizer is not None and not (
        callable(getattr(optimizer, "step", None))
        and callable(getattr(optimizer, "zero_grad", None))
    ):
        raise TypeError(
            "optimizer= needs an object with step() and zero_grad() methods (a "
            f"chainrule.optim optimizer), not {type(optimizer).__name__}"
        )
    if max_traces < 1 or max_divergences < 0:
        raise ValueError("max_traces must be at least 1 and max_divergences at least 0")
    return CompiledStep(fn, optimizer, max_traces, max_divergences, verify)
