/* Fused preprocessing: one camera frame -> the model's int8/uint8 input tensor, in one pass.
 *
 *   frame (rgb / bgr / bgrx / rgbx / gray / yuv420, rows of `stride` bytes)
 *     -> crop -> box prefilter (f x f block sums) -> bilinear resize (half-pixel centres)
 *     -> colour (channel pick/reorder, YUV->RGB, luma) -> (x/256 - mean) / std / scale + zero_point -> clamp
 *
 * Everything is integer arithmetic, so the scalar reference (ref/preprocess_ref.c, the spec), the SIMD variants
 * (x86/preprocess_sse41.c, x86/preprocess_avx2.c, neon/preprocess_neon.c) and the numpy twin
 * (edgevision/native/preprocess.py: preprocess_numpy) produce the same bytes.
 *
 * Who computes what. The geometry (crop rectangle, destination rectangle, box factor, bilinear index/weight
 * tables, quantisation constants) is computed once per (frame format, size, model) in Python
 * (plan_preprocess) and handed over as a struct ev_preprocess_plan; ev_preprocess_plan_check() verifies every
 * field and table entry, so a plan that passed it can never make a kernel read or write out of bounds given a
 * source of at least plan->src_size bytes and a destination of out_h*out_w*out_c bytes.
 *
 * Units. A pixel value p (0..255) is carried as p*256 ("P units", 0..65280 = EV_PP_PMAX) through resampling and
 * colour conversion: 8 fraction bits keep the rounding of each stage far below one quantisation step.
 *
 * The arithmetic, per plane (an RGB-type or gray frame is one plane; yuv420 is three: Y, U, V), all int32 except
 * the final quantisation product (int64). ">>" is the arithmetic shift, i.e. floor division by a power of two.
 *
 *  1. Box prefilter. f = plane.f (1..64; 1 = none). The virtual image V has vh x vw pixels; its value is
 *       B(i, j, k)  = sum over a, b < f of S(crop_top + f*i + a, crop_left + f*j + b, channel k)  (<= 64*64*255)
 *       V(i, j, k)  = (B * recip + 2^14) >> 15,       recip = floor(2^23 / f^2)
 *     i.e. B*256/f^2 rounded half up, with recip rounded down so that V never exceeds 65280. Exact for f a
 *     power of two (f = 1: V = S*256); otherwise low by at most B/2^15 < f^2/128 P units (< 0.001 pixel at
 *     f = 3, 1/16 pixel at f = 64). Bound: B*recip <= 255*2^23 < 2^31.
 *  2. Bilinear, half-pixel centres, per axis from n_in (V pixels) to n_out (destination pixels), in Python:
 *       Q   = floor(((2o+1)*n - n_out) * 2^16 / (2*n_out)), clamped to [0, (n_in-1)*2^16]   (16.16 position)
 *       i0  = Q >> 16,  i1 = min(i0 + 1, n_in - 1),  w = ((Q & 0xffff) + 16) >> 5     (weight of i1, 0..2048)
 *     where n, the span of the output in V pixels, is n_in, except for the yuv420 chroma planes: there n =
 *     (luma vw * luma f) / (2 * chroma f), a rational (the numerator and denominator both multiply through), so
 *     that chroma is sampled at the luma sample positions even when the two box factors leave different
 *     remainders of the crop uncovered (e.g. 480x640 -> 28x28: luma f = 17 covers 629 columns, chroma f = 8
 *     would cover all 640).
 *     Horizontal then vertical, each rounded back to P units:
 *       H(i, x) = V(i, x0) + (((V(i, x1) - V(i, x0)) * wx + 1024) >> 11)
 *       O(y, x) = H(y0, x) + (((H(y1, x) - H(y0, x)) * wy + 1024) >> 11)
 *     which is exactly (a*(2048-w) + b*w + 1024) >> 11 (a*2048 is a multiple of 2048), so O stays in
 *     [0, 65280]. Bound: 65280 * 2048 < 2^28.
 *  3. Colour, per destination pixel, giving c_k in P units for each output channel k:
 *       EV_PP_RGB       c_k = O(channel chan_off[k])      (chan_off picks R,G,B or B,G,R bytes of the pixel)
 *       EV_PP_RGB_LUMA  c_0 = (4899 R + 9617 G + 1868 B + 8192) >> 14          (BT.601, weights sum to 2^14)
 *       EV_PP_GRAY      c_k = O for every k
 *       EV_PP_YUV       y = O_Y - yuv_yoff, u = O_U - 32768, v = O_V - 32768,
 *                       c_k = clamp((yuv_cy*y + yuv_cu[k]*u + yuv_cv[k]*v + 4096) >> 13, 0, 65280)
 *                       (BT.601 limited or full range, coefficients * 2^13; for a 1-channel model the three
 *                       clamped R,G,B then go through the luma formula above)
 *  4. Quantise output channel k, T = 32 + qshift:
 *       q = clamp(floor((c_k * qa[k] + qb[k]) / 2^T), qmin, qmax)
 *     qa[k] = round(2^T / (256 * std_k * scale)) (int32), qb[k] = round(2^T * (zp - mean_k / (std_k * scale)))
 *     + 2^(T-1) (int64, the +1/2 of round-half-up). floor(v / 2^T) is computed as (high 32 bits of v) >> qshift,
 *     which SIMD gets from a 32x32->64 multiply (SSE4.1 _mm_mul_epi32, NEON vmull_s32) without a 64-bit shift.
 *     The check requires |qa| < 2^31, |qb| < 2^61, so |v| < 2^62.
 *  5. Destination pixels outside the destination rectangle (letterbox bars) get `fill` (the zero point: the mean
 *     colour normalises to 0).
 *
 * Work items are destination rows: ev_preprocess_<variant>(plan, src, dst, row_begin, row_end) writes rows
 * [row_begin, row_end) and nothing else, so any split of the rows across threads gives the same bytes.
 *
 * Memory. The kernels never allocate: they work in column tiles of at most EV_PP_TILE_W destination pixels whose
 * source span per plane fits EV_PP_COLSUM_CAP bytes, with ~40 KB of stack. Tiles change the order of work, never
 * a value.
 */
