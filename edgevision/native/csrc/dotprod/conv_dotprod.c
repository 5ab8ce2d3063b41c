/* Dot-product kernels (SDOT, Armv8.2-A: Cortex-A76, Raspberry Pi 5) for CONV_2D, DEPTHWISE_CONV_2D and
 * FULLY_CONNECTED; compiled with -march=armv8.2-a+dotprod. Byte-for-byte the results of ref/conv_ref.c;
 * neon/conv_neon.h explains the arithmetic.
 *
 * CONV_2D is an int8 GEMM, rows = output pixels, columns = output channels (1x1 without padding reads the input
 * in place, anything else goes through im2col: conv_neon.h). The micro-kernel computes 4 pixels x 16 channels:
 * weights are packed per block of 16 channels as [K/4][16 channels][4 consecutive k], so one 16-byte vector holds
 * 4 channels x 4 k and `SDOT acc, w, a.4b[g]` adds 16 MACs; per 16 k, 4 pixel loads, 4 four-register weight
 * loads and 64 SDOT (1024 MACs in 74 instructions). Full tiles run in assembly (ev_dot_tiles_asm), with the
 * requantisation; a group's last block holds 8 channels when that is enough (4x8 tiles, intrinsics), so 24 or
 * 40 channels do not pay for 32 or 48. Accumulators start at the folded bias.
 *
 * FULLY_CONNECTED is the same micro-kernel with one row (GEMV), requantised in double (float64 lanes, FCVTAS).
 *
 * DEPTHWISE_CONV_2D: SDOT over a transposed column buffer for 3x3 and 5x5 filters (see below); other shapes run
 * neon/dw_neon.h, compiled here with this file's flags. */
/* GCC's first scheduling pass (before register allocation) hoists every load of the unrolled micro-kernels and
 * then spills accumulators to the stack; without it the kernels keep them in registers. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-schedule-insns")
#endif
#include "../neon/conv_neon.h"
#include "../neon/dw_neon.h"

#if !defined(__ARM_FEATURE_DOTPROD)
#error "conv_dotprod.c must be compiled with -march=armv8.2-a+dotprod"
#endif

#define EV_DOT_NR 16
#define EV_DOT_MR 4
#define EV_DOT_RQ_BYTES (sizeof(int32_t) * EV_RQ_ARRAYS * EV_DOT_NR)

/* ---- packing ---------------------------------------------------------------------------------------------------- */

/* n channels' weights (rows of K int8 at w) into dst as [k16 / 4][nr][4], zero-padded */
static void pack_c4(int8_t *dst, const int8_t *w, int K, int k16, int n, int nr) {
    memset(dst, 0, (size_t)k16 * (size_t)nr);
    for (int g = 0; g < k16 / 4; g++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < 4 && 4 * g + i < K; i++) dst[((size_t)g * nr + j) * 4 + i] = w[(size_t)j * K + 4 * g + i];
}

static void sum_rows(uint32_t *wsum, const int8_t *w, int K, int n) {
    for (int j = 0; j < n; j++) {
        uint32_t s = 0;
        for (int k = 0; k < K; k++) s += (uint32_t)(int32_t)w[(size_t)j * K + k];
        wsum[j] = s;
    }
}

void ev_conv_2d_dotprod_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    ev_conv_pack h;
    ev_conv_plan(op, &h, EV_DOT_NR, 8);
    *packed_bytes = EV_PACK_HEADER + (size_t)h.groups * (size_t)h.group_bytes;
    *scratch_bytes = h.path == EV_CONV_IM2COL ? (size_t)op->params[EV_CONV_OUT_W] * (size_t)h.kp : 0;
}

void ev_conv_2d_dotprod_pack(const ev_op *op, void *packed) {
    ev_conv_pack *h = packed;
    ev_conv_plan(op, h, EV_DOT_NR, 8);
    const int8_t *filter = op->tensors[1];
    for (int g = 0; g < h->groups; g++)
        for (int blk = 0; blk < h->nblocks; blk++) {
            uint8_t *base = ev_conv_block(h, g, blk);
            const int nr = blk == h->nblocks - 1 ? h->nr_last : EV_DOT_NR;
            const int i0 = blk * EV_DOT_NR, n = h->npg - i0 < nr ? h->npg - i0 : nr;
            const int oc0 = g * h->npg + i0;
            const int8_t *w = filter + (size_t)oc0 * h->K;
            uint32_t wsum[EV_DOT_NR] = {0};
            sum_rows(wsum, w, h->K, n);
            ev_pack_rq((int32_t *)base, EV_DOT_NR, op, EV_CONV_NPARAMS, op->params[EV_CONV_OUT_C], oc0, n, wsum,
                       op->params[EV_CONV_INPUT_OFFSET]);
            pack_c4((int8_t *)(base + EV_DOT_RQ_BYTES), w, h->K, h->k16, n, nr);
        }
}

/* ---- the micro-kernel ---------------------------------------------------------------------------------------------
 * acc[r][j] (channels 4j..4j+3 of row r) += the dot products of MR rows of A (a[r], K int8) with one block of NR
 * channels. */

/* one group of 4 k: lane G of each row vector */
#define EV_DOT_GROUP(G)                                                                                            \
    do {                                                                                                           \
        if (NR == 16) {                                                                                            \
            const int8x16x4_t b = vld1q_s8_x4(w);                                                                  \
            w += 64;                                                                                               \
            EV_UNROLL for (int r = 0; r < MR; r++) {                                                                         \
                acc[r][0] = vdotq_laneq_s32(acc[r][0], b.val[0], av[r], G);                                        \
                acc[r][1] = vdotq_laneq_s32(acc[r][1], b.val[1], av[r], G);                                        \
                acc[r][2] = vdotq_laneq_s32(acc[r][2], b.val[2], av[r], G);                                        \
                acc[r][3] = vdotq_laneq_s32(acc[r][3], b.val[3], av[r], G);                                        \
            }                                                                                                      \
        } else {                                                                                                   \
            const int8x16x2_t b = vld1q_s8_x2(w);                                                                  \
            w += 32;                                                                                               \
            EV_UNROLL for (int r = 0; r < MR; r++) {                                                                         \
                acc[r][0] = vdotq_laneq_s32(acc[r][0], b.val[0], av[r], G);                                        \
                acc[r][1] = vdotq_laneq_s32(acc[r][1], b.val[1], av[r], G);                                        \
            }                                                                                                      \
        }                                                                                                          \
    } while (0)

EV_INLINE void ev_dot_tile(int MR, int NR, const int8_t *const *a, int K, const int8_t *w, int32x4_t (*acc)[4]) {
    int8x16_t av[EV_DOT_MR];
    const int kfull = K & ~15, ktail = K & 15;
    for (int k = 0; k < kfull; k += 16) {
        EV_UNROLL for (int r = 0; r < MR; r++) av[r] = vld1q_s8(a[r] + k);
        EV_DOT_GROUP(0);
        EV_DOT_GROUP(1);
        EV_DOT_GROUP(2);
        EV_DOT_GROUP(3);
    }
    if (ktail) {
        EV_UNROLL for (int r = 0; r < MR; r++) av[r] = ev_load_partial(a[r] + kfull, ktail);
        EV_DOT_GROUP(0);
        if (ktail > 4) EV_DOT_GROUP(1);
        if (ktail > 8) EV_DOT_GROUP(2);
        if (ktail > 12) EV_DOT_GROUP(3);
    }
}

