/* DEPTHWISE_CONV_2D on NEON, NHWC, vectorised over 16 output channels: included by neon/conv_neon.c and
 * dotprod/conv_dotprod.c (see conv_neon.h for the arithmetic identities it uses).
 *
 * Taps in the padding read a buffer of input zero points, so every tap is summed and the input offset is folded
 * into the bias at pack time. For each block of 16 channels, int8 x int8 products of two taps are summed in int16
 * (SMULL + SMLAL, 16 MACs per instruction pair) and widened into four int32x4 accumulators (SADDW); with a -128
 * weight in the filter, pairing could overflow int16 and each tap is widened on its own.
 *
 * aarch64, 3x3 and 5x5 (depth multiplier 1): the input rows an output row needs are copied once per call into a
 * small cache of rows padded with zero points (ev_dw_padded_rows; not needed when no window leaves the image), so
 * every pixel is an interior pixel, and the pixel loop is assembly (ev_dw_run_asm): 71 instructions per 16
 * outputs for 3x3. Elsewhere (ARMv7, other filters), per output row: the pixels whose windows lie inside the
 * row run a fixed-size loop (ev_dw_run16) and the others one pixel at a time through a table of tap pointers
 * (ev_dw_pixel). Channels past the last full block are read and written with partial loads and stores (never
 * outside the tensors).
 *
 * A depth multiplier m > 1 (output channel oc reads input channel oc / m) runs the per-pixel code on input rows
 * expanded into scratch, each input channel repeated m times.
 *
 * Packed data: an ev_dw_pack header (EV_PACK_HEADER bytes), then per block of 16 channels: the five
 * requantisation arrays (ev_pack_rq, 16 lanes each) and the weights as [tap][16 channels] int8. */
#ifndef EV_DW_NEON_H
#define EV_DW_NEON_H

#include "conv_neon.h"

typedef struct {
    int32_t mode;      /* EV_RQ_* */
    int32_t m128;      /* some weight is -128 */
    int32_t taps;      /* filter_h * filter_w */
    int32_t nblocks;   /* ceil(out_c / 16) */
    int32_t zp_bytes;  /* scratch: zero-point buffer, ((filter_w - 1) * dilation_w + 1) * out_c */
    int32_t exp_bytes; /* scratch: expanded input rows when depth_multiplier > 1, else 0 */
    int32_t pad_[2];
    int64_t block_bytes;
    /* used by the dot-product variant only (dotprod/conv_dotprod.c): its own weight layout after the blocks */
    int32_t dot_ok, dot_groups, dot_cols, pad2_;
    int64_t dot_offset, dot_block_bytes;
    /* scratch layout: zero points | expanded rows | tap and row pointers | row cache tags | row cache (filter_h
     * padded input rows of ncols columns, aarch64 only) */
    int32_t ncols, need_pad;      /* columns an output row's windows span; do they reach outside the input? */
    int64_t ptr_offset, tag_offset, cache_offset, cache_row_bytes, scratch_bytes;
} ev_dw_pack;

static inline EV_UNUSED void ev_dw_plan(const ev_op *op, ev_dw_pack *h) {
    const int32_t *p = op->params;
    const int out_c = p[EV_DW_OUT_C], fh = p[EV_DW_FILTER_H], fw = p[EV_DW_FILTER_W];
    memset(h, 0, sizeof *h);
    h->mode = ev_rq_mode(op, EV_DW_NPARAMS, out_c, EV_DW_ACT_MIN);
    h->m128 = ev_has_m128(op->tensors[1], op->sizes[1]);
    h->taps = fh * fw;
    h->nblocks = (out_c + 15) / 16;
    h->zp_bytes = (int32_t)ev_round_up((size_t)((fw - 1) * p[EV_DW_DILATION_W] + 1) * out_c, 64);
    h->exp_bytes = p[EV_DW_DEPTH_MULTIPLIER] > 1
                       ? (int32_t)ev_round_up((size_t)fh * p[EV_DW_IN_W] * out_c, 64)
                       : 0;
    h->block_bytes = (int64_t)ev_round_up(sizeof(int32_t) * EV_RQ_ARRAYS * 16 + (size_t)h->taps * 16, 64);
    h->ncols = (p[EV_DW_OUT_W] - 1) * p[EV_DW_STRIDE_W] + (fw - 1) * p[EV_DW_DILATION_W] + 1;
    h->need_pad = p[EV_DW_PAD_LEFT] > 0 || h->ncols - p[EV_DW_PAD_LEFT] > p[EV_DW_IN_W];
    h->ptr_offset = (int64_t)h->zp_bytes + h->exp_bytes;
    h->tag_offset = h->ptr_offset + (int64_t)ev_round_up(sizeof(void *) * ((size_t)h->taps + (size_t)fh), 64);
    h->cache_offset = h->tag_offset + (int64_t)ev_round_up(sizeof(int) * (size_t)fh, 64);
    h->cache_row_bytes = (int64_t)ev_round_up((size_t)h->ncols * out_c, 64);
    h->scratch_bytes = h->cache_offset;
#if defined(__aarch64__)
    if (h->need_pad) h->scratch_bytes += h->cache_row_bytes * fh;
#endif
}