#ifndef EV_PREPROCESS_H
#define EV_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "ev.h"

enum ev_pp_mode {
    EV_PP_RGB = 0,      /* one 3-channel plane (rgb, bgr, rgbx, bgrx), 3-channel model */
    EV_PP_RGB_LUMA = 1, /* one 3-channel plane, 1-channel model: chan_off are the R, G, B bytes */
    EV_PP_GRAY = 2,     /* one 1-channel plane (gray), 1- or 3-channel model */
    EV_PP_YUV = 3,      /* Y, U, V 1-channel planes, 1- or 3-channel model */
};

#define EV_PP_MAX_F 64
#define EV_PP_PMAX 65280
#define EV_PP_RECIP_SHIFT 15
#define EV_PP_WBITS 11 /* bilinear weights 0..2048 */
#define EV_PP_YUV_SHIFT 13
#define EV_PP_LUMA_R 4899
#define EV_PP_LUMA_G 9617
#define EV_PP_LUMA_B 1868
#define EV_PP_LUMA_SHIFT 14
#define EV_PP_TILE_W 256       /* destination pixels per column tile */
#define EV_PP_COLSUM_CAP 8192  /* source bytes per row and plane per tile */
#define EV_PP_COLSUM_PAD 32    /* zeroed uint16 after the column sums: SIMD may read a pixel's 4th byte */
#define EV_PP_MAX_DIM 32768    /* any width or height, in pixels */

typedef struct ev_pp_plane {
    int64_t base;         /* byte offset of the plane's pixel (0, 0) from src */
    int32_t row_stride;   /* bytes from one row to the next (>= width * pixel_stride) */
    int32_t pixel_stride; /* bytes per pixel: 1 (gray, Y, U, V), 3 (rgb, bgr), 4 (rgbx, bgrx) */
    int32_t width, height;           /* of the whole plane, in pixels */
    int32_t crop_top, crop_left;     /* crop origin, plane pixels */
    int32_t channels;                /* 1, or 3 (RGB-type pixel) */
    int32_t chan_off[3];             /* byte within the pixel of channel k (k < channels), all different */
    int32_t f;                       /* box factor 1..64 */
    int32_t recip;                   /* floor(2^23 / f^2) */
    int32_t vw, vh;                  /* virtual image size: vw*f <= crop width, vh*f <= crop height */
    const int32_t *x0, *x1, *wx;     /* dw entries each: V columns and weight of x1, see step 2 */
    const int32_t *y0, *y1, *wy;     /* dh entries each: V rows */
} ev_pp_plane;