/* ---- the 4 x 16 micro-kernel in assembly ---------------------------------------------------------------------------
 * Written out because GCC's code for it moved accumulators around the four-register loads and spilled them around
 * the requantisation. Registers: v0-v15 accumulators (row r: v4r..v4r+3, 4 channels each), v16-v19 the rows' 16 k,
 * v20-v27 weights, then in the epilogue v16-v19 multipliers, v20-v23 right shifts, v24-v27 e>0 masks, v31 a
 * temporary; the output offset and clamp bounds are operands (the compiler places them in v28-v30).
 * Per 16 k: 4 row loads, 4 four-register weight loads, 64 SDOT (1024 MACs) = 74 instructions; a K % 16 tail of 4,
 * 8 or 12 bytes loads partial rows (weights are zero-padded) and runs 1-3 more SDOT groups. Accumulators start at
 * the bias (8 LDP). Epilogue per row (16 outputs): 12 (EV_RQ_FAST) or 20 (EV_RQ_E0) scaling instructions, 6
 * narrowing, 2 offset, 2 clamp (not with EV_RQ_NOCLAMP), 1 store. */
#define EV_A_SDOT(L, B0, B1, B2, B3)                                                                                 \
    "sdot v0.4s, " B0 ".16b, v16.4b[" L "]\n\t"                                                                      \
    "sdot v1.4s, " B1 ".16b, v16.4b[" L "]\n\t"                                                                      \
    "sdot v2.4s, " B2 ".16b, v16.4b[" L "]\n\t"                                                                      \
    "sdot v3.4s, " B3 ".16b, v16.4b[" L "]\n\t"                                                                      \
    "sdot v4.4s, " B0 ".16b, v17.4b[" L "]\n\t"                                                                      \
    "sdot v5.4s, " B1 ".16b, v17.4b[" L "]\n\t"                                                                      \
    "sdot v6.4s, " B2 ".16b, v17.4b[" L "]\n\t"                                                                      \
    "sdot v7.4s, " B3 ".16b, v17.4b[" L "]\n\t"                                                                      \
    "sdot v8.4s, " B0 ".16b, v18.4b[" L "]\n\t"                                                                      \
    "sdot v9.4s, " B1 ".16b, v18.4b[" L "]\n\t"                                                                      \
    "sdot v10.4s, " B2 ".16b, v18.4b[" L "]\n\t"                                                                     \
    "sdot v11.4s, " B3 ".16b, v18.4b[" L "]\n\t"                                                                     \
    "sdot v12.4s, " B0 ".16b, v19.4b[" L "]\n\t"                                                                     \
    "sdot v13.4s, " B1 ".16b, v19.4b[" L "]\n\t"                                                                     \
    "sdot v14.4s, " B2 ".16b, v19.4b[" L "]\n\t"                                                                     \
    "sdot v15.4s, " B3 ".16b, v19.4b[" L "]\n\t"

/* Requantisation of accumulators A B C D (16 channels), result in A.16b (after EV_A_TO8). M*: multipliers,
 * R*: right shifts (negative), E*: masks of the channels with e > 0; %[off]: output offset (int16 lanes for FAST,
 * int32 for E0), v31: temporary. */
#define EV_A_NARROW(A, B, C, D)                                                                                      \
    "sqxtn " A ".4h, " A ".4s\n\t"                                                                                   \
    "sqxtn2 " A ".8h, " B ".4s\n\t"                                                                                  \
    "sqxtn " C ".4h, " C ".4s\n\t"                                                                                   \
    "sqxtn2 " C ".8h, " D ".4s\n\t"
#define EV_A_FAST_LANE(X, M, R)                                                                                      \
    "sqrdmulh " X ".4s, " X ".4s, " M ".4s\n\t"                                                                      \
    "ssra " X ".4s, " X ".4s, #31\n\t"                                                                               \
    "srshl " X ".4s, " X ".4s, " R ".4s\n\t"
#define EV_A_E0_LANE(X, M, R, E)                                                                                     \
    "sqrdmulh " X ".4s, " X ".4s, " M ".4s\n\t"                                                                      \
    "and v31.16b, " X ".16b, " E ".16b\n\t"                                                                          \
    "ssra " X ".4s, v31.4s, #31\n\t"                                                                                 \
    "srshl " X ".4s, " X ".4s, " R ".4s\n\t"                                                                         \
    "add " X ".4s, " X ".4s, %[off].4s\n\t"
#define EV_A_RQ_FAST_R(A, B, C, D, M0, M1, M2, M3, R0, R1, R2, R3, E0, E1, E2, E3)                                 \
    EV_A_FAST_LANE(A, M0, R0) EV_A_FAST_LANE(B, M1, R1) EV_A_FAST_LANE(C, M2, R2) EV_A_FAST_LANE(D, M3, R3)        \
    EV_A_NARROW(A, B, C, D)                                                                                           \
    "sqadd " A ".8h, " A ".8h, %[off].8h\n\t"                                                                        \
    "sqadd " C ".8h, " C ".8h, %[off].8h\n\t"
#define EV_A_RQ_E0_R(A, B, C, D, M0, M1, M2, M3, R0, R1, R2, R3, E0, E1, E2, E3)                                   \
    EV_A_E0_LANE(A, M0, R0, E0) EV_A_E0_LANE(B, M1, R1, E1) EV_A_E0_LANE(C, M2, R2, E2)                            \
    EV_A_E0_LANE(D, M3, R3, E3) EV_A_NARROW(A, B, C, D)
/* the GEMM's epilogue registers: multipliers v16-v19, shifts v20-v23, masks v24-v27 */
#define EV_A_RQ_FAST(A, B, C, D)                                                                                     \
    EV_A_RQ_FAST_R(A, B, C, D, "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27")
#define EV_A_RQ_E0(A, B, C, D)                                                                                       \
    EV_A_RQ_E0_R(A, B, C, D, "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27")
#define EV_A_TO8(A, C) "sqxtn " A ".8b, " A ".8h\n\tsqxtn2 " A ".16b, " C ".8h\n\t"
#define EV_A_CLAMP(A) "smax " A ".16b, " A ".16b, %[lo].16b\n\tsmin " A ".16b, " A ".16b, %[hi].16b\n\t"

/* The tile loop: for each of nt tiles, accumulators from the bias, the k loop, the tail, the epilogue (RQ, FIN),
 * stores that step to the next tile's rows, rows advanced past the tile. */