static inline EV_UNUSED void ev_dw_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    ev_dw_pack h;
    ev_dw_plan(op, &h);
    *packed_bytes = EV_PACK_HEADER + (size_t)h.nblocks * (size_t)h.block_bytes;
    *scratch_bytes = (size_t)h.scratch_bytes;
}

static inline EV_UNUSED void ev_dw_pack_op(const ev_op *op, void *packed) {
    const int32_t *p = op->params;
    const int out_c = p[EV_DW_OUT_C];
    const int8_t *filter = op->tensors[1];
    ev_dw_pack *h = packed;
    ev_dw_plan(op, h);
    for (int blk = 0; blk < h->nblocks; blk++) {
        uint8_t *base = (uint8_t *)packed + EV_PACK_HEADER + (size_t)blk * (size_t)h->block_bytes;
        int8_t *w = (int8_t *)(base + sizeof(int32_t) * EV_RQ_ARRAYS * 16);
        const int oc0 = blk * 16, n = out_c - oc0 < 16 ? out_c - oc0 : 16;
        uint32_t wsum[16] = {0};
        memset(w, 0, (size_t)h->taps * 16);
        for (int t = 0; t < h->taps; t++)
            for (int i = 0; i < n; i++) {
                const int8_t v = filter[(size_t)t * out_c + oc0 + i];
                w[t * 16 + i] = v;
                wsum[i] += (uint32_t)(int32_t)v;
            }
        ev_pack_rq((int32_t *)base, 16, op, EV_DW_NPARAMS, out_c, oc0, n, wsum, p[EV_DW_INPUT_OFFSET]);
    }
}

/* Accumulates tap products into a0..a3 (16 channels, int32): x[t] and w[t] for t in [0, T), in pairs when
 * `pair` (SMULL + SMLAL in int16, then SADDW), else one tap at a time. */
EV_INLINE void ev_dw_mac16(int T, const int8x16_t *x, const int8x16_t *w, int pair, int32x4_t *a0, int32x4_t *a1,
                           int32x4_t *a2, int32x4_t *a3) {
    int t = 0;
    if (pair) {
        EV_UNROLL for (; t + 2 <= T; t += 2) {
            int16x8_t lo = vmull_s8(vget_low_s8(x[t]), vget_low_s8(w[t]));
            int16x8_t hi = ev_mull_hi_s8(x[t], w[t]);
            lo = vmlal_s8(lo, vget_low_s8(x[t + 1]), vget_low_s8(w[t + 1]));
            hi = ev_mlal_hi_s8(hi, x[t + 1], w[t + 1]);
            *a0 = vaddw_s16(*a0, vget_low_s16(lo));
            *a1 = ev_addw_hi_s16(*a1, lo);
            *a2 = vaddw_s16(*a2, vget_low_s16(hi));
            *a3 = ev_addw_hi_s16(*a3, hi);
        }
    }
    EV_UNROLL for (; t < T; t++) {
        const int16x8_t lo = vmull_s8(vget_low_s8(x[t]), vget_low_s8(w[t]));
        const int16x8_t hi = ev_mull_hi_s8(x[t], w[t]);
        *a0 = vaddw_s16(*a0, vget_low_s16(lo));
        *a1 = ev_addw_hi_s16(*a1, lo);
        *a2 = vaddw_s16(*a2, vget_low_s16(hi));
        *a3 = ev_addw_hi_s16(*a3, hi);
    }
}

/* One output pixel, channels [c_begin, C): taps from tp[0..T) (input pixel or zero-point buffer), T runtime.
 * Used for pixels whose window crosses the left or right edge, and for filters without a fixed-size path. */
static inline EV_UNUSED void ev_dw_pixel(const ev_dw_pack *h, const int8_t *const *tp, int C, int c_begin,
                                         int8_t *out, int mode, int pair, ev_outq o) {
    const int T = h->taps;
    const size_t block_bytes = (size_t)h->block_bytes;
    const uint8_t *blk = (const uint8_t *)h + EV_PACK_HEADER + (size_t)(c_begin / 16) * block_bytes;
    for (int c = c_begin; c < C; c += 16, blk += block_bytes) {
        const int32_t *rq = (const int32_t *)blk;
        const int8_t *w = (const int8_t *)(blk + sizeof(int32_t) * EV_RQ_ARRAYS * 16);
        const int n = C - c < 16 ? C - c : 16;
        ev_rq4 q[4];
        EV_UNROLL for (int j = 0; j < 4; j++) q[j] = ev_rq4_load(rq, 16, 4 * j);
        int32x4_t a0 = q[0].bias, a1 = q[1].bias, a2 = q[2].bias, a3 = q[3].bias;
        int t = 0;
        for (; t + 2 <= T; t += 2) {
            int8x16_t x[2], wv[2];
            x[0] = n == 16 ? vld1q_s8(tp[t] + c) : ev_load_partial(tp[t] + c, n);
            x[1] = n == 16 ? vld1q_s8(tp[t + 1] + c) : ev_load_partial(tp[t + 1] + c, n);
            wv[0] = vld1q_s8(w + 16 * t);
            wv[1] = vld1q_s8(w + 16 * t + 16);
            ev_dw_mac16(2, x, wv, pair, &a0, &a1, &a2, &a3);
        }
        if (t < T) {
            int8x16_t x[1], wv[1];
            x[0] = n == 16 ? vld1q_s8(tp[t] + c) : ev_load_partial(tp[t] + c, n);
            wv[0] = vld1q_s8(w + 16 * t);
            ev_dw_mac16(1, x, wv, pair, &a0, &a1, &a2, &a3);
        }
        ev_store_partial(out + c, ev_rq16(a0, a1, a2, a3, q, mode, o), n);
    }
}

