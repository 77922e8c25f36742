"""What shapes the numbers besides the code: the packages, the thread count, the processor and its
instruction sets, and CUDA where used. Checkpoints, latent datasets, evaluations and reports record
it, so a result that another machine does not reproduce can be told apart by its record.

Training is deterministic on one machine with one environment (two runs give the same weights);
across processors it is not promised: oneDNN, torch's CPU kernels, picks code paths by instruction
set (AVX2, AVX-512, AMX), and their float32 sums differ in their last bits.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import torch

# the packages whose versions can move a number: arithmetic (torch, numpy, scipy, numba), the images
# as decoded (Pillow, scikit-image ship and decode the bundled photos), coding and metrics
PACKAGES = ("torch", "numpy", "scipy", "numba", "compressai", "Pillow", "scikit-image", "zarr", "pytorch-msssim",
            "bjontegaard")
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def _cpu() -> dict[str, Any]:
    """The processor's model and its instruction-set flags of :data:`ISA_FLAGS` (Linux's /proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "isa": [f for f in ISA_FLAGS if f in flags]}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def check_device(device: str) -> str:
    """``device`` if this machine has it; else one clear :class:`~lic.errors.LicError` (a CUDA device
    on a machine without CUDA, an index past the GPUs, a name torch does not know)."""
    from lic.errors import LicError

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise LicError(f"{device!r} is not a torch device (cpu, cuda, cuda:1, ...)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LicError(f"{device}: this machine has no CUDA device (torch {torch.__version__}, "
                           f"built for CUDA {torch.version.cuda or 'none'}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LicError(f"{device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def machine(device: str | torch.device | None = None) -> dict[str, Any]:
    """The record: Python and package versions, torch's thread count, the CPU, the kernel set torch's
    own CPU kernels use (``AVX512``, ``AVX2``, ...: ``ATEN_CPU_CAPABILITY`` pins it), the oneDNN ISA
    pin (``ONEDNN_MAX_CPU_ISA``) if set, and on CUDA the CUDA and cuDNN versions and the GPU's name."""
    record: dict[str, Any] = {
        "python": platform.python_version(),
        "packages": {p: str(torch.__version__) if p == "torch" else _version(p) for p in PACKAGES},  # torch: its build
        "torch_threads": torch.get_num_threads(),
        "cpu": _cpu(),
        "torch_cpu_kernels": torch.backends.cpu.get_cpu_capability(),  # ATen's kernel set (ATEN_CPU_CAPABILITY)
    }
    if os.environ.get("ONEDNN_MAX_CPU_ISA"):
        record["onednn_max_cpu_isa"] = os.environ["ONEDNN_MAX_CPU_ISA"]
    if device is not None and torch.device(device).type == "cuda":
        index = torch.device(device).index or 0
        record["cuda"] = {"version": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                          "device": torch.cuda.get_device_name(index)}
    return record


def describe(record: dict[str, Any]) -> str:
    """One line: ``CPU model (ISA flags), N torch threads; torch x, numpy y, Pillow z; CUDA ...``."""
    cpu = record.get("cpu", {})
    isa = ", ".join(cpu.get("isa", [])) or "no AVX2"
    packages = ", ".join(f"{k} {v}" for k, v in record.get("packages", {}).items()
                         if k in ("torch", "numpy", "Pillow", "scikit-image") and v)
    kernels = f", {record['torch_cpu_kernels']} kernels" if "torch_cpu_kernels" in record else ""
    text = f"{cpu.get('model', '?')} ({isa}){kernels}, {record.get('torch_threads', '?')} torch threads; {packages}"
    if "onednn_max_cpu_isa" in record:
        text += f"; ONEDNN_MAX_CPU_ISA={record['onednn_max_cpu_isa']}"
    if "cuda" in record:
        cuda = record["cuda"]
        text += f"; {cuda['device']}, CUDA {cuda['version']}, cuDNN {cuda['cudnn']}"
    return text