#define EV_A_TILES(EMASK, RQ, FIN)                                                                                   \
    "1:\n\t"                                                                                                         \
    "mov %[w], %[w0]\n\t"                                                                                            \
    "mov w17, %w[n16]\n\t"                                                                                           \
    "ldp q0, q1, [%[rq]]\n\t"                                                                                        \
    "ldp q2, q3, [%[rq], #32]\n\t"                                                                                   \
    "ldp q4, q5, [%[rq]]\n\t"                                                                                        \
    "ldp q6, q7, [%[rq], #32]\n\t"                                                                                   \
    "ldp q8, q9, [%[rq]]\n\t"                                                                                        \
    "ldp q10, q11, [%[rq], #32]\n\t"                                                                                 \
    "ldp q12, q13, [%[rq]]\n\t"                                                                                      \
    "ldp q14, q15, [%[rq], #32]\n\t"                                                                                 \
    "cbz w17, 2f\n"                                                                                                  \
    "3:\n\t"                                                                                                         \
    "ldr q16, [%[a0]], #16\n\t"                                                                                      \
    "ldr q17, [%[a1]], #16\n\t"                                                                                      \
    "ldr q18, [%[a2]], #16\n\t"                                                                                      \
    "ldr q19, [%[a3]], #16\n\t"                                                                                      \
    "ld1 {v20.16b-v23.16b}, [%[w]], #64\n\t" EV_A_SDOT("0", "v20", "v21", "v22", "v23")                               \
    "ld1 {v24.16b-v27.16b}, [%[w]], #64\n\t" EV_A_SDOT("1", "v24", "v25", "v26", "v27")                               \
    "ld1 {v20.16b-v23.16b}, [%[w]], #64\n\t" EV_A_SDOT("2", "v20", "v21", "v22", "v23")                               \
    "ld1 {v24.16b-v27.16b}, [%[w]], #64\n\t" EV_A_SDOT("3", "v24", "v25", "v26", "v27")                               \
    "subs w17, w17, #1\n\t"                                                                                          \
    "b.ne 3b\n"                                                                                                      \
    "2:\n\t"                                                                                                         \
    "cbz %w[kt], 9f\n\t"                                                                                             \
    "cmp %w[kt], #2\n\t"                                                                                             \
    "b.lt 6f\n\t"                                                                                                    \
    "b.eq 7f\n\t"                                                                                                    \
    "ldr d16, [%[a0]], #8\n\t"                                                                                       \
    "ldr d17, [%[a1]], #8\n\t"                                                                                       \
    "ldr d18, [%[a2]], #8\n\t"                                                                                       \
    "ldr d19, [%[a3]], #8\n\t"                                                                                       \
    "ld1 {v16.s}[2], [%[a0]], #4\n\t"                                                                                \
    "ld1 {v17.s}[2], [%[a1]], #4\n\t"                                                                                \
    "ld1 {v18.s}[2], [%[a2]], #4\n\t"                                                                                \
    "ld1 {v19.s}[2], [%[a3]], #4\n\t"                                                                                \
    "b 8f\n"                                                                                                         \
    "7:\n\t"                                                                                                         \
    "ldr d16, [%[a0]], #8\n\t"                                                                                       \
    "ldr d17, [%[a1]], #8\n\t"                                                                                       \
    "ldr d18, [%[a2]], #8\n\t"                                                                                       \
    "ldr d19, [%[a3]], #8\n\t"                                                                                       \
    "b 8f\n"                                                                                                         \
    "6:\n\t"                                                                                                         \
    "ldr s16, [%[a0]], #4\n\t"                                                                                       \
    "ldr s17, [%[a1]], #4\n\t"                                                                                       \
    "ldr s18, [%[a2]], #4\n\t"                                                                                       \
    "ldr s19, [%[a3]], #4\n"                                                                                         \
    "8:\n\t"                                                                                                         \
    "ld1 {v20.16b-v23.16b}, [%[w]], #64\n\t" EV_A_SDOT("0", "v20", "v21", "v22", "v23")                               \
    "cmp %w[kt], #2\n\t"                                                                                             \
    "b.lt 9f\n\t"                                                                                                    \
    "ld1 {v24.16b-v27.16b}, [%[w]], #64\n\t" EV_A_SDOT("1", "v24", "v25", "v26", "v27")                               \
    "cmp %w[kt], #3\n\t"                                                                                             \
    "b.lt 9f\n\t"                                                                                                    \
    "ld1 {v20.16b-v23.16b}, [%[w]], #64\n\t" EV_A_SDOT("2", "v20", "v21", "v22", "v23")                               \
    "9:\n\t"                                                                                                         \
    "ldp q16, q17, [%[rq], #64]\n\t"                                                                                 \
    "ldp q18, q19, [%[rq], #96]\n\t"                                                                                 \
    "ldp q20, q21, [%[rq], #128]\n\t"                                                                                \
    "ldp q22, q23, [%[rq], #160]\n\t" EMASK                                                                          \
    RQ("v0", "v1", "v2", "v3") EV_A_TO8("v0", "v2") FIN("v0") "st1 {v0.16b}, [%[c0]], %[cadv]\n\t"                   \
    RQ("v4", "v5", "v6", "v7") EV_A_TO8("v4", "v6") FIN("v4") "st1 {v4.16b}, [%[c1]], %[cadv]\n\t"                   \
    RQ("v8", "v9", "v10", "v11") EV_A_TO8("v8", "v10") FIN("v8") "st1 {v8.16b}, [%[c2]], %[cadv]\n\t"                \
    RQ("v12", "v13", "v14", "v15") EV_A_TO8("v12", "v14") FIN("v12") "st1 {v12.16b}, [%[c3]], %[cadv]\n\t"           \
    "add %[a0], %[a0], %[adv]\n\t"                                                                                   \
    "add %[a1], %[a1], %[adv]\n\t"                                                                                   \
    "add %[a2], %[a2], %[adv]\n\t"                                                                                   \
    "add %[a3], %[a3], %[adv]\n\t"                                                                                   \
    "subs %w[nt], %w[nt], #1\n\t"                                                                                    \
    "b.ne 1b\n\t"

#define EV_A_NOFIN(A) ""
#define EV_A_EMASK "ldp q24, q25, [%[rq], #256]\n\tldp q26, q27, [%[rq], #288]\n\t"

#define EV_A_OPERANDS                                                                                                \
    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [c0] "+r"(c0), [c1] "+r"(c1), [c2] "+r"(c2),      \
      [c3] "+r"(c3), [w] "=&r"(w), [nt] "+r"(ntiles)                                                                 \
    : [w0] "r"(w0), [n16] "r"(n16), [kt] "r"(kt), [adv] "r"(adv), [cadv] "r"(cadv), [rq] "r"(rq), [off] "w"(off),  \
      [lo] "w"(o.lo), [hi] "w"(o.hi)                                                                                  \
    : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",  \
      "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v31", "x17", "cc", "memory"

/* ntiles (>= 1) tiles of 4 rows x one full block of 16 channels; K % 4 == 0; rows of A at ar + r * lda,
 * outputs at cr + r * ldc. Returns 0 (nothing done) for modes without assembly (EV_RQ_LEFT). */
