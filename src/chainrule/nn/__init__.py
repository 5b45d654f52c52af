"""Networks: modules, the handouts' MLP (tensor and neuron level), activations, losses.

>>> import chainrule as cr
>>> model = cr.nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid", seed=0)
>>> model(cr.tensor([[0.0, 1.0]])).shape
(1, 1)
"""

from __future__ import annotations

from .activations import ACTIVATIONS as ACTIVATIONS
from .activations import get_activation as get_activation
from .config import from_config as from_config
from .handout_names import WeightNameError as WeightNameError
from .handout_names import parse_weight_name as parse_weight_name
from .losses import LOSSES as LOSSES
from .losses import BCELoss as BCELoss
from .losses import BCEWithLogitsLoss as BCEWithLogitsLoss
from .losses import CrossEntropyLoss as CrossEntropyLoss
from .losses import MSELoss as MSELoss
from .losses import TargetError as TargetError
from .losses import binary_cross_entropy as binary_cross_entropy
from .losses import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from .losses import cross_entropy as cross_entropy
from .losses import get_loss as get_loss
from .losses import log_loss as log_loss
from .losses import mse_loss as mse_loss
from .losses import square_loss as square_loss
from .modules import MLP as MLP
from .modules import ConfigError as ConfigError
from .modules import Identity as Identity
from .modules import Linear as Linear
from .modules import Module as Module
from .modules import ReLU as ReLU
from .modules import Sequential as Sequential
from .modules import Sigmoid as Sigmoid
from .modules import Softmax as Softmax
from .modules import Softplus as Softplus
from .modules import StateDictError as StateDictError
from .modules import Tanh as Tanh
from .neurons import NeuronMLP as NeuronMLP

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "MLP",
    "BCELoss",
    "BCEWithLogitsLoss",
    "ConfigError",
    "CrossEntropyLoss",
    "Identity",
    "Linear",
    "MSELoss",
    "Module",
    "NeuronMLP",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "StateDictError",
    "Tanh",
    "TargetError",
    "WeightNameError",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "from_config",
    "get_activation",
    "get_loss",
    "log_loss",
    "mse_loss",
    "parse_weight_name",
    "square_loss",
]
