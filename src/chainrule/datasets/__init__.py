"""Data sets shipped inside chainrule (no network access, ever)."""

from .titanic import FEATURE_NAMES as FEATURE_NAMES
from .titanic import TITANIC_SHA256 as TITANIC_SHA256
from .titanic import TITANIC_SOURCE as TITANIC_SOURCE
from .titanic import DatasetError as DatasetError
from .titanic import TitanicData as TitanicData
from .titanic import load_titanic as load_titanic

__all__ = [
    "FEATURE_NAMES",
    "TITANIC_SHA256",
    "TITANIC_SOURCE",
    "DatasetError",
    "TitanicData",
    "load_titanic",
]
