"""A model of your own through lic's plug-in point: CompressAI's mean-scale hyperprior (Minnen et al.,
2018) with a synthesis transform twice as wide in its first two layers.

Nothing here is lic-specific: a CompressAI class in its classic layout, constructed from ``N`` and
``M``. Train and use it as ``--kind examples.own_model:WideSynthesis`` (from the repository's root,
or with this folder's parent on ``PYTHONPATH``); see docs/own-model.md.
"""

from __future__ import annotations

from compressai.layers import GDN
from compressai.models import MeanScaleHyperprior
from compressai.models.utils import deconv
from torch import nn


class WideSynthesis(MeanScaleHyperprior):
    """``g_s`` with ``width * N`` channels after its first upsampling; the rest is CompressAI's."""

    def __init__(self, N: int = 128, M: int = 192, width: int = 2, **kwargs) -> None:
        super().__init__(N, M, **kwargs)
        wide = width * N
        self.g_s = nn.Sequential(
            deconv(M, wide), GDN(wide, inverse=True),
            deconv(wide, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True),
            deconv(N, 3),
        )
