"""Builds edgevision._native, the native engine's C extension, alongside the pure-Python package.

Everything else about the package is in pyproject.toml. This file exists because each SIMD variant of the
kernels needs its own compiler flags (AVX2 code must not leak into the baseline, dot-product code must not run
on a Cortex-A72), which a plain setuptools Extension cannot express: the variant files are compiled here, one
group at a time with their flags, and linked into the one extension. Which variant runs is decided at run time
(edgevision/native/variants.py), so one build serves every CPU of its architecture.

The extension is optional: without a C compiler, ``pip install`` still succeeds, the runtime uses numpy for
preprocessing, and ``--backend native`` says what to install.
"""
from __future__ import annotations

import glob
import os
import platform
import struct

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = os.path.join("edgevision", "native", "csrc")
BASE_FLAGS = ["-O2", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wextra", "-Wno-unused-parameter"]


def target_arch() -> str:
    """x86_64, aarch64, armv7 or other: the architecture this Python (and so its compiler) targets. A 32-bit
    Raspberry Pi OS userland on a 64-bit kernel reports 'aarch64' from uname; the pointer size tells."""
    m = platform.machine().lower()
    bits = struct.calcsize("P") * 8
    if m in ("x86_64", "amd64", "i686", "i386"):
        return "x86_64" if bits == 64 else "other"
    if m in ("aarch64", "arm64", "armv8l", "armv8b") or m.startswith("armv7") or m.startswith("armv8"):
        return "aarch64" if bits == 64 else "armv7"
    return "other"


# variant directory -> compiler flags, per target architecture. The scalar reference (ref/) is always built.
VARIANTS = {
    "x86_64": {"x86/sse41": ["-msse4.1"], "x86/avx2": ["-mavx2"],
               # -mavx512f brings FMA with it: no contraction (FULLY_CONNECTED requantises in double)
               "x86/avx512vnni": ["-mavx2", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni",
                                  "-ffp-contract=off"]},
    "aarch64": {"neon": [], "dotprod": ["-march=armv8.2-a+dotprod"]},
    "armv7": {"neon": ["-march=armv7-a", "-mfpu=neon", "-mfloat-abi=hard"]},
    "other": {},
}


def variant_sources(arch: str) -> dict[str, list[str]]:
    out = {}
    for d in VARIANTS[arch]:
        # x86/sse41 -> x86/*_sse41.c ; neon -> neon/*.c
        head, _, tail = d.partition("/")
        pattern = os.path.join(NATIVE, head, f"*_{tail}.c") if tail else os.path.join(NATIVE, head, "*.c")
        out[d] = sorted(glob.glob(pattern))
    return out


class BuildExt(build_ext):
    def build_extension(self, ext):
        arch = target_arch()
        macros = list(ext.define_macros) + [("EV_ARCH_" + arch.upper(), "1")]
        objects = []
        for d, sources in variant_sources(arch).items():
            if not sources:
                continue
            flags = BASE_FLAGS + VARIANTS[arch][d]
            objects += self.compiler.compile(sources, output_dir=self.build_temp, macros=macros,
                                             include_dirs=ext.include_dirs, extra_postargs=flags,
                                             debug=self.debug)
            macros.append(("EV_HAVE_" + d.replace("/", "_").upper(), "1"))
        ext.extra_objects = list(ext.extra_objects or []) + objects
        ext.define_macros = macros
        super().build_extension(ext)


native = Extension(
    "edgevision._native",
    sources=sorted(glob.glob(os.path.join(NATIVE, "*.c")) + glob.glob(os.path.join(NATIVE, "ref", "*.c"))),
    include_dirs=[NATIVE],
    extra_compile_args=BASE_FLAGS,
    libraries=["pthread"] if os.name == "posix" else [],
    optional=True,
)

setup(ext_modules=[native], cmdclass={"build_ext": BuildExt})
