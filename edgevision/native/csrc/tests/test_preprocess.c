/* Stand-alone test of the fused preprocessing kernels, for cross-compiled runs under qemu (tools/
 * test_native_arm.sh) and native runs (tests/test_native_preprocess.py): every variant this CPU supports must give
 * the bytes of ev_preprocess_ref, for every row split, on random frames of every format and geometry.
 *
 * It builds its plans itself (the same geometry as edgevision/native/preprocess.py; only consistency between the
 * variants matters here, the Python tests check the plans), checks each with ev_preprocess_plan_check, and places
 * the frame and the output right before a PROT_NONE page so that reading or writing one byte too far faults.
 *
 *   test_preprocess [--expect FUNCTION] [--cases N] [--seed S]
 *
 * prints which variant detection picks and which C function fills its preprocess slot, and exits 1 on any
 * mismatch, or when --expect names a function other than the one that ran for the detected variant. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../ev.h"
#include "../preprocess.h"
#include "../variants.h"
#include "guarded.h"

/* ---- random numbers (xorshift64*) ---- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static int rnd_int(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); } /* [lo, hi] */

/* ---- plans ---- */
enum { F_RGB, F_BGR, F_BGRX, F_RGBX, F_GRAY, F_YUV, N_FORMATS };
static const char *fmt_name[] = {"rgb", "bgr", "bgrx", "rgbx", "gray", "yuv420"};
static const int fmt_ps[] = {3, 3, 4, 4, 1, 1};
static const int fmt_rgb[][3] = {{0, 1, 2}, {2, 1, 0}, {2, 1, 0}, {0, 1, 2}, {0, 0, 0}, {0, 0, 0}};
enum { M_STRETCH, M_CROP, M_LETTERBOX };
static const char *mode_name[] = {"stretch", "center_crop", "letterbox"};

typedef struct {
    int fmt, W, H, stride, OH, OW, OC, bgr, resize, full_range, is_u8;
    double mean[3], std[3], scale;
    int zp;
} config;

typedef struct {
    struct ev_preprocess_plan plan;
    int32_t *tabs;
} built;

/* taps for an output spanning span_num / span_den input pixels (preprocess.py _axis) */
static void axis(int n_in, int n_out, int64_t span_num, int64_t span_den, int32_t *i0, int32_t *i1, int32_t *w) {
    for (int o = 0; o < n_out; o++) {
        int64_t num = ((int64_t)(2 * o + 1) * span_num - span_den * n_out) * 65536;
        int64_t d = 2 * span_den * (int64_t)n_out;
        int64_t q = num >= 0 ? num / d : -((-num + d - 1) / d); /* floor */
        if (q < 0) q = 0;
        if (q > (int64_t)(n_in - 1) * 65536) q = (int64_t)(n_in - 1) * 65536;
        i0[o] = (int32_t)(q >> 16);
        i1[o] = i0[o] + 1 < n_in ? i0[o] + 1 : n_in - 1;
        w[o] = (int32_t)(((q & 0xffff) + 16) >> 5);
    }
}

/* luma: for a chroma plane, the luma plane (chroma is sampled where the luma blocks are) */
static void plane(built *b, int p, int64_t base, int rs, int ps, int pw, int ph, int top, int left, int ch, int cw,
                  int nch, const int *off, int32_t *t, const ev_pp_plane *luma) {
    ev_pp_plane *q = &b->plan.planes[p];
    const int dh = b->plan.dh, dw = b->plan.dw;
    int f = ch / dh < cw / dw ? ch / dh : cw / dw;
    f = f < 2 ? 1 : f > 64 ? 64 : f;
    q->base = base, q->row_stride = rs, q->pixel_stride = ps, q->width = pw, q->height = ph;
    q->crop_top = top, q->crop_left = left, q->channels = nch;
    for (int k = 0; k < 3; k++) q->chan_off[k] = k < nch ? off[k] : 0;
    q->f = f, q->recip = (int32_t)((1u << 23) / (unsigned)(f * f));
    q->vh = ch / f, q->vw = cw / f;
    const int64_t nw = luma ? (int64_t)luma->vw * luma->f : q->vw, nh = luma ? (int64_t)luma->vh * luma->f : q->vh;
    const int64_t den = luma ? 2 * f : 1;
    axis(q->vw, dw, nw, den, t, t + dw, t + 2 * dw);
    axis(q->vh, dh, nh, den, t + 3 * dw, t + 3 * dw + dh, t + 3 * dw + 2 * dh);
    q->x0 = t, q->x1 = t + dw, q->wx = t + 2 * dw, q->y0 = t + 3 * dw, q->y1 = q->y0 + dh, q->wy = q->y0 + 2 * dh;
}

