"""The model families, one module each, and the registry that builds a model from its config:

- :mod:`~lic.models.hyperprior`: the mean-scale hyperprior (``mbt2018-mean``) and the scale
  hyperprior (``bmshj2018-hyperprior``);
- :mod:`~lic.models.channel_context`: the channel-wise autoregressive model on the mean-scale
  hyperprior (Minnen and Singh, 2020);
- :mod:`~lic.models.spatial_context`: the spatial autoregressive models (``mbt2018``,
  ``cheng2020-anchor``, ``cheng2020-attn``);
- :mod:`~lic.models.plugin`: a CompressAI model class of the user's own, named ``module:Class``.

Every command builds its model here, from the architecture a checkpoint's config records.
"""

from __future__ import annotations

from lic.config import ModelConfig, is_plugin
from lic.models.channel_context import ChannelContext
from lic.models.hyperprior import MEANS_GRID, CodingModel, Hyperprior, Requantizer, ScaleHyperprior, Surrogate, \
    exact_call, exact_parameters
from lic.models.plugin import build_plugin
from lic.models.spatial_context import Cheng2020Anchor, Cheng2020Attention, Mbt2018, SpatialContext

# lic.config.ARCHITECTURES names them; its order is the model id of .lic headers
MODELS: dict[str, type[CodingModel]] = {
    "mean-scale-hyperprior": Hyperprior, "channel-context": ChannelContext, "scale-hyperprior": ScaleHyperprior,
    "mbt2018": Mbt2018, "cheng2020-anchor": Cheng2020Anchor, "cheng2020-attn": Cheng2020Attention,
}


def build_model(config: ModelConfig) -> CodingModel:
    return build_plugin(config) if is_plugin(config.architecture) else MODELS[config.architecture](config)


__all__ = ["MEANS_GRID", "MODELS", "ChannelContext", "Cheng2020Anchor", "Cheng2020Attention", "CodingModel",
           "Hyperprior", "Mbt2018", "Requantizer", "ScaleHyperprior", "SpatialContext", "Surrogate", "build_model", "exact_call",
           "exact_parameters"]
