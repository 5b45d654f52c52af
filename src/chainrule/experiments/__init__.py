"""The handouts' experiments as library functions: the command line and the tests share them."""

from .titanic import HANDOUT_WEIGHTS as HANDOUT_WEIGHTS
from .titanic import YOUNG_AGE as YOUNG_AGE
from .titanic import TitanicResults as TitanicResults
from .titanic import handout_checks as handout_checks
from .titanic import handout_network as handout_network
from .titanic import run_titanic_experiment as run_titanic_experiment

__all__ = [
    "HANDOUT_WEIGHTS",
    "YOUNG_AGE",
    "TitanicResults",
    "handout_checks",
    "handout_network",
    "run_titanic_experiment",
]