static int build(built *b, const config *c) {
    struct ev_preprocess_plan *pl = &b->plan;
    memset(pl, 0, sizeof *pl);
    const int W = c->W, H = c->H, OH = c->OH, OW = c->OW;
    int top = 0, left = 0, ch = H, cw = W;
    pl->out_h = OH, pl->out_w = OW, pl->out_c = c->OC;
    pl->dt = 0, pl->dl = 0, pl->dh = OH, pl->dw = OW;
    if (c->resize == M_CROP) {
        if ((int64_t)W * OH > (int64_t)H * OW) {
            cw = (int)lround((double)H * OW / OH);
            if (cw < 1) cw = 1;
            left = (W - cw) / 2;
        } else {
            ch = (int)lround((double)W * OH / OW);
            if (ch < 1) ch = 1;
            top = (H - ch) / 2;
        }
    } else if (c->resize == M_LETTERBOX) {
        double s = fmin((double)OH / H, (double)OW / W);
        int nh = (int)lround(H * s), nw = (int)lround(W * s);
        nh = nh < 1 ? 1 : nh, nw = nw < 1 ? 1 : nw;
        pl->dt = (OH - nh) / 2, pl->dl = (OW - nw) / 2, pl->dh = nh, pl->dw = nw;
    }
    const int nplanes = c->fmt == F_YUV ? 3 : 1;
    b->tabs = malloc(sizeof(int32_t) * (size_t)nplanes * (3 * (size_t)pl->dw + 3 * (size_t)pl->dh));
    if (!b->tabs) return -1;
    const size_t per = 3 * (size_t)pl->dw + 3 * (size_t)pl->dh;
    pl->n_planes = nplanes;
    const int zero[3] = {0, 0, 0};
    if (c->fmt == F_YUV) {
        top -= top % 2, left -= left % 2, ch -= ch % 2, cw -= cw % 2;
        if (ch < 2) ch = 2;
        if (cw < 2) cw = 2;
        const int cs = c->stride / 2, chh = (H + 1) / 2, cww = (W + 1) / 2;
        plane(b, 0, 0, c->stride, 1, W, H, top, left, ch, cw, 1, zero, b->tabs, NULL);
        plane(b, 1, (int64_t)c->stride * H, cs, 1, cww, chh, top / 2, left / 2, ch / 2, cw / 2, 1, zero, b->tabs + per,
              &b->plan.planes[0]);
        plane(b, 2, (int64_t)c->stride * H + (int64_t)cs * chh, cs, 1, cww, chh, top / 2, left / 2, ch / 2, cw / 2, 1,
              zero, b->tabs + 2 * per, &b->plan.planes[0]);
        pl->mode = EV_PP_YUV;
        const double s = 8192;
        double gain = c->full_range ? 1.0 : 255.0 / 219, kr = c->full_range ? 1.402 : 1.596027,
               kgu = c->full_range ? 0.344136 : 0.391762, kgv = c->full_range ? 0.714136 : 0.812968,
               kb = c->full_range ? 1.772 : 2.017232;
        int cu[3] = {0, -(int)lround(kgu * s), (int)lround(kb * s)}, cv[3] = {(int)lround(kr * s), -(int)lround(kgv * s), 0};
        pl->yuv_cy = (int)lround(gain * s), pl->yuv_yoff = c->full_range ? 0 : 16 * 256;
        for (int k = 0; k < 3; k++) {
            int src = (c->OC == 3 && c->bgr) ? 2 - k : k;
            pl->yuv_cu[k] = cu[src], pl->yuv_cv[k] = cv[src];
        }
    } else if (c->fmt == F_GRAY) {
        plane(b, 0, 0, c->stride, 1, W, H, top, left, ch, cw, 1, zero, b->tabs, NULL);
        pl->mode = EV_PP_GRAY;
    } else {
        int off[3];
        const int *rgb = fmt_rgb[c->fmt];
        for (int k = 0; k < 3; k++) off[k] = (c->OC == 3 && c->bgr) ? rgb[2 - k] : rgb[k];
        pl->mode = c->OC == 1 ? EV_PP_RGB_LUMA : EV_PP_RGB;
        plane(b, 0, 0, c->stride, fmt_ps[c->fmt], W, H, top, left, ch, cw, 3, off, b->tabs, NULL);
    }
    pl->qmin = c->is_u8 ? 0 : -128, pl->qmax = c->is_u8 ? 255 : 127, pl->fill = c->zp;
    for (int t = 31; t >= 0; t--) {
        long double big = ldexpl(1.0L, 32 + t);
        int ok = 1;
        for (int k = 0; k < c->OC; k++) {
            long double a = big / (256.0L * c->std[k] * c->scale);
            long double bb = big * ((long double)c->zp - c->mean[k] / ((long double)c->std[k] * c->scale)) + big / 2;
            if (fabsl(a) >= 2147483647.0L || fabsl(bb) >= ldexpl(1.0L, 61)) ok = 0;
            else pl->qa[k] = (int32_t)llroundl(a), pl->qb[k] = (int64_t)llroundl(bb);
        }
        if (ok) {
            pl->qshift = t;
            break;
        }
        if (t == 0) return -1;
    }
    char err[256];
    if (ev_preprocess_plan_check(pl, err, sizeof err) != 0) {
        fprintf(stderr, "plan rejected: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---- running ---- */
static int run_case(const config *c, const ev_kernels *tabs, int ntabs, int verbose) {
    built b;
    if (build(&b, c) != 0) {
        fprintf(stderr, "could not build a plan for %s %dx%d -> %dx%d\n", fmt_name[c->fmt], c->W, c->H, c->OH, c->OW);
        return 1;
    }
    const struct ev_preprocess_plan *pl = &b.plan;
    const size_t n_src = (size_t)pl->src_size, n_dst = (size_t)pl->out_h * pl->out_w * pl->out_c;
    guarded src = guarded_alloc(n_src), ref = guarded_alloc(n_dst), out = guarded_alloc(n_dst);
    /* smooth-ish random content: a gradient plus noise, sometimes saturated */
    const int sat = rnd_int(0, 3) == 0;
    for (size_t i = 0; i < n_src; i++) {
        int v = (int)((i * 7) % 256) / 2 + rnd_int(0, 127);
        src.p[i] = (uint8_t)(sat ? (v & 1 ? 255 : 0) : v);
    }
    memset(ref.p, 0xA5, n_dst);
    ev_kernels_ref.preprocess.run(pl, src.p, ref.p, 0, pl->out_h);
    int bad = 0;
    for (int v = 0; v < ntabs; v++) {
        /* whole frame, then a random split into up to 4 row ranges (each run starts from different junk) */
        for (int split = 0; split < 2; split++) {
            memset(out.p, split ? 0x3C : 0x5A, n_dst);
            if (!split) {
                tabs[v].preprocess.run(pl, src.p, out.p, 0, pl->out_h);
            } else {
                int parts = rnd_int(1, 4), r = 0;
                for (int i = 0; i < parts; i++) {
                    int e = i == parts - 1 ? pl->out_h : r + rnd_int(0, pl->out_h - r);
                    tabs[v].preprocess.run(pl, src.p, out.p, r, e);
                    r = e;
                }
            }
            if (memcmp(out.p, ref.p, n_dst) != 0) {
                size_t i = 0;
                while (out.p[i] == ref.p[i]) i++;
                int C = pl->out_c;
                fprintf(stderr,
                        "MISMATCH %s (%s) %s %dx%d stride %d -> %dx%dx%d %s %s %s%s: first at row %zu col %zu ch %zu: "
                        "%d != ref %d\n",
                        tabs[v].name, tabs[v].preprocess.name, fmt_name[c->fmt], c->W, c->H, c->stride, c->OH, c->OW,
                        C, mode_name[c->resize], c->bgr ? "BGR" : "RGB", c->is_u8 ? "uint8" : "int8",
                        split ? " (row split)" : "", i / ((size_t)pl->out_w * C), i / C % pl->out_w, i % C,
                        (int)(int8_t)out.p[i], (int)(int8_t)ref.p[i]);
                bad = 1;
            }
        }
    }
    if (verbose)
        printf("  %-6s %5dx%-5d stride %5d -> %4dx%-4dx%d %-11s %s %-5s f=%d ok=%d\n", fmt_name[c->fmt], c->W, c->H,
               c->stride, c->OH, c->OW, c->OC, mode_name[c->resize], c->bgr ? "BGR" : "RGB", c->is_u8 ? "uint8" : "int8",
               pl->planes[0].f, !bad);
    guarded_free(&src);
    guarded_free(&ref);
    guarded_free(&out);
    free(b.tabs);
    return bad;
}

static config random_config(int i) {
    static const int sizes[][2] = {{720, 1280}, {481, 643}, {31, 17}, {224, 224}, {100, 90}, {2, 2}, {7, 301},
                                   {480, 640}, {1080, 1920}, {300, 4000}, {57, 113}, {224, 225}};
    static const int outs[][2] = {{224, 224}, {28, 28}, {96, 160}, {1, 1}, {13, 7}, {320, 240}, {300, 300}};
    config c;
    memset(&c, 0, sizeof c);
    c.fmt = i % N_FORMATS;
    const int *sz = sizes[rnd_int(0, (int)(sizeof sizes / sizeof sizes[0]) - 1)];
    c.H = sz[0], c.W = sz[1];
    if (rnd_int(0, 2) == 0) c.H += rnd_int(0, 3), c.W += rnd_int(0, 3); /* odd sizes */
    const int *o = outs[rnd_int(0, (int)(sizeof outs / sizeof outs[0]) - 1)];
    c.OH = o[0], c.OW = o[1];
    c.OC = rnd_int(0, 3) == 0 ? 1 : 3;
    c.bgr = rnd_int(0, 1);
    c.resize = rnd_int(0, 2);
    c.full_range = rnd_int(0, 1);
    c.is_u8 = rnd_int(0, 1);
    const int ps = fmt_ps[c.fmt];
    c.stride = c.W * ps + (rnd_int(0, 1) ? rnd_int(0, 64) : 0);
    if (c.fmt == F_YUV && c.stride / 2 < (c.W + 1) / 2) c.stride = c.W + 1;
    for (int k = 0; k < 3; k++) {
        c.mean[k] = rnd_int(0, 2) == 0 ? 127.5 : rnd_int(0, 255);
        c.std[k] = rnd_int(0, 2) == 0 ? 127.5 : rnd_int(20, 90) * (rnd_int(0, 9) == 0 ? -1 : 1);
    }
    c.scale = rnd_int(0, 1) ? 2.0 / 255 : 0.005 + rnd_int(0, 1000) * 1e-4;
    c.zp = c.is_u8 ? rnd_int(0, 255) : rnd_int(-128, 127);
    return c;
}

int main(int argc, char **argv) {
    const char *expect = NULL;
    int cases = 240, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--expect") && i + 1 < argc) expect = argv[++i];
        else if (!strcmp(argv[i], "--cases") && i + 1 < argc) cases = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) rng_state ^= strtoull(argv[++i], NULL, 0) * 0x2545F4914F6CDD1Dull;
        else if (!strcmp(argv[i], "-v")) verbose = 1;
        else {
            fprintf(stderr, "usage: %s [--expect FUNCTION] [--cases N] [--seed S] [-v]\n", argv[0]);
            return 2;
        }
    }
    printf("cpu: %s\n", ev_cpu_features());
    /* every built variant this CPU runs, completed with its fallbacks; detection picks the last */
    ev_kernels tabs[8];
    int ntabs = 0;
    for (int i = 0; i < ev_variant_count(); i++) {
        const char *name = ev_variant_name(i);
        int ok = ev_cpu_supports(name) == 1;
        printf("variant %-8s %s", name, ok ? "supported" : "not supported by this CPU");
        if (ok && ev_variant_table(name, &tabs[ntabs]) == 0) {
            printf(", preprocess = %s", tabs[ntabs].preprocess.name);
            ntabs++;
        }
        printf("\n");
    }
    if (ntabs == 0 || !tabs[ntabs - 1].preprocess.run) {
        fprintf(stderr, "FAIL: no runnable preprocess kernel\n");
        return 1;
    }
    const char *ran = tabs[ntabs - 1].preprocess.name;
    printf("detected variant: %s -> %s\n", tabs[ntabs - 1].name, ran);

    /* the plan check must refuse broken plans */
    int bad = 0;
    {
        config c = random_config(0);
        c.fmt = F_RGB, c.W = 64, c.H = 48, c.stride = 64 * 3, c.OH = 16, c.OW = 16, c.OC = 3, c.resize = M_STRETCH;
        built b;
        char err[256];
        if (build(&b, &c) != 0) return 1;
        int32_t saved = ((int32_t *)b.plan.planes[0].x1)[15];
        ((int32_t *)b.plan.planes[0].x1)[15] = b.plan.planes[0].vw; /* one past the virtual image */
        if (ev_preprocess_plan_check(&b.plan, err, sizeof err) == 0) fprintf(stderr, "FAIL: bad x1 accepted\n"), bad = 1;
        ((int32_t *)b.plan.planes[0].x1)[15] = saved;
        b.plan.planes[0].vh += 1; /* more block rows than the crop holds */
        if (ev_preprocess_plan_check(&b.plan, err, sizeof err) == 0) fprintf(stderr, "FAIL: bad vh accepted\n"), bad = 1;
        free(b.tabs);
    }

    int failed = 0, run = 0;
    for (int i = 0; i < cases; i++) {
        config c = random_config(i);
        failed += run_case(&c, tabs, ntabs, verbose);
        run++;
    }
    printf("%d cases x %d variants (%s), whole frame and row splits: %d failed\n", run, ntabs,
           ntabs > 1 ? "each vs ref" : "ref only", failed);
    if (expect && strcmp(expect, ran) != 0) {
        fprintf(stderr, "FAIL: expected %s to run, but detection runs %s\n", expect, ran);
        return 1;
    }
    return failed || bad ? 1 : 0;
}
