/* Stand-alone test of the SIMD elementwise, pooling and reduction kernels (ADD, MUL, MEAN, AVERAGE_POOL_2D,
 * MAX_POOL_2D, QUANTIZE, RELU, PRELU, HARD_SWISH, LOGISTIC, TANH), for cross-compiled runs under qemu
 * (tools/test_native_arm_elementwise.sh) and native runs: every variant this CPU supports must give the bytes of
 * the reference kernels (ev_<kind>_ref) on random ops of each kind, for every split of the work items.
 *
 * Ops are random over the whole range the checks accept (each is passed through ev_check_<kind> first; one it
 * refuses is drawn again): shapes with broadcasts and odd strides, sizes around the vector widths (1, 15, 16, 17,
 * 31, 33, 63, 65, ...), offsets, multipliers and shifts of every legal size (left shifts, huge multipliers, zero
 * multipliers), int8 and uint8 types, pool windows hanging over every edge and larger than 256 cells, reductions
 * over any set of dimensions. Each tensor ends right before a PROT_NONE page, so reading or writing one byte too
 * far faults. The output is filled with a random byte before each run, so a byte a kernel fails to write shows.
 * Splits: the whole range on one call; 2 to 5 random pieces in a random order on different thread indices; for
 * few items, one call per item.
 *
 *   test_elementwise_variants [--variant NAME] [--expect SUFFIX] [--cases N] [--seed S] [--max-elems N]
 *                             [--giant-means N] [-v]
 *
 * --variant (default: the variant detection picks) must be supported by this CPU, and its completed table must
 * fill the slots of the kinds that SUFFIX (default: the variant's name; e.g. neon for dotprod, whose table falls
 * back to neon's for these kinds) vectorises with ev_<kind>_<SUFFIX>: the test fails otherwise, so a silent
 * fallback to the reference cannot pass. --max-elems bounds the tensors (default 3000); --giant-means adds N means
 * of more than 2^30 / 255 elements each (MEAN's exact requantisation form; 4 MB inputs). Exits 1 on any mismatch
 * or such failure, 2 on usage errors. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../activation.h"
#include "../elementwise.h"
#include "../ev.h"
#include "../misc.h"
#include "../variants.h"
#include "guarded.h"

/* (activation.h declares no checks: they are found by name, as checks.c does) */
int ev_check_hard_swish(const ev_op *op, char *err, size_t errlen);
int ev_check_logistic(const ev_op *op, char *err, size_t errlen);

/* ---- random numbers (xorshift64*) ---- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)((int64_t)hi - lo + 1)); } /* [lo, hi] */
static int chance(int percent) { return rnd_int(0, 99) < percent; }
/* sizes that straddle the vector widths (16 and 32 bytes, 4 and 8 int32 lanes) */
static const int tail_sizes[] = {1,  2,  3,  4,  5,  7,  8,  9,  15, 16,  17,  23, 24,
                                 31, 32, 33, 47, 48, 63, 64, 65, 95, 100, 127, 129};
static int tail_size(int max) {
    for (;;) {
        const int s = tail_sizes[rnd_int(0, (int)(sizeof tail_sizes / sizeof tail_sizes[0]) - 1)];
        if (s <= max) return s;
    }
}
/* a multiplier: any of [0, 2^31), with the edges often */
static int32_t rnd_mult(void) {
    switch (rnd_int(0, 9)) {
    case 0: return 0;
    case 1: return INT32_MAX;
    case 2: return 1 << 30;
    case 3: return rnd_int(1, 1000);
    case 4: case 5: return (int32_t)(rnd() >> 33);
    default: return (1 << 30) + (int32_t)(rnd() >> 34); /* [2^30, 2^31): what QuantizeMultiplier makes */
    }
}
static void act_range(int32_t *lo, int32_t *hi, int tmin, int tmax) {
    if (chance(50)) {
        *lo = tmin, *hi = tmax;
        return;
    }
    int a = rnd_int(tmin, tmax), b = rnd_int(tmin, tmax);
    *lo = a < b ? a : b, *hi = a < b ? b : a;
}


static void fill_random(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)rnd();
}

/* ---- one test case ---- */
enum { K_ADD, K_MUL, K_MEAN, K_AVG, K_MAX, K_QUANT, K_RELU, K_PRELU, K_HSWISH, K_LOGISTIC, K_TANH, K_COUNT };
static const char *kind_name[K_COUNT] = {"add",  "mul",   "mean",       "average_pool_2d", "max_pool_2d", "quantize",
                                         "relu", "prelu", "hard_swish", "logistic",        "tanh"};
static const int kind_op[K_COUNT] = {EV_OP_ADD,         EV_OP_MUL,      EV_OP_MEAN, EV_OP_AVERAGE_POOL_2D,
                                     EV_OP_MAX_POOL_2D, EV_OP_QUANTIZE, EV_OP_RELU, EV_OP_PRELU,
                                     EV_OP_HARD_SWISH,  EV_OP_LOGISTIC, EV_OP_TANH};