EV_INLINE int ev_dot_tiles_asm(const int8_t *ar, size_t lda, int K, const uint8_t *base, int8_t *cr, size_t ldc,
                               int ntiles, int mode, ev_outq o) {
    const int8_t *a0 = ar, *a1 = ar + lda, *a2 = ar + 2 * lda, *a3 = ar + 3 * lda;
    int8_t *c0 = cr, *c1 = cr + ldc, *c2 = cr + 2 * ldc, *c3 = cr + 3 * ldc;
    const int8_t *w, *w0 = (const int8_t *)(base + EV_DOT_RQ_BYTES);
    const int32_t *rq = (const int32_t *)base;
    const int n16 = K >> 4, kt = (K & 15) >> 2;
    const size_t adv = 4 * lda - (size_t)K, cadv = 4 * ldc;
    if ((mode & EV_RQ_SCALING) == EV_RQ_FAST) {
        const int16x8_t off = o.off16;
        if (mode & EV_RQ_NOCLAMP)
            __asm__ volatile(EV_A_TILES("", EV_A_RQ_FAST, EV_A_NOFIN) EV_A_OPERANDS);
        else
            __asm__ volatile(EV_A_TILES("", EV_A_RQ_FAST, EV_A_CLAMP) EV_A_OPERANDS);
        return 1;
    }
    if ((mode & EV_RQ_SCALING) == EV_RQ_E0) {
        const int32x4_t off = o.off32;
        if (mode & EV_RQ_NOCLAMP)
            __asm__ volatile(EV_A_TILES(EV_A_EMASK, EV_A_RQ_E0, EV_A_NOFIN) EV_A_OPERANDS);
        else
            __asm__ volatile(EV_A_TILES(EV_A_EMASK, EV_A_RQ_E0, EV_A_CLAMP) EV_A_OPERANDS);
        return 1;
    }
    return 0;
}

/* MR rows x one block (NR channels, n of them stored): accumulate from the bias, requantise, store to c[r] */
EV_INLINE void ev_dot_block(int MR, int NR, const int8_t *const *a, int K, const uint8_t *base, int8_t *const *c,
                            int n, int mode, ev_outq o) {
    const int32_t *rq = (const int32_t *)base;
    const int8_t *w = (const int8_t *)(base + EV_DOT_RQ_BYTES);
    int32x4_t acc[EV_DOT_MR][4];
    EV_UNROLL for (int j = 0; j < NR / 4; j++) {
        const int32x4_t b = vld1q_s32(rq + EV_RQ_BIAS * EV_DOT_NR + 4 * j);
        EV_UNROLL for (int r = 0; r < MR; r++) acc[r][j] = b;
    }
    ev_dot_tile(MR, NR, a, K, w, acc);
    ev_rq4 q[4];
    EV_UNROLL for (int j = 0; j < NR / 4; j++) q[j] = ev_rq4_load(rq, EV_DOT_NR, 4 * j);
    int8x16_t v[EV_DOT_MR];
    EV_UNROLL for (int r = 0; r < MR; r++) {
        if (NR == 16) {
            v[r] = ev_rq16(acc[r][0], acc[r][1], acc[r][2], acc[r][3], q, mode, o);
        } else {
            const int16x8_t v16 = ev_rq_narrow16(ev_rq_scale(acc[r][0], &q[0], mode, o),
                                                 ev_rq_scale(acc[r][1], &q[1], mode, o), mode, o);
            v[r] = ev_rq_narrow8(v16, v16, mode, o);
        }
    }
    if (n == NR) {
        EV_UNROLL for (int r = 0; r < MR; r++) {
            if (NR == 16)
                vst1q_s8(c[r], v[r]);
            else
                vst1_s8(c[r], vget_low_s8(v[r]));
        }
    } else {
        for (int r = 0; r < MR; r++) ev_store_partial(c[r], v[r], n);
    }
}

/* C rows [0, M) (row m at C + m * ldc, the group's first channel) = A rows (at A + m * lda) x every block of one
 * group. Blocks outside, rows inside. */
EV_INLINE void ev_gemm_dot(const ev_conv_pack *h, int group, const int8_t *A, size_t lda, int M, int8_t *C, size_t ldc,
                           int mode, ev_outq o) {
    const int K = h->kp, nblocks = h->nblocks, npg = h->npg, nr_last = h->nr_last;
    const size_t block_bytes = (size_t)h->block_bytes;
    const uint8_t *base = ev_conv_block(h, group, 0);
    const int mr = M % EV_DOT_MR, mfull = M - mr;
    for (int blk = 0; blk < nblocks; blk++, base += block_bytes) {
        const int n0 = blk * EV_DOT_NR, n = npg - n0 < EV_DOT_NR ? npg - n0 : EV_DOT_NR;
        const int8_t *ar = A;
        int8_t *cr = C + n0;
        if (blk == nblocks - 1 && nr_last == 8) {
            for (int m = 0; m < mfull; m += EV_DOT_MR, ar += EV_DOT_MR * lda, cr += EV_DOT_MR * ldc) {
                const int8_t *a[EV_DOT_MR] = {ar, ar + lda, ar + 2 * lda, ar + 3 * lda};
                int8_t *c[EV_DOT_MR] = {cr, cr + ldc, cr + 2 * ldc, cr + 3 * ldc};
                ev_dot_block(4, 8, a, K, base, c, n, mode, o);
            }
        } else if (n == EV_DOT_NR && (K & 3) == 0 && mfull > 0 &&
                   ev_dot_tiles_asm(ar, lda, K, base, cr, ldc, mfull / EV_DOT_MR, mode, o)) {
            ar += (size_t)mfull * lda;
            cr += (size_t)mfull * ldc;
        } else {
            for (int m = 0; m < mfull; m += EV_DOT_MR, ar += EV_DOT_MR * lda, cr += EV_DOT_MR * ldc) {
                const int8_t *a[EV_DOT_MR] = {ar, ar + lda, ar + 2 * lda, ar + 3 * lda};
                int8_t *c[EV_DOT_MR] = {cr, cr + ldc, cr + 2 * ldc, cr + 3 * ldc};
                ev_dot_block(4, 16, a, K, base, c, n, mode, o);
            }
        }
        if (mr) {
            const int8_t *a[EV_DOT_MR] = {ar, ar + lda, ar + 2 * lda, ar + 3 * lda};
            int8_t *c[EV_DOT_MR] = {cr, cr + ldc, cr + 2 * ldc, cr + 3 * ldc};
            if (nr_last == 8 && blk == nblocks - 1) {
                if (mr == 1) ev_dot_block(1, 8, a, K, base, c, n, mode, o);
                else if (mr == 2) ev_dot_block(2, 8, a, K, base, c, n, mode, o);
                else ev_dot_block(3, 8, a, K, base, c, n, mode, o);
            } else {
                if (mr == 1) ev_dot_block(1, 16, a, K, base, c, n, mode, o);
                else if (mr == 2) ev_dot_block(2, 16, a, K, base, c, n, mode, o);
                else ev_dot_block(3, 16, a, K, base, c, n, mode, o);
            }
        }
    }
}


#define EV_GEMM_INSTANCE_(NAME, MODE)                                                                             \
    static void NAME(const ev_conv_pack *h, int g, const int8_t *A, size_t lda, int M, int8_t *C, size_t ldc,    \
                     ev_outq o) {                                                                                \
        ev_gemm_dot(h, g, A, lda, M, C, ldc, MODE, o);                                                           \
    }
EV_GEMM_INSTANCE_(gemm_fast, EV_RQ_FAST)
EV_GEMM_INSTANCE_(gemm_fast_nc, EV_RQ_FAST | EV_RQ_NOCLAMP)
EV_GEMM_INSTANCE_(gemm_e0, EV_RQ_E0)
EV_GEMM_INSTANCE_(gemm_e0_nc, EV_RQ_E0 | EV_RQ_NOCLAMP)
EV_GEMM_INSTANCE_(gemm_left, EV_RQ_LEFT)

