/* NEON kernels for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, for aarch64 (baseline ASIMD: Cortex-A72,
 * Raspberry Pi 4) and 32-bit ARMv7 with NEON (Raspberry Pi OS 32-bit). Byte-for-byte the results of
 * ref/conv_ref.c; conv_neon.h explains the arithmetic.
 *
 * CONV_2D is an int8 GEMM: rows = output pixels, columns = output channels, dot products of length
 * K = filter_h * filter_w * filter_in_c. A 1x1 filter without padding reads the input pixels in place
 * (EV_CONV_DIRECT; with stride 1 the work items' rows are one GEMM); anything else gathers each output row's
 * patches into scratch first (im2col, conv_neon.h). Blocks of 4 output channels outside, tiles of pixels inside.
 * The micro-kernel computes MR pixels x 4 channels (4x4c16 on aarch64, 2x4c16 on ARMv7, which has 16 vector
 * registers): per 16 k and (pixel, channel) one SMULL + SMLAL2 (16 int8 MACs into 8 int16 lanes) and one SADALP
 * into an int32x4 accumulator; after the K loop a pairwise-add tree reduces each accumulator's four lanes.
 * Weights are packed per block of 4 channels as [K/16][4 channels][16], zero-padded, next to the block's
 * requantisation data with the input offset folded into the bias (conv_neon.h). On aarch64 the full 4x4 tiles
 * run in assembly (ev_c16_tiles_asm: 53 instructions per 256 MACs in the K loop); tails and ARMv7 use the same
 * arithmetic in intrinsics. With a -128 weight the two products of a pair could overflow int16: those ops take
 * the unpaired form (SMULL, SADALP, SMULL2, SADALP).
 *
 * FULLY_CONNECTED is the same micro-kernel with one row (GEMV) and requantises in double as the reference does:
 * with float64 vector lanes on aarch64 (FCVTAS rounds half away from zero, as std::round), scalar on ARMv7.
 *
 * DEPTHWISE_CONV_2D: dw_neon.h. */
/* GCC's first scheduling pass (before register allocation) hoists every load and product of the unrolled
 * micro-kernels and then spills accumulators to the stack; without it the kernels keep them in registers. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif
#include "conv_neon.h"
#include "dw_neon.h"

#if defined(__aarch64__)
#define EV_NEON_MR 4
#else
#define EV_NEON_MR 2
#endif
#define EV_NEON_NR 4
#define EV_NEON_RQ_BYTES (sizeof(int32_t) * EV_RQ_ARRAYS * EV_NEON_NR)

/* ---- packing: blocks of 4 channels, weights [K/16][4][16] ------------------------------------------------------ */

/* the weights of channels [oc0, oc0 + n) (rows of K int8 at `w`, row stride K) into dst as [k16 / 16][4][16] */
static void pack_c16(int8_t *dst, const int8_t *w, int K, int k16, int n) {
    memset(dst, 0, (size_t)k16 * EV_NEON_NR);
    for (int c = 0; c < k16 / 16; c++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < 16 && c * 16 + i < K; i++) dst[(c * EV_NEON_NR + j) * 16 + i] = w[(size_t)j * K + c * 16 + i];
}

static void sum_rows(uint32_t *wsum, const int8_t *w, int K, int n) {
    for (int j = 0; j < n; j++) {
        uint32_t s = 0;
        for (int k = 0; k < K; k++) s += (uint32_t)(int32_t)w[(size_t)j * K + k];
        wsum[j] = s;
    }
}

void ev_conv_2d_neon_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    ev_conv_pack h;
    ev_conv_plan(op, &h, EV_NEON_NR, 0);
    *packed_bytes = EV_PACK_HEADER + (size_t)h.groups * (size_t)h.group_bytes;
    *scratch_bytes = h.path == EV_CONV_IM2COL ? (size_t)op->params[EV_CONV_OUT_W] * (size_t)h.kp : 0;
}