static ev_check_fn kind_check[K_COUNT] = {ev_check_add,         ev_check_mul,      ev_check_mean,
                                          ev_check_average_pool_2d, ev_check_max_pool_2d, ev_check_quantize,
                                          ev_check_relu,        ev_check_prelu,    ev_check_hard_swish,
                                          ev_check_logistic,    ev_check_tanh};

/* the kinds each implementation vectorises (its own ev_<kind>_<suffix> must fill the slot) */
static int vectorised(const char *suffix, int k) {
    /* x86 keeps the scalar table lookup (see x86/x86_elementwise.h) */
    if (!strcmp(suffix, "sse41") || !strcmp(suffix, "avx2")) return k != K_LOGISTIC && k != K_TANH;
#if defined(__arm__) && !defined(__aarch64__)
    if (!strcmp(suffix, "neon")) return k != K_LOGISTIC && k != K_TANH; /* no 256-byte table lookup on ARMv7 */
#else
    if (!strcmp(suffix, "neon")) return 1;
#endif
    return 0;
}

typedef struct {
    int kind;
    ev_op op;
    int32_t params[64];
    guarded buf[EV_MAX_OP_TENSORS];
    int out; /* index of the output tensor */
    char desc[320];
} tcase;

static void set_tensor(tcase *c, int t, size_t n, int random) {
    c->buf[t] = guarded_alloc(n);
    if (random) fill_random(c->buf[t].p, n);
    c->op.tensors[t] = c->buf[t].p;
    c->op.sizes[t] = n;
}

static void free_case(tcase *c) {
    for (int t = 0; t < c->op.n_tensors; t++) guarded_free(&c->buf[t]);
}

static long long blocks_of(long long n, int32_t *block) {
    *block = chance(40) ? 64 * rnd_int(1, 3) : rnd_int(1, 70);
    return (n + *block - 1) / *block;
}

/* size limit for the tensors of one case (kept small: the emulated runs are slow) */
static int max_elems = 3000;

/* ADD and MUL: a random broadcast over up to 6 dims */
static void gen_binary(tcase *c, int mul) {
    int32_t *p = c->params;
    int32_t dim[EV_EW_DIMS], s[2][EV_EW_DIMS];
    long long total = 1;
    const int shape = rnd_int(0, 9);
    for (int k = 0; k < EV_EW_DIMS; k++) dim[k] = 1;
    if (shape < 3) { /* same-shape inputs, merged by the planner into one dimension */
        dim[5] = chance(50) ? tail_size(129) : rnd_int(1, max_elems);
    } else {
        const int nd = rnd_int(1, 6);
        for (int k = EV_EW_DIMS - nd; k < EV_EW_DIMS; k++) {
            dim[k] = chance(30) ? 1 : tail_size(k == 5 ? 129 : 9);
            if (total * dim[k] > max_elems) dim[k] = 1;
            total *= dim[k];
        }
    }
    total = 1;
    for (int k = 0; k < EV_EW_DIMS; k++) total *= dim[k];
    long long in_n[2];
    for (int t = 0; t < 2; t++) {
        /* broadcast dims: size 1 in this input (stride 0); otherwise row-major strides over its own shape, the
         * innermost sometimes 2 or 3 (a strided view: the kernels' scalar path) */
        const int step = shape == 9 && t == rnd_int(0, 1) ? rnd_int(2, 3) : 1;
        long long acc = step, last = 0;
        for (int k = EV_EW_DIMS - 1; k >= 0; k--) {
            const int bc = shape >= 3 && dim[k] > 1 && chance(35);
            s[t][k] = (bc || dim[k] == 1) ? (chance(20) && dim[k] == 1 ? rnd_int(0, 5) : 0) : (int32_t)acc;
            if (!bc) acc *= dim[k];
            last += (long long)(dim[k] - 1) * s[t][k];
        }
        in_n[t] = last + 1;
    }
    for (int k = 0; k < EV_EW_DIMS; k++) {
        p[EV_BIN_DIM + k] = dim[k];
        p[EV_BIN_STRIDE1 + k] = s[0][k];
        p[EV_BIN_STRIDE2 + k] = s[1][k];
    }
    c->op.items = (int)blocks_of(total, &p[EV_BIN_BLOCK]);
    const int real = chance(50); /* TFLite-like params, or anything the check takes */
    const int o1 = real ? rnd_int(-127, 128) : rnd_int(-255, 255), o2 = real ? rnd_int(-127, 128) : rnd_int(-255, 255);
    const int oo = real ? rnd_int(-128, 127) : rnd_int(-255, 255);
    if (!mul) {
        p[EV_ADD_IN1_OFFSET] = o1, p[EV_ADD_IN2_OFFSET] = o2, p[EV_ADD_OUT_OFFSET] = oo;
        p[EV_ADD_LEFT_SHIFT] = real || chance(50) ? 20 : rnd_int(0, 20);
        p[EV_ADD_IN1_MULT] = rnd_mult(), p[EV_ADD_IN1_SHIFT] = real ? rnd_int(-8, 0) : rnd_int(-31, 0);
        p[EV_ADD_IN2_MULT] = rnd_mult(), p[EV_ADD_IN2_SHIFT] = real ? rnd_int(-8, 0) : rnd_int(-31, 0);
        p[EV_ADD_OUT_MULT] = rnd_mult(), p[EV_ADD_OUT_SHIFT] = real ? rnd_int(-24, -14) : rnd_int(-31, 0);
        act_range(&p[EV_ADD_ACT_MIN], &p[EV_ADD_ACT_MAX], -128, 127);
        c->op.n_params = EV_ADD_NPARAMS;
    } else {
        p[EV_MUL_IN1_OFFSET] = o1, p[EV_MUL_IN2_OFFSET] = o2, p[EV_MUL_OUT_OFFSET] = oo;
        const long long bound = (128LL + abs(o1)) * (128LL + abs(o2));
        int smax = 0;
        while ((bound << (smax + 1)) < (1LL << 30)) smax++;
        p[EV_MUL_OUT_MULT] = rnd_mult();
        p[EV_MUL_OUT_SHIFT] = real ? rnd_int(-12, -4) : rnd_int(-31, smax);
        act_range(&p[EV_MUL_ACT_MIN], &p[EV_MUL_ACT_MAX], -128, 127);
        c->op.n_params = EV_MUL_NPARAMS;
    }
    c->op.n_tensors = 3;
    set_tensor(c, 0, (size_t)in_n[0], 1);
    set_tensor(c, 1, (size_t)in_n[1], 1);
    set_tensor(c, 2, (size_t)total, 0);
    c->out = 2;
    snprintf(c->desc, sizeof c->desc, "dims [%d %d %d %d %d %d] s1 [%d %d %d %d %d %d] s2 [%d %d %d %d %d %d] block %d",
             dim[0], dim[1], dim[2], dim[3], dim[4], dim[5], s[0][0], s[0][1], s[0][2], s[0][3], s[0][4], s[0][5],
             s[1][0], s[1][1], s[1][2], s[1][3], s[1][4], s[1][5], p[EV_BIN_BLOCK]);
}