/* A run of npx output pixels whose windows lie inside the row (horizontally), one block of 16 channels, filter
 * FH x FW fixed: rp[fy] = input row fy at the first pixel's window origin + c (or the zero-point buffer + c, with
 * inc[fy] = 0), coff[fx] = fx * dilation_w * C, inc[fy] = stride_w * C. */
EV_INLINE void ev_dw_run16(int FH, int FW, const int8_t *const *rp, const size_t *inc, const size_t *coff,
                           const int8_t *w, const int32_t *rq, int8_t *out, size_t C, int npx, int mode, int pair,
                           ev_outq o) {
    const int8_t *p[5];
    size_t step[5], co[5];
    EV_UNROLL for (int fy = 0; fy < FH; fy++) p[fy] = rp[fy], step[fy] = inc[fy];
    EV_UNROLL for (int fx = 0; fx < FW; fx++) co[fx] = coff[fx];
    for (int i = 0; i < npx; i++) {
        ev_rq4 q[4];
        EV_UNROLL for (int j = 0; j < 4; j++) q[j] = ev_rq4_load(rq, 16, 4 * j);
        int32x4_t a0 = q[0].bias, a1 = q[1].bias, a2 = q[2].bias, a3 = q[3].bias;
        int8x16_t x[25], wv[25];
        EV_UNROLL for (int fy = 0; fy < FH; fy++) {
            EV_UNROLL for (int fx = 0; fx < FW; fx++) {
                x[fy * FW + fx] = vld1q_s8(p[fy] + co[fx]);
                wv[fy * FW + fx] = vld1q_s8(w + 16 * (fy * FW + fx));
            }
        }
        ev_dw_mac16(FH * FW, x, wv, pair, &a0, &a1, &a2, &a3);
        vst1q_s8(out, ev_rq16(a0, a1, a2, a3, q, mode, o));
        out += C;
        EV_UNROLL for (int fy = 0; fy < FH; fy++) p[fy] += step[fy];
    }
}

#if defined(__aarch64__)
/* ---- aarch64: the pixel loop in assembly, over padded input rows ----------------------------------------------------
 * Every output pixel of a row, one block of 16 channels: per tap one 16-byte load (the last of a filter row
 * post-increments the row pointer to the next pixel's window; rows of zero points have increment 0), products of
 * two taps summed in int16 (SMULL/SMULL2 + SMLAL/SMLAL2) and widened into the four accumulators (SADDW/SADDW2),
 * which start at the bias (one 4-register load). 3x3 with EV_RQ_FAST keeps the 9 weight vectors in registers:
 * 71 instructions per 16 outputs (69 without clamp); otherwise weights stream from L1, a pair per load.
 * Registers: v0-v3 accumulators, v4-v7 and v12-v15 taps, v8-v9 int16 products, weights v10-v18 (resident) or
 * v10-v11 (streamed), then multipliers, right shifts and masks (see the macros). */
#define EV_W_PAIR(XA, XB, WA, WB)                                                                                    \
    "smull v8.8h, " XA ".8b, " WA ".8b\n\t"                                                                          \
    "smull2 v9.8h, " XA ".16b, " WA ".16b\n\t"                                                                       \
    "smlal v8.8h, " XB ".8b, " WB ".8b\n\t"                                                                          \
    "smlal2 v9.8h, " XB ".16b, " WB ".16b\n\t"                                                                       \
    "saddw v0.4s, v0.4s, v8.4h\n\t"                                                                                  \
    "saddw2 v1.4s, v1.4s, v8.8h\n\t"                                                                                 \
    "saddw v2.4s, v2.4s, v9.4h\n\t"                                                                                  \
    "saddw2 v3.4s, v3.4s, v9.8h\n\t"
#define EV_W_ONE(X, W)                                                                                               \
    "smull v8.8h, " X ".8b, " W ".8b\n\t"                                                                            \
    "smull2 v9.8h, " X ".16b, " W ".16b\n\t"                                                                         \
    "saddw v0.4s, v0.4s, v8.4h\n\t"                                                                                  \
    "saddw2 v1.4s, v1.4s, v8.8h\n\t"                                                                                 \
    "saddw v2.4s, v2.4s, v9.4h\n\t"                                                                                  \
    "saddw2 v3.4s, v3.4s, v9.8h\n\t"
/* a filter row of 3 or 5 taps into registers Q0..Q4 (q names) / V0 (v name of Q0): row pointer R, increment S */
#define EV_W_ROW3(R, S, V0, Q1, Q2)                                                                                  \
    "ldr " Q1 ", [" R ", %[d1]]\n\tldr " Q2 ", [" R ", %[d2]]\n\tld1 {" V0 ".16b}, [" R "], " S "\n\t"
#define EV_W_ROW5(R, S, V0, Q1, Q2, Q3, Q4)                                                                          \
    "ldr " Q1 ", [" R ", %[d1]]\n\tldr " Q2 ", [" R ", %[d2]]\n\tldr " Q3 ", [" R ", %[d3]]\n\tldr " Q4 ", [" R      \
    ", %[d4]]\n\tld1 {" V0 ".16b}, [" R "], " S "\n\t"
