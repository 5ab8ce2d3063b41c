/* Stand-alone test of one kernel variant's CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED against the scalar
 * reference (ref/conv_ref.c), byte for byte, for cross-compiled runs under qemu-user
 * (tools/test_native_arm_kernels.sh) or native runs.
 *
 *   test_conv_variants --variant NAME [--cases N] [--seed S] [--kinds conv,dw,fc] [--verbose]
 *
 * It generates random ops: shapes, strides, dilations, paddings (TFLite's SAME and VALID arithmetic), groups,
 * depth multipliers, channel counts around the vector widths (1, 3, 7, 15, 16, 17, 33, 100, ...), per-channel
 * multipliers and shifts including the extreme ones (shift -31 and 30, multiplier 0, 2^30, 2^31 - 1), biases near
 * the int32 limits, -128 weights, and inputs at the int8 limits; checks each op with the engine's check
 * function; packs it as the engine would (the variant's sizes and pack hooks); then runs it split every way
 * that matters: one call, one call per work item on rotating threads, and random partitions over 4 threads.
 * The tensors end right at a PROT_NONE page, so reading or writing one byte past any of them faults.
 *
 * It prints the C function filling each slot of the variant's (completed) table and exits 1 if that function is
 * not the variant's own (a silent fallback to another variant is a failure), if this CPU cannot run the variant,
 * or on any mismatch, which it reports with the op's shape and parameters, the position and both values. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../conv.h"
#include "../ev.h"
#include "../variants.h"
#include "guarded.h"

int ev_check_conv_2d(const ev_op *op, char *err, size_t errlen);
int ev_check_depthwise_conv_2d(const ev_op *op, char *err, size_t errlen);
int ev_check_fully_connected(const ev_op *op, char *err, size_t errlen);
void ev_conv_2d_ref(const ev_op *op, int begin, int end, int thread);
void ev_depthwise_conv_2d_ref(const ev_op *op, int begin, int end, int thread);
void ev_fully_connected_ref(const ev_op *op, int begin, int end, int thread);

/* ---- random numbers (xorshift64*) ---- */
static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); } /* [lo, hi] */
static int one_in(int n) { return rnd() % (uint64_t)n == 0; }
static int pick(const int *v, int n) { return v[rnd() % (uint64_t)n]; }
#define PICK(arr) pick(arr, (int)(sizeof(arr) / sizeof(arr[0])))

static void fill_random(int8_t *p, size_t n, int extremes) {
    const int mode = extremes ? rnd_int(0, 3) : 0;
    for (size_t i = 0; i < n; i++) {
        switch (mode) {
        case 1: p[i] = one_in(2) ? -128 : 127; break;      /* the int8 limits */
        case 2: p[i] = -128; break;                         /* all minimum (saturation paths) */
        case 3: p[i] = (int8_t)rnd_int(-3, 3); break;       /* small: many exact rounding ties */
        default: p[i] = (int8_t)(rnd() >> 56); break;
        }
    }
}

/* ---- the op under test ---- */
typedef struct {
    int kind;
    ev_op op;
    int32_t *params;
    guarded t[4];
    char desc[400];
} test_op;

static void free_op(test_op *c) {
    for (int i = 0; i < 4; i++) guarded_free(&c->t[i]);
    free(c->params);
}

/* TFLite's output size and leading padding (padding.h) */
static void window(int same, int in, int f, int stride, int dil, int *out, int *pad) {
    const int eff = (f - 1) * dil + 1;
    *out = same ? (in + stride - 1) / stride : (in + stride - eff) / stride;
    const int total = (*out - 1) * stride + eff - in;
    *pad = total > 0 ? total / 2 : 0;
}

