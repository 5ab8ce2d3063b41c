"""Which kernel variant the native engine runs, and proof that it is the one that ran.

Runs on the host (x86-64) and, through tests/test_native_arm64.py, inside the arm64 userland as a Cortex-A72
and a Cortex-A76, where EDGEVISION_EXPECT_VARIANT says which variant must have been chosen: if another ran,
these tests fail."""
from __future__ import annotations

import os
import platform

import pytest

from edgevision.native import variants

EXPECT = os.environ.get("EDGEVISION_EXPECT_VARIANT")


@pytest.fixture(autouse=True)
def no_env_override(monkeypatch):
    monkeypatch.delenv(variants.ENV_VAR, raising=False)


def test_the_reference_is_always_built_and_runnable():
    assert variants.compiled()[0] == "ref"
    assert "ref" in variants.supported()


def test_this_architecture_builds_its_simd_variants():
    machine = platform.machine().lower()
    built = set(variants.compiled())
    if machine in ("x86_64", "amd64"):
        assert {"sse41", "avx2", "avx512vnni"} <= built
    elif machine in ("aarch64", "arm64"):
        assert {"neon", "dotprod"} <= built
    elif machine.startswith("arm"):
        assert "neon" in built
    assert built <= set(variants.ALL_VARIANTS)


def test_detection_picks_the_best_supported_variant():
    chosen, how = variants.resolve()
    assert how == "detected"
    assert chosen == variants.supported()[-1]
    ext = variants.extension()
    if ext.cpu_supports("avx512vnni"):
        assert chosen == "avx512vnni"
    elif ext.cpu_supports("avx2"):
        assert chosen == "avx2"
    if ext.cpu_supports("dotprod"):
        assert chosen == "dotprod"


def _cpuinfo_flags() -> set:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64") or not _cpuinfo_flags(),
                    reason="x86-64 with /proc/cpuinfo only")
def test_avx512vnni_is_detected_exactly_when_the_cpu_has_it():
    """Independently of cpu.c: the kernel's flags (which it clears when the OS does not save the AVX-512 state)
    say whether this CPU runs avx512vnni; on one that does, it must be built, supported and chosen, and run its
    own CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (this fails, not skips, on such a machine)."""
    has = {"avx512f", "avx512bw", "avx512vl", "avx512_vnni"} <= _cpuinfo_flags()
    ext = variants.extension()
    assert "avx512vnni" in variants.compiled()
    assert ext.cpu_supports("avx512vnni") == int(has), ext.cpu_features()
    if has:
        assert variants.resolve() == ("avx512vnni", "detected"), variants.describe()
        names = ext.kernel_names("avx512vnni")
        for kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            assert names[kind] == f"ev_{kind.lower()}_avx512vnni"
        # the slots it does not fill come from avx2, its fallback
        assert names["ADD"] == "ev_add_avx2" and names["preprocess"] == "ev_preprocess_avx2"


def test_expected_variant_is_the_one_chosen():
    """Set by the arm64 harness: a Cortex-A72 must run neon, a Cortex-A76 dotprod."""
    if not EXPECT:
        pytest.skip("EDGEVISION_EXPECT_VARIANT is not set (tests/test_native_arm64.py sets it per emulated core)")
    assert variants.resolve() == (EXPECT, "detected"), variants.describe()


def test_explicit_argument_beats_the_environment(monkeypatch):
    monkeypatch.setenv(variants.ENV_VAR, "ref")
    assert variants.resolve() == ("ref", variants.ENV_VAR)
    best = variants.supported()[-1]
    assert variants.resolve(best) == (best, "argument")
    monkeypatch.setenv(variants.ENV_VAR, "auto")
    assert variants.resolve() == (best, "detected")


@pytest.mark.parametrize("value, message", [
    ("bogus", "unknown kernel variant EDGEVISION_KERNELS='bogus': expected one of auto, ref"),
    ("AVX512", "unknown kernel variant"),
])
def test_unknown_variant_in_the_environment_is_an_error(monkeypatch, value, message):
    monkeypatch.setenv(variants.ENV_VAR, value)
    with pytest.raises(ValueError, match=message):
        variants.resolve()


def test_a_variant_of_another_architecture_is_refused_by_name():
    other = next(v for v in ("neon", "avx2") if v not in variants.compiled())
    with pytest.raises(ValueError, match=f"'{other}' is not built for this architecture; this build has ref"):
        variants.resolve(other)


def test_a_variant_this_cpu_cannot_run_is_refused():
    unsupported = [v for v in variants.compiled() if v not in variants.supported()]
    if not unsupported:
        pytest.skip(f"this CPU runs every built variant ({', '.join(variants.compiled())}); the Cortex-A72 run "
                    "inside tests/test_native_arm64.py covers dotprod being refused")
    with pytest.raises(ValueError, match="needs CPU features this machine lacks"):
        variants.resolve(unsupported[0])


def test_engine_refuses_a_variant_the_cpu_cannot_run_even_when_asked_directly():
    ext = variants.extension()
    unsupported = [v for v in ext.compiled_variants() if not ext.cpu_supports(v)]
    if not unsupported:
        pytest.skip("this CPU runs every built variant")
    with pytest.raises(ValueError, match="this CPU cannot run kernel variant"):
        ext.Engine(unsupported[0], 1, 0, [], [])


def test_kernel_tables_fall_back_to_a_less_specialised_variant():
    ext = variants.extension()
    ref = ext.kernel_names("ref")
    for v in ext.compiled_variants():
        names = ext.kernel_names(v)
        assert set(names) == set(ref)
        for op, fn in names.items():
            # a slot is filled by this variant, or by one it falls back to, never left empty where ref has one
            assert (fn is None) == (ref[op] is None), (v, op)
            if fn is not None:
                assert fn.rsplit("_", 1)[1] in variants.ALL_VARIANTS