#define EV_W_WP "ld1 {v10.16b, v11.16b}, [x16], #32\n\t"
#define EV_W_W1 "ld1 {v10.16b}, [x16]\n\t"

/* requantisation of v0-v3 into v0.16b; multipliers M0.., shifts R0.., masks E0.. */
#define EV_W_FAST_LANE(X, M, R)                                                                                      \
    "sqrdmulh " X ".4s, " X ".4s, " M ".4s\n\tssra " X ".4s, " X ".4s, #31\n\tsrshl " X ".4s, " X ".4s, " R ".4s\n\t"
#define EV_W_E0_LANE(X, M, R, E)                                                                                     \
    "sqrdmulh " X ".4s, " X ".4s, " M ".4s\n\tand v31.16b, " X ".16b, " E ".16b\n\tssra " X ".4s, v31.4s, #31\n\t"   \
    "srshl " X ".4s, " X ".4s, " R ".4s\n\tadd " X ".4s, " X ".4s, %[off].4s\n\t"
#define EV_W_NARROW "sqxtn v0.4h, v0.4s\n\tsqxtn2 v0.8h, v1.4s\n\tsqxtn v2.4h, v2.4s\n\tsqxtn2 v2.8h, v3.4s\n\t"
#define EV_W_TO8 "sqxtn v0.8b, v0.8h\n\tsqxtn2 v0.16b, v2.8h\n\t"
#define EV_W_RQ_FAST(M0, M1, M2, M3, R0, R1, R2, R3)                                                                 \
    EV_W_FAST_LANE("v0", M0, R0) EV_W_FAST_LANE("v1", M1, R1) EV_W_FAST_LANE("v2", M2, R2)                          \
    EV_W_FAST_LANE("v3", M3, R3) EV_W_NARROW "sqadd v0.8h, v0.8h, %[off].8h\n\tsqadd v2.8h, v2.8h, %[off].8h\n\t"    \
    EV_W_TO8
#define EV_W_RQ_E0                                                                                                   \
    EV_W_E0_LANE("v0", "v16", "v20", "v24") EV_W_E0_LANE("v1", "v17", "v21", "v25")                                  \
    EV_W_E0_LANE("v2", "v18", "v22", "v26") EV_W_E0_LANE("v3", "v19", "v23", "v27") EV_W_NARROW EV_W_TO8
#define EV_W_CLAMP "smax v0.16b, v0.16b, %[lo].16b\n\tsmin v0.16b, v0.16b, %[hi].16b\n\t"
#define EV_W_NOCLAMP ""
#define EV_W_LOOP_END(FIN) FIN "st1 {v0.16b}, [%[out]], %[cs]\n\tsubs %w[n], %w[n], #1\n\tb.ne 1b\n\t"

/* 3x3, EV_RQ_FAST, weights resident (v10-v18), multipliers v19-v22, shifts v23-v26 */
#define EV_W_3x3_RESIDENT(FIN)                                                                                       \
    "mov x16, %[w]\n\t"                                                                                              \
    "ld1 {v10.16b-v13.16b}, [x16], #64\n\t"                                                                          \
    "ld1 {v14.16b-v17.16b}, [x16], #64\n\t"                                                                          \
    "ld1 {v18.16b}, [x16]\n\t"                                                                                       \
    "ldp q19, q20, [%[rq], #64]\n\tldp q21, q22, [%[rq], #96]\n\t"                                                   \
    "ldp q23, q24, [%[rq], #128]\n\tldp q25, q26, [%[rq], #160]\n"                                                   \
    "1:\n\t"                                                                                                         \
    "ld1 {v0.4s-v3.4s}, [%[rq]]\n\t" EV_W_ROW3("%[r0]", "%[s0]", "v4", "q5", "q6") EV_W_PAIR("v4", "v5", "v10", "v11") \
    EV_W_ROW3("%[r1]", "%[s1]", "v7", "q4", "q5") EV_W_PAIR("v6", "v7", "v12", "v13")                                \
    EV_W_PAIR("v4", "v5", "v14", "v15") EV_W_ROW3("%[r2]", "%[s2]", "v4", "q5", "q6")                               \
    EV_W_PAIR("v4", "v5", "v16", "v17") EV_W_ONE("v6", "v18")                                                         \
    EV_W_RQ_FAST("v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26") EV_W_LOOP_END(FIN)

/* streamed weights (x16), multipliers v16-v19, shifts v20-v23, masks v24-v27 */
#define EV_W_PRO_STREAM                                                                                              \
    "ldp q16, q17, [%[rq], #64]\n\tldp q18, q19, [%[rq], #96]\n\t"                                                   \
    "ldp q20, q21, [%[rq], #128]\n\tldp q22, q23, [%[rq], #160]\n\t"
