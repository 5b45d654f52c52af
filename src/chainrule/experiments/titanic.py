"""The handout's Titanic experiment (assignment, section 2 and exercise 2) as a library function.

The assignment's companion notebook shows, on the 714 Titanic passengers with a known
age, that

1. logistic regression on (age, male) learns nothing beyond "women survive": its
   accuracy equals the sex-only rule's (about 78 %), because survival is not monotone
   in age for men — young boys survived, men did not;
2. adding a hand-made feature ``is young male`` lifts logistic regression to about 79 %;
3. the 3→2→1 sigmoid MLP of the handout (inputs age, male and a bias unit) reaches the
   same accuracy from (age, male) alone: backprop makes the hidden units build the
   useful features themselves — one encodes sex, one encodes "young male";
4. exercise 2's hand-set weights (a), (b), (c) make such a network by hand.

:func:`run_titanic_experiment` does all of this with chainrule and returns the numbers
as a :class:`TitanicResults`; ``chainrule titanic`` prints them and the tests check them.

Units: the hand weights of exercise 2 are in years (``w1[2,1] = −1`` per year of age),
so every network and weight this module reports takes the raw age in years. Training
standardises age (mean 0, standard deviation 1) because gradient descent converges far
faster that way; the learned weights are then converted back to raw units exactly
(see :func:`_raw_units`), so they can be read next to the handout's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import nn, optim
from ..datasets import load_titanic
from ..errors import ChainruleError
from ..functional import no_grad
from ..tensor import tensor
from ..training import Progress, fit

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_HIDDEN",
    "DEFAULT_RESTARTS",
    "DEFAULT_SEED",
    "HANDOUT_WEIGHTS",
    "HANDOUT_YOUNG_AGE",
    "YOUNG_AGE",
    "ExperimentError",
    "HandCheck",
    "HiddenUnitResult",
    "ModelResult",
    "RestartResult",
    "TitanicResults",
    "handout_checks",
    "handout_network",
    "handout_predictions",
    "run_titanic_experiment",
]

#: "Young" for the hand-made feature ``is young male``: younger than this many years.
#: The handout speaks of males "under the age of say 5"; on these 714 passengers every
#: cut-off from 4 to 10 years gives the engineered model 78.9-79.1 %, one or two
#: passengers apart (docs/titanic.md lists them). 10 ("boys", not only toddlers; a round
#: number, not a searched one) gets as many right as the trained MLP, which puts its own
#: cut-off for boys near 7.
YOUNG_AGE = 10.0
#: The handout's "male under the age of say 5", used for exercise 2(b)'s unit.
HANDOUT_YOUNG_AGE = 5.0

#: Exercise 2's hand-set weights, (a) hidden unit 1 = is female, (b) hidden unit 2 =
#: is young male, (c) the output = female or young male. ``w1[i,3]`` and ``w2[1,3]`` are
#: the bias weights (the unit fixed at 1).
HANDOUT_WEIGHTS: dict[str, float] = {
    "w1[1,1]": 0.0,
    "w1[1,2]": -10.0,
    "w1[1,3]": 5.0,
    "w1[2,1]": -1.0,
    "w1[2,2]": 15.0,
    "w1[2,3]": -10.0,
    "w2[1,1]": 2.0,
    "w2[1,2]": 2.0,
    "w2[1,3]": -1.0,
}

DEFAULT_SEED = 0
DEFAULT_EPOCHS = 1000
DEFAULT_HIDDEN = 2
DEFAULT_RESTARTS = 5
#: Share of the passengers held out (a fixed split drawn from the seed).
HOLDOUT_FRACTION = 0.25
#: Plain gradient descent, w ← w − η·∇L, for the (convex) logistic regressions. With
#: standardised inputs the mean log loss has curvature below 1, so η = 2 is stable and
#: reaches the optimum (to 1e-6 in the loss) within a few hundred epochs.
LOGISTIC_LR = 2.0
#: Adam for the MLP: its loss surface has flat sigmoid plateaus that plain gradient
#: descent crosses only after many thousand epochs.
MLP_LR = 0.1
#: Ages on which the learned network's predictions are scanned (years, step 0.05).
AGE_GRID = np.round(np.arange(0.0, 80.0 + 1e-9, 0.05), 2)


class ExperimentError(ChainruleError, ValueError):
    """An experiment option is out of range; the message names it."""


@dataclass(frozen=True)
class ModelResult:
    """One model's accuracies.

    Attributes:
        name: what the model is, e.g. ``"logistic regression (age, male)"``.
        trained: False for rules and hand-set weights (nothing is fitted).
        accuracy: fitted on (or applied to) all passengers, scored on all of them.
        train_accuracy: fitted on the training split, scored on it.
        heldout_accuracy: that same fit scored on the held-out passengers.
        loss: mean log loss on all passengers (None for the hard sex-only rule).
        weights: parameters in raw units (age in years), by name.
    """

    name: str
    trained: bool
    accuracy: float
    train_accuracy: float
    heldout_accuracy: float
    loss: float | None
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RestartResult:
    """One random start of the MLP, fitted on all passengers.

    Attributes:
        seed: the seed of its initial weights.
        loss: final mean log loss.
        accuracy: accuracy on all passengers.
        loss_curve: mean log loss before each epoch's update.
    """

    seed: int
    loss: float
    accuracy: float
    loss_curve: np.ndarray = field(repr=False)


#: A hidden unit is said to match a handout feature ("closest to") only if, thresholded
#: at 0.5, it agrees with that feature on at least this share of the passengers.
CLOSE_AGREEMENT = 0.95


@dataclass(frozen=True)
class HiddenUnitResult:
    """What one hidden unit of the trained MLP computes, measured per group.

    Attributes:
        unit: its number i (1-based, the handout's x_i^(2)).
        weights: incoming weights in raw units: ``w1[i,1]`` (per year of age),
            ``w1[i,2]`` (male), ``w1[i,3]`` (bias).
        output_weight: its weight ``w2[1,i]`` into the output.
        corr_female: Pearson correlation of its activation with is_female.
        corr_young_male: ... with is_young_male (age < ``young_age``).
        corr_female_or_young_male: ... with "female or young male", the rule exercise
            2(c) builds from the two features.
        mean_women, mean_young_males, mean_older_males: its mean activation per group.
        on_ages: the ages (from, to), on a 0-80 grid, at which the unit is on
            (activation > 0.5), for ``"women"`` and for ``"men"``.
        agreement: for each handout feature and its negation (``"female"``,
            ``"not young male"``, ...), the share of passengers on which the unit,
            thresholded at 0.5, says the same.
    """

    unit: int
    weights: dict[str, float]
    output_weight: float
    corr_female: float
    corr_young_male: float
    corr_female_or_young_male: float
    mean_women: float
    mean_young_males: float
    mean_older_males: float
    on_ages: dict[str, list[tuple[float, float]]]
    agreement: dict[str, float]

    @property
    def description(self) -> str:
        """Who the unit is on (> 0.5) for: ``"women aged 0-39.45; men aged 0-8.55"``."""
        women, men = (_ages_text(self.on_ages[group]) for group in ("women", "men"))
        if women == men == "no age":
            return "no one"
        if women == men == "every age":
            return "everyone"
        return f"women {women}; men {men}"

    @property
    def closest(self) -> str | None:
        """The handout feature the unit computes, if it agrees on ≥ 95 % of passengers."""
        name, share = max(self.agreement.items(), key=lambda item: item[1])
        return name if share >= CLOSE_AGREEMENT else None


def _ages_text(intervals: list[tuple[float, float]]) -> str:
    if not intervals:
        return "no age"
    if intervals == [(float(AGE_GRID[0]), float(AGE_GRID[-1]))]:
        return "every age"
    return "aged " + ", ".join(f"{start:g}-{end:g}" for start, end in intervals)


@dataclass(frozen=True)
class HandCheck:
    """One of exercise 2's worked numbers, recomputed by chainrule.

    Attributes:
        part: ``"(a)"``, ``"(b)"`` or ``"(c)"``.
        unit: the unit evaluated, e.g. ``"x1(2)"`` (hidden unit 1) or ``"x1(3)"``.
        case: the passenger (or hidden values) it is evaluated on.
        preactivation: the summation unit s, computed by the network.
        value: σ(s), computed by chainrule.
        handout_text: the number as the handout prints it.
        handout_value: that number; ``decimals`` is its printed precision.
    """

    part: str
    unit: str
    case: str
    preactivation: float
    value: float
    handout_text: str
    handout_value: float
    decimals: int

    @property
    def printed(self) -> str:
        """The computed value at the handout's precision."""
        return f"{self.value:.{self.decimals}f}"

    @property
    def matches(self) -> bool:
        """Whether the computed value prints as the handout's number."""
        return self.printed == f"{self.handout_value:.{self.decimals}f}"


@dataclass(frozen=True)
class TitanicResults:
    """Everything :func:`run_titanic_experiment` measured.

    Attributes:
        passengers, train_size, heldout_size: how many passengers in all and per split.
        seed, epochs, hidden, restarts: the options used.
        young_age: the "young" cut-off of the engineered feature (years).
        models: one :class:`ModelResult` per model, in the order of the handout's story.
        restarts_all: the MLP's random starts fitted on all passengers (best = lowest loss).
        best_restart: index of the best one in ``restarts_all``.
        hidden_units: one :class:`HiddenUnitResult` per hidden unit of the best MLP.
        network: the best MLP in raw units (input [age in years, male]).
        hand_network: the network with exercise 2's weights.
        hand_checks: exercise 2's numbers recomputed.
        hand_agreement: for (a) and (b), the share of passengers on which the hidden unit
            (thresholded at 0.5) agrees with its intended feature.
        survival_ages: ages (years) at which the best MLP predicts survival, for men and
            for women, as (from, to) intervals on a 0-80 grid.
        logistic_curves: loss curve of each logistic regression (fitted on all).
        age, male, survived: the passengers' data (for figures).
        seconds: wall time of the run.
    """

    passengers: int
    train_size: int
    heldout_size: int
    seed: int
    epochs: int
    hidden: int
    restarts: int
    young_age: float
    models: list[ModelResult]
    restarts_all: list[RestartResult]
    best_restart: int
    hidden_units: list[HiddenUnitResult]
    network: nn.MLP = field(repr=False)
    hand_network: nn.MLP = field(repr=False)
    hand_checks: list[HandCheck]
    hand_agreement: dict[str, float]
    survival_ages: dict[str, list[tuple[float, float]]]
    logistic_curves: dict[str, np.ndarray] = field(repr=False)
    age: np.ndarray = field(repr=False)
    male: np.ndarray = field(repr=False)
    survived: np.ndarray = field(repr=False)
    seconds: float = 0.0

    def model(self, name_start: str) -> ModelResult:
        """The first model whose name starts with ``name_start``."""
        for result in self.models:
            if result.name.startswith(name_start):
                return result
        raise KeyError(f"no model named {name_start!r}...; the models: {self.model_names()}")

    def model_names(self) -> list[str]:
        """The models' names, in order."""
        return [result.name for result in self.models]


# --- the experiment ---------------------------------------------------------------------


def run_titanic_experiment(
    seed: int = DEFAULT_SEED,
    epochs: int = DEFAULT_EPOCHS,
    hidden: int = DEFAULT_HIDDEN,
    restarts: int = DEFAULT_RESTARTS,
    young_age: float = YOUNG_AGE,
    progress: bool = False,
) -> TitanicResults:
    """Run the handout's Titanic experiment with chainrule.

    Args:
        seed: seeds the train/held-out split and the MLP's random starts.
        epochs: full-batch training epochs of every trained model.
        hidden: hidden units of the MLP (the handout's network has 2).
        restarts: random starts of the MLP; the one with the lowest training loss is
            reported (chosen on training data only, never on the held-out passengers).
        young_age: "young" means younger than this (years) for the engineered feature
            and the hidden-unit analysis.
        progress: show a progress bar on standard error when it is a terminal (needs
            the ``progress`` extra, tqdm; without it nothing is shown).

    Returns:
        A :class:`TitanicResults`.

    Raises:
        ExperimentError: an option is out of range.
    """
    _check_options(epochs=epochs, hidden=hidden, restarts=restarts, young_age=young_age)
    started = time.perf_counter()
    passengers = load_titanic()
    age = passengers.column("age").copy()
    male = passengers.column("male").copy()
    survived = passengers.target.astype(np.float64)
    young_male = male * (age < young_age)
    train, heldout = _split(len(age), seed)

    inputs = np.column_stack([age, male])
    engineered = np.column_stack([age, male, young_male])
    mlp_seeds = [int(s) for s in np.random.default_rng(seed).integers(0, 2**31 - 1, restarts)]

    models: list[ModelResult] = []
    female_rule = (male == 0).astype(np.float64)
    models.append(
        ModelResult(
            name="sex only: women survive",
            trained=False,
            accuracy=_accuracy(female_rule, survived),
            train_accuracy=_accuracy(female_rule[train], survived[train]),
            heldout_accuracy=_accuracy(female_rule[heldout], survived[heldout]),
            loss=None,
        )
    )

    total_fits = 4 + 2 * restarts
    with Progress(total_fits, "fit", enabled=progress, description="training", leave=False) as bar:
        curves: dict[str, np.ndarray] = {}
        for name, features, columns in (
            ("logistic regression (age, male)", inputs, ["age", "male"]),
            (
                f"logistic regression (age, male, young male <{young_age:g})",
                engineered,
                ["age", "male", "young_male"],
            ),
        ):
            everyone = _fit_logistic(features, survived, epochs)
            bar.update()
            split_fit = _fit_logistic(features[train], survived[train], epochs)
            bar.update()
            curves[name] = everyone.loss_curve
            models.append(
                ModelResult(
                    name=name,
                    trained=True,
                    accuracy=_accuracy(everyone.predict(features), survived),
                    train_accuracy=_accuracy(split_fit.predict(features[train]), survived[train]),
                    heldout_accuracy=_accuracy(
                        split_fit.predict(features[heldout]), survived[heldout]
                    ),
                    loss=everyone.loss,
                    weights=everyone.named_weights(columns),
                )
            )

        fits = []
        for mlp_seed in mlp_seeds:
            fits.append(_fit_mlp(inputs, survived, hidden, epochs, mlp_seed))
            bar.update()
        split_fits = []
        for mlp_seed in mlp_seeds:
            split_fits.append(_fit_mlp(inputs[train], survived[train], hidden, epochs, mlp_seed))
            bar.update()

    restart_results = [
        RestartResult(
            seed=mlp_seed,
            loss=fit.loss,
            accuracy=_accuracy(_network_output(fit.network, inputs), survived),
            loss_curve=fit.loss_curve,
        )
        for mlp_seed, fit in zip(mlp_seeds, fits)
    ]
    best = int(np.argmin([fit.loss for fit in fits]))
    best_split = int(np.argmin([fit.loss for fit in split_fits]))
    network = fits[best].network
    split_network = split_fits[best_split].network
    models.append(
        ModelResult(
            name=f"MLP 3→{hidden}→1 (age, male, bias), best of {restarts}",
            trained=True,
            accuracy=restart_results[best].accuracy,
            train_accuracy=_accuracy(
                _network_output(split_network, inputs[train]), survived[train]
            ),
            heldout_accuracy=_accuracy(
                _network_output(split_network, inputs[heldout]), survived[heldout]
            ),
            loss=fits[best].loss,
            weights=network.get_weights(),
        )
    )

    hand_network = handout_network()
    hand_output = _network_output(hand_network, inputs)
    models.append(
        ModelResult(
            name="hand-set weights, exercise 2(c)",
            trained=False,
            accuracy=_accuracy(hand_output, survived),
            train_accuracy=_accuracy(hand_output[train], survived[train]),
            heldout_accuracy=_accuracy(hand_output[heldout], survived[heldout]),
            loss=_log_loss(hand_output, survived),
            weights=hand_network.get_weights(),
        )
    )
    hand_hidden = _hidden_output(hand_network, inputs)
    handout_young_male = male * (age < HANDOUT_YOUNG_AGE)
    hand_agreement = {
        "(a) x1(2) = is female": _accuracy(hand_hidden[:, 0], 1.0 - male),
        f"(b) x2(2) = is male under {HANDOUT_YOUNG_AGE:g}": _accuracy(
            hand_hidden[:, 1], handout_young_male
        ),
    }

    return TitanicResults(
        passengers=len(age),
        train_size=len(train),
        heldout_size=len(heldout),
        seed=seed,
        epochs=epochs,
        hidden=hidden,
        restarts=restarts,
        young_age=young_age,
        models=models,
        restarts_all=restart_results,
        best_restart=best,
        hidden_units=_hidden_units(network, inputs, male, young_male),
        network=network,
        hand_network=hand_network,
        hand_checks=handout_checks(hand_network),
        hand_agreement=hand_agreement,
        survival_ages={
            "men": _survival_intervals(network, male=1.0),
            "women": _survival_intervals(network, male=0.0),
        },
        logistic_curves=curves,
        age=age,
        male=male,
        survived=survived,
        seconds=time.perf_counter() - started,
    )


def _check_options(epochs: int, hidden: int, restarts: int, young_age: float) -> None:
    for name, value in (("epochs", epochs), ("hidden", hidden), ("restarts", restarts)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ExperimentError(f"{name} must be a whole number of at least 1, got {value!r}")
    if not (isinstance(young_age, (int, float)) and 0 < young_age < 80):
        raise ExperimentError(f"young_age must be between 0 and 80 years, got {young_age!r}")


def _split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed shuffle of the passengers: the first quarter is held out."""
    order = np.random.default_rng(seed).permutation(count)
    heldout = round(HOLDOUT_FRACTION * count)
    return np.sort(order[heldout:]), np.sort(order[:heldout])


def _accuracy(probability: np.ndarray, target: np.ndarray) -> float:
    """Share of passengers on whom "probability > 0.5" agrees with the 0/1 target."""
    return float(np.mean((np.asarray(probability) > 0.5) == (np.asarray(target) > 0.5)))


def _log_loss(probability: np.ndarray, target: np.ndarray) -> float:
    clipped = np.clip(probability, 1e-15, 1 - 1e-15)
    return float(-np.mean(target * np.log(clipped) + (1 - target) * np.log(1 - clipped)))


# --- standardising and back -------------------------------------------------------------


@dataclass(frozen=True)
class _Standardiser:
    """x_std = (x − mean) / scale per column; 0/1 columns are left as they are."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray) -> _Standardiser:
        binary = np.all((features == 0) | (features == 1), axis=0)
        spread = features.std(axis=0)
        usable = ~binary & (spread > 0)
        mean = np.where(usable, features.mean(axis=0), 0.0)
        scale = np.where(usable, spread, 1.0)
        return cls(mean, scale)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.scale


def _raw_units(
    weight: np.ndarray, bias: np.ndarray, standardiser: _Standardiser
) -> tuple[np.ndarray, np.ndarray]:
    """Weights acting on standardised inputs, rewritten to act on raw inputs.

    s = W·((x − m)/c) + b = (W/c)·x + (b − W·(m/c)), exactly.
    """
    raw_weight = weight / standardiser.scale
    raw_bias = bias - weight @ (standardiser.mean / standardiser.scale)
    return raw_weight, raw_bias


# --- logistic regression: a one-layer network and plain gradient descent ---------------


@dataclass(frozen=True)
class _LogisticFit:
    weight: np.ndarray  # raw units
    bias: float
    loss: float
    loss_curve: np.ndarray

    def predict(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(features @ self.weight + self.bias)))

    def named_weights(self, columns: list[str]) -> dict[str, float]:
        named = {"bias": self.bias}
        named.update({f"w_{column}": float(w) for column, w in zip(columns, self.weight)})
        return named


def _fit_logistic(features: np.ndarray, target: np.ndarray, epochs: int) -> _LogisticFit:
    """Minimise the mean log loss of σ(w·x + b) by full-batch gradient descent."""
    # σ(w·x + b) is a network without hidden layers, started from w = 0, b = 0, trained
    # by the handout's update rule w ← w − η·∇L (SGD without momentum).
    network = nn.MLP([features.shape[1], 1], output_activation="sigmoid")
    network.load_state_dict({name: np.zeros_like(v) for name, v in network.state_dict().items()})
    optimizer = optim.SGD(network.parameters(), lr=LOGISTIC_LR)
    curve, raw = _train_full_batch(network, optimizer, features, target, epochs)
    weight, bias = raw["layers.0.weight"][0], float(raw["layers.0.bias"][0])
    probability = 1.0 / (1.0 + np.exp(-(features @ weight + bias)))
    return _LogisticFit(weight, bias, _log_loss(probability, target), curve)


def _train_full_batch(
    network: nn.MLP,
    optimizer: optim.Optimizer,
    features: np.ndarray,
    target: np.ndarray,
    epochs: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Train ``network`` on standardised features with chainrule's one training loop,
    full batch; its loss curve, and its weights with the first layer in raw units."""
    standardiser = _Standardiser.fit(features)
    # Log loss after the sigmoid output is computed from the logits s as softplus(s) − y·s:
    # the same gradient as log loss on σ(s), without log(0) once the output saturates.
    history = fit(
        network,
        standardiser(features),
        target,
        loss="log_loss",
        optimizer=optimizer,
        epochs=epochs,
        progress=False,
    )
    state = network.state_dict()
    raw_weight, raw_bias = _raw_units(
        state["layers.0.weight"], state["layers.0.bias"], standardiser
    )
    return np.array(history.loss), {
        **state,
        "layers.0.weight": raw_weight,
        "layers.0.bias": raw_bias,
    }


# --- the MLP: chainrule.nn + backprop ---------------------------------------------------


@dataclass(frozen=True)
class _MLPFit:
    network: nn.MLP  # raw units
    loss: float
    loss_curve: np.ndarray


def _new_network(hidden: int, seed: int | None = None) -> nn.MLP:
    return nn.MLP([2, hidden, 1], activation="sigmoid", output_activation="sigmoid", seed=seed)


def _fit_mlp(
    inputs: np.ndarray, target: np.ndarray, hidden: int, epochs: int, seed: int
) -> _MLPFit:
    """Train the 3→hidden→1 sigmoid network on (age, male) by backprop, full batch."""
    network = _new_network(hidden, seed)
    optimizer = optim.Adam(network.parameters(), lr=MLP_LR)
    curve, raw_state = _train_full_batch(network, optimizer, inputs, target, epochs)
    raw = _new_network(hidden)
    raw.load_state_dict(raw_state)
    return _MLPFit(raw, _log_loss(_network_output(raw, inputs), target), curve)


def _network_output(network: nn.MLP, inputs: np.ndarray) -> np.ndarray:
    """The network's survival probability for each row of raw (age, male) inputs."""
    with no_grad():
        return np.asarray(network(inputs).data[:, 0])


def _hidden_output(network: nn.MLP, inputs: np.ndarray) -> np.ndarray:
    """Hidden-unit activations x^(2), shape (passengers, hidden units)."""
    with no_grad():
        return np.asarray(network.layer_outputs(inputs)[1].data)


def _hidden_units(
    network: nn.MLP, inputs: np.ndarray, male: np.ndarray, young_male: np.ndarray
) -> list[HiddenUnitResult]:
    activations = _hidden_output(network, inputs)
    weights = network.get_weights()
    female = 1.0 - male
    older_male = male * (1.0 - young_male)
    groups = {"women": female, "young": young_male, "older": older_male}
    features = {
        "female": female > 0,
        "young male": young_male > 0,
        "female or young male": (female + young_male) > 0,
    }
    grids = {
        sex: _hidden_output(network, np.column_stack([AGE_GRID, np.full(AGE_GRID.shape, flag)]))
        for sex, flag in (("women", 0.0), ("men", 1.0))
    }
    units = []
    for index in range(activations.shape[1]):
        unit = index + 1
        h = activations[:, index]
        on = h > 0.5
        means = {
            group: float(h[mask > 0].mean()) if np.any(mask > 0) else math.nan
            for group, mask in groups.items()
        }
        agreement: dict[str, float] = {}
        for name, feature in features.items():
            agreement[name] = float(np.mean(on == feature))
            agreement[f"not ({name})" if " or " in name else f"not {name}"] = float(
                np.mean(on != feature)
            )
        units.append(
            HiddenUnitResult(
                unit=unit,
                weights={f"w1[{unit},{j}]": weights[f"w1[{unit},{j}]"] for j in (1, 2, 3)},
                output_weight=weights[f"w2[1,{unit}]"],
                corr_female=_correlation(h, female),
                corr_young_male=_correlation(h, young_male),
                corr_female_or_young_male=_correlation(h, female + young_male),
                mean_women=means["women"],
                mean_young_males=means["young"],
                mean_older_males=means["older"],
                on_ages={sex: _runs(grid[:, index] > 0.5) for sex, grid in grids.items()},
                agreement=agreement,
            )
        )
    return units


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant (a dead unit)."""
    if a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _survival_intervals(network: nn.MLP, male: float) -> list[tuple[float, float]]:
    """The age ranges (on :data:`AGE_GRID`) where the network predicts survival."""
    grid = np.column_stack([AGE_GRID, np.full(AGE_GRID.shape, male)])
    return _runs(_network_output(network, grid) > 0.5)


def _runs(flags: np.ndarray) -> list[tuple[float, float]]:
    """The age intervals (on :data:`AGE_GRID`) where ``flags`` holds."""
    # Edges of the runs of True: +1 where a run starts, −1 just after it ends.
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return [(float(AGE_GRID[a]), float(AGE_GRID[b])) for a, b in zip(starts, ends)]


# --- exercise 2: the hand-set weights ---------------------------------------------------


def handout_network(weights: Mapping[str, float] = HANDOUT_WEIGHTS) -> nn.MLP:
    """The 3→2→1 sigmoid network with exercise 2's hand-set weights (raw age in years).

    Args:
        weights: handout names -> values; the default is the solution's (a), (b), (c).
    """
    network = _new_network(2)
    network.set_weights(weights)
    return network


def handout_checks(network: nn.MLP | None = None) -> list[HandCheck]:
    """Exercise 2's worked numbers, recomputed by running the hand-set network.

    Each σ(s) is the network's own forward pass (chainrule tensors), not a formula
    typed in here; the handout's printed value and precision sit beside it.

    Args:
        network: the network to evaluate; by default :func:`handout_network`.
    """
    network = network or handout_network()
    first, second = network.layers

    def hidden(age: float, male: float, unit: int) -> tuple[float, float]:
        with no_grad():
            s = first(tensor([[age, male]])).data[0, unit - 1]
        return float(s), float(tensor(s).sigmoid().item())

    def output(h1: float, h2: float) -> tuple[float, float]:
        with no_grad():
            s = second(tensor([[h1, h2]])).data[0, 0]
        return float(s), float(tensor(s).sigmoid().item())

    rows = [
        ("(a)", "x1(2)", "male (any age)", hidden(30.0, 1.0, 1), "0.0067", 0.0067, 4),
        ("(a)", "x1(2)", "female (any age)", hidden(30.0, 0.0, 1), "0.9933", 0.9933, 4),
        ("(b)", "x2(2)", "female, 1 year old", hidden(1.0, 0.0, 2), "≈ 0", 0.0, 4),
        ("(b)", "x2(2)", "male, 1 year old", hidden(1.0, 1.0, 2), "0.982", 0.982, 3),
        ("(b)", "x2(2)", "male, 4 years old", hidden(4.0, 1.0, 2), "0.731", 0.731, 3),
        ("(b)", "x2(2)", "male, 10 years old", hidden(10.0, 1.0, 2), "0.0067", 0.0067, 4),
        ("(c)", "x1(3)", "x1(2) = 1, x2(2) = 0", output(1.0, 0.0), "0.73", 0.73, 2),
        ("(c)", "x1(3)", "x1(2) = 0, x2(2) = 1", output(0.0, 1.0), "0.73", 0.73, 2),
    ]
    return [
        HandCheck(part, unit, case, s, value, text, number, decimals)
        for part, unit, case, (s, value), text, number, decimals in rows
    ]


def handout_predictions(
    cases: Mapping[str, tuple[float, float]], network: nn.MLP | None = None
) -> dict[str, float]:
    """The hand-set network's survival probability x1(3) for named (age, male) cases.

    Args:
        cases: name -> (age in years, male 0/1).
        network: by default :func:`handout_network`.
    """
    network = network or handout_network()
    names = list(cases)
    inputs = np.array([cases[name] for name in names], dtype=np.float64)
    return dict(zip(names, (float(p) for p in _network_output(network, inputs))))
