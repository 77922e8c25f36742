"""CompressAI's private API, as ``lic.compat`` exposes it: its behaviour pinned, so that a new
CompressAI version that changes it fails here, in one place."""

from __future__ import annotations

import math

import torch
from compressai.entropy_models import GaussianConditional

from lic import compat


def _phi(v: float) -> float:
    return 0.5 * math.erfc(-v / math.sqrt(2))


def test_standard_cumulative_is_the_normal_cdf() -> None:
    v = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.5], dtype=torch.float64)
    got = compat.standard_cumulative(GaussianConditional(None), v)
    assert torch.allclose(got, torch.tensor([_phi(float(x)) for x in v], dtype=torch.float64), rtol=0, atol=1e-15)


def test_gaussian_likelihood_is_the_mass_of_the_unit_cell() -> None:
    gc = GaussianConditional(None)  # scale bound 0.11, no likelihood bound applied here
    k = torch.tensor([0.0, 1.0, -2.0, 5.0], dtype=torch.float64)
    s = torch.tensor([1.0, 0.5, 2.0, 0.05], dtype=torch.float64)
    want = [_phi((0.5 - abs(float(a))) / max(float(b), 0.11)) - _phi((-0.5 - abs(float(a))) / max(float(b), 0.11))
            for a, b in zip(k, s)]
    assert torch.allclose(compat.gaussian_likelihood(gc, k, s), torch.tensor(want, dtype=torch.float64), atol=1e-12)


def test_pmf_to_quantized_cdf_sums_to_the_precision_and_keeps_every_symbol() -> None:
    cdf = compat.pmf_to_quantized_cdf(torch.tensor([0.5, 0.25, 0.25 - 1e-9, 1e-9]), 16)
    assert cdf[0] == 0 and cdf[-1] == 1 << 16 and len(cdf) == 5
    assert all(b > a for a, b in zip(cdf.tolist(), cdf.tolist()[1:]))  # the tiny symbol keeps a slot
    assert cdf.tolist() == [0, 32768, 49151, 65535, 65536]


def test_cdf_tables_after_update_and_rans_round_trip() -> None:
    gc = GaussianConditional(None)
    gc.update_scale_table(torch.tensor([0.2, 1.0, 4.0]), force=True)
    cdf, lengths, offsets = compat.cdf_tables(gc)
    assert cdf.shape[0] == 3 and lengths.shape == (3,) and offsets.shape == (3,)
    assert all(int(cdf[i, int(lengths[i]) - 1]) == 1 << 16 for i in range(3))  # each row ends at 2^16
    # n - 2 symbols, symmetric around 0, then the escape symbol and the closing 2^16
    assert offsets.tolist() == [-(n - 3) // 2 for n in lengths.tolist()] == [-2, -7, -25]
    symbols, rows = [0, 1, -3, 2, 40], [0, 1, 2, 2, 1]  # 40 is past the tables: escape-coded
    args = (cdf.tolist(), lengths.tolist(), offsets.tolist())
    data = compat.RansEncoder().encode_with_indexes(symbols, rows, *args)
    assert compat.RansDecoder().decode_with_indexes(data, rows, *args) == symbols
    compat.set_cdf_tables(gc, cdf[:1], lengths[:1], offsets[:1])
    assert compat.cdf_tables(gc)[0].shape[0] == 1