/* per-channel multiplier and shift: mostly realistic, sometimes at the limits */
static void requant_params(int32_t *mult, int32_t *shift, int out_c, int depth_hint) {
    const int style = rnd_int(0, 11);
    /* a base shift that maps typical accumulators (~ sqrt(depth) * 2^13) to ~ +-64 */
    int base = -4;
    for (int d = depth_hint; d > 1; d /= 4) base--;
    base -= 6;
    for (int c = 0; c < out_c; c++) {
        int32_t m = (int32_t)((1u << 30) + (uint32_t)(rnd() >> 34)); /* [2^30, 2^31) */
        int32_t s = base + rnd_int(-2, 2);
        if (style == 1 && one_in(3)) s = 0;                         /* e == 0 channels */
        if (style == 2 && one_in(3)) s = rnd_int(1, 4);             /* left shifts */
        if (style == 3) s = rnd_int(-31, 30);                       /* anything */
        if (style == 4 && one_in(2)) s = one_in(2) ? -31 : 30;      /* the limits */
        if (style == 5 && one_in(2)) m = one_in(2) ? (1 << 30) : INT32_MAX;
        if (style == 6 && one_in(4)) m = 0, s = 0;                  /* a flushed-to-zero scale */
        if (style == 7) s = rnd_int(-3, -1);                        /* huge outputs: saturation, many ties */
        if (style == 8) m = 1 << 30, s = rnd_int(-2, -1);           /* exact halves at both roundings */
        if (style == 9) m = 1 << 30, s = rnd_int(-1, 0);
        if (s < -31) s = -31;
        if (s > 30) s = 30;
        mult[c] = m;
        shift[c] = s;
    }
}

static void make_bias(test_op *c, int out_c) {
    if (one_in(5)) {
        c->t[2] = guarded_alloc(0);
        return;
    }
    c->t[2] = guarded_alloc((size_t)out_c * 4);
    int32_t *b = (int32_t *)(void *)c->t[2].p;
    const int style = rnd_int(0, 5);
    for (int i = 0; i < out_c; i++) {
        if (style == 0)
            b[i] = (int32_t)(rnd() >> 32); /* anything: the accumulator wraps */
        else if (style == 1)
            b[i] = one_in(2) ? INT32_MAX - rnd_int(0, 1000) : INT32_MIN + rnd_int(0, 1000);
        else
            b[i] = rnd_int(-20000, 20000);
    }
}

static void make_act(int32_t *lo, int32_t *hi) {
    if (one_in(2)) {
        *lo = -128, *hi = 127;
    } else {
        int a = rnd_int(-128, 127), b = rnd_int(-128, 127);
        *lo = a < b ? a : b;
        *hi = a < b ? b : a;
    }
}

static const int CHANNELS[] = {1, 2, 3, 4, 7, 8, 12, 15, 16, 17, 20, 24, 28, 32, 33, 40, 48, 64, 100};