#define EV_W_PRO_MASKS "ldp q24, q25, [%[rq], #256]\n\tldp q26, q27, [%[rq], #288]\n"
#define EV_W_HEAD "1:\n\tld1 {v0.4s-v3.4s}, [%[rq]]\n\tmov x16, %[w]\n\t"
#define EV_W_3x3_STREAM                                                                                              \
    EV_W_ROW3("%[r0]", "%[s0]", "v4", "q5", "q6") EV_W_WP EV_W_PAIR("v4", "v5", "v10", "v11")                         \
    EV_W_ROW3("%[r1]", "%[s1]", "v7", "q4", "q5") EV_W_WP EV_W_PAIR("v6", "v7", "v10", "v11")                         \
    EV_W_WP EV_W_PAIR("v4", "v5", "v10", "v11") EV_W_ROW3("%[r2]", "%[s2]", "v4", "q5", "q6")                        \
    EV_W_WP EV_W_PAIR("v4", "v5", "v10", "v11") EV_W_W1 EV_W_ONE("v6", "v10")
#define EV_W_5x5_STREAM                                                                                              \
    EV_W_ROW5("%[r0]", "%[s0]", "v4", "q5", "q6", "q7", "q12")                                                       \
    EV_W_WP EV_W_PAIR("v4", "v5", "v10", "v11") EV_W_WP EV_W_PAIR("v6", "v7", "v10", "v11")                          \
    EV_W_ROW5("%[r1]", "%[s1]", "v13", "q14", "q15", "q4", "q5")                                                     \
    EV_W_WP EV_W_PAIR("v12", "v13", "v10", "v11") EV_W_WP EV_W_PAIR("v14", "v15", "v10", "v11")                      \
    EV_W_WP EV_W_PAIR("v4", "v5", "v10", "v11")                                                                       \
    EV_W_ROW5("%[r2]", "%[s2]", "v6", "q7", "q12", "q13", "q14")                                                     \
    EV_W_WP EV_W_PAIR("v6", "v7", "v10", "v11") EV_W_WP EV_W_PAIR("v12", "v13", "v10", "v11")                        \
    EV_W_ROW5("%[r3]", "%[s3]", "v15", "q4", "q5", "q6", "q7")                                                       \
    EV_W_WP EV_W_PAIR("v14", "v15", "v10", "v11") EV_W_WP EV_W_PAIR("v4", "v5", "v10", "v11")                        \
    EV_W_WP EV_W_PAIR("v6", "v7", "v10", "v11")                                                                       \
    EV_W_ROW5("%[r4]", "%[s4]", "v12", "q13", "q14", "q15", "q4")                                                    \
    EV_W_WP EV_W_PAIR("v12", "v13", "v10", "v11") EV_W_WP EV_W_PAIR("v14", "v15", "v10", "v11")                      \
    EV_W_W1 EV_W_ONE("v4", "v10")

#define EV_W_OPERANDS                                                                                                \
    : [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [r3] "+r"(r3), [r4] "+r"(r4), [out] "+r"(out), [n] "+r"(npx)      \
    : [s0] "r"(rs[0]), [s1] "r"(rs[1]), [s2] "r"(rs[2]), [s3] "r"(rs[3]), [s4] "r"(rs[4]), [d1] "r"(d[1]),          \
      [d2] "r"(d[2]), [d3] "r"(d[3]), [d4] "r"(d[4]), [w] "r"(w), [rq] "r"(rq), [cs] "r"(cstride), [off] "w"(off),  \
      [lo] "w"(o.lo), [hi] "w"(o.hi)                                                                                  \
    : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",  \
      "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v31", "x16", "cc", "memory"

/* npx (>= 1) pixels of one full block: rp[fy] = row fy at the first window's origin + the block's channel,
 * rs[fy] its increment per pixel, d[fx] = fx * dilation_w * C. Returns 0 for modes without assembly. */
EV_INLINE int ev_dw_run_asm(int FH, int mode, const int8_t *const *rp, const size_t *rs, const size_t *d,
                            const int8_t *w, const int32_t *rq, int8_t *out, size_t cstride, int npx, ev_outq o) {
    const int8_t *r0 = rp[0], *r1 = rp[1], *r2 = rp[2], *r3 = FH > 3 ? rp[3] : rp[0], *r4 = FH > 4 ? rp[4] : rp[0];
    const int scaling = mode & EV_RQ_SCALING, nc = (mode & EV_RQ_NOCLAMP) != 0;
    if (scaling == EV_RQ_FAST) {
        const int16x8_t off = o.off16;
        if (FH == 3) {
            if (nc)
                __asm__ volatile(EV_W_3x3_RESIDENT(EV_W_NOCLAMP) EV_W_OPERANDS);
            else
                __asm__ volatile(EV_W_3x3_RESIDENT(EV_W_CLAMP) EV_W_OPERANDS);
        } else {
            if (nc)
                __asm__ volatile(EV_W_PRO_STREAM EV_W_HEAD EV_W_5x5_STREAM EV_W_RQ_FAST("v16", "v17", "v18", "v19",
                                 "v20", "v21", "v22", "v23") EV_W_LOOP_END(EV_W_NOCLAMP) EV_W_OPERANDS);
            else
                __asm__ volatile(EV_W_PRO_STREAM EV_W_HEAD EV_W_5x5_STREAM EV_W_RQ_FAST("v16", "v17", "v18", "v19",
                                 "v20", "v21", "v22", "v23") EV_W_LOOP_END(EV_W_CLAMP) EV_W_OPERANDS);
        }
        return 1;
    }
    if (scaling == EV_RQ_E0) {
        const int32x4_t off = o.off32;
        if (FH == 3) {
            if (nc)
                __asm__ volatile(EV_W_PRO_STREAM EV_W_PRO_MASKS EV_W_HEAD EV_W_3x3_STREAM EV_W_RQ_E0
                                     EV_W_LOOP_END(EV_W_NOCLAMP) EV_W_OPERANDS);
            else
                __asm__ volatile(EV_W_PRO_STREAM EV_W_PRO_MASKS EV_W_HEAD EV_W_3x3_STREAM EV_W_RQ_E0
                                     EV_W_LOOP_END(EV_W_CLAMP) EV_W_OPERANDS);
        } else {
            if (nc)
                __asm__ volatile(EV_W_PRO_STREAM EV_W_PRO_MASKS EV_W_HEAD EV_W_5x5_STREAM EV_W_RQ_E0
                                     EV_W_LOOP_END(EV_W_NOCLAMP) EV_W_OPERANDS);
            else
                __asm__ volatile(EV_W_PRO_STREAM EV_W_PRO_MASKS EV_W_HEAD EV_W_5x5_STREAM EV_W_RQ_E0
                                     EV_W_LOOP_END(EV_W_CLAMP) EV_W_OPERANDS);
        }
        return 1;
    }
    return 0;
}

/* n bytes from s to d with 16-byte vectors (n >= 16), no library call */
static inline EV_UNUSED void ev_copy_bytes(int8_t *d, const int8_t *s, size_t n) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) vst1q_s8_x4(d + i, vld1q_s8_x4(s + i));
    for (; i + 16 <= n; i += 16) vst1q_s8(d + i, vld1q_s8(s + i));
    if (i < n) vst1q_s8(d + n - 16, vld1q_s8(s + n - 16));
}

