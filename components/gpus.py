"""GPU products the program knows: what GFD calls them, their compute capability, whether they have MIG.

MIG exists on GA100 (A100, A30), Hopper, and Blackwell data-center parts only; an RTX A4000 has none.
MPS allows up to 48 clients per GPU from compute capability 7.5 (Turing and newer), 16 before.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuProduct:
    product: str  # the value GFD writes to nvidia.com/gpu.product
    compute_capability: tuple[int, int]
    mig: bool

    @property
    def max_mps_clients(self) -> int:
        return 48 if self.compute_capability >= (7, 5) else 16


PRODUCTS: dict[str, GpuProduct] = {p.product: p for p in (
    GpuProduct("NVIDIA-RTX-A4000", (8, 6), mig=False),
    GpuProduct("NVIDIA-RTX-A5000", (8, 6), mig=False),
    GpuProduct("NVIDIA-RTX-A6000", (8, 6), mig=False),
    GpuProduct("NVIDIA-A10", (8, 6), mig=False),
    GpuProduct("NVIDIA-A40", (8, 6), mig=False),
    GpuProduct("NVIDIA-L4", (8, 9), mig=False),
    GpuProduct("NVIDIA-L40S", (8, 9), mig=False),
    GpuProduct("Tesla-T4", (7, 5), mig=False),
    GpuProduct("Tesla-V100-PCIE-32GB", (7, 0), mig=False),
    GpuProduct("Tesla-V100-SXM2-32GB", (7, 0), mig=False),
    GpuProduct("NVIDIA-A30", (8, 0), mig=True),
    GpuProduct("NVIDIA-A100-PCIE-40GB", (8, 0), mig=True),
    GpuProduct("NVIDIA-A100-SXM4-40GB", (8, 0), mig=True),
    GpuProduct("NVIDIA-A100-80GB-PCIe", (8, 0), mig=True),
    GpuProduct("NVIDIA-A100-SXM4-80GB", (8, 0), mig=True),
    GpuProduct("NVIDIA-H100-PCIe", (9, 0), mig=True),
    GpuProduct("NVIDIA-H100-80GB-HBM3", (9, 0), mig=True),
    GpuProduct("NVIDIA-H100-NVL", (9, 0), mig=True),
    GpuProduct("NVIDIA-H200", (9, 0), mig=True),
    GpuProduct("NVIDIA-B200", (10, 0), mig=True),
    GpuProduct("NVIDIA-RTX-PRO-6000-Blackwell-Server-Edition", (12, 0), mig=True),
)}
