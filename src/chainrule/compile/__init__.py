"""Record a training step once, replay it as a flat list of numpy calls.

A training step on a fixed architecture applies the same ops to arrays of the same
shapes every time. :func:`compile` runs the step once in eager mode while a recorder
watches every :meth:`Tensor._apply <chainrule.Tensor>` and ``backward()``; from that
recording it builds a *program*: one preallocated buffer per value, and for every op
the numpy calls that recompute it in place (``out=`` arithmetic, views made once,
matrix products written straight into the gradient buffers). Replaying the program
builds no graph objects, allocates (almost) nothing and runs exactly the arithmetic
eager mode runs, so the results are the same to the last bit.

Two ways to use it::

    # 1. Wrap any eager step. It is called again every time, but each Tensor op and
    #    each backward() inside it is served from the recording.
    def train_step(xb, yb):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        return loss

    step = chainrule.compile(train_step)

    # 2. Give the loss and the optimizer: fn is traced once and not called again
    #    (the fastest form; fn must be a pure function of its arguments and the
    #    parameters). Each call does zero_grad, forward, backward and opt.step().
    step = chainrule.compile(lambda xb, yb: loss_fn(model(xb), yb), optimizer=opt)

    for xb, yb in batches:
        loss = step(xb, yb)

Re-tracing rules:

- A call whose array arguments have new shapes or dtypes records a new program (up
  to ``max_traces`` programs are kept, least recently used dropped first). With
  ``optimizer=`` the values of non-array arguments are part of the key too.
- Python control flow is not recorded, only the ops it leads to. In the first form
  every op is checked against the recording as the step runs (same op, same
  parameters, same input tensors); a step that takes another path finishes that call
  in eager mode and is recorded again on the next call. After ``max_divergences``
  such calls the step runs eagerly for good (with a :class:`RuntimeWarning`).
- In the second form ``fn`` is not run again, so the flat replay is used only when
  every input of the recording is accounted for: the arguments (by identity of their
  arrays: pass arrays of the model's dtype, which ``fn`` then uses as they are), the
  parameters (leaf tensors that require grad, read in place) and scalar constants.
  Any other array (labels converted to another dtype inside ``fn``, an index made
  with ``np.arange``) makes that trace replay in the first form, calling ``fn``
  again, which is always correct. The first replay of every flat trace also runs
  ``fn`` eagerly and compares the losses bit for bit, catching a scalar constant
  that changes between calls; if they differ, the trace replays in the first form.

What is reused between calls: intermediate tensors of the step and the ``grad``
arrays of the parameters are the same buffers on every call (values the step
returns are copied). Optimizers must therefore not keep a parameter's ``grad`` array
from one step to the next (chainrule's optimizers don't). Parameters must be updated
in place (``p.data -= ...``); a parameter whose ``data`` is replaced by a new array
is noticed and the step is recorded again. ``detect_anomaly()`` runs the step eagerly.

Threads: the recording switch lives in the running context like ``no_grad()``, so
steps compiled for different models train at once in different threads, each as it
would alone. One compiled step called from several threads at once runs its calls
one after another (its buffers are shared), never interleaved.

The package: :mod:`~chainrule.compile.step` (this entry and :class:`CompiledStep`),
:mod:`~chainrule.compile.recording` (recording and replay) and planning, split by job:
:mod:`~chainrule.compile.planning` (the program), :mod:`~chainrule.compile.analysis`
(what the recording freezes, uses and reads), :mod:`~chainrule.compile.forward_planning`
and :mod:`~chainrule.compile.backward_planning` (buffers and instructions),
:mod:`~chainrule.compile.buffers` (the backward buffer pool) and
:mod:`~chainrule.compile.checking` (kernels against rows, bit for bit). The attribute
``chainrule.compile`` is the function; reach the modules with ``from chainrule.compile
import planning`` (``import chainrule.compile.planning as planning`` would look the
module up on the function).
"""

from .recording import CompileError as CompileError
from .step import CompiledStep as CompiledStep
from .step import CompileStats as CompileStats
from .step import compile as compile

__all__ = ["CompileError", "CompileStats", "CompiledStep", "compile"]
