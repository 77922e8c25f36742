"""Entropy tables fitted to a quantizer's decisions (lic.tables) on a Gaussian source: fewer real
bytes on another draw, exact decoding, and a digest that tells fits apart."""

from __future__ import annotations

import pytest
import torch

from lic.config import ModelConfig
from lic.errors import LicError
from lic.models import Hyperprior
from lic.quantizers import make_quantizer, quantizer_from_header
from lic.tables import fit


@pytest.fixture(scope="module")
def conditional():  # noqa: ANN201
    model = Hyperprior(ModelConfig(N=8, M=8))
    model.update(force=True)
    return model.gaussian_conditional


def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Residuals ``N(0, sigma^2)``, ``sigma`` from 0.2 to 3 by rows, zero means."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.2, 3.0, 24).reshape(1, 1, 24, 1).expand(1, 1, 24, 160).contiguous()
    return scales * torch.randn(scales.shape, generator=gen), torch.zeros_like(scales), scales


@pytest.mark.parametrize("name, params", [("tcq", {"lambda_tcq": 0.2}), ("rdoq", {"lambda_rdoq": 0.3})])
def test_tables_fitted_on_one_draw_code_another_in_fewer_bytes_and_decode_exactly(conditional, name: str,
                                                                                  params: dict) -> None:  # noqa: ANN001
    q = make_quantizer(name, conditional, weighting="none", **params)
    fitted = fit(q, *draw(0))
    y, means, scales = draw(1)
    analytic_k, fitted_k = q.quantize(y, means, scales), fitted.quantize(y, means, scales)
    analytic_bytes, fitted_bytes = q.encode(analytic_k, scales), fitted.encode(fitted_k, scales)
    assert len(fitted_bytes) < len(analytic_bytes)
    assert torch.equal(fitted.decode(fitted_bytes, scales), fitted_k)
    d = [float(((x.dequantize(k, means) - y) ** 2).mean()) for x, k in ((q, analytic_k), (fitted, fitted_k))]
    assert d[1] < 1.5 * d[0]  # the bytes are not saved by a much coarser reconstruction


def test_a_tcq_header_names_its_tables(conditional) -> None:  # noqa: ANN001
    """Fits on other data give other digests, and a header of fitted tables is refused by a decoder
    that has only the analytic ones, in one line."""
    q = make_quantizer("tcq", conditional, lambda_tcq=0.2, weighting="none")
    a, b = fit(q, *draw(0)), fit(q, *draw(5))
    digests = {x.pack_params()[-4:] for x in (q, a, b)}
    assert len(digests) == 3
    with pytest.raises(LicError, match="tables differ"):
        quantizer_from_header(a.code, a.pack_params(), conditional)