void ev_conv_2d_neon_pack(const ev_op *op, void *packed) {
    ev_conv_pack *h = packed;
    ev_conv_plan(op, h, EV_NEON_NR, 0);
    const int8_t *filter = op->tensors[1];
    for (int g = 0; g < h->groups; g++)
        for (int blk = 0; blk < h->nblocks; blk++) {
            uint8_t *base = ev_conv_block(h, g, blk);
            const int i0 = blk * EV_NEON_NR, n = h->npg - i0 < EV_NEON_NR ? h->npg - i0 : EV_NEON_NR;
            const int oc0 = g * h->npg + i0;
            const int8_t *w = filter + (size_t)oc0 * h->K;
            uint32_t wsum[EV_NEON_NR] = {0};
            sum_rows(wsum, w, h->K, n);
            ev_pack_rq((int32_t *)base, EV_NEON_NR, op, EV_CONV_NPARAMS, op->params[EV_CONV_OUT_C], oc0, n, wsum,
                       op->params[EV_CONV_INPUT_OFFSET]);
            pack_c16((int8_t *)(base + EV_NEON_RQ_BYTES), w, h->K, h->k16, n);
        }
}

/* ---- the micro-kernel ---------------------------------------------------------------------------------------------
 * MR rows of A (a[r], K int8 each) times one packed block of 4 channels: out[r] = the 4 dot products (int32). */
EV_INLINE void ev_c16_step(int MR, const int8x16_t *av, const int8_t *w, int pair, int first,
                           int32x4_t (*acc)[4]) {
    const int8x16x4_t b = ev_ld4q(w);
    EV_UNROLL for (int r = 0; r < MR; r++)
        EV_UNROLL for (int j = 0; j < 4; j++) {
            int16x8_t prod = vmull_s8(vget_low_s8(av[r]), vget_low_s8(b.val[j]));
            if (pair) prod = ev_mlal_hi_s8(prod, av[r], b.val[j]);
            acc[r][j] = first ? vpaddlq_s16(prod) : vpadalq_s16(acc[r][j], prod);
            if (!pair) acc[r][j] = vpadalq_s16(acc[r][j], ev_mull_hi_s8(av[r], b.val[j]));
        }
}

EV_INLINE void ev_gemm_tile_c16(int MR, const int8_t *const *a, int K, const int8_t *w, int pair, int32x4_t *out) {
    int32x4_t acc[EV_NEON_MR][4];
    int8x16_t av[EV_NEON_MR];
    const int kfull = K & ~15, ktail = K & 15;
    /* the first step starts the accumulators (SADDLP instead of SADALP), on every path */
    if (kfull) {
        EV_UNROLL for (int r = 0; r < MR; r++) av[r] = vld1q_s8(a[r]);
    } else {
        EV_UNROLL for (int r = 0; r < MR; r++) av[r] = ev_load_partial(a[r], ktail);
    }
    ev_c16_step(MR, av, w, pair, 1, acc);
    w += 64;
    for (int k = 16; k < kfull; k += 16, w += 64) {
        EV_UNROLL for (int r = 0; r < MR; r++) av[r] = vld1q_s8(a[r] + k);
        ev_c16_step(MR, av, w, pair, 0, acc);
    }
    if (ktail && kfull) {
        EV_UNROLL for (int r = 0; r < MR; r++) av[r] = ev_load_partial(a[r] + kfull, ktail);
        ev_c16_step(MR, av, w, pair, 0, acc);
    }
    EV_UNROLL for (int r = 0; r < MR; r++)
        out[r] = ev_padd_s32(ev_padd_s32(acc[r][0], acc[r][1]), ev_padd_s32(acc[r][2], acc[r][3]));
}

/* lane `lane` of v as 4 bytes to p (unaligned) */
EV_INLINE void ev_store_lane32(int8_t *p, int8x16_t v, int lane) {
    uint32_t u;
    switch (lane) {
    case 0: u = vgetq_lane_u32(vreinterpretq_u32_s8(v), 0); break;
    case 1: u = vgetq_lane_u32(vreinterpretq_u32_s8(v), 1); break;
    case 2: u = vgetq_lane_u32(vreinterpretq_u32_s8(v), 2); break;
    default: u = vgetq_lane_u32(vreinterpretq_u32_s8(v), 3); break;
    }
    memcpy(p, &u, 4);
}

