"""Online phase 4 without waiting on the search: the next batch's indices are chosen on a worker
thread while the current step runs.

The search for batch ``t+1`` needs ``means`` and ``scales`` of the weights after step ``t``, which
exist only when step ``t`` is done, so an exact online step cannot overlap its search. The
lookahead takes them from the weights at the start of step ``t`` instead:

    k_{t+1} = Q(y_{t+1} - means_{w_t}; scales_{w_t}),   y_hat = means_{w_{t+1}} + level(k_{t+1})

and the step's rate is ``P(k_{t+1} | scales_{w_{t+1}})`` with the surrogate's gradient in ``means``
(:meth:`lic.quantizers.Quantizer.online_likelihoods`), as online. The indices are one step stale;
everything else is online's. The search runs on the CPU (numba, every core, the GIL released)
whatever the step's device: on a GPU the step's kernels run while the CPU searches; on a CPU it
takes the cores torch leaves idle.

A step after a checkpoint (``checkpoint_every``) or a validation (``validate_every``), or before a
new decoder weighting (``weighting_every``), searches synchronously under its own weights, so that a
resumed run ends on the weights of an uninterrupted one, every search of a weighting period uses the
same weights, and no two searches run at once (numba's ``workqueue`` threading layer, used where
OpenMP and TBB are missing, does not allow it).
Only models whose ``means`` and ``scales`` come from ``z_hat`` alone can look ahead (a context
model's depend on the latents decoded before).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch import Tensor

from lic.errors import LicError
from lic.models import CodingModel
from lic.quantizers import Quantizer


class Lookahead:
    """One worker thread that searches the indices of the batch ``submit`` was given."""

    @staticmethod
    def supports(model: CodingModel) -> bool:
        """Whether ``model``'s ``means`` and ``scales`` come from ``z_hat`` alone (no context model)."""
        return type(model).requantize is CodingModel.requantize

    def __init__(self, model: CodingModel, q: Quantizer) -> None:
        if not self.supports(model):
            raise LicError(f"{type(model).__name__}: phase 4's lookahead needs means and scales from z_hat alone "
                           "(a context model's depend on the latents decoded before)")
        self.model, self.q = model, q
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="lic-lookahead")
        self.pending: tuple[list[Tensor], Future] | None = None

    @torch.no_grad()
    def submit(self, batch: list[Tensor]) -> None:
        """Start the search of ``batch = (y, z_hat, x)`` under the weights as they are now: ``means``
        and ``scales`` (and the decoder weighting) are computed here, the search on the worker, on
        the CPU."""
        y, z_hat = batch[:2]
        scales, means = self.model.hyper_synthesis(z_hat)
        if self.q.uses_sensitivity:
            self.q.sensitivity()  # held by the Snapshot: the worker reads it, never computes it
        cpu = [t.detach().cpu() for t in (y, means, scales)]  # numba's search, whatever the step's device
        self.pending = (batch, self.pool.submit(self.q.quantize, *cpu))

    def take(self) -> tuple[list[Tensor], Tensor] | None:
        """The submitted batch and its indices (waiting for the search), or ``None``."""
        if self.pending is None:
            return None
        batch, future = self.pending
        self.pending = None
        return batch, future.result().to(batch[0].device)

    def close(self) -> None:
        self.pending = None
        self.pool.shutdown(wait=True)
