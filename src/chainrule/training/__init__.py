"""Training: ``fit(model, X, y, ...)`` returns a :class:`History`.

The package is laid out by job:

- ``_inputs``: everything the user hands in is checked before the first weight moves
  (NaN or Inf counted per column, labels, lengths, weights, settings); each problem
  raises a :class:`FitError` kind that says what is wrong, where, and what to do.
- ``_objective``: the loss matched to the model's output, as a pure function of arrays
  (example weights and the L2 penalty included) so the compiled step replays flat, and
  the training steps.
- ``_loop``: the one epoch loop, shared with the scikit-learn estimators and the Titanic
  experiment: best weights, stopping rules as callbacks, divergence, Ctrl-C.
- ``_history``, ``_progress``: what happened, and the progress bar.
"""

from ._errors import (
    FitError,
    FitSettingError,
    LabelError,
    LengthMismatchError,
    NonFiniteInputError,
    NoProgressWarning,
    TrainingDivergedWarning,
)
from ._fit import fit
from ._history import History
from ._loop import BestWeights, EarlyStopping, run_epochs
from ._progress import Progress

__all__ = [
    "BestWeights",
    "EarlyStopping",
    "FitError",
    "FitSettingError",
    "History",
    "LabelError",
    "LengthMismatchError",
    "NoProgressWarning",
    "NonFiniteInputError",
    "Progress",
    "TrainingDivergedWarning",
    "fit",
    "run_epochs",
]