/* requantise MR rows x 4 channels (sums without bias) and store row r at c[r] (n valid channels) */
EV_INLINE void ev_rq_store_rows(int MR, const int32x4_t *s, const int32_t *rq, int mode, ev_outq o,
                                int8_t *const *c, int n) {
    ev_rq4 q = ev_rq4_load(rq, EV_NEON_NR, 0);
    int32x4_t y[4];
    EV_UNROLL for (int r = 0; r < MR; r++) y[r] = ev_rq_scale(vaddq_s32(s[r], q.bias), &q, mode, o);
    for (int r = MR; r < 4; r++) y[r] = y[0];
    const int8x16_t v = ev_rq_narrow8(ev_rq_narrow16(y[0], y[1], mode, o), ev_rq_narrow16(y[2], y[3], mode, o), mode, o);
    if (n == 4) {
        /* lane r of v as int32: row r's four channels */
        ev_store_lane32(c[0], v, 0);
        if (MR > 1) ev_store_lane32(c[1], v, 1);
        if (MR > 2) ev_store_lane32(c[2], v, 2);
        if (MR > 3) ev_store_lane32(c[3], v, 3);
    } else {
        ev_store_partial(c[0], v, n);
        if (MR > 1) ev_store_partial(c[1], vextq_s8(v, v, 4), n);
        if (MR > 2) ev_store_partial(c[2], vextq_s8(v, v, 8), n);
        if (MR > 3) ev_store_partial(c[3], vextq_s8(v, v, 12), n);
    }
}

/* One block of 4 channels for MR rows: a[r] rows of A, c[r] output rows (at the block's first channel). */
EV_INLINE void ev_c16_block(int MR, const int8_t *const *a, int K, const uint8_t *base, int8_t *const *c, int n,
                            int mode, int pair, ev_outq o) {
    int32x4_t s[EV_NEON_MR];
    ev_gemm_tile_c16(MR, a, K, (const int8_t *)(base + EV_NEON_RQ_BYTES), pair, s);
    ev_rq_store_rows(MR, s, (const int32_t *)base, mode, o, c, n);
}

#if defined(__aarch64__)
/* ---- the 4 x 4 micro-kernel in assembly (aarch64) ------------------------------------------------------------------
 * All full 4-row tiles of one 4-channel block in one loop (GCC's code for the C version spilled and reloaded the
 * tile's pointers and constants). Registers: v0-v15 accumulators (row r, channel j: v4r+j, 4 int32 partial sums
 * each), v16-v19 the rows' 16 k, v20-v23 the 4 channels' 16 k, v24-v27 products. Per 16 k: 4 row loads, one
 * 4-register weight load, and for each (row, channel) SMULL + SMLAL2 (16 MACs in int16) + SADALP (SADDLP on the
 * first step) = 53 instructions for 256 MACs. A K % 16 tail of 4, 8 or 12 bytes loads partial rows. Epilogue:
 * ADDP tree (12), bias (4), requantisation of 16 outputs as 4 row vectors (EV_RQ_FAST: 12 + 8 narrowing and
 * offset), 4 lane stores that also step to the next tile's rows. */
#define EV_N_MAC1(OP, R, J, T) "smull " T ".8h, " R ".8b, " J ".8b\n\tsmlal2 " T ".8h, " R ".16b, " J ".16b\n\t"
#define EV_N_ROW(OP, R, C0, C1, C2, C3)                                                                              \
    EV_N_MAC1(OP, R, "v20", "v24") EV_N_MAC1(OP, R, "v21", "v25") EV_N_MAC1(OP, R, "v22", "v26")                    \
    EV_N_MAC1(OP, R, "v23", "v27")                                                                                    \
    OP " " C0 ".4s, v24.8h\n\t" OP " " C1 ".4s, v25.8h\n\t" OP " " C2 ".4s, v26.8h\n\t" OP " " C3 ".4s, v27.8h\n\t"