static void gen_mean(tcase *c, int giant) {
    int32_t *p = c->params;
    long long total = 1, count = 1, kept = 1;
    const int style = giant ? 0 : rnd_int(0, 5);
    for (int k = 0; k < EV_EW_DIMS; k++) p[EV_MEAN_DIM + k] = 1, p[EV_MEAN_REDUCE + k] = 0;
    if (style <= 1) { /* NHWC, H and W reduced: the global pool of EfficientNet and the Fashion-MNIST net */
        const int ch = giant ? rnd_int(2, 3) : tail_size(129) * (chance(20) ? 4 : 1);
        p[EV_MEAN_DIM + 2] = giant ? 1 : rnd_int(1, 2), p[EV_MEAN_DIM + 5] = ch;
        if (giant) /* more than 2^30 / 255 elements per mean: the exact requantisation */
            p[EV_MEAN_DIM + 3] = rnd_int(2150000, 4190000), p[EV_MEAN_DIM + 4] = 2;
        else if (style == 1) /* more than 256 cells: int16 sums flushed to int32 */
            p[EV_MEAN_DIM + 3] = rnd_int(15, 30), p[EV_MEAN_DIM + 4] = rnd_int(15, 30),
            p[EV_MEAN_DIM + 5] = rnd_int(1, 40);
        else
            p[EV_MEAN_DIM + 3] = rnd_int(1, 8), p[EV_MEAN_DIM + 4] = rnd_int(1, 8);
        p[EV_MEAN_REDUCE + 3] = p[EV_MEAN_REDUCE + 4] = 1;
    } else if (style == 2) { /* NHWC, channels (the innermost dimension) reduced, maybe W too */
        p[EV_MEAN_DIM + 3] = rnd_int(1, 4), p[EV_MEAN_DIM + 4] = rnd_int(1, 5);
        p[EV_MEAN_DIM + 5] = tail_size(129) * rnd_int(1, 3);
        p[EV_MEAN_REDUCE + 5] = 1, p[EV_MEAN_REDUCE + 4] = chance(30);
    } else {
        for (int k = EV_EW_DIMS - rnd_int(1, 6); k < EV_EW_DIMS; k++) {
            p[EV_MEAN_DIM + k] = chance(20) ? 1 : tail_size(k == 5 ? 65 : 9);
            p[EV_MEAN_REDUCE + k] = chance(50);
        }
    }
    for (int k = 0; k < EV_EW_DIMS; k++) {
        if (!giant && style != 1 && total * p[EV_MEAN_DIM + k] > 4 * max_elems) p[EV_MEAN_DIM + k] = 1;
        total *= p[EV_MEAN_DIM + k];
        if (p[EV_MEAN_REDUCE + k]) count *= p[EV_MEAN_DIM + k];
        else kept *= p[EV_MEAN_DIM + k];
    }
    p[EV_MEAN_COUNT] = (int32_t)count;
    p[EV_MEAN_IN_ZP] = rnd_int(-128, 127);
    p[EV_MEAN_OUT_ZP] = rnd_int(-128, 127);
    p[EV_MEAN_MULT] = rnd_mult();
    int smax = 0;
    while (((256LL * count) << (smax + 1)) < (1LL << 30)) smax++;
    p[EV_MEAN_SHIFT] = giant ? rnd_int(-31, -20) : chance(50) ? rnd_int(-8, 0) : rnd_int(-31, smax);
    if (!giant && chance(50)) {
        /* TFLite's own: QuantizeMultiplier(input_scale / output_scale) with 1 / count folded in, the output scale
         * finer than the input's so that an error of a few units in the sum shows in the output */
        int e0;
        const double f = frexp(0.5 + rnd_int(0, 4000) * 0.01, &e0);
        int64_t m0 = (int64_t)llround(f * 2147483648.0);
        if (m0 == (1LL << 31)) m0 /= 2, e0++;
        int sh = 0;
        while ((2LL << sh) <= count) sh++; /* floor(log2(count)) */
        if (sh > 31 + e0) sh = 31 + e0;
        p[EV_MEAN_MULT] = (int32_t)((m0 << sh) / count);
        p[EV_MEAN_SHIFT] = e0 - sh;
        p[EV_MEAN_IN_ZP] = rnd_int(-4, 4); /* near the random inputs' mean: outputs mostly unsaturated */
    }
    c->op.n_params = EV_MEAN_NPARAMS;
    c->op.items = (int)kept;
    c->op.n_tensors = 2;
    set_tensor(c, 0, (size_t)total, 1);
    set_tensor(c, 1, (size_t)kept, 0);
    if (giant || chance(25)) { /* extremes: sums at the limits (all one value, or nearly) */
        const int target = giant && chance(70);
        const uint8_t v = target || chance(50) ? 0x7F : 0x80;
        const int all = target || chance(50);
        for (size_t i = 0; i < c->buf[0].n; i++) c->buf[0].p[i] = all || chance(90) ? v : (uint8_t)rnd();
        if (target) { /* sum - zp * count near 2^31, with large multipliers and right shifts */
            p[EV_MEAN_IN_ZP] = -128;
            p[EV_MEAN_MULT] = chance(50) ? INT32_MAX : (1 << 30) + (int32_t)(rnd() >> 34);
            p[EV_MEAN_SHIFT] = chance(50) ? -31 : rnd_int(-31, -28);
        }
    }
    c->out = 1;
    snprintf(c->desc, sizeof c->desc, "dims [%d %d %d %d %d %d] reduce [%d %d %d %d %d %d] count %lld", p[0], p[1],
             p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], count);
}

