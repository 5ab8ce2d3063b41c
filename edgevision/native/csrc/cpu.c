/* Which kernel variants this CPU runs: cpuid (+ xgetbv for the OS's AVX state) on x86, the kernel's HWCAP bits
 * (getauxval) on ARM. Detection only answers "can it run"; choosing among the runnable variants is
 * edgevision/native/variants.py's job. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "ev.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static int x86_sse41(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_SSE4_1) != 0;
}

static int x86_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    /* AVX needs the CPU feature and the OS saving YMM state (OSXSAVE, then XCR0 bits 1 and 2). */
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6u) != 6u) return 0;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_AVX2) != 0;
}

static int x86_avx512vnni(void) {
    unsigned a, b, c, d;
    if (!x86_avx2()) return 0;
    /* AVX-512 needs the OS saving opmask and ZMM state too: XCR0 bits 5, 6, 7 besides 1 and 2 */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6u) != 0xE6u) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned need_b = bit_AVX512F | bit_AVX512BW | bit_AVX512VL;
    return (b & need_b) == need_b && (c & bit_AVX512VNNI) != 0;
}
#endif

#if defined(__aarch64__) || defined(__arm__)
#include <sys/auxv.h>
#if defined(__aarch64__)
#define EV_HWCAP_ASIMD (1UL << 1)
#define EV_HWCAP_ASIMDDP (1UL << 20)
#else
#define EV_HWCAP_NEON (1UL << 12)
#endif
#endif

int ev_cpu_supports(const char *variant) {
    if (strcmp(variant, "ref") == 0) return 1;
#if defined(__x86_64__) || defined(__i386__)
#ifdef EV_HAVE_X86_SSE41
    if (strcmp(variant, "sse41") == 0) return x86_sse41();
#endif
#ifdef EV_HAVE_X86_AVX2
    if (strcmp(variant, "avx2") == 0) return x86_avx2();
#endif
#ifdef EV_HAVE_X86_AVX512VNNI
    if (strcmp(variant, "avx512vnni") == 0) return x86_avx512vnni();
#endif
#endif
#if defined(__aarch64__)
#ifdef EV_HAVE_NEON
    if (strcmp(variant, "neon") == 0) return (getauxval(AT_HWCAP) & EV_HWCAP_ASIMD) != 0;
#endif
#ifdef EV_HAVE_DOTPROD
    if (strcmp(variant, "dotprod") == 0) return (getauxval(AT_HWCAP) & EV_HWCAP_ASIMDDP) != 0;
#endif
#elif defined(__arm__)
#ifdef EV_HAVE_NEON
    if (strcmp(variant, "neon") == 0) return (getauxval(AT_HWCAP) & EV_HWCAP_NEON) != 0;
#endif
#endif
    return -1;
}

const char *ev_cpu_features(void) {
    static char buf[160];
#if defined(__x86_64__) || defined(__i386__)
    snprintf(buf, sizeof buf, "x86: sse4.1=%s avx2=%s avx512vnni=%s", x86_sse41() ? "yes" : "no",
             x86_avx2() ? "yes" : "no", x86_avx512vnni() ? "yes" : "no");
#elif defined(__aarch64__)
    unsigned long hw = getauxval(AT_HWCAP);
    snprintf(buf, sizeof buf, "aarch64: asimd=%s asimddp=%s (HWCAP 0x%lx)", (hw & EV_HWCAP_ASIMD) ? "yes" : "no",
             (hw & EV_HWCAP_ASIMDDP) ? "yes" : "no", hw);
#elif defined(__arm__)
    unsigned long hw = getauxval(AT_HWCAP);
    snprintf(buf, sizeof buf, "arm: neon=%s (HWCAP 0x%lx)", (hw & EV_HWCAP_NEON) ? "yes" : "no", hw);
#else
    snprintf(buf, sizeof buf, "no SIMD variant for this architecture");
#endif
    return buf;
}

void ev_kernels_complete(ev_kernels *out, const ev_kernels *variant, const ev_kernels *fallback) {
    *out = *variant;
    for (int i = 0; i < EV_OP_COUNT; i++)
        if (!out->ops[i].run) out->ops[i] = fallback->ops[i];
    if (!out->preprocess.run) out->preprocess = fallback->preprocess;
}