static inline EV_UNUSED void ev_fill_bytes(int8_t *d, int8_t v, size_t n) {
    const int8x16_t vv = vdupq_n_s8(v);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) vst1q_s8(d + i, vv);
    if (i < n) {
        if (n >= 16)
            vst1q_s8(d + n - 16, vv);
        else
            for (; i < n; i++) d[i] = v;
    }
}

/* The rows of output row (b, out_y)'s windows as padded rows of ncols columns (input columns
 * [-pad_left, ncols - pad_left), zero points outside the image), from a cache of filter_h rows kept across the
 * output rows of one call: rp[fy] = the padded row, or NULL for a row outside the image. */
static inline EV_UNUSED void ev_dw_padded_rows(const ev_op *op, const ev_dw_pack *h, uint8_t *scratch, int b,
                                               int in_y0, const int8_t **rp) {
    const int32_t *p = op->params;
    const int in_h = p[EV_DW_IN_H], in_w = p[EV_DW_IN_W], C = p[EV_DW_OUT_C], fh = p[EV_DW_FILTER_H];
    const int dh = p[EV_DW_DILATION_H], pad_left = p[EV_DW_PAD_LEFT], ncols = h->ncols;
    const int8_t zp = (int8_t)(-p[EV_DW_INPUT_OFFSET]);
    int *tags = (int *)(scratch + h->tag_offset);
    int8_t *cache = (int8_t *)(scratch + h->cache_offset);
    int used[8] = {0};
    int want[8];
    for (int fy = 0; fy < fh; fy++) {
        const int in_y = in_y0 + fy * dh;
        want[fy] = (in_y >= 0 && in_y < in_h) ? b * in_h + in_y : -1;
        rp[fy] = NULL;
        for (int s = 0; s < fh && want[fy] >= 0; s++)
            if (tags[s] == want[fy]) {
                used[s] = 1;
                rp[fy] = cache + (size_t)s * h->cache_row_bytes;
            }
    }
    for (int fy = 0; fy < fh; fy++) {
        if (want[fy] < 0 || rp[fy]) continue;
        int s = 0;
        while (used[s]) s++;
        used[s] = 1;
        tags[s] = want[fy];
        int8_t *dst = cache + (size_t)s * h->cache_row_bytes;
        const int8_t *src = (const int8_t *)op->tensors[0] + (size_t)want[fy] * in_w * C;
        const int lo = pad_left < ncols ? pad_left : ncols; /* columns before the image */
        const int hi = in_w + pad_left < ncols ? in_w + pad_left : ncols;
        if (lo > 0) ev_fill_bytes(dst, zp, (size_t)lo * C);
        if (hi > lo) ev_copy_bytes(dst + (size_t)lo * C, src + (size_t)(lo - pad_left) * C, (size_t)(hi - lo) * C);
        if (ncols > hi) ev_fill_bytes(dst + (size_t)hi * C, zp, (size_t)(ncols - hi) * C);
        rp[fy] = dst;
    }
}
#endif