/* an 8-byte tail: the high halves are zero, SMULL alone */
#define EV_N_MAC8_ROW(R, C0, C1, C2, C3)                                                                             \
    "smull v24.8h, " R ".8b, v20.8b\n\tsmull v25.8h, " R ".8b, v21.8b\n\tsmull v26.8h, " R ".8b, v22.8b\n\t"         \
    "smull v27.8h, " R ".8b, v23.8b\n\tsadalp " C0 ".4s, v24.8h\n\tsadalp " C1 ".4s, v25.8h\n\tsadalp " C2            \
    ".4s, v26.8h\n\tsadalp " C3 ".4s, v27.8h\n\t"
#define EV_N_MAC8                                                                                                    \
    "ld1 {v20.16b-v23.16b}, [%[w]], #64\n\t" EV_N_MAC8_ROW("v16", "v0", "v1", "v2", "v3")                            \
    EV_N_MAC8_ROW("v17", "v4", "v5", "v6", "v7") EV_N_MAC8_ROW("v18", "v8", "v9", "v10", "v11")                      \
    EV_N_MAC8_ROW("v19", "v12", "v13", "v14", "v15")
#define EV_N_MAC(OP)                                                                                                 \
    "ld1 {v20.16b-v23.16b}, [%[w]], #64\n\t" EV_N_ROW(OP, "v16", "v0", "v1", "v2", "v3")                              \
    EV_N_ROW(OP, "v17", "v4", "v5", "v6", "v7") EV_N_ROW(OP, "v18", "v8", "v9", "v10", "v11")                        \
    EV_N_ROW(OP, "v19", "v12", "v13", "v14", "v15")
#define EV_N_LOAD_FULL                                                                                               \
    "ldr q16, [%[a0]], #16\n\tldr q17, [%[a1]], #16\n\tldr q18, [%[a2]], #16\n\tldr q19, [%[a3]], #16\n\t"
/* K % 16 bytes (4, 8 or 12); local labels 6-8 */
#define EV_N_LOAD_TAIL                                                                                               \
    "cmp %w[kt], #8\n\t"                                                                                             \
    "b.lt 6f\n\t"                                                                                                    \
    "b.eq 7f\n\t"                                                                                                    \
    "ldr d16, [%[a0]], #8\n\tldr d17, [%[a1]], #8\n\tldr d18, [%[a2]], #8\n\tldr d19, [%[a3]], #8\n\t"               \
    "ld1 {v16.s}[2], [%[a0]], #4\n\tld1 {v17.s}[2], [%[a1]], #4\n\t"                                                 \
    "ld1 {v18.s}[2], [%[a2]], #4\n\tld1 {v19.s}[2], [%[a3]], #4\n\t"                                                 \
    "b 8f\n"                                                                                                         \
    "7:\n\t"                                                                                                         \
    "ldr d16, [%[a0]], #8\n\tldr d17, [%[a1]], #8\n\tldr d18, [%[a2]], #8\n\tldr d19, [%[a3]], #8\n\t"               \
    "b 8f\n"                                                                                                         \
    "6:\n\t"                                                                                                         \
    "ldr s16, [%[a0]], #4\n\tldr s17, [%[a1]], #4\n\tldr s18, [%[a2]], #4\n\tldr s19, [%[a3]], #4\n"                 \
    "8:\n\t"
#define EV_N_REDUCE(A, B, C, D) "addp " A ".4s, " A ".4s, " B ".4s\n\taddp " C ".4s, " C ".4s, " D ".4s\n\taddp " A  \
    ".4s, " A ".4s, " C ".4s\n\tadd " A ".4s, " A ".4s, v20.4s\n\t"
#define EV_N_FAST(X) "sqrdmulh " X ".4s, " X ".4s, v21.4s\n\tssra " X ".4s, " X ".4s, #31\n\tsrshl " X ".4s, " X     \
    ".4s, v22.4s\n\t"
#define EV_N_E0(X) "sqrdmulh " X ".4s, " X ".4s, v21.4s\n\tand v31.16b, " X ".16b, v23.16b\n\tssra " X ".4s, v31.4s, " \
    "#31\n\tsrshl " X ".4s, " X ".4s, v22.4s\n\tadd " X ".4s, " X ".4s, %[off].4s\n\t"