static ev_gemm_fn pick_gemm(const ev_conv_pack *h) {
    static const ev_gemm_fn by_mode[8] = {gemm_fast, gemm_e0, gemm_left, gemm_left,
                                          gemm_fast_nc, gemm_e0_nc, gemm_left, gemm_left};
    return by_mode[h->mode & 7];
}

void ev_conv_2d_dotprod(const ev_op *op, int begin, int end, int thread) {
    ev_conv_rows(op, begin, end, thread, pick_gemm(op->packed));
}

/* ---- FULLY_CONNECTED -------------------------------------------------------------------------------------------
 * packed: ev_fc_pack, then per block of 16 channels: bias' int32[16], scale double[16], weights [K/4][16][4]. */
typedef struct {
    int32_t K, k16, nblocks, pad_;
    int64_t block_bytes;
} ev_fc_pack;

#define EV_FC_RQ_BYTES (16 * 4 + 16 * 8)

static void fc_plan(const ev_op *op, ev_fc_pack *h) {
    const int32_t *p = op->params;
    memset(h, 0, sizeof *h);
    h->K = p[EV_FC_DEPTH];
    h->k16 = (int32_t)ev_round_up((size_t)h->K, 16);
    h->nblocks = (p[EV_FC_OUT_C] + 15) / 16;
    h->block_bytes = (int64_t)ev_round_up(EV_FC_RQ_BYTES + (size_t)h->k16 * 16, 64);
}

void ev_fully_connected_dotprod_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    ev_fc_pack h;
    fc_plan(op, &h);
    *packed_bytes = EV_PACK_HEADER + (size_t)h.nblocks * (size_t)h.block_bytes;
    *scratch_bytes = 0;
}

void ev_fully_connected_dotprod_pack(const ev_op *op, void *packed) {
    ev_fc_pack *h = packed;
    fc_plan(op, h);
    const int32_t *p = op->params;
    const int out_c = p[EV_FC_OUT_C];
    const int32_t *bias = op->sizes[2] ? (const int32_t *)op->tensors[2] : NULL;
    for (int blk = 0; blk < h->nblocks; blk++) {
        uint8_t *base = (uint8_t *)packed + EV_PACK_HEADER + (size_t)blk * (size_t)h->block_bytes;
        const int oc0 = blk * 16, n = out_c - oc0 < 16 ? out_c - oc0 : 16;
        const int8_t *w = (const int8_t *)op->tensors[1] + (size_t)oc0 * h->K;
        uint32_t wsum[16] = {0};
        sum_rows(wsum, w, h->K, n);
        int32_t b16[16] = {0};
        double s16[16] = {0};
        for (int j = 0; j < n; j++) {
            b16[j] = (int32_t)((bias ? (uint32_t)bias[oc0 + j] : 0u) + (uint32_t)p[EV_FC_INPUT_OFFSET] * wsum[j]);
            s16[j] = ev_fc_scale(op, oc0 + j);
        }
        memcpy(base, b16, sizeof b16);
        memcpy(base + 64, s16, sizeof s16);
        pack_c4((int8_t *)(base + EV_FC_RQ_BYTES), w, h->K, h->k16, n, 16);
    }
}

void ev_fully_connected_dotprod(const ev_op *op, int begin, int end, int thread) {
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
        for (int blk = oc0 / 16; blk * 16 < oc1; blk++) {
            const uint8_t *base = (const uint8_t *)h + EV_PACK_HEADER + (size_t)blk * (size_t)h->block_bytes;
            int32x4_t acc[1][4];
            EV_UNROLL for (int j = 0; j < 4; j++) acc[0][j] = vld1q_s32((const int32_t *)base + 4 * j);
            ev_dot_tile(1, 16, a, depth, (const int8_t *)(base + EV_FC_RQ_BYTES), acc);
            const double *scale = (const double *)(base + 64);
            int8_t t[16];
            EV_UNROLL for (int j = 0; j < 4; j++) {
                const int8x16_t v = ev_fc_requant4(acc[0][j], scale + 4 * j, o, p[EV_FC_OUTPUT_OFFSET],
                                                   p[EV_FC_ACT_MIN], p[EV_FC_ACT_MAX]);
                vst1q_lane_s32((int32_t *)(void *)(t + 4 * j), vreinterpretq_s32_s8(v), 0);
            }
            const int c0 = blk * 16;
            const int lo = c0 < oc0 ? oc0 - c0 : 0, hi = c0 + 16 > oc1 ? oc1 - c0 : 16;
            if (lo == 0 && hi == 16)
                vst1q_s8(out + c0, vld1q_s8(t));
            else
                memcpy(out + c0 + lo, t + lo, (size_t)(hi - lo));
        }
    }
}

/* ---- DEPTHWISE_CONV_2D ------------------------------------------------------------------------------------------
 * SDOT sums 4 products per int32 lane, and a depthwise filter's taps of one channel are what must be summed: so
 * the input is transposed to [channel][4 taps]. For one output row and one block of 16 channels, every input
 * column the row's windows touch becomes, per group of 4 filter rows, 64 bytes = 16 channels x those 4 rows'
 * values (ZIP1/ZIP2 of the four rows: 8 instructions; padding columns and rows are input zero points, filter rows
 * past the last are zero, as their weights). Each column is built once and used by every output pixel whose window
 * covers it; an output pixel is then filter_w x groups x 4 SDOT (16 MACs each) from the column buffer and weights
 * packed as [fx][group][16 channels][4 rows]. 3x3 and 5x5 filters with depth multiplier 1 run this way (5x5 uses
 * two groups, the second holding filter row 4 alone); everything else, and channels past the last full block,
 * run the NEON code of neon/dw_neon.h (its packed layout comes first in this variant's packed data). */
EV_DW_NEON_KERNELS

static void dwdot_plan(const ev_op *op, ev_dw_pack *h) {
    const int32_t *p = op->params;
    const int fh = p[EV_DW_FILTER_H], fw = p[EV_DW_FILTER_W], C = p[EV_DW_OUT_C];
    ev_dw_plan(op, h);
    h->dot_ok = ((fh == 3 && fw == 3) || (fh == 5 && fw == 5)) && p[EV_DW_DEPTH_MULTIPLIER] == 1 && C >= 16 &&
                (h->mode & EV_RQ_SCALING) != EV_RQ_LEFT;
    h->dot_groups = (fh + 3) / 4;
    h->dot_cols = (p[EV_DW_OUT_W] - 1) * p[EV_DW_STRIDE_W] + (fw - 1) * p[EV_DW_DILATION_W] + 1;
    h->dot_block_bytes = (int64_t)ev_round_up((size_t)fw * h->dot_groups * 64, 64);
    h->dot_offset = EV_PACK_HEADER + (int64_t)h->nblocks * h->block_bytes;
}

void ev_depthwise_conv_2d_dotprod_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    ev_dw_pack h;
    dwdot_plan(op, &h);
    ev_dw_sizes(op, packed_bytes, scratch_bytes);
    if (h.dot_ok) {
        *packed_bytes += (size_t)(op->params[EV_DW_OUT_C] / 16) * (size_t)h.dot_block_bytes;
        *scratch_bytes = ev_round_up(*scratch_bytes, 64) + (size_t)h.dot_cols * h.dot_groups * 64;
    }
}