static void gen_pool(tcase *c) {
    int32_t *p = c->params;
    const int big = chance(8); /* windows of more than 256 cells */
    const int b = rnd_int(1, 2), ch = chance(70) ? tail_size(129) : rnd_int(1, 40);
    const int fh = big ? rnd_int(17, 20) : rnd_int(1, 5), fw = big ? rnd_int(16, 20) : rnd_int(1, 5);
    const int in_h = big ? rnd_int(fh - 3, fh + 2) : rnd_int(1, 9);
    const int in_w = big ? rnd_int(fw - 3, fw + 2) : rnd_int(1, 9);
    const int sh = rnd_int(1, 3), sw = rnd_int(1, 3);
    int oh, ow, ph, pw;
    if (chance(50)) { /* SAME */
        oh = (in_h + sh - 1) / sh, ow = (in_w + sw - 1) / sw;
    } else { /* VALID */
        oh = (in_h + sh - fh) / sh, ow = (in_w + sw - fw) / sw;
    }
    ph = (oh - 1) * sh + fh - in_h, pw = (ow - 1) * sw + fw - in_w;
    ph = ph > 0 ? ph / 2 : 0, pw = pw > 0 ? pw / 2 : 0;
    if (oh < 1) oh = 1;
    if (ow < 1) ow = 1;
    p[EV_POOL_BATCH] = b, p[EV_POOL_IN_H] = in_h, p[EV_POOL_IN_W] = in_w, p[EV_POOL_CHANNELS] = ch;
    p[EV_POOL_OUT_H] = oh, p[EV_POOL_OUT_W] = ow, p[EV_POOL_FILTER_H] = fh, p[EV_POOL_FILTER_W] = fw;
    p[EV_POOL_STRIDE_H] = sh, p[EV_POOL_STRIDE_W] = sw, p[EV_POOL_PAD_H] = ph, p[EV_POOL_PAD_W] = pw;
    act_range(&p[EV_POOL_ACT_MIN], &p[EV_POOL_ACT_MAX], -128, 127);
    c->op.n_params = EV_POOL_NPARAMS;
    c->op.items = b * oh;
    c->op.n_tensors = 2;
    set_tensor(c, 0, (size_t)b * in_h * in_w * ch, 1);
    set_tensor(c, 1, (size_t)b * oh * ow * ch, 0);
    if (chance(15)) /* extremes: sums at the int16 limits, exact halves */
        for (size_t i = 0; i < c->buf[0].n; i++) c->buf[0].p[i] = chance(50) ? 0x80 : (chance(50) ? 0x7F : 0xFF);
    c->out = 1;
    snprintf(c->desc, sizeof c->desc, "%dx%dx%dx%d -> %dx%d, filter %dx%d, stride %dx%d, pad %dx%d, act [%d, %d]", b,
             in_h, in_w, ch, oh, ow, fh, fw, sh, sw, ph, pw, p[EV_POOL_ACT_MIN], p[EV_POOL_ACT_MAX]);
}