#define EV_N_NARROW "sqxtn v0.4h, v0.4s\n\tsqxtn2 v0.8h, v4.4s\n\tsqxtn v8.4h, v8.4s\n\tsqxtn2 v8.8h, v12.4s\n\t"
#define EV_N_OFF16 "sqadd v0.8h, v0.8h, %[off].8h\n\tsqadd v8.8h, v8.8h, %[off].8h\n\t"
#define EV_N_TO8 "sqxtn v0.8b, v0.8h\n\tsqxtn2 v0.16b, v8.8h\n\t"
#define EV_N_STORE                                                                                                   \
    "st1 {v0.s}[0], [%[c0]], %[cadv]\n\tst1 {v0.s}[1], [%[c1]], %[cadv]\n\t"                                         \
    "st1 {v0.s}[2], [%[c2]], %[cadv]\n\tst1 {v0.s}[3], [%[c3]], %[cadv]\n\t"

#define EV_N_TILES(RQ, FIN)                                                                                          \
    "1:\n\t"                                                                                                         \
    "mov %[w], %[w0]\n\t"                                                                                            \
    "mov w17, %w[n16]\n\t"                                                                                           \
    "cbz w17, 5f\n\t" EV_N_LOAD_FULL EV_N_MAC("saddlp")                                                               \
    "subs w17, w17, #1\n\t"                                                                                          \
    "b.eq 3f\n"                                                                                                      \
    "2:\n\t" EV_N_LOAD_FULL EV_N_MAC("sadalp")                                                                        \
    "subs w17, w17, #1\n\t"                                                                                          \
    "b.ne 2b\n"                                                                                                      \
    "3:\n\t"                                                                                                         \
    "cbz %w[kt], 9f\n\t"                                                                                             \
    "cmp %w[kt], #8\n\t"                                                                                             \
    "b.ne 4f\n\t"                                                                                                    \
    "ldr d16, [%[a0]], #8\n\tldr d17, [%[a1]], #8\n\tldr d18, [%[a2]], #8\n\tldr d19, [%[a3]], #8\n\t" EV_N_MAC8   \
    "b 9f\n"                                                                                                         \
    "4:\n\t" EV_N_LOAD_TAIL EV_N_MAC("sadalp")                                                                        \
    "b 9f\n"                                                                                                         \
    "5:\n\t" EV_N_LOAD_TAIL EV_N_MAC("saddlp")                                                                        \
    "9:\n\t"                                                                                                         \
    "ldr q20, [%[rq]]\n\t"                                                                                           \
    "ldr q21, [%[rq], #16]\n\t"                                                                                      \
    "ldr q22, [%[rq], #32]\n\t"                                                                                      \
    "ldr q23, [%[rq], #64]\n\t" EV_N_REDUCE("v0", "v1", "v2", "v3") EV_N_REDUCE("v4", "v5", "v6", "v7")               \
    EV_N_REDUCE("v8", "v9", "v10", "v11") EV_N_REDUCE("v12", "v13", "v14", "v15") RQ("v0") RQ("v4") RQ("v8")          \
    RQ("v12") EV_N_NARROW FIN EV_N_STORE                                                                             \
    "add %[a0], %[a0], %[adv]\n\t"                                                                                   \
    "add %[a1], %[a1], %[adv]\n\t"                                                                                   \
    "add %[a2], %[a2], %[adv]\n\t"                                                                                   \
    "add %[a3], %[a3], %[adv]\n\t"                                                                                   \
    "subs %w[nt], %w[nt], #1\n\t"                                                                                    \
    "b.ne 1b\n\t"

#define EV_N_CLAMP "smax v0.16b, v0.16b, %[lo].16b\n\tsmin v0.16b, v0.16b, %[hi].16b\n\t"
#define EV_N_OPERANDS                                                                                                \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [c0] "+r"(c0), [c1] "+r"(c1), [c2] "+r"(c2),      \
      [c3] "+r"(c3), [w] "=&r"(w), [nt] "+r"(ntiles)                                                                 \
    : [w0] "r"(w0), [n16] "r"(n16), [kt] "r"(kt), [adv] "r"(adv), [cadv] "r"(cadv), [rq] "r"(rq), [off] "w"(off),  \
      [lo] "w"(o.lo), [hi] "w"(o.hi)                                                                                  \
    : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",  \
      "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v31", "x17", "cc", "memory"