static void make_conv(test_op *c, int big) {
    int32_t *p;
    const int batches = one_in(4) ? 2 : 1;
    int fh, fw;
    const int shape = rnd_int(0, 9);
    if (shape < 4)
        fh = fw = 1;
    else if (shape < 7)
        fh = fw = 3;
    else if (shape == 7)
        fh = fw = 5;
    else
        fh = rnd_int(1, 4), fw = rnd_int(1, 4);
    int sh = one_in(3) ? 2 : 1, sw = sh;
    if (one_in(6)) sh = rnd_int(1, 3), sw = rnd_int(1, 3);
    int dh = 1, dw = 1;
    if (one_in(6)) dh = rnd_int(1, 2), dw = rnd_int(1, 3);
    const int same = one_in(2);
    int groups = 1;
    int fic = PICK(CHANNELS), out_c = PICK(CHANNELS);
    if (big) fic = one_in(2) ? 96 : 144, out_c = one_in(2) ? 24 : 40;
    if (one_in(8)) {
        groups = rnd_int(2, 3);
        out_c = groups * rnd_int(1, 9);
    }
    const int in_c = fic * groups;
    int in_h = rnd_int(1, 9), in_w = rnd_int(1, 13);
    if (big) in_h = rnd_int(4, 8), in_w = rnd_int(8, 14);
    int out_h, out_w, pad_top, pad_left;
    window(same, in_h, fh, sh, dh, &out_h, &pad_top);
    window(same, in_w, fw, sw, dw, &out_w, &pad_left);
    if (out_h < 1 || out_w < 1) { /* a VALID window larger than the input: take SAME */
        window(1, in_h, fh, sh, dh, &out_h, &pad_top);
        window(1, in_w, fw, sw, dw, &out_w, &pad_left);
    }
    c->kind = EV_OP_CONV_2D;
    c->params = p = calloc((size_t)EV_CONV_NPARAMS + 2 * (size_t)out_c, sizeof(int32_t));
    p[EV_CONV_BATCHES] = batches, p[EV_CONV_IN_H] = in_h, p[EV_CONV_IN_W] = in_w, p[EV_CONV_IN_C] = in_c;
    p[EV_CONV_OUT_H] = out_h, p[EV_CONV_OUT_W] = out_w, p[EV_CONV_OUT_C] = out_c;
    p[EV_CONV_FILTER_H] = fh, p[EV_CONV_FILTER_W] = fw, p[EV_CONV_FILTER_IN_C] = fic;
    p[EV_CONV_STRIDE_H] = sh, p[EV_CONV_STRIDE_W] = sw, p[EV_CONV_DILATION_H] = dh, p[EV_CONV_DILATION_W] = dw;
    p[EV_CONV_PAD_TOP] = pad_top, p[EV_CONV_PAD_LEFT] = pad_left;
    p[EV_CONV_INPUT_OFFSET] = rnd_int(-127, 128), p[EV_CONV_OUTPUT_OFFSET] = rnd_int(-128, 127);
    make_act(&p[EV_CONV_ACT_MIN], &p[EV_CONV_ACT_MAX]);
    requant_params(p + EV_CONV_NPARAMS, p + EV_CONV_NPARAMS + out_c, out_c, fh * fw * fic);
    c->op.n_params = EV_CONV_NPARAMS + 2 * out_c;
    c->op.items = batches * out_h;
    c->t[0] = guarded_alloc((size_t)batches * in_h * in_w * in_c);
    c->t[1] = guarded_alloc((size_t)out_c * fh * fw * fic);
    make_bias(c, out_c);
    c->t[3] = guarded_alloc((size_t)batches * out_h * out_w * out_c);
    snprintf(c->desc, sizeof c->desc,
             "CONV_2D in %dx%dx%dx%d filter %dx%dx%dx%d (groups %d) stride %d,%d dilation %d,%d pad %d,%d out %dx%dx%d "
             "in_off %d out_off %d act [%d,%d] bias %s",
             batches, in_h, in_w, in_c, out_c, fh, fw, fic, groups, sh, sw, dh, dw, pad_top, pad_left, out_h, out_w,
             out_c, p[EV_CONV_INPUT_OFFSET], p[EV_CONV_OUTPUT_OFFSET], p[EV_CONV_ACT_MIN], p[EV_CONV_ACT_MAX],
             c->t[2].n ? "yes" : "no");
}