static int count_and_block(tcase *c, int32_t *block) {
    const int n = chance(50) ? tail_size(129) : rnd_int(1, max_elems);
    c->op.items = (int)blocks_of(n, block);
    return n;
}

static void gen_quantize(tcase *c) {
    int32_t *p = c->params;
    const int n = count_and_block(c, &p[EV_QUANT_BLOCK]);
    p[EV_QUANT_COUNT] = n;
    const int out_u8 = chance(30), from_float = chance(10);
    p[EV_QUANT_OUT_TYPE] = out_u8 ? EV_TYPE_UINT8 : EV_TYPE_INT8;
    p[EV_QUANT_OUT_ZP] = out_u8 ? rnd_int(0, 255) : rnd_int(-128, 127);
    c->op.n_params = EV_QUANT_NPARAMS;
    c->op.n_tensors = 2;
    c->out = 1;
    if (from_float) {
        const float scale = (float)(0.001 + rnd_int(0, 10000) * 1e-4);
        memcpy(&p[EV_QUANT_SCALE_BITS], &scale, 4);
        p[EV_QUANT_MODE] = EV_QUANT_FROM_FLOAT, p[EV_QUANT_IN_TYPE] = EV_TYPE_FLOAT32;
        p[EV_QUANT_IN_ZP] = p[EV_QUANT_MULT] = p[EV_QUANT_SHIFT] = 0;
        set_tensor(c, 0, (size_t)n * 4, 0);
        float *x = (float *)(void *)c->buf[0].p;
        for (int i = 0; i < n; i++) {
            const int r = rnd_int(0, 19);
            x[i] = r == 0 ? NAN : r == 1 ? 1e30f : r == 2 ? -1e30f : r < 6 ? (float)rnd_int(-600, 600) * 0.5f * scale
                                                                          : (float)rnd_int(-1000000, 1000000) * 1e-4f;
        }
        set_tensor(c, 1, (size_t)n, 0);
        snprintf(c->desc, sizeof c->desc, "float -> %s, n %d, block %d", out_u8 ? "uint8" : "int8", n,
                 p[EV_QUANT_BLOCK]);
        return;
    }
    const int in_u8 = chance(30);
    p[EV_QUANT_MODE] = EV_QUANT_REQUANT;
    p[EV_QUANT_IN_TYPE] = in_u8 ? EV_TYPE_UINT8 : EV_TYPE_INT8;
    p[EV_QUANT_IN_ZP] = in_u8 ? rnd_int(0, 255) : rnd_int(-128, 127);
    p[EV_QUANT_MULT] = rnd_mult();
    p[EV_QUANT_SHIFT] = chance(50) ? rnd_int(-3, 2) : rnd_int(-31, 20);
    set_tensor(c, 0, (size_t)n, 1);
    set_tensor(c, 1, (size_t)n, 0);
    snprintf(c->desc, sizeof c->desc, "%s -> %s, n %d, block %d, mult %d shift %d", in_u8 ? "uint8" : "int8",
             out_u8 ? "uint8" : "int8", n, p[EV_QUANT_BLOCK], p[EV_QUANT_MULT], p[EV_QUANT_SHIFT]);
}