/* ntiles (>= 1) full tiles of 4 rows x one full block of 4 channels; K % 4 == 0; rows of A at ar + r * lda,
 * outputs at cr + r * ldc. Returns 0 (nothing done) for modes without assembly. */
EV_INLINE int ev_c16_tiles_asm(const int8_t *ar, size_t lda, int K, const uint8_t *base, int8_t *cr, size_t ldc,
                               int ntiles, int mode, ev_outq o) {
    const int8_t *a0 = ar, *a1 = ar + lda, *a2 = ar + 2 * lda, *a3 = ar + 3 * lda;
    int8_t *c0 = cr, *c1 = cr + ldc, *c2 = cr + 2 * ldc, *c3 = cr + 3 * ldc;
    const int8_t *w, *w0 = (const int8_t *)(base + EV_NEON_RQ_BYTES);
    const int32_t *rq = (const int32_t *)base;
    const int n16 = K >> 4, kt = K & 15;
    const size_t adv = 4 * lda - (size_t)K, cadv = 4 * ldc;
    const int scaling = mode & EV_RQ_SCALING, nc = (mode & EV_RQ_NOCLAMP) != 0;
    if (scaling == EV_RQ_FAST) {
        const int16x8_t off = o.off16;
        if (nc)
            __asm__ volatile(EV_N_TILES(EV_N_FAST, EV_N_OFF16 EV_N_TO8) EV_N_OPERANDS);
        else
            __asm__ volatile(EV_N_TILES(EV_N_FAST, EV_N_OFF16 EV_N_TO8 EV_N_CLAMP) EV_N_OPERANDS);
        return 1;
    }
    if (scaling == EV_RQ_E0) {
        const int32x4_t off = o.off32;
        if (nc)
            __asm__ volatile(EV_N_TILES(EV_N_E0, EV_N_TO8) EV_N_OPERANDS);
        else
            __asm__ volatile(EV_N_TILES(EV_N_E0, EV_N_TO8 EV_N_CLAMP) EV_N_OPERANDS);
        return 1;
    }
    return 0;
}
#endif

/* C rows [0, M) (row m at C + m * ldc, the group's first channel) = A rows (at A + m * lda) x every block of one
 * group. Blocks outside, rows inside: a block's requantisation data and weights are set up once per block. */
EV_INLINE void ev_gemm_c16(const ev_conv_pack *h, int group, const int8_t *A, size_t lda, int M, int8_t *C, size_t ldc,
                           int mode, int pair, ev_outq o) {
    const int K = h->kp, nblocks = h->nblocks, npg = h->npg;
    const size_t block_bytes = (size_t)h->block_bytes;
    const uint8_t *base = ev_conv_block(h, group, 0);
    const int mr = M % EV_NEON_MR, mfull = M - mr;
    for (int blk = 0; blk < nblocks; blk++, base += block_bytes) {
        const int n0 = blk * EV_NEON_NR, n = npg - n0 < EV_NEON_NR ? npg - n0 : EV_NEON_NR;
        const int8_t *ar = A;
        int8_t *cr = C + n0;
#if defined(__aarch64__)
        if (pair && n == EV_NEON_NR && (K & 3) == 0 && mfull > 0 &&
            ev_c16_tiles_asm(ar, lda, K, base, cr, ldc, mfull / EV_NEON_MR, mode, o)) {
            ar += (size_t)mfull * lda;
            cr += (size_t)mfull * ldc;
        } else
#endif
        for (int m = 0; m < mfull; m += EV_NEON_MR, ar += EV_NEON_MR * lda, cr += EV_NEON_MR * ldc) {
            const int8_t *a[EV_NEON_MR];
            int8_t *c[EV_NEON_MR];
            EV_UNROLL for (int r = 0; r < EV_NEON_MR; r++) a[r] = ar + r * lda, c[r] = cr + r * ldc;
            ev_c16_block(EV_NEON_MR, a, K, base, c, n, mode, pair, o);
        }
        if (mr) {
            const int8_t *a[EV_NEON_MR];
            int8_t *c[EV_NEON_MR];
            EV_UNROLL for (int r = 0; r < EV_NEON_MR; r++) {
                const int rr = r < mr ? r : mr - 1;
                a[r] = ar + rr * lda, c[r] = cr + rr * ldc;
            }
            if (mr == 1) ev_c16_block(1, a, K, base, c, n, mode, pair, o);
#if EV_NEON_MR > 2
            else if (mr == 2) ev_c16_block(2, a, K, base, c, n, mode, pair, o);
#endif
#if EV_NEON_MR > 3
            else ev_c16_block(3, a, K, base, c, n, mode, pair, o);
#endif
        }
    }
}


