"""Typed configuration. Numbers live in ``params.yaml``; these classes give them types."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lic.errors import LicError


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise LicError(f"{where}: unknown key(s) {sorted(unknown)}; expected some of {sorted(names)}")
    return cls(**data)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a mean-scale hyperprior and the quantizer it is trained for."""

    architecture: str = "mean-scale-hyperprior"
    N: int = 64
    M: int = 96
    quantizer: str = "usq"
    quantizer_params: dict[str, Any] = field(default_factory=dict)  # e.g. TCQ delta, states

    def __post_init__(self) -> None:
        if self.architecture != "mean-scale-hyperprior":
            raise LicError(f"unknown architecture {self.architecture!r}")
        if not (1 <= self.N <= 1024 and 1 <= self.M <= 1024):
            raise LicError(f"channels must lie in 1..1024, got N={self.N}, M={self.M}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, data, "model config")


@dataclass(frozen=True)
class TrainConfig:
    """Phase-1 training: loss ``lmbda * 255^2 * MSE + bpp`` (CompressAI's convention).

    The learning rate drops by 10x at each fraction of ``steps`` in ``lr_drops``. Patches are
    drawn at random scales down to ``min_scale`` (see :class:`lic.data.PatchSampler`).
    """

    lmbda: float = 0.013
    steps: int = 2000
    batch_size: int = 8
    patch_size: int = 128
    min_scale: float = 1.0
    lr: float = 1e-3
    lr_drops: tuple[float, ...] = (0.7, 0.9)
    aux_lr: float = 1e-3
    clip_max_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.lmbda <= 0:
            raise LicError(f"lambda must be positive, got {self.lmbda}")
        if self.steps < 1 or self.batch_size < 1:
            raise LicError("steps and batch size must be at least 1")
        if self.patch_size < 64 or self.patch_size % 64:
            raise LicError(f"patch size must be a multiple of 64, got {self.patch_size}")
        if not 0 < self.min_scale <= 1:
            raise LicError(f"min_scale must lie in (0, 1], got {self.min_scale}")
        object.__setattr__(self, "lr_drops", tuple(self.lr_drops))

    def lr_at(self, step: int) -> float:
        """Learning rate at ``step`` (0-based): ``lr * 0.1^(number of drops passed)``."""
        passed = sum(step >= int(f * self.steps) for f in self.lr_drops)
        return self.lr * 0.1**passed