struct ev_preprocess_plan {
    int32_t mode;                    /* enum ev_pp_mode */
    int32_t out_h, out_w, out_c;     /* destination tensor, out_c = 1 or 3, one byte per value, HWC */
    int32_t dt, dl, dh, dw;          /* destination rectangle the frame is resampled into */
    int32_t n_planes;                /* 1, or 3 for EV_PP_YUV */
    ev_pp_plane planes[3];
    int32_t qmin, qmax, fill;        /* [-128, 127] for int8, [0, 255] for uint8; fill in [qmin, qmax] */
    int32_t qshift;                  /* 0..31: T = 32 + qshift */
    int32_t qa[3];
    int64_t qb[3];
    int32_t yuv_cy, yuv_yoff;        /* EV_PP_YUV: luma gain (x 2^13) and offset (P units: 16*256 or 0) */
    int32_t yuv_cu[3], yuv_cv[3];    /* per output channel (R, G, B order when out_c == 1) */
    int64_t src_size;                /* set by ev_preprocess_plan_check: bytes the source must hold */
};

/* 0 if the plan is consistent (and sets plan->src_size); else -1 with a message in err. */
int ev_preprocess_plan_check(struct ev_preprocess_plan *plan, char *err, size_t errlen);

/* The kernel is one driver (row range, letterbox fill, column tiles, a two-row cache of horizontal passes per
 * plane) and two stages, which are what a variant replaces:
 *
 *   hrow: the horizontal pass of V row `vrow` of a plane for destination columns [xa, xb): h[(x - xa) * L + l],
 *         L = 4 for a 3-channel plane (lane l = byte l of the pixel; only lanes chan_off[k] are defined) and
 *         L = 1 for a 1-channel plane. colsum: EV_PP_COLSUM_CAP + EV_PP_COLSUM_PAD uint16 of scratch whose
 *         last EV_PP_COLSUM_PAD entries are zero and must stay zero.
 *   orow: the vertical pass (h0/h1: the H rows of V rows y0/y1 of each plane, wy: their weights), colour and
 *         quantisation of n destination pixels, written to dst (n * out_c bytes).
 *
 * Each variant's stages read and write the layouts above, so a variant may replace either stage alone. */
typedef void (*ev_pp_hrow_fn)(const ev_pp_plane *pl, const uint8_t *src, int vrow, int xa, int xb,
                              uint16_t *colsum, int32_t *h);
typedef void (*ev_pp_orow_fn)(const struct ev_preprocess_plan *plan, const int32_t *const h0[3],
                              const int32_t *const h1[3], const int32_t wy[3], int n, uint8_t *dst);
typedef struct ev_pp_stages {
    ev_pp_hrow_fn hrow;
    ev_pp_orow_fn orow;
} ev_pp_stages;

#define EV_PP_HIDDEN __attribute__((visibility("hidden")))
EV_PP_HIDDEN void ev_pp_run(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst, int row_begin,
                            int row_end, const ev_pp_stages *stages);
EV_PP_HIDDEN void ev_pp_hrow_ref(const ev_pp_plane *pl, const uint8_t *src, int vrow, int xa, int xb,
                                 uint16_t *colsum, int32_t *h);
EV_PP_HIDDEN void ev_pp_orow_ref(const struct ev_preprocess_plan *plan, const int32_t *const h0[3],
                                 const int32_t *const h1[3], const int32_t wy[3], int n, uint8_t *dst);

/* The kernels themselves, ev_preprocess_<variant> (ev_preprocess_fn, see ev.h), are reached through the kernel
 * tables (table_*.c declare them weak; preprocess_<variant>.c define them). */

/* The first V column of the tile starting at xa, and the source bytes (per row) a tile [xa, xb) of this plane
 * spans: (x1[xb-1] + 1 - x0[xa]) * f * pixel_stride. */
static inline int64_t ev_pp_span(const ev_pp_plane *pl, int xa, int xb) {
    return (int64_t)(pl->x1[xb - 1] + 1 - pl->x0[xa]) * pl->f * pl->pixel_stride;
}

#endif /* EV_PREPROCESS_H */