#define EV_GEMM_INSTANCE_(NAME, MODE, PAIR)                                                                       \
    static void NAME(const ev_conv_pack *h, int g, const int8_t *A, size_t lda, int M, int8_t *C, size_t ldc,    \
                     ev_outq o) {                                                                         \
        ev_gemm_c16(h, g, A, lda, M, C, ldc, MODE, PAIR, o);                                                     \
    }
EV_GEMM_INSTANCE_(gemm_fast, EV_RQ_FAST, 1)
EV_GEMM_INSTANCE_(gemm_fast_nc, EV_RQ_FAST | EV_RQ_NOCLAMP, 1)
EV_GEMM_INSTANCE_(gemm_e0, EV_RQ_E0, 1)
EV_GEMM_INSTANCE_(gemm_e0_nc, EV_RQ_E0 | EV_RQ_NOCLAMP, 1)
EV_GEMM_INSTANCE_(gemm_left, EV_RQ_LEFT, 1)
EV_GEMM_INSTANCE_(gemm_safe, EV_RQ_LEFT, 0)

static ev_gemm_fn pick_gemm(const ev_conv_pack *h) {
    static const ev_gemm_fn by_mode[8] = {gemm_fast, gemm_e0, gemm_left, gemm_left,
                                          gemm_fast_nc, gemm_e0_nc, gemm_left, gemm_left};
    return h->m128 ? gemm_safe : by_mode[h->mode & 7];
}

void ev_conv_2d_neon(const ev_op *op, int begin, int end, int thread) {
    ev_conv_rows(op, begin, end, thread, pick_gemm(op->packed));
}

/* ---- FULLY_CONNECTED -------------------------------------------------------------------------------------------
 * packed: ev_fc_pack, then per block of 4 channels: bias' int32[4], scale double[4], weights [K/16][4][16]. */
typedef struct {
    int32_t m128, K, k16, nblocks;
    int64_t block_bytes;
} ev_fc_pack;

#define EV_FC_RQ_BYTES 64 /* bias' (16 bytes), then the 4 scales (32 bytes), padded */

static void fc_plan(const ev_op *op, ev_fc_pack *h) {
    const int32_t *p = op->params;
    memset(h, 0, sizeof *h);
    h->m128 = ev_has_m128(op->tensors[1], op->sizes[1]);
    h->K = p[EV_FC_DEPTH];
    h->k16 = (int32_t)ev_round_up((size_t)h->K, 16);
    h->nblocks = (p[EV_FC_OUT_C] + EV_NEON_NR - 1) / EV_NEON_NR;
    h->block_bytes = (int64_t)ev_round_up(EV_FC_RQ_BYTES + (size_t)h->k16 * EV_NEON_NR, 64);
}

void ev_fully_connected_neon_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    ev_fc_pack h;
    fc_plan(op, &h);
    *packed_bytes = EV_PACK_HEADER + (size_t)h.nblocks * (size_t)h.block_bytes;
    *scratch_bytes = 0;
}