static void make_dw(test_op *c, int big) {
    int32_t *p;
    const int batches = one_in(4) ? 2 : 1;
    int fh, fw;
    const int shape = rnd_int(0, 9);
    if (shape < 5)
        fh = fw = 3;
    else if (shape < 8)
        fh = fw = 5;
    else
        fh = rnd_int(1, 4), fw = rnd_int(1, 6);
    int sh = one_in(3) ? 2 : 1, sw = sh;
    if (one_in(6)) sh = rnd_int(1, 3), sw = rnd_int(1, 3);
    int dh = 1, dw = 1;
    if (one_in(6)) dh = rnd_int(1, 2), dw = rnd_int(1, 3);
    const int same = !one_in(4);
    const int in_c = big ? (one_in(2) ? 96 : 144) : PICK(CHANNELS);
    const int dm = one_in(5) ? rnd_int(2, 3) : 1;
    const int out_c = in_c * dm;
    int in_h = rnd_int(1, 10), in_w = rnd_int(1, 14);
    if (big) in_h = rnd_int(6, 12), in_w = rnd_int(8, 16);
    int out_h, out_w, pad_top, pad_left;
    window(same, in_h, fh, sh, dh, &out_h, &pad_top);
    window(same, in_w, fw, sw, dw, &out_w, &pad_left);
    if (out_h < 1 || out_w < 1) {
        window(1, in_h, fh, sh, dh, &out_h, &pad_top);
        window(1, in_w, fw, sw, dw, &out_w, &pad_left);
    }
    c->kind = EV_OP_DEPTHWISE_CONV_2D;
    c->params = p = calloc((size_t)EV_DW_NPARAMS + 2 * (size_t)out_c, sizeof(int32_t));
    p[EV_DW_BATCHES] = batches, p[EV_DW_IN_H] = in_h, p[EV_DW_IN_W] = in_w, p[EV_DW_IN_C] = in_c;
    p[EV_DW_OUT_H] = out_h, p[EV_DW_OUT_W] = out_w, p[EV_DW_OUT_C] = out_c;
    p[EV_DW_FILTER_H] = fh, p[EV_DW_FILTER_W] = fw, p[EV_DW_DEPTH_MULTIPLIER] = dm;
    p[EV_DW_STRIDE_H] = sh, p[EV_DW_STRIDE_W] = sw, p[EV_DW_DILATION_H] = dh, p[EV_DW_DILATION_W] = dw;
    p[EV_DW_PAD_TOP] = pad_top, p[EV_DW_PAD_LEFT] = pad_left;
    p[EV_DW_INPUT_OFFSET] = rnd_int(-127, 128), p[EV_DW_OUTPUT_OFFSET] = rnd_int(-128, 127);
    make_act(&p[EV_DW_ACT_MIN], &p[EV_DW_ACT_MAX]);
    requant_params(p + EV_DW_NPARAMS, p + EV_DW_NPARAMS + out_c, out_c, fh * fw);
    c->op.n_params = EV_DW_NPARAMS + 2 * out_c;
    c->op.items = batches * out_h;
    c->t[0] = guarded_alloc((size_t)batches * in_h * in_w * in_c);
    c->t[1] = guarded_alloc((size_t)fh * fw * out_c);
    make_bias(c, out_c);
    c->t[3] = guarded_alloc((size_t)batches * out_h * out_w * out_c);
    snprintf(c->desc, sizeof c->desc,
             "DEPTHWISE_CONV_2D in %dx%dx%dx%d filter %dx%d multiplier %d stride %d,%d dilation %d,%d pad %d,%d out "
             "%dx%dx%d in_off %d out_off %d act [%d,%d] bias %s",
             batches, in_h, in_w, in_c, fh, fw, dm, sh, sw, dh, dw, pad_top, pad_left, out_h, out_w, out_c,
             p[EV_DW_INPUT_OFFSET], p[EV_DW_OUTPUT_OFFSET], p[EV_DW_ACT_MIN], p[EV_DW_ACT_MAX], c->t[2].n ? "yes" : "no");
}

static void set_scale(int32_t *w, double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    w[0] = (int32_t)(uint32_t)u;
    w[1] = (int32_t)(uint32_t)(u >> 32);
}

static void make_fc(test_op *c, int big) {
    static const int DEPTHS[] = {1, 3, 4, 7, 8, 12, 15, 16, 17, 20, 24, 31, 32, 33, 48, 64, 100, 129, 200};
    static const int BLOCKS[] = {16, 16, 16, 1, 3, 4, 5, 8, 17, 32};
    int32_t *p;
    const int rows = one_in(2) ? 1 : rnd_int(1, 5);
    const int depth = big ? 1280 : PICK(DEPTHS);
    const int out_c = big ? rnd_int(60, 100) : PICK(CHANNELS);
    const int block = PICK(BLOCKS);
    c->kind = EV_OP_FULLY_CONNECTED;
    c->params = p = calloc((size_t)EV_FC_NPARAMS + 2 * (size_t)out_c, sizeof(int32_t));
    p[EV_FC_ROWS] = rows, p[EV_FC_DEPTH] = depth, p[EV_FC_OUT_C] = out_c, p[EV_FC_BLOCK] = block;
    p[EV_FC_INPUT_OFFSET] = rnd_int(-127, 128), p[EV_FC_OUTPUT_OFFSET] = rnd_int(-128, 127);
    make_act(&p[EV_FC_ACT_MIN], &p[EV_FC_ACT_MAX]);
    const int style = rnd_int(0, 4);
    double base = 1.0 / (64.0 * (1 + depth / 4));
    for (int oc = 0; oc < out_c; oc++) {
        double s = base * (0.5 + (double)(rnd() >> 11) / 9007199254740992.0);
        if (style == 1) s = 1.0 / (double)(1 << rnd_int(0, 12)); /* exact powers of two: exact .5 ties */
        if (style == 2 && one_in(3)) s = one_in(2) ? 0.0 : 1e9;   /* zero, and saturation of the int32 cast */
        if (style == 3) s = (double)(rnd() >> 11) / 9007199254740992.0 * 4.0;
        set_scale(p + EV_FC_NPARAMS + 2 * oc, s);
    }
    c->op.n_params = EV_FC_NPARAMS + 2 * out_c;
    c->op.items = rows * ((out_c + block - 1) / block);
    c->t[0] = guarded_alloc((size_t)rows * depth);
    c->t[1] = guarded_alloc((size_t)out_c * depth);
    make_bias(c, out_c);
    c->t[3] = guarded_alloc((size_t)rows * out_c);
    snprintf(c->desc, sizeof c->desc,
             "FULLY_CONNECTED rows %d depth %d out %d block %d in_off %d out_off %d act [%d,%d] scales style %d bias %s",
             rows, depth, out_c, block, p[EV_FC_INPUT_OFFSET], p[EV_FC_OUTPUT_OFFSET], p[EV_FC_ACT_MIN],
             p[EV_FC_ACT_MAX], style, c->t[2].n ? "yes" : "no");
}

