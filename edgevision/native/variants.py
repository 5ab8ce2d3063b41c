"""Which kernel variant the native engine runs, chosen once: an explicit argument, else the environment variable
EDGEVISION_KERNELS, else the best variant this CPU supports (cpuid on x86, HWCAP on ARM).

Variants: ``ref`` (portable C, the scalar reference every other variant matches byte for byte), ``sse41``,
``avx2`` and ``avx512vnni`` (x86-64; the last needs AVX-512 F/BW/VL and VNNI: e.g. Xeon Cascade Lake and later, Zen 4),
``neon`` (aarch64, and 32-bit ARMv7 with NEON), ``dotprod`` (aarch64 with the dot-product
instructions: Cortex-A76, Raspberry Pi 5). A build contains the variants of its own architecture only.
"""
from __future__ import annotations

import os
from typing import Optional

ALL_VARIANTS = ("ref", "sse41", "avx2", "avx512vnni", "neon", "dotprod")
ENV_VAR = "EDGEVISION_KERNELS"


class NativeUnavailable(RuntimeError):
    """The C extension was not built (no C compiler when edgevision was installed)."""


def extension():
    """The compiled module edgevision._native, or NativeUnavailable saying how to get it."""
    try:
        from .. import _native
    except ImportError as e:
        raise NativeUnavailable(
            "the native engine is not built in this installation (" + str(e) + "). It is compiled when edgevision "
            "is installed and a C compiler is present: install one (Debian/Raspberry Pi OS: sudo apt install gcc "
            "python3-dev) and reinstall edgevision (pip install --force-reinstall --no-deps edgevision, or "
            "pip install -e . in a checkout)") from None
    return _native


def compiled() -> tuple[str, ...]:
    """Variants built into this installation, baseline first."""
    return tuple(extension().compiled_variants())


def supported() -> tuple[str, ...]:
    """Built variants this CPU can run, in order of preference (the last is the one detection picks)."""
    ext = extension()
    return tuple(v for v in ext.compiled_variants() if ext.cpu_supports(v))


def resolve(requested: Optional[str] = None) -> tuple[str, str]:
    """(variant, how it was chosen: "argument" | "EDGEVISION_KERNELS" | "detected").

    An unknown name, a variant not built for this architecture or one this CPU cannot run is a ValueError
    that lists the choices; it never silently falls back."""
    how = "argument"
    if requested is None or requested == "auto":
        requested, how = os.environ.get(ENV_VAR) or None, ENV_VAR
        if requested is not None:
            requested = requested.strip().lower()
            if requested == "auto":
                requested = None
    if requested is None:
        return supported()[-1], "detected"
    where = f"{ENV_VAR}={requested!r}" if how == ENV_VAR else repr(requested)
    if requested not in ALL_VARIANTS:
        raise ValueError(f"unknown kernel variant {where}: expected one of auto, {', '.join(ALL_VARIANTS)}")
    if requested not in compiled():
        raise ValueError(f"kernel variant {where} is not built for this architecture; this build has "
                         f"{', '.join(compiled())}")
    if requested not in supported():
        raise ValueError(f"kernel variant {where} needs CPU features this machine lacks "
                         f"({extension().cpu_features()}); it can run {', '.join(supported())}")
    return requested, how


def describe() -> dict:
    """For `edgevision info`: what was built, what this CPU runs, what would be chosen and why."""
    try:
        ext = extension()
    except NativeUnavailable as e:
        return {"built": False, "error": str(e)}
    out = {"built": True, "compiled": list(compiled()), "supported": list(supported()),
           "cpu": ext.cpu_features()}
    try:
        out["chosen"], out["chosen_by"] = resolve()
    except ValueError as e:
        out["chosen"], out["error"] = None, str(e)
    return out
