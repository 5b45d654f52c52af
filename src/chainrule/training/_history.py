"""What happened during training: :class:`History`, its short repr and its plot."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["History"]


@dataclass(repr=False)
class History:
    """What happened during :func:`~chainrule.fit`, one entry per completed epoch.

    Attributes:
        epoch: the epoch numbers, from 1.
        loss: the training loss of each epoch, the mean over its examples (each batch's
            loss is computed before that batch's update, as in Keras), the L2 penalty
            included when ``weight_decay`` is set.
        val_loss: the validation loss after each epoch (empty without validation data).
        accuracy: for classifiers, the fraction of training examples classified right,
            read from the same forward passes as ``loss``; empty for regressors.
        val_accuracy: the fraction of validation examples classified right after the
            epoch.
        monitor: the quantity watched for the best epoch, ``"val_loss"`` or ``"loss"``.
        best_epoch: the epoch whose weights are the best seen (0: the initial weights;
            None before any epoch).
        best_loss: the ``monitor`` loss measured on the weights of ``best_epoch``: after
            a restore, the loss of the weights the model holds.
        stopped_early: training ended before ``epochs``: early stopping, a callback,
            divergence or an interruption.
        stop_reason: why training ended: ``"completed"``, ``"early_stopping"``,
            ``"callback"``, ``"diverged"`` or ``"interrupted"``.
        diverged: the loss became NaN or Inf, or stayed far above its start; the best
            weights were restored and a TrainingDivergedWarning said so.
        diverged_epoch: the epoch at which divergence was detected (None if it was not).
        interrupted: Ctrl-C (KeyboardInterrupt) stopped training; the best weights
            were restored.
        restored: the model ends with the weights of ``best_epoch`` (not the last).
        learning_rate: the learning rate used in each epoch (with ``lr_schedule``).
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    monitor: str = "loss"
    best_epoch: int | None = None
    best_loss: float | None = None
    stopped_early: bool = False
    stop_reason: str = "completed"
    diverged: bool = False
    diverged_epoch: int | None = None
    interrupted: bool = False
    restored: bool = False
    learning_rate: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Every attribute as plain Python lists and numbers (JSON-ready)."""
        return asdict(self)

    def record(self, epoch: int, logs: dict[str, float]) -> None:
        """Append one epoch's logs (``loss`` and any of val_loss, accuracy, val_accuracy)."""
        self.epoch.append(epoch)
        self.loss.append(logs["loss"])
        for key in ("val_loss", "accuracy", "val_accuracy"):
            if key in logs:
                getattr(self, key).append(logs[key])

    def __repr__(self) -> str:
        """One line: epochs, last losses, the best epoch and why training ended."""
        if not self.epoch:
            return f"History(no epochs, {self.stop_reason})"
        parts = [f"{len(self.epoch)} epochs", f"loss {self.loss[0]:.4g} → {self.loss[-1]:.4g}"]
        if self.val_loss:
            parts.append(f"val_loss {self.val_loss[-1]:.4g}")
        if self.accuracy:
            parts.append(f"accuracy {self.accuracy[-1]:.3f}")
        if self.val_accuracy:
            parts.append(f"val_accuracy {self.val_accuracy[-1]:.3f}")
        if self.best_epoch is not None and self.best_loss is not None:
            kept = ", restored" if self.restored and self.best_epoch != self.epoch[-1] else ""
            parts.append(
                f"best {self.monitor} {self.best_loss:.4g} at epoch {self.best_epoch}{kept}"
            )
        if self.stop_reason != "completed":
            where = f" at epoch {self.diverged_epoch}" if self.diverged_epoch else ""
            parts.append(f"stopped: {self.stop_reason.replace('_', ' ')}{where}")
        return f"History({', '.join(parts)})"

    def plot(self, ax: Any = None) -> Any:
        """Draw the loss curves (and accuracy, on a second axis) with matplotlib.

        Args:
            ax: a matplotlib Axes to draw the losses into; by default a new figure.

        Returns:
            The Axes of the losses (its ``.figure`` is the figure). Accuracy curves, when
            recorded, share the x axis on a twin Axes at the right.

        Raises:
            ImportError: matplotlib is not installed (the ``plot`` extra).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError(
                'History.plot needs matplotlib: pip install "chainrule[plot]"'
            ) from error
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(self.epoch, self.loss, label="loss", color="tab:blue")
        if self.val_loss:
            ax.plot(
                self.epoch[: len(self.val_loss)],
                self.val_loss,
                label="val_loss",
                color="tab:orange",
            )
        if self.best_epoch:
            ax.axvline(self.best_epoch, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        handles, labels = ax.get_legend_handles_labels()
        if self.accuracy or self.val_accuracy:
            twin = ax.twinx()
            if self.accuracy:
                twin.plot(
                    self.epoch[: len(self.accuracy)],
                    self.accuracy,
                    label="accuracy",
                    color="tab:blue",
                    linestyle="--",
                )
            if self.val_accuracy:
                twin.plot(
                    self.epoch[: len(self.val_accuracy)],
                    self.val_accuracy,
                    label="val_accuracy",
                    color="tab:orange",
                    linestyle="--",
                )
            twin.set_ylabel("accuracy")
            twin.set_ylim(0.0, 1.0)
            more_handles, more_labels = twin.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        ax.legend(handles, labels, loc="best", fontsize="small")
        return ax
