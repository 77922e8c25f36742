"""A model of the user's own: any CompressAI model class in its classic layout, named ``module:Class``.

The contract (docs: your own model): ``Class`` extends one of CompressAI's

- ``ScaleHyperprior``: ``g_a``, ``g_s``, ``h_a`` (fed ``|y|``), ``h_s`` giving ``scales``, ``means = 0``;
- ``MeanScaleHyperprior``: ``h_s`` giving ``scales, means`` as two halves of its channels;
- ``JointAutoregressiveHierarchicalPriors``: and a 5x5 masked ``context_prediction`` feeding 1x1
  ``entropy_parameters``,

with ``entropy_bottleneck`` and ``gaussian_conditional``, ``g_a`` downsampling by 16 and ``h_a`` by 4
more; its constructor takes ``N`` and ``M``, or ``N`` alone (then ``M = N``), every other argument
having a default. lic mixes the matching :class:`~lic.models.hyperprior.CodingModel` into it
(first in the bases, as it does for its own classes), so the user writes nothing lic-specific:
real USQ, RDOQ and TCQ coding with exact decoding, latent datasets, phases 3-4 and their controls.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from types import ModuleType

import torch
from compressai.models import CompressionModel, JointAutoregressiveHierarchicalPriors, MeanScaleHyperprior, \
    ScaleHyperprior

from lic.config import LATENT_STRIDE, ModelConfig
from lic.errors import LicError
from lic.models.hyperprior import CodingModel, ScaleOnly
from lic.models.spatial_context import SpatialContext

# CompressAI's classic layouts, most specific first, and what lic mixes into each
LAYOUTS: tuple[tuple[type, type[CodingModel]], ...] = (
    (JointAutoregressiveHierarchicalPriors, SpatialContext), (MeanScaleHyperprior, CodingModel),
    (ScaleHyperprior, ScaleOnly))
_CLASSES: dict[str, type[CodingModel]] = {}  # one class per name, so that every model of it shares its type


def _import(module_name: str) -> ModuleType:
    """``module_name``, looked up on ``sys.path`` and then in the current folder (which the ``lic``
    command, a console script, does not search; ``python -m`` and the pipeline's stages do)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        if exc.name != module_name.split(".")[0] or here in sys.path or "" in sys.path:
            raise
        sys.path.append(here)
        return importlib.import_module(module_name)


def _user_class(architecture: str) -> type:
    module_name, _, name = architecture.partition(":")
    try:
        module = _import(module_name)
    except Exception as exc:  # the user's module: any error on import is theirs to see, in one line
        raise LicError(f"model {architecture}: cannot import {module_name!r} ({type(exc).__name__}: {exc}); put "
                       "its folder on PYTHONPATH or install it") from None
    user = getattr(module, name, None)
    if not (isinstance(user, type) and issubclass(user, CompressionModel)):
        raise LicError(f"model {architecture}: {module_name}.{name} is not a CompressAI CompressionModel class")
    return user


def _source(user: type) -> str:
    try:
        return inspect.getsource(user)
    except (OSError, TypeError):  # a class without Python source
        return ""


def _channels(user: type, architecture: str) -> tuple[str, ...]:
    """The channel arguments ``user``'s constructor takes: ``("N", "M")`` or ``("N",)``."""
    params = inspect.signature(user.__init__).parameters
    channels = tuple(c for c in ("N", "M") if c in params)
    missing = [n for n, p in list(params.items())[1:] if n not in channels and p.default is p.empty
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if "N" not in channels or missing:
        raise LicError(f"model {architecture}: its constructor must take N (and M), with defaults for the rest; "
                       f"it takes {', '.join(list(params)[1:]) or 'nothing'}")
    return channels


def plugin_class(architecture: str) -> type[CodingModel]:
    """The lic model class of the user's ``module:Class`` (module docstring); one clear line if the
    class does not keep the contract."""
    if architecture in _CLASSES:
        return _CLASSES[architecture]
    user = _user_class(architecture)
    if issubclass(user, CodingModel):  # built on one of lic's own classes already
        cls = user
    else:
        mixin = next((m for base, m in LAYOUTS if issubclass(user, base)), None)
        if mixin is None:
            layout = ("CompressAI's latent_codec layout (checkerboard, ELIC) is not supported yet"
                      if "latent_codec" in _source(user) else "it extends none of them")
            raise LicError(f"model {architecture}: lic takes a class extending CompressAI's ScaleHyperprior, "
                           f"MeanScaleHyperprior or JointAutoregressiveHierarchicalPriors; {layout}")
        cls = type(user.__name__, (mixin, user), {"CHANNELS": _channels(user, architecture),
                                                 "__module__": user.__module__, "__qualname__": user.__qualname__,
                                                 "__doc__": user.__doc__})
    _CLASSES[architecture] = cls
    return cls


def build_plugin(config: ModelConfig) -> CodingModel:
    """The user's model for ``config``, checked for the strides lic codes with."""
    cls = plugin_class(config.architecture)
    if cls.CHANNELS == ("N",) and config.M != config.N:
        raise LicError(f"model {config.architecture} takes N alone (M = N), got N={config.N}, M={config.M}")
    model = cls(config)
    with torch.no_grad():
        y = model.g_a(torch.zeros(1, 3, 4 * LATENT_STRIDE, 4 * LATENT_STRIDE))
        z = model.hyper_analysis(y)
    if tuple(y.shape[1:]) != (config.M, 4, 4) or tuple(z.shape[2:]) != (1, 1):
        raise LicError(f"model {config.architecture}: g_a must map a 64x64 image to M={config.M} channels of 4x4 and "
                       f"h_a that to 1x1, got y {tuple(y.shape[1:])} and z {tuple(z.shape[1:])}")
    return model
