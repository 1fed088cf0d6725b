"""The number format a model runs or trains in, chosen from what the hardware does natively.

bf16 halves memory traffic and is the format GPUs and recent Xeons compute in natively. On an
x86 CPU without AVX512-BF16 or AMX (AVX2-only EPYCs and older Xeons), torch emulates it: on a
2-core AVX2 EPYC a LoRA step under bf16 autocast took 27x as long as in fp32, a matrix product
21x (``scripts/bench_number_format.py``). So ``auto`` means bf16 where it is native and fp32
elsewhere, and an explicit bf16 on a CPU that emulates it is honoured with one warning.

Example:
    >>> resolve("float32", "cpu")
    'float32'
"""

from __future__ import annotations

import functools
import logging
from typing import Literal

from distillery.errors import DistilleryError

logger = logging.getLogger(__name__)

Device = Literal["cpu", "cuda"]
# what a config may name, in torch's spelling
NAMES = ("auto", "float32", "bfloat16", "float16")
# the spellings the configs use (torch's names for inference, the Trainer's for training)
_CANONICAL = {
    "auto": "auto",
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}


def cpu_capability() -> str:
    """What torch's CPU kernels were dispatched for (``AVX2``, ``AVX512``, ...)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX): the kernel's CPU flags
    where Linux lists them (no torch import, which takes seconds on a GPU machine), else torch's
    probe."""
    flags = _linux_cpu_flags()
    if flags is not None:
        return bool(flags & {"avx512_bf16", "amx_tile"})
    return torch_has_native_bf16()


def torch_has_native_bf16() -> bool:
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def _linux_cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str] | None:
    """The first x86 processor's flags in ``cpuinfo``; None where there is no such list."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return None


def has_native_bf16(device: Device) -> bool:
    """bf16 in hardware on ``device``: a CUDA GPU that supports it (Ampere and later), or the
    CPU's own probe."""
    if device == "cuda":
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def default_device() -> Device:
    """``cuda`` where a GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve(requested: str, device: Device, key: str = "dtype") -> str:
    """The torch dtype name (``bfloat16``, ``float32`` or ``float16``) for a configured format.

    ``auto`` is ``bfloat16`` where ``device`` computes it natively and ``float32`` elsewhere. An
    explicit bf16 on a CPU that emulates it is kept, with one warning naming ``key``.

    Example:
        >>> resolve("fp32", "cuda")
        'float32'
    """
    name = _CANONICAL.get(requested)
    if name is None:
        raise DistilleryError(
            f"{key}: unknown number format {requested!r}; use one of auto, float32 (fp32), "
            "bfloat16 (bf16), float16 (fp16)"
        )
    if name == "auto":
        return "bfloat16" if has_native_bf16(device) else "float32"
    if name == "bfloat16" and device == "cpu" and not cpu_has_native_bf16():
        _warn_emulated_bf16(key)
    return name


@functools.cache
def _warn_emulated_bf16(key: str) -> None:
    logger.warning(
        "%s is bf16, but this CPU (%s, no AVX512-BF16 or AMX) emulates bf16: matrix products "
        "run tens of times slower than in fp32 (a LoRA step 27x on an AVX2 EPYC). Set %s: auto "
        "(fp32 here, bf16 where it is native) or fp32.",
        key,
        cpu_capability(),
        key,
    )


def describe_cpu() -> str:
    """One line for logs and reports: the CPU's capability and what ``auto`` picks on it.

    Example:
        >>> "auto picks" in describe_cpu()
        True
    """
    native = "native" if cpu_has_native_bf16() else "emulated"
    return f"CPU {cpu_capability()}, bf16 {native}: auto picks {resolve('auto', 'cpu')}"
