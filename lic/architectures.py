"""The model a :class:`~lic.config.ModelConfig` names: every command builds models here."""

from __future__ import annotations

from lic.config import ModelConfig
from lic.context import ChannelContext
from lic.models import Hyperprior

MODELS: dict[str, type[Hyperprior]] = {"mean-scale-hyperprior": Hyperprior, "channel-context": ChannelContext}


def build_model(config: ModelConfig) -> Hyperprior:
    return MODELS[config.architecture](config)