void ev_depthwise_conv_2d_dotprod_pack(const ev_op *op, void *packed) {
    ev_dw_pack_op(op, packed);
    ev_dw_pack *h = packed;
    dwdot_plan(op, h);
    if (!h->dot_ok) return;
    const int32_t *p = op->params;
    const int fh = p[EV_DW_FILTER_H], fw = p[EV_DW_FILTER_W], C = p[EV_DW_OUT_C], G = h->dot_groups;
    const int8_t *filter = op->tensors[1];
    for (int blk = 0; blk < C / 16; blk++) {
        int8_t *w = (int8_t *)packed + h->dot_offset + (size_t)blk * (size_t)h->dot_block_bytes;
        for (int fx = 0; fx < fw; fx++)
            for (int g = 0; g < G; g++)
                for (int ch = 0; ch < 16; ch++)
                    for (int j = 0; j < 4; j++) {
                        const int fy = 4 * g + j;
                        w[((fx * G + g) * 16 + ch) * 4 + j] =
                            fy < fh ? filter[((size_t)fy * fw + fx) * C + (size_t)blk * 16 + ch] : 0;
                    }
    }
}

/* ---- the depthwise pixel loops in assembly ----------------------------------------------------------------------
 * One block of 16 channels along an output row: per pixel, the accumulators start at the bias (one 4-register
 * load), then per filter column fx and row group g one 4-register column load (post-incremented to the next
 * pixel's column) and 4 SDOT; requantise; store (post-incremented by C). v0-v3 accumulators, v4-v7 column.
 * 3x3 with EV_RQ_FAST keeps the 12 weight registers resident (v8-v19; multipliers v20-v23, shifts v24-v27):
 * 39 instructions per 16 outputs without clamp. Otherwise the weights stream from L1 (v8-v11; multipliers
 * v16-v19, shifts v20-v23, masks v24-v27). */
#define EV_D_SDOT4(W0, W1, W2, W3)                                                                                   \
    "sdot v0.4s, v4.16b, " W0 ".16b\n\t"                                                                             \
    "sdot v1.4s, v5.16b, " W1 ".16b\n\t"                                                                             \
    "sdot v2.4s, v6.16b, " W2 ".16b\n\t"                                                                             \
    "sdot v3.4s, v7.16b, " W3 ".16b\n\t"
#define EV_D_STREAM_G1(P) "ld1 {v4.16b-v7.16b}, [" P "], %[step]\n\tld1 {v8.16b-v11.16b}, [x16], #64\n\t"        \
    EV_D_SDOT4("v8", "v9", "v10", "v11")
#define EV_D_STREAM_G2(P)                                                                                            \
    "ld1 {v4.16b-v7.16b}, [" P "], #64\n\tld1 {v8.16b-v11.16b}, [x16], #64\n\t" EV_D_SDOT4("v8", "v9", "v10", "v11") \
    "ld1 {v4.16b-v7.16b}, [" P "], %[step2]\n\tld1 {v8.16b-v11.16b}, [x16], #64\n\t"                                 \
    EV_D_SDOT4("v8", "v9", "v10", "v11")

#define EV_D_OPERANDS                                                                                                \
    : [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3), [p4] "+r"(p4), [out] "+r"(out), [n] "+r"(npx)      \
    : [step] "r"(step), [step2] "r"(step - 64), [w] "r"(w), [rq] "r"(rq), [cs] "r"(cstride), [off] "w"(off),        \
      [lo] "w"(o.lo), [hi] "w"(o.hi)                                                                                  \
    : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16",  \
      "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v31", "x16", "cc", "memory"

#define EV_D_RQ_STREAM_FAST EV_A_RQ_FAST("v0", "v1", "v2", "v3") EV_A_TO8("v0", "v2")
#define EV_D_RQ_STREAM_E0 EV_A_RQ_E0("v0", "v1", "v2", "v3") EV_A_TO8("v0", "v2")
#define EV_D_PRO_STREAM                                                                                              \
    "ldp q16, q17, [%[rq], #64]\n\tldp q18, q19, [%[rq], #96]\n\t"                                                   \
    "ldp q20, q21, [%[rq], #128]\n\tldp q22, q23, [%[rq], #160]\n\t"
#define EV_D_PRO_MASKS "ldp q24, q25, [%[rq], #256]\n\tldp q26, q27, [%[rq], #288]\n\t"
#define EV_D_LOOP_HEAD "1:\n\tld1 {v0.4s-v3.4s}, [%[rq]]\n\tmov x16, %[w]\n\t"
#define EV_D_LOOP_TAIL(FIN) FIN("v0") "st1 {v0.16b}, [%[out]], %[cs]\n\tsubs %w[n], %w[n], #1\n\tb.ne 1b\n\t"

#define EV_D_BODY_3x3 EV_D_STREAM_G1("%[p0]") EV_D_STREAM_G1("%[p1]") EV_D_STREAM_G1("%[p2]")
#define EV_D_BODY_5x5                                                                                                \
    EV_D_STREAM_G2("%[p0]") EV_D_STREAM_G2("%[p1]") EV_D_STREAM_G2("%[p2]") EV_D_STREAM_G2("%[p3]")                 \
    EV_D_STREAM_G2("%[p4]")

/* 3x3, EV_RQ_FAST, weights resident */
#define EV_D_RESIDENT_3x3(FIN)                                                                                       \
    "ld1 {v8.16b-v11.16b}, [%[w]]\n\t"                                                                               \
    "add x16, %[w], #64\n\t"                                                                                         \
    "ld1 {v12.16b-v15.16b}, [x16], #64\n\t"                                                                          \
    "ld1 {v16.16b-v19.16b}, [x16]\n\t"                                                                               \
    "ldp q20, q21, [%[rq], #64]\n\tldp q22, q23, [%[rq], #96]\n\t"                                                   \
    "ldp q24, q25, [%[rq], #128]\n\tldp q26, q27, [%[rq], #160]\n"                                                   \
    "1:\n\t"                                                                                                         \
    "ld1 {v0.4s-v3.4s}, [%[rq]]\n\t"                                                                                 \
    "ld1 {v4.16b-v7.16b}, [%[p0]], %[step]\n\t" EV_D_SDOT4("v8", "v9", "v10", "v11")                                  \
    "ld1 {v4.16b-v7.16b}, [%[p1]], %[step]\n\t" EV_D_SDOT4("v12", "v13", "v14", "v15")                                \
    "ld1 {v4.16b-v7.16b}, [%[p2]], %[step]\n\t" EV_D_SDOT4("v16", "v17", "v18", "v19")                                \
    EV_A_RQ_FAST_R("v0", "v1", "v2", "v3", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "", "", "", "")  \
    EV_A_TO8("v0", "v2") EV_D_LOOP_TAIL(FIN)

/* npx (>= 1) output pixels of one 16-channel block: col = the first pixel's first column (column fx at
 * col + fx * fx_step), step = bytes from one pixel's columns to the next's */
