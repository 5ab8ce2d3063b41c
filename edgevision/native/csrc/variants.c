/* The variants built into this extension, and their completed kernel tables (fallback chains:
 * avx512vnni -> avx2 -> sse41 -> ref, dotprod -> neon -> ref). */
#include <string.h>

#include "variants.h"

#define EV_NAME_(U, l) #U,
static const char *const op_names[EV_OP_COUNT] = {EV_OPS(EV_NAME_)};
#undef EV_NAME_

const char *ev_op_name(int kind) { return (kind >= 0 && kind < EV_OP_COUNT) ? op_names[kind] : "?"; }

/* In order of preference on their architecture: detection picks the last one the CPU supports. */
static const ev_kernels *const built[] = {
    &ev_kernels_ref,
#ifdef EV_HAVE_X86_SSE41
    &ev_kernels_sse41,
#endif
#ifdef EV_HAVE_X86_AVX2
    &ev_kernels_avx2,
#endif
#ifdef EV_HAVE_X86_AVX512VNNI
    &ev_kernels_avx512vnni,
#endif
#ifdef EV_HAVE_NEON
    &ev_kernels_neon,
#endif
#ifdef EV_HAVE_DOTPROD
    &ev_kernels_dotprod,
#endif
};

int ev_variant_count(void) { return (int)(sizeof built / sizeof built[0]); }

const char *ev_variant_name(int i) { return (i >= 0 && i < ev_variant_count()) ? built[i]->name : NULL; }

static const ev_kernels *find(const char *name) {
    for (int i = 0; i < ev_variant_count(); i++)
        if (strcmp(built[i]->name, name) == 0) return built[i];
    return NULL;
}

static const char *fallback_of(const char *name) {
    if (strcmp(name, "avx512vnni") == 0) return "avx2";
    if (strcmp(name, "avx2") == 0) return "sse41";
    if (strcmp(name, "dotprod") == 0) return "neon";
    return "ref";
}

int ev_variant_table(const char *name, ev_kernels *out) {
    const ev_kernels *v = find(name);
    if (!v) return -1;
    if (v == &ev_kernels_ref) {
        *out = ev_kernels_ref;
        return 0;
    }
    ev_kernels fb;
    if (ev_variant_table(fallback_of(name), &fb) != 0) return -1;
    ev_kernels_complete(out, v, &fb);
    return 0;
}

/* The per-variant slot list in ev.h (EV_OPS_APPLY_) repeats EV_OPS; a kind missing from it would be an empty
 * slot in every variant. Designated initialisers catch a misspelt kind; this catches a missing one. */
#define EV_COUNT1_(U, l) +1
#define EV_COUNT2_(U, l, v) +1
_Static_assert((0 EV_OPS(EV_COUNT1_)) == (0 EV_OPS_APPLY_(EV_COUNT2_, x)), "EV_OPS_APPLY_ must list every EV_OPS kind");
