"""chainrule: backpropagation you can see through and train with.

The core (values, ops, backward, gradcheck) is imported eagerly and needs only
numpy. Everything heavier — diagrams, networks, training, files — is imported the
first time it is used, so ``import chainrule`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import functions

# NOTE: the function chainrule.compile shares its name with the package that holds it:
# importing the package here, eagerly (it needs only numpy), makes the name mean the
# function from then on; the package's modules stay importable by their full names.
from .compile import compile as compile
from .errors import AnomalyError as AnomalyError
from .errors import ChainruleError as ChainruleError
from .errors import DTypeError as DTypeError
from .errors import GradcheckError as GradcheckError
from .errors import NumpyOnTensorError as NumpyOnTensorError
from .errors import ShapeError as ShapeError
from .functional import detect_anomaly as detect_anomaly
from .functional import enable_grad as enable_grad
from .functional import grad as grad
from .functional import no_grad as no_grad
from .functional import value_and_grad as value_and_grad
from .functions import abs as abs
from .functions import cos as cos
from .functions import exp as exp
from .functions import log as log
from .functions import log_softmax as log_softmax
from .functions import logsumexp as logsumexp
from .functions import matmul as matmul
from .functions import maximum as maximum
from .functions import mean as mean
from .functions import relu as relu
from .functions import sigmoid as sigmoid
from .functions import sin as sin
from .functions import softmax as softmax
from .functions import softplus as softplus
from .functions import sqrt as sqrt
from .functions import sum as sum
from .functions import tan as tan
from .functions import tanh as tanh
from .functions import where as where
from .gradcheck import GradcheckResult as GradcheckResult
from .gradcheck import check_grad as check_grad
from .gradcheck import gradcheck as gradcheck
from .gradcheck import numerical_grad as numerical_grad
from .tensor import Tensor as Tensor
from .tensor import tensor as tensor
from .value import Value as Value

__version__ = "0.1.0"

# Public names that live in modules imported on first use: name -> "module:attribute".
_LAZY = {
    "nn": "chainrule.nn:",
    "optim": "chainrule.optim:",
    "datasets": "chainrule.datasets:",
    "practice": "chainrule.practice:",
    "fit": "chainrule.training:fit",
    "History": "chainrule.training:History",
    "save": "chainrule.io:save",
    "load": "chainrule.io:load",
    "export_onnx": "chainrule.export:export_onnx",
    "draw": "chainrule.explanations:draw",
    "draw_network": "chainrule.explanations:draw_network",
    "explain": "chainrule.explanations:explain",
    "symbolic": "chainrule.explanations:symbolic",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None and name in functions.__all__:
        return getattr(functions, name)  # a function made from its op row alone
    if target is None:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY) + functions.__all__)