EV_INLINE void ev_dwdot_px_asm(int FW, int mode, const int8_t *col, size_t fx_step, size_t step, const int8_t *w,
                               const int32_t *rq, int8_t *out, size_t cstride, int npx, ev_outq o) {
    const int8_t *p0 = col, *p1 = col + fx_step, *p2 = col + 2 * fx_step, *p3 = col + 3 * fx_step,
                 *p4 = col + 4 * fx_step;
    const int fast = (mode & EV_RQ_SCALING) == EV_RQ_FAST, nc = (mode & EV_RQ_NOCLAMP) != 0;
    if (FW == 3) {
        if (fast) {
            const int16x8_t off = o.off16;
            if (nc)
                __asm__ volatile(EV_D_RESIDENT_3x3(EV_A_NOFIN) EV_D_OPERANDS);
            else
                __asm__ volatile(EV_D_RESIDENT_3x3(EV_A_CLAMP) EV_D_OPERANDS);
        } else {
            const int32x4_t off = o.off32;
            if (nc)
                __asm__ volatile(EV_D_PRO_STREAM EV_D_PRO_MASKS EV_D_LOOP_HEAD EV_D_BODY_3x3 EV_D_RQ_STREAM_E0
                                     EV_D_LOOP_TAIL(EV_A_NOFIN) EV_D_OPERANDS);
            else
                __asm__ volatile(EV_D_PRO_STREAM EV_D_PRO_MASKS EV_D_LOOP_HEAD EV_D_BODY_3x3 EV_D_RQ_STREAM_E0
                                     EV_D_LOOP_TAIL(EV_A_CLAMP) EV_D_OPERANDS);
        }
    } else {
        if (fast) {
            const int16x8_t off = o.off16;
            if (nc)
                __asm__ volatile(EV_D_PRO_STREAM EV_D_LOOP_HEAD EV_D_BODY_5x5 EV_D_RQ_STREAM_FAST
                                     EV_D_LOOP_TAIL(EV_A_NOFIN) EV_D_OPERANDS);
            else
                __asm__ volatile(EV_D_PRO_STREAM EV_D_LOOP_HEAD EV_D_BODY_5x5 EV_D_RQ_STREAM_FAST
                                     EV_D_LOOP_TAIL(EV_A_CLAMP) EV_D_OPERANDS);
        } else {
            const int32x4_t off = o.off32;
            if (nc)
                __asm__ volatile(EV_D_PRO_STREAM EV_D_PRO_MASKS EV_D_LOOP_HEAD EV_D_BODY_5x5 EV_D_RQ_STREAM_E0
                                     EV_D_LOOP_TAIL(EV_A_NOFIN) EV_D_OPERANDS);
            else
                __asm__ volatile(EV_D_PRO_STREAM EV_D_PRO_MASKS EV_D_LOOP_HEAD EV_D_BODY_5x5 EV_D_RQ_STREAM_E0
                                     EV_D_LOOP_TAIL(EV_A_CLAMP) EV_D_OPERANDS);
        }
    }
}

/* The columns of one 16-channel block, in assembly: n columns from rows rp[0..FH) (row fy advances by rs[fy]:
 * C, or 0 for a row of zero points), each transposed to [channel][4 rows] and stored as G 64-byte groups.
 * 3 rows: 3 loads, 8 ZIP, 1 store, loop = 14 instructions; 5 rows: 5 loads, 8 ZIP + 6 (row 4 alone: zip with
 * zero), 2 stores, loop = 23. */
#define EV_C_ZIP4(R0, R1, R2, R3)                                                                                    \
    "zip1 v20.16b, " R0 ".16b, " R1 ".16b\n\t"                                                                       \
    "zip2 v21.16b, " R0 ".16b, " R1 ".16b\n\t"                                                                       \
    "zip1 v22.16b, " R2 ".16b, " R3 ".16b\n\t"                                                                       \
    "zip2 v23.16b, " R2 ".16b, " R3 ".16b\n\t"                                                                       \
    "zip1 v0.8h, v20.8h, v22.8h\n\t"                                                                                 \
    "zip2 v1.8h, v20.8h, v22.8h\n\t"                                                                                 \
    "zip1 v2.8h, v21.8h, v23.8h\n\t"                                                                                 \
    "zip2 v3.8h, v21.8h, v23.8h\n\t"                                                                                 \
    "st1 {v0.16b-v3.16b}, [%[d]], #64\n\t"
#define EV_C_ONE(R)                                                                                                  \
    "zip1 v20.16b, " R ".16b, v31.16b\n\t"                                                                           \
    "zip2 v21.16b, " R ".16b, v31.16b\n\t"                                                                           \
    "zip1 v0.8h, v20.8h, v31.8h\n\t"                                                                                 \
    "zip2 v1.8h, v20.8h, v31.8h\n\t"                                                                                 \
    "zip1 v2.8h, v21.8h, v31.8h\n\t"                                                                                 \
    "zip2 v3.8h, v21.8h, v31.8h\n\t"                                                                                 \
    "st1 {v0.16b-v3.16b}, [%[d]], #64\n\t"