static void finish_op(test_op *c) {
    c->op.kind = c->kind;
    c->op.params = c->params;
    c->op.n_tensors = 4;
    for (int i = 0; i < 4; i++) {
        c->op.tensors[i] = c->t[i].p;
        c->op.sizes[i] = c->t[i].n;
    }
    fill_random((int8_t *)c->t[0].p, c->t[0].n, one_in(4));
    fill_random((int8_t *)c->t[1].p, c->t[1].n, 0);
    if (one_in(3)) /* -128 weights: the int16 pairing of products must not be used */
        for (size_t i = 0; i < c->t[1].n; i++)
            if (one_in(7)) ((int8_t *)c->t[1].p)[i] = -128;
}

/* ---- running ---- */
#define THREADS 4

typedef struct {
    ev_op_impl impl;
    const char *kind_name;
    long cases, runs;
} slot;

static int run_split(const ev_op_impl *impl, ev_op *op, int mode) {
    const int items = op->items;
    if (mode == 0) {
        impl->run(op, 0, items, 0);
    } else if (mode == 1) {
        for (int i = 0; i < items; i++) impl->run(op, i, i + 1, i % THREADS);
    } else {
        int b = 0, t = rnd_int(0, THREADS - 1);
        while (b < items) {
            const int e = b + rnd_int(1, items - b);
            impl->run(op, b, e, t);
            t = (t + 1) % THREADS;
            b = e;
        }
    }
    return 0;
}

static int test_one(slot *s, test_op *c, int verbose) {
    char err[300];
    ev_check_fn check = c->kind == EV_OP_CONV_2D             ? ev_check_conv_2d
                        : c->kind == EV_OP_DEPTHWISE_CONV_2D ? ev_check_depthwise_conv_2d
                                                             : ev_check_fully_connected;
    ev_op_fn ref = c->kind == EV_OP_CONV_2D             ? ev_conv_2d_ref
                   : c->kind == EV_OP_DEPTHWISE_CONV_2D ? ev_depthwise_conv_2d_ref
                                                        : ev_fully_connected_ref;
    if (check(&c->op, err, sizeof err) != 0) {
        printf("FAIL: the generated op does not pass its check (%s): %s\n", err, c->desc);
        return 1;
    }
    if (verbose) printf("  %s\n", c->desc);
    ev_op op = c->op;
    op.scratch = NULL;
    op.scratch_size = 0;
    op.packed = NULL;
    guarded packed = {0}, scratch = {0};
    if (s->impl.sizes) {
        size_t pb = 0, sb = 0;
        s->impl.sizes(&op, &pb, &sb);
        sb = (sb + 63) / 64 * 64;
        op.scratch_size = sb;
        if (pb) {
            packed = guarded_alloc((pb + 63) / 64 * 64); /* 64-byte aligned, as the engine's allocation */
            memset(packed.p, 0, packed.n);
            op.packed = packed.p;
            if (s->impl.pack) s->impl.pack(&op, op.packed);
        }
    }
    if (op.scratch_size) {
        scratch = guarded_alloc(op.scratch_size * THREADS);
        memset(scratch.p, 0x5a, scratch.n);
        op.scratch = scratch.p;
    }
    const size_t n = c->t[3].n;
    int8_t *want = malloc(n ? n : 1);
    memset(c->t[3].p, 0, n);
    ref(&op, 0, op.items, 0);
    memcpy(want, c->t[3].p, n);
    int bad = 0;
    for (int mode = 0; mode < 3 && !bad; mode++) {
        for (size_t i = 0; i < n; i++) c->t[3].p[i] = (uint8_t)(rnd() >> 56);
        run_split(&s->impl, &op, mode);
        s->runs++;
        for (size_t i = 0; i < n; i++)
            if ((int8_t)c->t[3].p[i] != want[i]) {
                printf("FAIL %s: %s\n  split %d: byte %zu of %zu: got %d, want %d\n", s->impl.name, c->desc, mode, i, n,
                       (int8_t)c->t[3].p[i], want[i]);
                bad = 1;
                break;
            }
    }
    free(want);
    if (packed.map) guarded_free(&packed);
    if (scratch.map) guarded_free(&scratch);
    s->cases++;
    return bad;
}

