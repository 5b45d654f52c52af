"""The two array namespaces every elementwise rule is written against.

An op's forward and partials are written once as ``rule(xp, ...)``; ``xp`` is
:data:`SCALAR` for :class:`~chainrule.Value` (Python floats) and :data:`ARRAY` for
:class:`~chainrule.Tensor` (numpy arrays). Both namespaces offer the same names
with the same meaning, including numpy's behaviour outside a function's domain
(``log(-1)`` is NaN, ``log(0)`` is −inf) instead of Python's ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_NAN = float("nan")
_INF = float("inf")


class _ScalarMath:
    """Python-float versions of the numpy functions the op rules use."""

    pi = math.pi

    @staticmethod
    def exp(x: float) -> float:
        try:
            return math.exp(x)
        except OverflowError:
            return _INF

    @staticmethod
    def log(x: float) -> float:
        if x > 0.0:
            return math.log(x)
        return -_INF if x == 0.0 else _NAN

    @staticmethod
    def log1p(x: float) -> float:
        if x > -1.0:
            return math.log1p(x)
        return -_INF if x == -1.0 else _NAN

    @staticmethod
    def sqrt(x: float) -> float:
        return math.sqrt(x) if x >= 0.0 else _NAN

    @staticmethod
    def sin(x: float) -> float:
        return math.sin(x) if math.isfinite(x) else _NAN

    @staticmethod
    def cos(x: float) -> float:
        return math.cos(x) if math.isfinite(x) else _NAN

    @staticmethod
    def tan(x: float) -> float:
        return math.tan(x) if math.isfinite(x) else _NAN

    tanh = staticmethod(math.tanh)

    @staticmethod
    def abs(x: float) -> float:
        return -x if x < 0.0 else x

    @staticmethod
    def sign(x: float) -> float:
        return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)

    @staticmethod
    def power(x: float, p: float) -> float:
        try:
            result = x**p
        except (ZeroDivisionError, OverflowError):
            # numpy's answer, with its sign: (-10)**309 is -inf, (-0.0)**-1 is -inf.
            with np.errstate(all="ignore"):
                return float(np.power(np.float64(x), np.float64(p)))
        if isinstance(result, complex):  # negative base, fractional exponent
            return _NAN
        return float(result)

    @staticmethod
    def where(condition: Any, x: Any, y: Any) -> Any:
        return x if condition else y

    @staticmethod
    def sigmoid(x: float) -> float:
        # Written per sign so exp never overflows and small results keep their digits.
        if x >= 0.0:
            return 1.0 / (1.0 + math.exp(-x))
        e = _ScalarMath.exp(x)
        return e / (1.0 + e)

    @staticmethod
    def maximum(x: float, y: float) -> float:
        return x if x >= y else y

    @staticmethod
    def logical_not(x: Any) -> bool:
        return not x

    def __getattr__(self, name: str) -> Any:
        # Any other name is the math module's function of that name with numpy's answer
        # where math raises (log1p(-1) is −inf, not ValueError), so a new op's rule
        # needs no entry here. Looked up once, then kept on the namespace.
        function = getattr(math, name, None)
        fallback = getattr(np, name, None)
        if not callable(function) or not callable(fallback):
            raise AttributeError(f"the scalar namespace has no function {name!r}")

        def scalar(*args: float) -> float:
            try:
                return float(function(*args))
            except (ValueError, OverflowError):
                with np.errstate(all="ignore"):
                    return float(fallback(*(np.float64(a) for a in args)))

        setattr(self, name, scalar)
        return scalar


class _ArrayMath:
    """numpy, plus the few functions numpy does not have under the same name."""

    pi = np.pi
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    sqrt = staticmethod(np.sqrt)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    tan = staticmethod(np.tan)
    tanh = staticmethod(np.tanh)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    power = staticmethod(np.power)
    where = staticmethod(np.where)
    maximum = staticmethod(np.maximum)
    logical_not = staticmethod(np.logical_not)

    def __getattr__(self, name: str) -> Any:
        # Any other name is numpy's function of that name, so a new op's rule needs no
        # entry here.
        function = getattr(np, name, None)
        if not callable(function):
            raise AttributeError(f"the array namespace has no function {name!r}")
        return function

    @staticmethod
    def sigmoid(x: np.ndarray) -> np.ndarray:
        return _ArrayMath.sigmoid_into(x, np.empty(np.shape(x), np.result_type(x, 0.5)))

    @staticmethod
    def sigmoid_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """σ(x) written into ``out`` (which may be ``x`` itself); returns ``out``."""
        # σ(x) = 1/(1 + e^−x): within ~2 ulp of the exact value for every x (½(1 +
        # tanh(x/2)), used before, rounds σ below ~1e-16 to 0), and half its time, as
        # numpy's exp is much faster than its tanh. For x below about −88 (float32) or
        # −709 (float64) e^−x overflows to inf and σ is 0, its limit: that overflow is
        # expected, so its warning is silenced.
        with np.errstate(over="ignore"):
            np.negative(x, out)
            np.exp(out, out)
            np.add(out, 1.0, out)
            np.reciprocal(out, out)
        return out


SCALAR = _ScalarMath()
ARRAY = _ArrayMath()


def numpy_semantics(rule: Any, *args: Any, **params: Any) -> float:
    """Evaluate an op rule on Python floats the way numpy would, as a float.

    Python's float arithmetic raises ZeroDivisionError or OverflowError where numpy
    returns ±inf or NaN. Op rules catch those rare exceptions and call this, so a
    Value at a domain edge (1/0, the slope of √x at 0) gets numpy's number.
    """
    with np.errstate(all="ignore"):
        arrays = [np.float64(a) if isinstance(a, float) else a for a in args]
        return float(rule(ARRAY, *arrays, **params))