EV_INLINE void ev_dwdot_columns(int FH, const int8_t *const *rp, const size_t *rs, int8_t *d, int n) {
    const int8_t *r0 = rp[0], *r1 = rp[1], *r2 = rp[2], *r3 = FH > 3 ? rp[3] : rp[0], *r4 = FH > 4 ? rp[4] : rp[0];
    const size_t s0 = rs[0], s1 = rs[1], s2 = rs[2], s3 = FH > 3 ? rs[3] : 0, s4 = FH > 4 ? rs[4] : 0;
    if (FH == 3)
        __asm__ volatile("movi v31.16b, #0\n"
                         "1:\n\t"
                         "ld1 {v16.16b}, [%[r0]], %[s0]\n\t"
                         "ld1 {v17.16b}, [%[r1]], %[s1]\n\t"
                         "ld1 {v18.16b}, [%[r2]], %[s2]\n\t" EV_C_ZIP4("v16", "v17", "v18", "v31")
                         "subs %w[n], %w[n], #1\n\t"
                         "b.ne 1b\n\t"
                         : [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [d] "+r"(d), [n] "+r"(n)
                         : [s0] "r"(s0), [s1] "r"(s1), [s2] "r"(s2)
                         : "v0", "v1", "v2", "v3", "v16", "v17", "v18", "v20", "v21", "v22", "v23", "v31", "cc",
                           "memory");
    else
        __asm__ volatile("movi v31.16b, #0\n"
                         "1:\n\t"
                         "ld1 {v16.16b}, [%[r0]], %[s0]\n\t"
                         "ld1 {v17.16b}, [%[r1]], %[s1]\n\t"
                         "ld1 {v18.16b}, [%[r2]], %[s2]\n\t"
                         "ld1 {v19.16b}, [%[r3]], %[s3]\n\t"
                         "ld1 {v24.16b}, [%[r4]], %[s4]\n\t" EV_C_ZIP4("v16", "v17", "v18", "v19") EV_C_ONE("v24")
                         "subs %w[n], %w[n], #1\n\t"
                         "b.ne 1b\n\t"
                         : [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2), [r3] "+r"(r3), [r4] "+r"(r4), [d] "+r"(d),
                           [n] "+r"(n)
                         : [s0] "r"(s0), [s1] "r"(s1), [s2] "r"(s2), [s3] "r"(s3), [s4] "r"(s4)
                         : "v0", "v1", "v2", "v3", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24",
                           "v31", "cc", "memory");
}

EV_INLINE void ev_dwdot_rows(const ev_op *op, int begin, int end, int thread, int FH, int FW, int mode) {
    const ev_dw_pack *h = op->packed;
    const int32_t *p = op->params;
    const int in_h = p[EV_DW_IN_H], in_w = p[EV_DW_IN_W];
    const int out_h = p[EV_DW_OUT_H], out_w = p[EV_DW_OUT_W], C = p[EV_DW_OUT_C];
    const int sh = p[EV_DW_STRIDE_H], sw = p[EV_DW_STRIDE_W], dh = p[EV_DW_DILATION_H], dw = p[EV_DW_DILATION_W];
    const int pad_top = p[EV_DW_PAD_TOP], pad_left = p[EV_DW_PAD_LEFT];
    const int G = (FH + 3) / 4, T = FH * FW;
    const int ncols = h->dot_cols, full = C / 16;
    const size_t block_bytes = (size_t)h->block_bytes, dot_block_bytes = (size_t)h->dot_block_bytes;
    const ev_outq o = ev_outq_make(p[EV_DW_OUTPUT_OFFSET], p[EV_DW_ACT_MIN], p[EV_DW_ACT_MAX]);
    const int8_t zp = (int8_t)(-p[EV_DW_INPUT_OFFSET]);
    const int8x16_t zpv = vdupq_n_s8(zp);
    const int8_t *input = op->tensors[0];
    int8_t *output = op->tensors[3];

    uint8_t *scratch = (uint8_t *)op->scratch + (size_t)thread * op->scratch_size;
    int8_t *zp_buf = (int8_t *)scratch;
    const int8_t **tp = (const int8_t **)(scratch + h->ptr_offset);
    const int8_t **rows = tp + T;
    int8_t *cols = (int8_t *)scratch + ev_round_up((size_t)h->scratch_bytes, 64);
    memset(zp_buf, zp, (size_t)h->zp_bytes);

    const int ix0 = -pad_left;
    const int valid_lo = ix0 < 0 ? 0 : ix0, valid_hi = ix0 + ncols < in_w ? ix0 + ncols : in_w;

    for (int item = begin; item < end; item++) {
        const int b = item / out_h, out_y = item % out_h;
        const int in_y0 = out_y * sh - pad_top;
        for (int fy = 0; fy < FH; fy++) {
            const int in_y = in_y0 + fy * dh;
            rows[fy] = (in_y >= 0 && in_y < in_h) ? input + ((size_t)b * in_h + in_y) * in_w * C : NULL;
        }
        int8_t *out_row = output + ((size_t)b * out_h + out_y) * out_w * C;
        for (int blk = 0; blk < full; blk++) {
            const int c = blk * 16;
            /* the columns */
            const int8_t *rp[5];
            size_t rs[5];
            EV_UNROLL for (int fy = 0; fy < FH; fy++) {
                rp[fy] = rows[fy] ? rows[fy] + (size_t)valid_lo * C + c : zp_buf;
                rs[fy] = rows[fy] ? (size_t)C : 0;
            }
            int8_t *cp = cols;
            int ix = ix0;
            for (; ix < valid_lo; ix++)
                for (int g = 0; g < G; g++, cp += 64) {
                    int8x16x4_t z = {{zpv, zpv, zpv, zpv}};
                    vst1q_s8_x4(cp, z);
                }
            if (valid_hi > ix) {
                ev_dwdot_columns(FH, rp, rs, cp, valid_hi - ix);
                cp += (size_t)(valid_hi - ix) * G * 64;
                ix = valid_hi;
            }
            for (; ix < ix0 + ncols; ix++)
                for (int g = 0; g < G; g++, cp += 64) {
                    int8x16x4_t z = {{zpv, zpv, zpv, zpv}};
                    vst1q_s8_x4(cp, z);
                }
            /* the outputs */
            const int32_t *rq = (const int32_t *)((const uint8_t *)h + EV_PACK_HEADER + (size_t)blk * block_bytes);
            const int8_t *w = (const int8_t *)h + h->dot_offset + (size_t)blk * dot_block_bytes;
            const size_t col_step = (size_t)sw * G * 64, fx_step = (size_t)dw * G * 64;
            if (out_w > 0)
                ev_dwdot_px_asm(FW, mode, cols, fx_step, col_step, w, rq, out_row + c, (size_t)C, out_w, o);
        }
        if (full * 16 < C) {
            /* the last channels, one pixel at a time on the NEON path */
            for (int ox = 0; ox < out_w; ox++) {
                const int in_x0 = ox * sw - pad_left;
                int t = 0;
                for (int fy = 0; fy < FH; fy++)
                    for (int fx = 0; fx < FW; fx++) {
                        const int in_x = in_x0 + fx * dw;
                        tp[t++] = (rows[fy] && in_x >= 0 && in_x < in_w) ? rows[fy] + (size_t)in_x * C : zp_buf;
                    }
                ev_dw_pixel(h, tp, C, full * 16, out_row + (size_t)ox * C, mode, !h->m128, o);
            }
        }
    }
}

#define EV_DWDOT_INSTANCE_(NAME, FH, FW, MODE)                                                                   \
    static void NAME(const ev_op *op, int begin, int end, int thread) {                                        \
        ev_dwdot_rows(op, begin, end, thread, FH, FW, MODE);                                                    \
    }
EV_DWDOT_INSTANCE_(dwdot_3x3_fast, 3, 3, EV_RQ_FAST)
EV_DWDOT_INSTANCE_(dwdot_3x3_e0, 3, 3, EV_RQ_E0)
EV_DWDOT_INSTANCE_(dwdot_3x3_fast_nc, 3, 3, EV_RQ_FAST | EV_RQ_NOCLAMP)
EV_DWDOT_INSTANCE_(dwdot_3x3_e0_nc, 3, 3, EV_RQ_E0 | EV_RQ_NOCLAMP)
EV_DWDOT_INSTANCE_(dwdot_5x5_fast, 5, 5, EV_RQ_FAST)
EV_DWDOT_INSTANCE_(dwdot_5x5_e0, 5, 5, EV_RQ_E0)
EV_DWDOT_INSTANCE_(dwdot_5x5_fast_nc, 5, 5, EV_RQ_FAST | EV_RQ_NOCLAMP)
EV_DWDOT_INSTANCE_(dwdot_5x5_e0_nc, 5, 5, EV_RQ_E0 | EV_RQ_NOCLAMP)

void ev_depthwise_conv_2d_dotprod(const ev_op *op, int begin, int end, int thread) {
    static const ev_op_fn k3[4] = {dwdot_3x3_fast, dwdot_3x3_e0, dwdot_3x3_fast_nc, dwdot_3x3_e0_nc};
    static const ev_op_fn k5[4] = {dwdot_5x5_fast, dwdot_5x5_e0, dwdot_5x5_fast_nc, dwdot_5x5_e0_nc};
    const ev_dw_pack *h = op->packed;
    if (!h->dot_ok) {
        ev_dw_neon_dispatch(op, begin, end, thread);
        return;
    }
    const int i = (h->mode & EV_RQ_SCALING) + ((h->mode & EV_RQ_NOCLAMP) ? 2 : 0);
    (op->params[EV_DW_FILTER_H] == 3 ? k3 : k5)[i](op, begin, end, thread);
}