int main(int argc, char **argv) {
    const char *variant = NULL, *kinds = "conv,dw,fc";
    long cases = 300;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--variant") && i + 1 < argc)
            variant = argv[++i];
        else if (!strcmp(argv[i], "--cases") && i + 1 < argc)
            cases = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            rng_state = strtoull(argv[++i], NULL, 0) * 0x9E3779B97F4A7C15ull + 1;
        else if (!strcmp(argv[i], "--kinds") && i + 1 < argc)
            kinds = argv[++i];
        else if (!strcmp(argv[i], "--verbose"))
            verbose = 1;
        else {
            fprintf(stderr, "usage: %s --variant NAME [--cases N] [--seed S] [--kinds conv,dw,fc] [--verbose]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!variant) {
        fprintf(stderr, "usage: %s --variant NAME [--cases N] [--seed S] [--kinds conv,dw,fc] [--verbose]\n", argv[0]);
        return 2;
    }
    printf("cpu: %s\n", ev_cpu_features());
    const int supported = ev_cpu_supports(variant);
    if (supported != 1) {
        printf("FAIL: variant %s %s\n", variant,
               supported < 0 ? "is not built into this binary" : "cannot run on this CPU (it would fall back)");
        return 1;
    }
    ev_kernels table;
    if (ev_variant_table(variant, &table) != 0) {
        printf("FAIL: no kernel table for variant %s\n", variant);
        return 1;
    }
    slot slots[3] = {{table.ops[EV_OP_CONV_2D], "conv_2d", 0, 0},
                     {table.ops[EV_OP_DEPTHWISE_CONV_2D], "depthwise_conv_2d", 0, 0},
                     {table.ops[EV_OP_FULLY_CONNECTED], "fully_connected", 0, 0}};
    const char *kind_key[3] = {"conv", "dw", "fc"};
    int failed = 0;
    for (int k = 0; k < 3; k++) {
        char want[80];
        snprintf(want, sizeof want, "ev_%s_%s", slots[k].kind_name, variant);
        const int wanted = strstr(kinds, kind_key[k]) != NULL;
        printf("%s slot of variant %s: %s%s\n", slots[k].kind_name, variant, slots[k].impl.name ? slots[k].impl.name : "(empty)",
               wanted ? "" : " (not tested)");
        if (wanted && (!slots[k].impl.run || !slots[k].impl.name || strcmp(slots[k].impl.name, want) != 0)) {
            printf("FAIL: expected %s to run, the table holds %s\n", want, slots[k].impl.name ? slots[k].impl.name : "nothing");
            failed = 1;
        }
    }
    if (failed) return 1;
    long mismatches = 0;
    for (long i = 0; i < cases; i++) {
        for (int k = 0; k < 3; k++) {
            if (!strstr(kinds, kind_key[k])) continue;
            test_op c;
            memset(&c, 0, sizeof c);
            const int big = i % 10 == 9;
            if (k == 0) make_conv(&c, big);
            else if (k == 1) make_dw(&c, big);
            else make_fc(&c, big);
            finish_op(&c);
            if (test_one(&slots[k], &c, verbose)) mismatches++;
            free_op(&c);
            if (mismatches >= 10) break;
        }
        if (mismatches >= 10) break;
    }
    for (int k = 0; k < 3; k++)
        if (strstr(kinds, kind_key[k]))
            printf("%s: %ld ops, %ld split runs\n", slots[k].impl.name, slots[k].cases, slots[k].runs);
    if (mismatches) {
        printf("FAIL: %ld ops differ from the reference\n", mismatches);
        return 1;
    }
    printf("PASS: %s is byte-identical with ref\n", variant);
    return 0;
}
