"""One playground session: a data set, an MLP, its optimizer and training state, per browser tab.

Everything the page shows is computed here by chainrule: the network's weights and
their gradients, every unit's s, x and δ = ∂L/∂s for the selected example (on the
neuron-level twin of the network, :class:`chainrule.nn.NeuronMLP`, so each number is
a Value's), the heat maps (the MLP's ``layer_outputs`` over a grid), losses and
accuracies. The page only draws the snapshot a session returns.

A session is used from the server's worker threads, so every public method holds
the session's lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from .. import nn, optim
from ..errors import ChainruleError
from ..experiments.titanic import HANDOUT_WEIGHTS
from ..functional import no_grad
from ..graph import topological_order
from ..value import Value
from . import data as datasets
from .data import Dataset, PlaygroundDataError

#: Hidden activations the page offers.
HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu", "softplus", "identity")
#: Output activations the page offers.
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", "identity")
LOSSES = ("log_loss", "square_loss", "cross_entropy")
OPTIMIZERS = ("gd", "momentum", "adam")
#: Limits that keep every view interactive.
MAX_HIDDEN_LAYERS = 4
MAX_UNITS = 8
#: Heat maps are this many cells on a side.
GRID = 40
#: The page draws at most this many data points on the heat maps.
MAX_POINTS = 400
#: Training history keeps at most this many points (older ones are thinned).
MAX_HISTORY = 600
STATE_FORMAT = "chainrule-playground"
STATE_VERSION = 1


class PlaygroundError(ChainruleError, ValueError):
    """A request the session cannot carry out; the message says what to change."""


@dataclass
class Settings:
    """Training and view settings (all validated by :func:`check_settings`)."""

    loss: str = "log_loss"
    optimizer: str = "gd"
    lr: float = 0.5
    momentum: float = 0.9
    batch_size: int = 0  # 0 means the whole training set (full-batch gradient descent)
    validation_split: float = 0.2
    seed: int = 0
    example: int = 0
    heat_x: int = 0
    heat_y: int = 1


@dataclass(frozen=True)
class Preset:
    """A ready-made network on a data set."""

    data: str
    hidden: tuple[int, ...]
    activation: str
    output_activation: str
    settings: Mapping[str, Any]
    seed: int = 0
    weights: Mapping[str, float] | None = None
    example_label: str | None = None  # the first row whose label contains this


PRESETS: dict[str, Preset] = {
    "titanic": Preset("titanic", (2,), "sigmoid", "sigmoid", {"optimizer": "adam", "lr": 0.05}),
    "titanic_hand": Preset(
        "titanic",
        (2,),
        "sigmoid",
        "sigmoid",
        {"optimizer": "adam", "lr": 0.05},
        weights=HANDOUT_WEIGHTS,
        example_label="(30, male)",
    ),
    "xor": Preset("xor", (2,), "sigmoid", "sigmoid", {"lr": 2.0, "validation_split": 0.0}, seed=1),
    "circle": Preset("circle", (4,), "tanh", "sigmoid", {"optimizer": "adam", "lr": 0.03}),
    "exclusive_or": Preset(
        "exclusive_or", (4, 2), "tanh", "sigmoid", {"optimizer": "adam", "lr": 0.03}
    ),
    "gaussians": Preset("gaussians", (2,), "tanh", "sigmoid", {"optimizer": "adam", "lr": 0.03}),
    "spiral": Preset("spiral", (8, 8), "tanh", "sigmoid", {"optimizer": "adam", "lr": 0.03}),
}


# --- validation of what the page sends ------------------------------------------------------


def _fail(where: str, problem: str) -> PlaygroundError:
    return PlaygroundError(f"{where}: {problem}")


def check_number(value: Any, where: str, low: float, high: float) -> float:
    """A finite number in [low, high] (JSON ints and floats; not booleans, not text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, f"must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise _fail(where, f"must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def check_int(value: Any, where: str, low: int, high: int) -> int:
    """A whole number in [low, high]."""
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        raise _fail(where, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise _fail(where, f"must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def check_choice(value: Any, where: str, allowed: Sequence[str]) -> str:
    """One of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise _fail(where, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def check_mapping(value: Any, where: str) -> Mapping[str, Any]:
    """A JSON object."""
    if not isinstance(value, Mapping):
        raise _fail(where, f"must be an object, got {type(value).__name__}")
    return value


def check_settings(changes: Any, current: Settings, where: str = "settings") -> Settings:
    """``current`` with ``changes`` applied, every field checked; unknown fields are refused."""
    changes = check_mapping(changes, where)
    known = {f.name for f in fields(Settings)}
    result = asdict(current)
    for key, value in changes.items():
        place = f"{where}.{key}"
        if key not in known:
            raise _fail(place, f"unknown setting; known: {', '.join(sorted(known))}")
        if key == "loss":
            result[key] = check_choice(value, place, LOSSES)
        elif key == "optimizer":
            result[key] = check_choice(value, place, OPTIMIZERS)
        elif key == "lr":
            result[key] = check_number(value, place, 1e-6, 100.0)
        elif key == "momentum":
            result[key] = check_number(value, place, 0.0, 0.999)
        elif key == "validation_split":
            result[key] = check_number(value, place, 0.0, 0.9)
        elif key == "batch_size":
            result[key] = check_int(value, place, 0, datasets.MAX_ROWS)
        elif key == "seed":
            result[key] = check_int(value, place, 0, 2**31 - 1)
        else:  # example, heat_x, heat_y: checked against the data set by the session
            result[key] = check_int(value, place, 0, datasets.MAX_ROWS)
    return Settings(**result)


def check_architecture(
    document: Any, where: str = "architecture"
) -> tuple[list[int], list[str], str]:
    """``(hidden sizes, hidden activations, output activation)`` from the page's JSON."""
    document = check_mapping(document, where)
    unknown = set(document) - {"hidden", "activations", "output_activation"}
    if unknown:
        raise _fail(f"{where}.{sorted(unknown)[0]}", "unknown field")
    hidden = document.get("hidden")
    if not isinstance(hidden, list) or len(hidden) > MAX_HIDDEN_LAYERS:
        raise _fail(f"{where}.hidden", f"must be a list of at most {MAX_HIDDEN_LAYERS} layer sizes")
    sizes = [check_int(size, f"{where}.hidden[{n}]", 1, MAX_UNITS) for n, size in enumerate(hidden)]
    activations = document.get("activations", ["sigmoid"] * len(sizes))
    if not isinstance(activations, list) or len(activations) != len(sizes):
        raise _fail(f"{where}.activations", "must list one activation per hidden layer")
    names = [
        check_choice(name, f"{where}.activations[{n}]", HIDDEN_ACTIVATIONS)
        for n, name in enumerate(activations)
    ]
    output = check_choice(
        document.get("output_activation", "sigmoid"),
        f"{where}.output_activation",
        OUTPUT_ACTIVATIONS,
    )
    return sizes, names, output


# --- the session ---------------------------------------------------------------------------------


def _rounded(array: np.ndarray, digits: int = 5) -> list[Any]:
    """An array as nested lists of floats rounded for the page (NaN/inf become None)."""
    rounded = np.round(np.asarray(array, dtype=np.float64), digits)
    listed: list[Any] = rounded.tolist()
    if np.all(np.isfinite(rounded)):
        return listed
    return _finite_only(listed)


def _finite_only(value: Any) -> Any:
    if isinstance(value, list):
        return [_finite_only(item) for item in value]
    return value if math.isfinite(value) else None


def _colour_scale(activation: str, values: np.ndarray) -> tuple[float, float]:
    """The range a heat map's colours span: the activation's own range where it has one."""
    if activation in ("sigmoid", "softmax"):
        return 0.0, 1.0
    if activation == "tanh":
        return -1.0, 1.0
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low - 1.0, high + 1.0)


def _number(value: float) -> float | None:
    """A float for JSON (which has no NaN or infinity)."""
    return float(value) if math.isfinite(value) else None


class Session:
    """One tab's playground: data, network, optimizer, training history.

    Args:
        session_id: the id the page uses in URLs.
        preset: the preset to start from (one of :data:`PRESETS`).
    """

    def __init__(self, session_id: str, preset: str = "titanic_hand") -> None:
        self.id = session_id
        # chainrule's no_grad belongs to the running context, so sessions on different
        # worker threads compute at once; one session's requests take turns.
        self.lock = threading.RLock()
        self.last_used = time.monotonic()
        self.settings = Settings()
        self.uploaded_table: Any = None
        with self.lock:
            self._apply_preset(check_choice(preset, "preset", tuple(PRESETS)))

    # --- building ----------------------------------------------------------------------

    def _apply_preset(self, name: str) -> None:
        preset = PRESETS[name]
        self.preset = name
        self.dataset = datasets.preset_data(preset.data)
        self.settings = check_settings(preset.settings, Settings(seed=preset.seed))
        self.hidden = list(preset.hidden)
        self.activations = [preset.activation] * len(self.hidden)
        self.output_activation = preset.output_activation
        self._build_model(preset.weights)
        if preset.example_label is not None:
            self.settings.example = next(
                row
                for row, label in enumerate(self.dataset.row_labels)
                if preset.example_label in label
            )

    def _default_loss(self) -> str:
        if self.dataset.task == "regression" or self.output_activation == "identity":
            return "square_loss"
        return "cross_entropy" if self.output_activation == "softmax" else "log_loss"

    def _build_model(self, weights: Mapping[str, float] | None = None) -> None:
        """A fresh MLP for the current data and architecture, then split rows and reset training."""
        outputs = self.dataset.outputs
        if self.dataset.task == "multiclass" and self.output_activation != "softmax":
            self.output_activation = "softmax"
        if self.dataset.task != "multiclass" and self.output_activation == "softmax":
            raise PlaygroundError(
                "a softmax output needs a target with three or more classes; this data set "
                "has one output: use sigmoid (or identity for regression)"
            )
        self.model = nn.MLP(
            [len(self.dataset.input_names), *self.hidden, outputs],
            activation=list(self.activations) if self.hidden else "sigmoid",
            output_activation=None
            if self.output_activation == "identity"
            else self.output_activation,
            seed=self.settings.seed,
        )
        if weights is not None:
            self.model.set_weights(dict(weights))
        self.settings.loss = self._default_loss()
        self.initial_state = self.model.state_dict()
        self.settings.example = min(self.settings.example, len(self.dataset.X) - 1)
        inputs = len(self.dataset.input_names)
        self.settings.heat_x = min(self.settings.heat_x, inputs - 1)
        self.settings.heat_y = min(self.settings.heat_y, inputs - 1)
        if inputs > 1 and self.settings.heat_x == self.settings.heat_y:
            self.settings.heat_y = 1 if self.settings.heat_x == 0 else 0
        self._reset_training()

    def _split(self) -> None:
        count = len(self.dataset.X)
        rng = np.random.default_rng(self.settings.seed)
        order = rng.permutation(count)
        held = round(count * self.settings.validation_split)
        if count - held < 1:
            held = count - 1
        self.validation_rows = np.sort(order[:held])
        self.train_rows = np.sort(order[held:])

    def _reset_training(self) -> None:
        self._split()
        self.model.load_state_dict(self.initial_state)
        self.optimizer = self._make_optimizer()
        self.steps = 0
        self.epoch = 0
        self._batch_order = np.empty(0, dtype=np.int64)
        self._batch_position = 0
        self._shuffle = np.random.default_rng(self.settings.seed + 1)
        self.history: dict[str, list[float | None]] = {
            "step": [],
            "loss": [],
            "val_loss": [],
            "accuracy": [],
            "val_accuracy": [],
        }
        self._record()

    def _make_optimizer(self) -> optim.Optimizer:
        parameters = self.model.parameters()
        if self.settings.optimizer == "adam":
            return optim.Adam(parameters, lr=self.settings.lr)
        momentum = self.settings.momentum if self.settings.optimizer == "momentum" else 0.0
        return optim.SGD(parameters, lr=self.settings.lr, momentum=momentum)

    # --- losses ------------------------------------------------------------------------

    def _check_loss(self) -> None:
        loss, output = self.settings.loss, self.output_activation
        if loss == "log_loss" and output != "sigmoid":
            raise PlaygroundError("log loss needs a sigmoid output (probabilities of two classes)")
        if loss == "cross_entropy" and output != "softmax":
            raise PlaygroundError(
                "cross-entropy needs a softmax output (three or more classes); for two "
                "classes use log loss with a sigmoid output"
            )
        if self.dataset.task == "regression" and loss != "square_loss":
            raise PlaygroundError("a numeric target needs the square loss")

    def _targets(self, rows: np.ndarray) -> np.ndarray:
        y = self.dataset.y[rows]
        if self.settings.loss == "square_loss" and self.dataset.task == "multiclass":
            return np.eye(self.dataset.outputs)[y.astype(np.int64)]
        if self.settings.loss == "cross_entropy":
            return y.astype(np.int64)
        return y.astype(np.float64).reshape(-1, 1)

    def _batch_loss(self, rows: np.ndarray) -> Any:
        """The mean loss over ``rows`` as a chainrule Tensor (from logits where that is exact)."""
        X = self.dataset.X[rows]
        target = self._targets(rows)
        if self.settings.loss == "log_loss":
            return nn.binary_cross_entropy_with_logits(self.model.forward_logits(X), target)
        if self.settings.loss == "cross_entropy":
            return nn.cross_entropy(self.model.forward_logits(X), target)
        return nn.square_loss(self.model(X), target)

    def _evaluate(self, rows: np.ndarray) -> tuple[float | None, float | None]:
        if rows.size == 0:
            return None, None
        with no_grad():
            loss = float(self._batch_loss(rows).data)
            output = np.asarray(self.model(self.dataset.X[rows]).data)
        y = self.dataset.y[rows]
        if self.dataset.task == "binary":
            accuracy = float(np.mean((output[:, 0] >= 0.5) == (y >= 0.5)))
        elif self.dataset.task == "multiclass":
            accuracy = float(np.mean(np.argmax(output, axis=1) == y))
        else:
            accuracy = None
        return _number(loss), accuracy

    def _record(self) -> None:
        loss, accuracy = self._evaluate(self.train_rows)
        val_loss, val_accuracy = self._evaluate(self.validation_rows)
        for key, value in (
            ("step", float(self.steps)),
            ("loss", loss),
            ("val_loss", val_loss),
            ("accuracy", accuracy),
            ("val_accuracy", val_accuracy),
        ):
            self.history[key].append(value)
        if len(self.history["step"]) > MAX_HISTORY:
            # Keep the first point and every other one after it: the curve keeps its shape.
            for key, values in self.history.items():
                self.history[key] = values[:1] + values[2::2]

    # --- training ------------------------------------------------------------------------

    def _next_batch(self) -> np.ndarray:
        size = self.settings.batch_size
        rows = self.train_rows
        if size == 0 or size >= rows.size:
            self.epoch += 1
            return rows
        if self._batch_position >= self._batch_order.size:
            self._batch_order = self._shuffle.permutation(rows)
            self._batch_position = 0
        batch = self._batch_order[self._batch_position : self._batch_position + size]
        self._batch_position += size
        if self._batch_position >= self._batch_order.size:
            self.epoch += 1
        return batch

    def _step(self) -> None:
        self.optimizer.zero_grad()
        loss = self._batch_loss(self._next_batch())
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        if not all(np.all(np.isfinite(p.data)) for p in self.model.parameters()):
            raise PlaygroundError(
                "training diverged: a weight became infinite or NaN; lower the learning rate "
                "and press reset"
            )

    def train(self, steps: int = 0, epochs: int = 0) -> None:
        """Take ``steps`` optimizer steps, or train for ``epochs`` whole passes.

        Args:
            steps: optimizer steps (one batch each).
            epochs: passes over the training rows (each ends when its last batch is used).
        """
        with self.lock:
            self._touch()
            self._check_loss()
            if epochs:
                target = self.epoch + epochs
                while self.epoch < target:
                    self._step()
            for _ in range(steps):
                self._step()
            self._record()

    def train_for(self, seconds: float, max_steps: int = 2000) -> None:
        """Train for about ``seconds`` of wall time (live training's one frame)."""
        with self.lock:
            self._touch()
            self._check_loss()
            deadline = time.perf_counter() + seconds
            for _ in range(max_steps):
                self._step()
                if time.perf_counter() >= deadline:
                    break
            self._record()

    # --- edits from the page ----------------------------------------------------------------

    def _touch(self) -> None:
        self.last_used = time.monotonic()

    def load_preset(self, name: Any) -> None:
        """Start over from a preset (data, architecture, weights, settings)."""
        with self.lock:
            self._touch()
            self._apply_preset(check_choice(name, "preset", tuple(PRESETS)))

    def set_weight(self, name: Any, value: Any) -> None:
        """Set one weight by its handout name (``"w1[1,2]"``) to a number in [−100, 100]."""
        with self.lock:
            self._touch()
            if not isinstance(name, str):
                raise _fail("name", f"must be a weight name such as 'w1[1,2]', got {name!r}")
            number = check_number(value, "value", -100.0, 100.0)
            try:
                self.model.set_weights({name: number})
            except (nn.WeightNameError, ValueError, TypeError) as error:
                raise PlaygroundError(str(error)) from None
            self._record_edit()

    def _record_edit(self) -> None:
        """After a hand edit: the optimizer's memory no longer fits the weights; start it afresh."""
        self.optimizer = self._make_optimizer()
        self._record()

    def set_architecture(self, document: Any) -> None:
        """Change the hidden layers and activations; the weights are drawn anew."""
        with self.lock:
            self._touch()
            hidden, activations, output = check_architecture(document)
            previous = (self.hidden, self.activations, self.output_activation)
            self.hidden, self.activations, self.output_activation = hidden, activations, output
            try:
                self._build_model()
            except PlaygroundError:
                self.hidden, self.activations, self.output_activation = previous
                self._build_model()
                raise

    def update_settings(self, changes: Any) -> None:
        """Change training or view settings; a new split, seed or optimizer resets what it must."""
        with self.lock:
            self._touch()
            new = check_settings(changes, self.settings)
            self._check_view(new)
            old = self.settings
            self.settings = new
            try:
                self._check_loss()
            except PlaygroundError:
                self.settings = old
                raise
            if (new.validation_split, new.seed) != (old.validation_split, old.seed):
                self._split()
                self._record()
            if (new.optimizer, new.lr, new.momentum) != (old.optimizer, old.lr, old.momentum):
                self.optimizer = self._make_optimizer()
            if new.loss != old.loss or new.batch_size != old.batch_size:
                self._batch_position = self._batch_order.size
                self._record()

    def _check_view(self, settings: Settings) -> None:
        rows, inputs = len(self.dataset.X), len(self.dataset.input_names)
        if settings.example >= rows:
            raise _fail("settings.example", f"this data set has rows 0 to {rows - 1}")
        for key in ("heat_x", "heat_y"):
            if getattr(settings, key) >= inputs:
                raise _fail(f"settings.{key}", f"this data set has inputs 0 to {inputs - 1}")
        if inputs > 1 and settings.heat_x == settings.heat_y:
            raise _fail("settings.heat_y", "pick two different inputs for the heat maps")

    def reset(self) -> None:
        """Back to the weights the network started with; training history cleared."""
        with self.lock:
            self._touch()
            self._reset_training()

    def randomize(self) -> None:
        """New random weights (the next seed), training history cleared."""
        with self.lock:
            self._touch()
            self.settings.seed = (self.settings.seed + 1) % (2**31 - 1)
            self._build_model()

    def use_dataset(self, dataset: Dataset) -> None:
        """Train on ``dataset`` (an upload); the hidden layers stay, the weights are drawn anew."""
        with self.lock:
            self._touch()
            previous = (self.dataset, self.output_activation)
            self.dataset = dataset
            self.preset = "upload" if dataset.name == "upload" else self.preset
            self.settings.example = 0
            if dataset.task == "multiclass":
                self.output_activation = "softmax"
            elif dataset.task == "regression":
                self.output_activation = "identity"
            elif self.output_activation != "sigmoid":
                self.output_activation = "sigmoid"
            try:
                self._build_model()
            except PlaygroundError:
                self.dataset, self.output_activation = previous
                self._build_model()
                raise

    def use_preset_data(self, name: Any) -> None:
        """Train the current architecture on a preset data set."""
        name = check_choice(name, "data", tuple(datasets.PRESET_DATA))
        try:
            dataset = datasets.preset_data(name)
        except PlaygroundDataError as error:
            raise PlaygroundError(str(error)) from None
        self.use_dataset(dataset)

    # --- what the page draws -----------------------------------------------------------------

    def example_graph(self) -> tuple[nn.NeuronMLP, list[list[Value]], Value]:
        """The selected example through the neuron-level network, after ``loss.backward()``.

        Returns:
            the NeuronMLP (its weights' ``grad`` hold ∂l/∂w), every layer's units, and
            the example's loss l as a Value.
        """
        neurons = nn.NeuronMLP.from_mlp(self.model)
        row = self.settings.example
        units = neurons.layer_outputs([float(v) for v in self.dataset.X[row]])
        outputs = units[-1]
        target = self.dataset.y[row]
        if self.settings.loss == "log_loss":
            loss = nn.log_loss(outputs[0], float(target))
        elif self.settings.loss == "cross_entropy":
            # −log p_class: the cross-entropy of one example, on the softmax output Values.
            loss = -outputs[int(target)].log()
        elif self.dataset.task == "multiclass":
            one_hot = np.eye(self.dataset.outputs)[int(target)]
            loss = nn.square_loss(outputs, [float(t) for t in one_hot])
        else:
            loss = nn.square_loss(outputs[0], float(target))
        loss.label = "l"
        loss.backward()
        return neurons, units, loss

    def _network(self) -> dict[str, Any]:
        neurons, units, loss = self.example_graph()
        by_label = {
            node.label: node for node in topological_order(loss) if getattr(node, "label", None)
        }
        layers = []
        for k, layer in enumerate(units, start=1):
            entries = []
            for i, unit in enumerate(layer, start=1):
                total = by_label.get(f"s{k}[{i}]") if k > 1 else None
                entries.append(
                    {
                        "name": f"x{k}[{i}]",
                        "x": _number(unit.data),
                        "s": None if total is None else _number(total.data),
                        "delta": None if total is None else _number(total.grad),
                        "grad_x": _number(unit.grad),
                    }
                )
            layers.append(entries)
        gradients = neurons.get_gradients()
        weights = [
            {"name": name, "value": value, "grad": _number(gradients[name])}
            for name, value in self.model.get_weights().items()
        ]
        return {"layers": layers, "weights": weights, "loss": _number(loss.data)}

    def _heatmaps(self, with_points: bool) -> dict[str, Any]:
        X = self.dataset.X
        a, b = self.settings.heat_x, self.settings.heat_y
        single = len(self.dataset.input_names) == 1
        if single:
            b = a
        ranges = []
        for column in (a, b):
            low, high = float(X[:, column].min()), float(X[:, column].max())
            pad = 0.08 * (high - low) if high > low else 1.0
            ranges.append((low - pad, high + pad))
        xs = np.linspace(*ranges[0], GRID)
        ys = np.linspace(*ranges[1], GRID)
        grid = np.tile(X.mean(axis=0), (GRID * GRID, 1))
        grid[:, a] = np.tile(xs, GRID)
        if not single:
            grid[:, b] = np.repeat(ys, GRID)
        with no_grad():
            layers = self.model.layer_outputs(grid)
        maps = []
        activations = [*self.activations, self.output_activation]
        for k, (layer, activation) in enumerate(zip(layers[1:], activations), start=2):
            values = np.asarray(layer.data)
            for i in range(values.shape[1]):
                cell = values[:, i]
                low, high = _colour_scale(activation, cell)
                maps.append(
                    {
                        "unit": f"x{k}[{i + 1}]",
                        "values": _rounded(cell.reshape(GRID, GRID), 3),
                        "low": low,
                        "high": high,
                    }
                )
        heatmaps: dict[str, Any] = {
            "x_input": self.dataset.input_names[a],
            "y_input": "" if single else self.dataset.input_names[b],
            "x_range": list(ranges[0]),
            "y_range": list(ranges[1]),
            "size": GRID,
            "maps": maps,
            "held_at_mean": [
                name for n, name in enumerate(self.dataset.input_names) if n not in (a, b)
            ],
        }
        if with_points:
            heatmaps["points"] = self._points(a, b)
        return heatmaps

    def _points(self, a: int, b: int) -> list[list[Any]]:
        """The data points (a sample of at most MAX_POINTS) in the heat maps' two inputs."""
        X = self.dataset.X
        step = max(1, math.ceil(len(X) / MAX_POINTS))
        shown = np.arange(0, len(X), step)
        held = np.zeros(len(X), dtype=bool)
        held[self.validation_rows] = True
        return [
            [
                round(float(X[row, a]), 4),
                round(float(X[row, b]), 4),
                int(self.dataset.y[row]) if self.dataset.task != "regression" else 0,
                bool(held[row]),
            ]
            for row in shown
        ]

    def _example(self) -> dict[str, Any]:
        row = self.settings.example
        target = self.dataset.y[row]
        labels = self.dataset.row_labels
        return {
            "row": row,
            "rows": len(self.dataset.X),
            "label": labels[row] if labels else f"row {row}",
            "inputs": [float(v) for v in self.dataset.X[row]],
            "target": float(target),
            "target_label": self.dataset.classes[int(target)]
            if self.dataset.task != "regression"
            else f"{target:g}",
        }

    def snapshot(self, live: bool = False) -> dict[str, Any]:
        """Everything the page draws, as JSON data.

        Args:
            live: leave out what training does not change (the data points), for the
                frames of live training.
        """
        with self.lock:
            self._touch()
            heatmaps = self._heatmaps(with_points=not live)
            history = {key: list(values) for key, values in self.history.items()}
            return {
                "session": self.id,
                "preset": self.preset,
                "data": {
                    "name": self.dataset.name,
                    "title": self.dataset.title,
                    "task": self.dataset.task,
                    "input_names": list(self.dataset.input_names),
                    "classes": list(self.dataset.classes),
                    "rows": len(self.dataset.X),
                    "train_rows": int(self.train_rows.size),
                    "validation_rows": int(self.validation_rows.size),
                },
                "architecture": {
                    "sizes": list(self.model.sizes),
                    "hidden": list(self.hidden),
                    "activations": list(self.activations),
                    "output_activation": self.output_activation,
                },
                "settings": asdict(self.settings),
                "network": self._network(),
                "example": self._example(),
                "heatmaps": heatmaps,
                "training": {"steps": self.steps, "epoch": self.epoch, "history": history},
            }

    # --- sharing -----------------------------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Architecture, weights and settings as JSON data that :meth:`import_state` restores."""
        with self.lock:
            return {
                "format": STATE_FORMAT,
                "version": STATE_VERSION,
                "data": self.dataset.name,
                "input_names": list(self.dataset.input_names),
                "hidden": list(self.hidden),
                "activations": list(self.activations),
                "output_activation": self.output_activation,
                "weights": self.model.get_weights(),
                "settings": asdict(self.settings),
            }

    def import_state(self, document: Any) -> None:
        """Restore what :meth:`export_state` wrote, checking every field before anything changes.

        Raises:
            PlaygroundError: naming the first bad field (``state.settings.lr: …``).
        """
        document = check_mapping(document, "state")
        expected = {
            "format",
            "version",
            "data",
            "input_names",
            "hidden",
            "activations",
            "output_activation",
            "weights",
            "settings",
        }
        unknown = sorted(set(document) - expected)
        if unknown:
            raise _fail(f"state.{unknown[0]}", "unknown field")
        missing = sorted(expected - set(document))
        if missing:
            raise _fail(f"state.{missing[0]}", "missing")
        if document["format"] != STATE_FORMAT:
            raise _fail("state.format", f"must be {STATE_FORMAT!r}, got {document['format']!r}")
        if document["version"] != STATE_VERSION:
            raise _fail("state.version", f"this playground reads version {STATE_VERSION}")
        hidden, activations, output = check_architecture(
            {key: document[key] for key in ("hidden", "activations", "output_activation")},
            "state",
        )
        name = document["data"]
        with self.lock:
            self._touch()
            if name == "upload":
                if self.dataset.name != "upload" or document["input_names"] != list(
                    self.dataset.input_names
                ):
                    raise _fail(
                        "state.data",
                        "this state was made on an uploaded CSV file: upload the same file "
                        "and pick the same columns first",
                    )
                dataset = self.dataset
            else:
                check_choice(name, "state.data", tuple(datasets.PRESET_DATA))
                dataset = datasets.preset_data(name)
                if document["input_names"] != dataset.input_names:
                    raise _fail("state.input_names", f"must be {dataset.input_names}")
            weights = check_mapping(document["weights"], "state.weights")
            for key, value in weights.items():
                check_number(value, f"state.weights.{key}", -1e6, 1e6)
            settings = check_settings(document["settings"], Settings(), "state.settings")
            previous = self.export_state(), self.dataset
            self.dataset = dataset
            self.hidden, self.activations, self.output_activation = hidden, activations, output
            self.settings = settings
            try:
                self._check_view(settings)
                self._build_model()
                expected_names = set(self.model.weight_names())
                if set(weights) != expected_names:
                    extra = sorted(set(weights) - expected_names)
                    lacking = sorted(expected_names - set(weights))
                    what = f"unknown weight {extra[0]!r}" if extra else f"missing {lacking[0]!r}"
                    raise _fail("state.weights", f"{what} for sizes {self.model.sizes}")
                self.model.set_weights(dict(weights))
                self.settings = settings
                self.settings.loss = check_choice(
                    document["settings"].get("loss", self.settings.loss),
                    "state.settings.loss",
                    LOSSES,
                )
                self._check_loss()
                self.initial_state = self.model.state_dict()
                self._reset_training()
                self.preset = "shared" if name != "upload" else "upload"
            except (PlaygroundError, ValueError, TypeError) as error:
                old, old_dataset = previous
                self.dataset = old_dataset
                self.hidden, self.activations = old["hidden"], old["activations"]
                self.output_activation = old["output_activation"]
                self.settings = Settings(**old["settings"])
                self._build_model(old["weights"])
                if isinstance(error, PlaygroundError):
                    raise
                raise PlaygroundError(f"state: {error}") from None

    def model_metadata(self) -> dict[str, Any]:
        """What a saved model file carries besides its weights."""
        from ..tables.preprocessing import PREPROCESSING_METADATA_KEY

        metadata: dict[str, Any] = {
            "playground": {
                "data": self.dataset.name,
                "input_names": list(self.dataset.input_names),
                "classes": list(self.dataset.classes),
                "loss": self.settings.loss,
                "steps": self.steps,
            }
        }
        if self.dataset.preprocessing is not None:
            metadata[PREPROCESSING_METADATA_KEY] = self.dataset.preprocessing.as_metadata()
        return metadata