static void gen_relu(tcase *c) {
    int32_t *p = c->params;
    const int n = count_and_block(c, &p[EV_RELU_BLOCK]);
    p[EV_RELU_N] = n;
    p[EV_RELU_IN_ZP] = rnd_int(-128, 127), p[EV_RELU_OUT_ZP] = rnd_int(-128, 127);
    p[EV_RELU_MULT] = rnd_mult();
    /* up to the largest left shift the check takes (255 << 23 < 2^31 - 256): the exact requantisation */
    p[EV_RELU_SHIFT] = chance(50) ? rnd_int(-3, 2) : rnd_int(-31, 23);
    act_range(&p[EV_RELU_ACT_MIN], &p[EV_RELU_ACT_MAX], -128, 127);
    c->op.n_params = EV_RELU_NPARAMS;
    c->op.n_tensors = 2;
    set_tensor(c, 0, (size_t)n, 1);
    set_tensor(c, 1, (size_t)n, 0);
    c->out = 1;
    snprintf(c->desc, sizeof c->desc, "n %d, block %d, mult %d shift %d", n, p[EV_RELU_BLOCK], p[EV_RELU_MULT],
             p[EV_RELU_SHIFT]);
}

static void gen_prelu(tcase *c) {
    int32_t *p = c->params;
    int32_t dim[EV_MISC_DIMS];
    long long total = 1, last = 0, acc = 1;
    for (int k = 0; k < EV_MISC_DIMS; k++) dim[k] = 1;
    const int nd = rnd_int(1, 4);
    for (int k = EV_MISC_DIMS - nd; k < EV_MISC_DIMS; k++) {
        dim[k] = chance(20) ? 1 : tail_size(k == 5 ? 129 : 9);
        if (total * dim[k] > max_elems) dim[k] = 1;
        total *= dim[k];
    }
    const int alpha_style = rnd_int(0, 3); /* 0: per channel (the usual), 1: same shape, 2: scalar, 3: random */
    for (int k = EV_MISC_DIMS - 1; k >= 0; k--) {
        int bc = dim[k] == 1 || (alpha_style == 0 && k < 5) || alpha_style == 2 || (alpha_style == 3 && chance(50));
        p[EV_PRELU_ALPHA_STRIDE + k] = bc ? 0 : (int32_t)acc;
        if (!bc) acc *= dim[k];
        last += (long long)(dim[k] - 1) * p[EV_PRELU_ALPHA_STRIDE + k];
        p[EV_PRELU_DIM + k] = dim[k];
    }
    c->op.items = (int)blocks_of(total, &p[EV_PRELU_BLOCK]);
    p[EV_PRELU_IN_ZP] = rnd_int(-128, 127), p[EV_PRELU_ALPHA_ZP] = rnd_int(-128, 127);
    p[EV_PRELU_OUT_ZP] = rnd_int(-128, 127);
    p[EV_PRELU_MULT1] = rnd_mult(), p[EV_PRELU_SHIFT1] = chance(50) ? rnd_int(-3, 2) : rnd_int(-31, 23);
    p[EV_PRELU_MULT2] = rnd_mult(), p[EV_PRELU_SHIFT2] = chance(50) ? rnd_int(-10, 0) : rnd_int(-31, 7);
    c->op.n_params = EV_PRELU_NPARAMS;
    c->op.n_tensors = 3;
    set_tensor(c, 0, (size_t)total, 1);
    set_tensor(c, 1, (size_t)(last + 1), 1);
    set_tensor(c, 2, (size_t)total, 0);
    c->out = 2;
    snprintf(c->desc, sizeof c->desc, "dims [%d %d %d %d %d %d] alpha strides [%d %d %d %d %d %d] block %d", dim[0],
             dim[1], dim[2], dim[3], dim[4], dim[5], p[6], p[7], p[8], p[9], p[10], p[11], p[EV_PRELU_BLOCK]);
}

static void gen_hard_swish(tcase *c) {
    int32_t *p = c->params;
    const int n = count_and_block(c, &p[EV_HARD_SWISH_BLOCK]);
    p[EV_HARD_SWISH_N] = n;
    p[EV_HARD_SWISH_IN_ZP] = rnd_int(-128, 127), p[EV_HARD_SWISH_OUT_ZP] = rnd_int(-128, 127);
    p[EV_HARD_SWISH_OUT_MULT] = chance(10) ? (chance(50) ? 0 : 32767) : rnd_int(16384, 32767);
    p[EV_HARD_SWISH_RELU_MULT] = chance(10) ? (chance(50) ? 0 : 32767) : rnd_int(0, 32767);
    if (chance(60)) { /* what HardSwishPrepare makes of real scales */
        p[EV_HARD_SWISH_OUT_EXP] = rnd_int(-9, 0);
        p[EV_HARD_SWISH_RELU_EXP] = rnd_int(-3, 6);
    } else {
        p[EV_HARD_SWISH_OUT_EXP] = rnd_int(-31, 0);
        p[EV_HARD_SWISH_RELU_EXP] = rnd_int(-31, 31);
    }
    c->op.n_params = EV_HARD_SWISH_NPARAMS;
    c->op.n_tensors = 2;
    set_tensor(c, 0, (size_t)n, 1);
    set_tensor(c, 1, (size_t)n, 0);
    c->out = 1;
    snprintf(c->desc, sizeof c->desc, "n %d, block %d, zp %d/%d, out %d*2^%d, relu %d*2^%d", n,
             p[EV_HARD_SWISH_BLOCK], p[EV_HARD_SWISH_IN_ZP], p[EV_HARD_SWISH_OUT_ZP], p[EV_HARD_SWISH_OUT_MULT],
             p[EV_HARD_SWISH_OUT_EXP], p[EV_HARD_SWISH_RELU_MULT], p[EV_HARD_SWISH_RELU_EXP]);
}