/* Output rows [begin, end). FH, FW > 0: the filter size has a fixed-size interior path. */
EV_INLINE void ev_dw_rows(const ev_op *op, int begin, int end, int thread, int FH, int FW, int mode, int pair) {
    const ev_dw_pack *h = op->packed;
    const int32_t *p = op->params;
    const int in_h = p[EV_DW_IN_H], in_w = p[EV_DW_IN_W], in_c = p[EV_DW_IN_C];
    const int out_h = p[EV_DW_OUT_H], out_w = p[EV_DW_OUT_W], C = p[EV_DW_OUT_C];
    const int fh = p[EV_DW_FILTER_H], fw = p[EV_DW_FILTER_W], dm = p[EV_DW_DEPTH_MULTIPLIER];
    const int sh = p[EV_DW_STRIDE_H], sw = p[EV_DW_STRIDE_W], dh = p[EV_DW_DILATION_H], dw = p[EV_DW_DILATION_W];
    const int pad_top = p[EV_DW_PAD_TOP], pad_left = p[EV_DW_PAD_LEFT];
    const int T = h->taps;
    const ev_outq o = ev_outq_make(p[EV_DW_OUTPUT_OFFSET], p[EV_DW_ACT_MIN], p[EV_DW_ACT_MAX]);
    const int8_t *input = op->tensors[0];
    int8_t *output = op->tensors[3];

    uint8_t *scratch = (uint8_t *)op->scratch + (size_t)thread * op->scratch_size;
    int8_t *zp_buf = (int8_t *)scratch;
    int8_t *exp_rows = (int8_t *)(scratch + h->zp_bytes);
    const int8_t **tp = (const int8_t **)(scratch + h->ptr_offset);
    const int8_t **rows = tp + T;
    memset(zp_buf, (int8_t)(-p[EV_DW_INPUT_OFFSET]), (size_t)h->zp_bytes);

    /* output columns whose whole window is inside the input row: [x_lo, x_hi) */
    int x_lo = (pad_left + sw - 1) / sw, x_hi = 0;
    {
        const int last = in_w - 1 - (fw - 1) * dw + pad_left; /* ox * sw <= last */
        x_hi = last < 0 ? 0 : last / sw + 1;
        if (x_hi > out_w) x_hi = out_w;
        if (x_lo > x_hi) x_lo = x_hi;
    }
    const int full_blocks = FH > 0 ? C / 16 : 0;
    size_t coff[5];
    for (int fx = 0; fx < FW; fx++) coff[fx] = (size_t)fx * dw * C;

#if defined(__aarch64__)
    /* padded rows and the assembly pixel loop: 3x3 and 5x5, depth multiplier 1, pairs, full blocks */
    if ((FH == 3 || FH == 5) && FH == FW && dm == 1 && pair && C >= 16 && (mode & EV_RQ_SCALING) != EV_RQ_LEFT) {
        int *tags = (int *)(scratch + h->tag_offset);
        for (int s = 0; s < fh; s++) tags[s] = -1;
        const int full = C / 16;
        size_t d[5];
        for (int fx = 0; fx < 5; fx++) d[fx] = (size_t)fx * dw * C;
        for (int item = begin; item < end; item++) {
            const int b = item / out_h, out_y = item % out_h;
            const int in_y0 = out_y * sh - pad_top;
            const int8_t *prow[5];
            if (h->need_pad) {
                ev_dw_padded_rows(op, h, scratch, b, in_y0, prow);
            } else {
                for (int fy = 0; fy < FH; fy++) {
                    const int in_y = in_y0 + fy * dh;
                    prow[fy] = (in_y >= 0 && in_y < in_h) ? input + ((size_t)b * in_h + in_y) * in_w * C : NULL;
                }
            }
            int8_t *out_row = output + ((size_t)b * out_h + out_y) * out_w * C;
            const uint8_t *blk = (const uint8_t *)h + EV_PACK_HEADER;
            for (int cb = 0; cb < full; cb++, blk += h->block_bytes) {
                const int8_t *rp[5];
                size_t rs[5];
                for (int fy = 0; fy < 5; fy++) {
                    const int f = fy < FH ? fy : 0;
                    rp[fy] = prow[f] ? prow[f] + cb * 16 : zp_buf;
                    rs[fy] = prow[f] ? (size_t)sw * C : 0;
                }
                ev_dw_run_asm(FH, mode, rp, rs, d, (const int8_t *)(blk + sizeof(int32_t) * EV_RQ_ARRAYS * 16),
                              (const int32_t *)blk, out_row + cb * 16, (size_t)C, out_w, o);
            }
            if (full * 16 < C) {
                for (int ox = 0; ox < out_w; ox++) {
                    int t = 0;
                    for (int fy = 0; fy < FH; fy++)
                        for (int fx = 0; fx < FW; fx++)
                            tp[t++] = prow[fy] ? prow[fy] + (size_t)(ox * sw + fx * dw) * C : zp_buf;
                    ev_dw_pixel(h, tp, C, full * 16, out_row + (size_t)ox * C, mode, pair, o);
                }
            }
        }
        return;
    }
#endif
    for (int item = begin; item < end; item++) {
        const int b = item / out_h, out_y = item % out_h;
        const int in_y0 = out_y * sh - pad_top;
        for (int fy = 0; fy < fh; fy++) {
            const int in_y = in_y0 + fy * dh;
            const int8_t *r = NULL;
            if (in_y >= 0 && in_y < in_h) {
                r = input + ((size_t)b * in_h + in_y) * in_w * in_c;
                if (dm > 1) {
                    int8_t *e = exp_rows + (size_t)fy * in_w * C;
                    for (int x = 0; x < in_w; x++)
                        for (int ic = 0; ic < in_c; ic++)
                            memset(e + ((size_t)x * in_c + ic) * dm, r[(size_t)x * in_c + ic], (size_t)dm);
                    r = e;
                }
            }
            rows[fy] = r;
        }
        int8_t *out_row = output + ((size_t)b * out_h + out_y) * out_w * C;
        /* the interior, 16 channels at a time */
        if (full_blocks > 0 && x_hi > x_lo) {
            const int8_t *rp[5];
            size_t inc[5];
            const int in_x = x_lo * sw - pad_left;
            const uint8_t *blk = (const uint8_t *)h + EV_PACK_HEADER;
            for (int cb = 0; cb < full_blocks; cb++, blk += h->block_bytes) {
                const int c = cb * 16;
                for (int fy = 0; fy < FH; fy++) {
                    rp[fy] = rows[fy] ? rows[fy] + (size_t)in_x * C + c : zp_buf + c;
                    inc[fy] = rows[fy] ? (size_t)sw * C : 0;
                }
                ev_dw_run16(FH, FW, rp, inc, coff, (const int8_t *)(blk + sizeof(int32_t) * EV_RQ_ARRAYS * 16),
                            (const int32_t *)blk, out_row + (size_t)x_lo * C + c, (size_t)C, x_hi - x_lo, mode, pair,
                            o);
            }
        }
        /* everything else one pixel at a time: the edges, the channels past the last full block */
        for (int ox = 0; ox < out_w; ox++) {
            const int inside = ox >= x_lo && ox < x_hi;
            const int c_begin = inside ? full_blocks * 16 : 0;
            if (c_begin >= C) continue;
            const int in_x0 = ox * sw - pad_left;
            int t = 0;
            for (int fy = 0; fy < fh; fy++) {
                const int8_t *r = rows[fy];
                for (int fx = 0; fx < fw; fx++) {
                    const int in_x = in_x0 + fx * dw;
                    tp[t++] = (r && in_x >= 0 && in_x < in_w) ? r + (size_t)in_x * C : zp_buf;
                }
            }
            ev_dw_pixel(h, tp, C, c_begin, out_row + (size_t)ox * C, mode, pair, o);
        }
    }
}

