"""Rebuilding a module from its config: the one list of module types a config may name.

A model file stores a module's architecture as :meth:`Module.config` (JSON with a
``"type"``); :func:`from_config` builds it again. Only the types listed in
:data:`MODULE_TYPES` can be built, so a file can never make chainrule construct a
class the library did not list here (nothing is imported or executed by name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .modules import (
    MLP,
    ConfigError,
    Identity,
    Linear,
    Module,
    ReLU,
    Seed,
    Sequential,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from .neurons import NeuronMLP

#: Module classes ``from_config`` may build, by the ``"type"`` a config names.
MODULE_TYPES: dict[str, type[Module]] = {
    cls.__name__: cls
    for cls in (
        Linear,
        Sequential,
        Sigmoid,
        Tanh,
        ReLU,
        Softplus,
        Identity,
        Softmax,
        MLP,
        NeuronMLP,
        MSELoss,
        BCELoss,
        BCEWithLogitsLoss,
        CrossEntropyLoss,
    )
}


def from_config(config: Mapping[str, Any], seed: Seed = None) -> Module:
    """Rebuild a module from :meth:`Module.config`, with fresh weights.

    Args:
        config: a dict with a ``"type"`` naming a chainrule.nn module and that
            module's constructor arguments.
        seed: seeds the new weights (an int or a numpy Generator); None for fresh
            randomness.

    Only chainrule's own module types (:data:`MODULE_TYPES`) can be built, and
    nothing in the config is ever imported or executed.
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"a module config is a dict, not {type(config).__name__}")
    type_name = config.get("type")
    cls = MODULE_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ConfigError(
            f"config names module type {type_name!r}; known types: "
            f"{', '.join(sorted(MODULE_TYPES))}"
        )
    arguments = {key: value for key, value in config.items() if key != "type"}
    return cls._from_config(arguments, seed, from_config)