void ev_fully_connected_neon_pack(const ev_op *op, void *packed) {
    ev_fc_pack *h = packed;
    fc_plan(op, h);
    const int32_t *p = op->params;
    const int out_c = p[EV_FC_OUT_C];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    for (int blk = 0; blk < h->nblocks; blk++) {
        uint8_t *base = (uint8_t *)packed + EV_PACK_HEADER + (size_t)blk * (size_t)h->block_bytes;
        const int oc0 = blk * EV_NEON_NR, n = out_c - oc0 < EV_NEON_NR ? out_c - oc0 : EV_NEON_NR;
        const int8_t *w = (const int8_t *)op->tensors[1] + (size_t)oc0 * h->K;
        uint32_t wsum[EV_NEON_NR] = {0};
        sum_rows(wsum, w, h->K, n);
        int32_t b4[EV_NEON_NR] = {0};
        double s4[EV_NEON_NR] = {0};
        for (int j = 0; j < n; j++) {
            b4[j] = (int32_t)((bias ? (uint32_t)bias[oc0 + j] : 0u) + (uint32_t)p[EV_FC_INPUT_OFFSET] * wsum[j]);
            s4[j] = ev_fc_scale(op, oc0 + j);
        }
        memcpy(base, b4, sizeof b4);
        memcpy(base + 16, s4, sizeof s4);
        pack_c16((int8_t *)(base + EV_FC_RQ_BYTES), w, h->K, h->k16, n);
    }
}

EV_INLINE void ev_fc_items(const ev_op *op, int begin, int end, int pair) {
    const ev_fc_pack *h = op->packed;
    const int32_t *p = op->params;
    const int depth = p[EV_FC_DEPTH], out_c = p[EV_FC_OUT_C], block = p[EV_FC_BLOCK];
    const ev_outq o = ev_outq_make(p[EV_FC_OUTPUT_OFFSET], p[EV_FC_ACT_MIN], p[EV_FC_ACT_MAX]);
    const int blocks_per_row = (out_c + block - 1) / block;
    const int8_t *input = op->tensors[0];
    int8_t *output = op->tensors[3];
    for (int item = begin; item < end; item++) {
        const int row = item / blocks_per_row;
        const int oc0 = (item % blocks_per_row) * block;
        const int oc1 = out_c - oc0 > block ? oc0 + block : out_c;
        const int8_t *a[1] = {input + (size_t)row * depth};
        int8_t *out = output + (size_t)row * out_c;
        for (int blk = oc0 / EV_NEON_NR; blk * EV_NEON_NR < oc1; blk++) {
            const uint8_t *base = (const uint8_t *)h + EV_PACK_HEADER + (size_t)blk * (size_t)h->block_bytes;
            int32x4_t s;
            ev_gemm_tile_c16(1, a, depth, (const int8_t *)(base + EV_FC_RQ_BYTES), pair, &s);
            s = vaddq_s32(s, vld1q_s32((const int32_t *)base));
            const int8x16_t v = ev_fc_requant4(s, (const double *)(base + 16), o, p[EV_FC_OUTPUT_OFFSET],
                                               p[EV_FC_ACT_MIN], p[EV_FC_ACT_MAX]);
            const int c0 = blk * EV_NEON_NR;
            const int lo = c0 < oc0 ? oc0 - c0 : 0, hi = c0 + EV_NEON_NR > oc1 ? oc1 - c0 : EV_NEON_NR;
            int8_t t[16];
            vst1q_s8(t, v);
            memcpy(out + c0 + lo, t + lo, (size_t)(hi - lo));
        }
    }
}

static void fc_pair(const ev_op *op, int b, int e) { ev_fc_items(op, b, e, 1); }
static void fc_safe(const ev_op *op, int b, int e) { ev_fc_items(op, b, e, 0); }

void ev_fully_connected_neon(const ev_op *op, int begin, int end, int thread) {
    const ev_fc_pack *h = op->packed;
    (h->m128 ? fc_safe : fc_pair)(op, begin, end);
}

/* ---- DEPTHWISE_CONV_2D ------------------------------------------------------------------------------------------ */
EV_DW_NEON_KERNELS

void ev_depthwise_conv_2d_neon_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    ev_dw_sizes(op, packed_bytes, scratch_bytes);
}

void ev_depthwise_conv_2d_neon_pack(const ev_op *op, void *packed) { ev_dw_pack_op(op, packed); }

void ev_depthwise_conv_2d_neon(const ev_op *op, int begin, int end, int thread) {
    ev_dw_neon_dispatch(op, begin, end, thread);
}