#define EV_DW_INSTANCE_(NAME, FH, FW, MODE, PAIR)                                                               \
    static void NAME(const ev_op *op, int begin, int end, int thread) {                                        \
        ev_dw_rows(op, begin, end, thread, FH, FW, MODE, PAIR);                                                 \
    }

/* Defines the static kernels and ev_dw_neon_dispatch(op, begin, end, thread), which picks one. */
#define EV_DW_NEON_KERNELS                                                                                     \
    EV_DW_INSTANCE_(dw_any_fast_, 0, 0, EV_RQ_FAST, 1)                                                          \
    EV_DW_INSTANCE_(dw_any_gen_, 0, 0, EV_RQ_LEFT, 1)                                                           \
    EV_DW_INSTANCE_(dw_any_safe_, 0, 0, EV_RQ_LEFT, 0)                                                          \
    EV_DW_INSTANCE_(dw_3x3_fast_, 3, 3, EV_RQ_FAST, 1)                                                          \
    EV_DW_INSTANCE_(dw_3x3_fast_nc_, 3, 3, EV_RQ_FAST | EV_RQ_NOCLAMP, 1)                                       \
    EV_DW_INSTANCE_(dw_3x3_e0_, 3, 3, EV_RQ_E0, 1)                                                              \
    EV_DW_INSTANCE_(dw_3x3_e0_nc_, 3, 3, EV_RQ_E0 | EV_RQ_NOCLAMP, 1)                                           \
    EV_DW_INSTANCE_(dw_5x5_fast_, 5, 5, EV_RQ_FAST, 1)                                                          \
    EV_DW_INSTANCE_(dw_5x5_fast_nc_, 5, 5, EV_RQ_FAST | EV_RQ_NOCLAMP, 1)                                       \
    EV_DW_INSTANCE_(dw_5x5_e0_, 5, 5, EV_RQ_E0, 1)                                                              \
    EV_DW_INSTANCE_(dw_5x5_e0_nc_, 5, 5, EV_RQ_E0 | EV_RQ_NOCLAMP, 1)                                           \
    static void ev_dw_neon_dispatch(const ev_op *op, int begin, int end, int thread) {                         \
        static const ev_op_fn k3[4] = {dw_3x3_fast_, dw_3x3_e0_, dw_3x3_fast_nc_, dw_3x3_e0_nc_};              \
        static const ev_op_fn k5[4] = {dw_5x5_fast_, dw_5x5_e0_, dw_5x5_fast_nc_, dw_5x5_e0_nc_};              \
        const ev_dw_pack *h = op->packed;                                                                      \
        const int fh = op->params[EV_DW_FILTER_H], fw = op->params[EV_DW_FILTER_W];                            \
        const int scaling = h->mode & EV_RQ_SCALING, nc = (h->mode & EV_RQ_NOCLAMP) ? 2 : 0;                  \
        const int fixed = scaling != EV_RQ_LEFT && !h->m128;                                                   \
        if (fixed && fh == 3 && fw == 3)                                                                       \
            k3[scaling + nc](op, begin, end, thread);                                                          \
        else if (fixed && fh == 5 && fw == 5)                                                                  \
            k5[scaling + nc](op, begin, end, thread);                                                          \
        else if (h->m128)                                                                                      \
            dw_any_safe_(op, begin, end, thread);                                                              \
        else                                                                                                   \
            (h->mode == EV_RQ_FAST ? dw_any_fast_ : dw_any_gen_)(op, begin, end, thread);                      \
    }

#endif /* EV_DW_NEON_H */