static void gen_lookup(tcase *c) {
    int32_t *p = c->params;
    const int n = count_and_block(c, &p[1]);
    p[0] = n; /* EV_LOGISTIC_N == EV_TANH_N == 0, their blocks 1 */
    c->op.n_params = 2;
    c->op.n_tensors = 3;
    set_tensor(c, 0, (size_t)n, 1);
    set_tensor(c, 1, 256, 1);
    set_tensor(c, 2, (size_t)n, 0);
    c->out = 2;
    snprintf(c->desc, sizeof c->desc, "n %d, block %d", n, p[1]);
}

static void gen_case(tcase *c, int kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->op.kind = kind_op[kind];
    c->op.params = c->params;
    switch (kind) {
    case K_ADD: gen_binary(c, 0); break;
    case K_MUL: gen_binary(c, 1); break;
    case K_MEAN: gen_mean(c, 0); break;
    case K_AVG:
    case K_MAX: gen_pool(c); break;
    case K_QUANT: gen_quantize(c); break;
    case K_RELU: gen_relu(c); break;
    case K_PRELU: gen_prelu(c); break;
    case K_HSWISH: gen_hard_swish(c); break;
    default: gen_lookup(c); break;
    }
}

/* ---- running ---- */

/* runs fn over [0, items) split at the given points (sorted, from 0 to items) in a random order */
static void run_split(ev_op_fn fn, const ev_op *op, const int *cut, int pieces) {
    int order[64];
    for (int i = 0; i < pieces; i++) order[i] = i;
    for (int i = pieces - 1; i > 0; i--) {
        const int j = rnd_int(0, i), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    for (int i = 0; i < pieces; i++) {
        const int k = order[i];
        if (cut[k + 1] > cut[k]) fn(op, cut[k], cut[k + 1], k % 4);
    }
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* every split of this case on every table; returns the number of mismatches */
static int run_case(tcase *c, const ev_kernels *tabs, int ntabs, int verbose) {
    const int items = c->op.items, out = c->out;
    const size_t n = c->buf[out].n;
    uint8_t *want = malloc(n + 1);
    /* the reference over the whole range */
    memset(c->buf[out].p, 0x5A, n);
    tabs[0].ops[c->op.kind].run(&c->op, 0, items, 0);
    memcpy(want, c->buf[out].p, n);
    int bad = 0;
    for (int t = 0; t < ntabs; t++) {
        const ev_op_impl *impl = &tabs[t].ops[c->op.kind];
        const int splits = items <= 12 ? 4 : 3;
        for (int s = 0; s < splits; s++) {
            int cut[66], pieces;
            if (s == 0) { /* one call */
                pieces = 1, cut[0] = 0, cut[1] = items;
            } else if (s == 3) { /* one call per item */
                pieces = items;
                for (int i = 0; i <= items; i++) cut[i] = i;
            } else { /* 2..5 random pieces (some may be empty) */
                pieces = rnd_int(2, 5);
                cut[0] = 0, cut[pieces] = items;
                for (int i = 1; i < pieces; i++) cut[i] = rnd_int(0, items);
                qsort(cut + 1, (size_t)(pieces - 1), sizeof cut[0], cmp_int);
            }
            const uint8_t fillb = (uint8_t)rnd();
            memset(c->buf[out].p, fillb, n);
            run_split(impl->run, &c->op, cut, pieces);
            if (memcmp(c->buf[out].p, want, n) != 0) {
                size_t i = 0;
                while (c->buf[out].p[i] == want[i]) i++;
                size_t diffs = 0;
                for (size_t j = 0; j < n; j++) diffs += c->buf[out].p[j] != want[j];
                fprintf(stderr, "MISMATCH %s (%s) %s: %zu of %zu bytes differ, first at %zu: got %d, want %d "
                                "(split %d of %d pieces)\n",
                        impl->name, tabs[t].name, c->desc, diffs, n, i, (int8_t)c->buf[out].p[i], (int8_t)want[i], s,
                        pieces);
                if (c->kind == K_ADD || c->kind == K_MUL || c->kind == K_QUANT || c->kind == K_RELU ||
                    c->kind == K_HSWISH || c->kind == K_MEAN || c->kind == K_PRELU) {
                    fprintf(stderr, "  params:");
                    for (int k = 0; k < c->op.n_params; k++) fprintf(stderr, " %d", c->params[k]);
                    fprintf(stderr, "\n");
                }
                bad++;
                break;
            }
        }
    }
    if (verbose) printf("  %-16s %s%s\n", kind_name[c->kind], c->desc, bad ? "  FAILED" : "");
    free(want);
    return bad;
}

int main(int argc, char **argv) {
    const char *variant = NULL, *expect = NULL;
    int cases = 300, verbose = 0, giant_means = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--variant") && i + 1 < argc) variant = argv[++i];
        else if (!strcmp(argv[i], "--expect") && i + 1 < argc) expect = argv[++i];
        else if (!strcmp(argv[i], "--cases") && i + 1 < argc) cases = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-elems") && i + 1 < argc) max_elems = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--giant-means") && i + 1 < argc) giant_means = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng_state ^= strtoull(argv[++i], NULL, 0) * 0x2545F4914F6CDD1Dull;
        else if (!strcmp(argv[i], "-v")) verbose = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--variant NAME] [--expect SUFFIX] [--cases N] [--seed S] [--max-elems N] "
                    "[--giant-means N] [-v]\n",
                    argv[0]);
            return 2;
        }
    }
    printf("cpu: %s\n", ev_cpu_features());
    /* tabs[0]: ref; then every other built variant this CPU runs, completed with its fallbacks */
    ev_kernels tabs[8];
    int ntabs = 0;
    const char *detected = "ref";
    for (int i = 0; i < ev_variant_count(); i++) {
        const char *name = ev_variant_name(i);
        const int ok = ev_cpu_supports(name) == 1;
        printf("variant %-8s %s\n", name, ok ? "supported" : "not supported by this CPU");
        if (ok && ev_variant_table(name, &tabs[ntabs]) == 0) {
            detected = name;
            ntabs++;
        }
    }
    if (ntabs == 0 || strcmp(tabs[0].name, "ref") != 0) {
        fprintf(stderr, "FAIL: no reference table\n");
        return 1;
    }
    if (!variant) variant = detected;
    if (!expect) expect = variant;
    int vt = -1;
    for (int t = 0; t < ntabs; t++)
        if (!strcmp(tabs[t].name, variant)) vt = t;
    if (vt < 0) {
        fprintf(stderr, "FAIL: variant %s is not built or not supported by this CPU\n", variant);
        return 1;
    }
    int bad_slots = 0;
    for (int k = 0; k < K_COUNT; k++) {
        const char *got = tabs[vt].ops[kind_op[k]].name;
        char want[64];
        snprintf(want, sizeof want, "ev_%s_%s", kind_name[k], expect);
        printf("%s: %-16s -> %s\n", variant, kind_name[k], got ? got : "(empty)");
        if (vectorised(expect, k) && (!got || strcmp(got, want) != 0)) {
            fprintf(stderr, "FAIL: variant %s runs %s for %s, expected %s\n", variant, got ? got : "nothing",
                    kind_name[k], want);
            bad_slots++;
        }
    }
    if (ntabs == 1) fprintf(stderr, "note: only the reference runs on this CPU\n");

    int failed = 0, per_kind[K_COUNT] = {0}, rejected = 0;
    char err[256];
    for (int i = 0; i < cases; i++) {
        const int kind = i % K_COUNT;
        tcase c;
        for (int attempt = 0;; attempt++) {
            gen_case(&c, kind);
            if (kind_check[kind](&c.op, err, sizeof err) == 0) break;
            if (verbose || attempt > 50) fprintf(stderr, "(%s refused: %s; %s)\n", kind_name[kind], err, c.desc);
            free_case(&c);
            rejected++;
            if (attempt > 200) {
                fprintf(stderr, "FAIL: cannot make a valid %s op\n", kind_name[kind]);
                return 1;
            }
        }
        failed += run_case(&c, tabs, ntabs, verbose) != 0;
        per_kind[kind]++;
        free_case(&c);
    }
    for (int i = 0; i < giant_means; i++) { /* a few means of more than 4.2M elements each */
        tcase c;
        memset(&c, 0, sizeof c);
        c.kind = K_MEAN, c.op.kind = EV_OP_MEAN, c.op.params = c.params;
        gen_mean(&c, 1);
        if (ev_check_mean(&c.op, err, sizeof err) != 0) {
            fprintf(stderr, "FAIL: giant mean refused: %s (%s)\n", err, c.desc);
            return 1;
        }
        failed += run_case(&c, tabs, ntabs, verbose) != 0;
        per_kind[K_MEAN]++;
        free_case(&c);
    }
    printf("cases:");
    for (int k = 0; k < K_COUNT; k++) printf(" %s %d", kind_name[k], per_kind[k]);
    printf(" (%d drawn again after the check refused them)\n", rejected);
    printf("%d cases x %d variants (each vs ref, whole range, random splits, per item): %d failed\n", cases, ntabs,
           failed);
    if (bad_slots) fprintf(stderr, "FAIL: %d kinds do not run %s's own kernel\n", bad_slots, expect);
    return failed || bad_slots ? 1 : 0;
}
