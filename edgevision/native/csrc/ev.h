/* edgevision native engine: the contract between the planner (Python), the engine loop and the kernels.
 *
 * The Python side (edgevision/native/) reads and validates a .tflite model, computes every integer parameter
 * TFLite computes in its kernels' Prepare (multipliers, shifts, lookup tables), plans the memory, and hands the
 * engine a list of ev_op. The engine checks each op's params and buffer sizes again (a planner bug must give an
 * error, not a wild write), then runs them with the GIL released. Kernels trust what the engine checked.
 *
 * A kernel is one function with one signature, ev_op_fn: it computes work items [begin, end) of its op (what
 * an item is — an output row, a channel block — is the op's business; ev_op.items says how many there are), so
 * the engine can split any op across threads without knowing it.
 *
 * Variants. Every kernel has a scalar reference in ref/ (its arithmetic commented: it is the spec, bit-exact
 * with TFLite's reference kernels). An optimised variant (x86/ *_sse41.c, x86/ *_avx2.c, x86/ *_avx512vnni.c,
 * neon/, dotprod/) gives the same bytes, faster; each file is compiled with only its own ISA flags (setup.py).
 * A variant need not implement every kernel: ev_kernels_complete() fills the gaps from its fallback (ending at
 * ref), and each slot records the name of the function that fills it, so tests can prove which implementation
 * ran.
 */
#ifndef EV_H
#define EV_H

#include <stddef.h>
#include <stdint.h>

#define EV_MAX_OP_TENSORS 8

/* Operator kinds the engine runs: X(KIND, name). The numbering (the order here) is shared with
 * edgevision/native/plan.py (OP_KINDS). For each kind, by naming convention (see ops.h):
 *   int  ev_check_<name>(const ev_op *op, char *err, size_t errlen)   -- params and sizes consistent? 0 = yes
 *   void ev_<name>_<variant>(const ev_op *op, int begin, int end, int thread)   -- the kernel
 * A function not (yet) written is a weak symbol resolving to NULL: the slot is empty and the engine refuses a
 * model that needs it, by name. */
#define EV_OPS(X)                                   \
    X(CONV_2D, conv_2d)                             \
    X(DEPTHWISE_CONV_2D, depthwise_conv_2d)         \
    X(FULLY_CONNECTED, fully_connected)             \
    X(ADD, add)                                     \
    X(MUL, mul)                                     \
    X(AVERAGE_POOL_2D, average_pool_2d)             \
    X(MAX_POOL_2D, max_pool_2d)                     \
    X(MEAN, mean)                                   \
    X(PAD, pad)                                     \
    X(COPY, copy) /* RESHAPE, SQUEEZE, ... */       \
    X(CONCATENATION, concatenation)                 \
    X(SOFTMAX, softmax)                             \
    X(LOGISTIC, logistic)                           \
    X(HARD_SWISH, hard_swish)                       \
    X(QUANTIZE, quantize)                           \
    X(DEQUANTIZE, dequantize)                       \
    X(RESIZE_BILINEAR, resize_bilinear)             \
    X(RESIZE_NEAREST_NEIGHBOR, resize_nearest_neighbor) \
    X(RELU, relu) /* RELU, RELU6, RELU_N1_TO_1 */   \
    X(TANH, tanh)                                   \
    X(PRELU, prelu)                                 \
    X(TRANSPOSE, transpose)

#define EV_ENUM_(U, l) EV_OP_##U,
enum ev_op_kind { EV_OPS(EV_ENUM_) EV_OP_COUNT };
#undef EV_ENUM_

typedef struct ev_op {
    int kind;                    /* enum ev_op_kind */
    int items;                   /* work items; the kernel is called with 0 <= begin < end <= items */
    int n_params;                /* int32 parameters, laid out as the kind's header says */
    const int32_t *params;
    int n_tensors;               /* inputs then outputs, in the order the kind's header says */
    void *tensors[EV_MAX_OP_TENSORS];
    size_t sizes[EV_MAX_OP_TENSORS]; /* bytes */
    void *scratch;               /* per-thread scratch: scratch + thread * scratch_size */
    size_t scratch_size;
    void *packed;                /* the running variant's own read-only data for this op (see ev_op_impl.setup),
                                    e.g. weights repacked for its SIMD loads; NULL if it has none */
} ev_op;

typedef void (*ev_op_fn)(const ev_op *op, int begin, int end, int thread);

/* Optional, per variant and kind: what the kernel needs beyond what the planner gave, asked once when the
 * engine is built (after the op's check passed). sizes() reports bytes of packed data (kept for the engine's
 * life, op->packed) and of scratch per thread (at least op->scratch_size is provided anyway); pack() fills
 * op->packed. Variants with their own data layouts (repacked weights, precomputed sums) use this, so the
 * planner's output is the same whatever variant runs. */
typedef void (*ev_op_sizes_fn)(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes);
typedef void (*ev_op_pack_fn)(const ev_op *op, void *packed);

typedef struct ev_op_impl {
    ev_op_fn run;
    const char *name; /* of the C function, e.g. "ev_conv_2d_ref" */
    ev_op_sizes_fn sizes; /* ev_<name>_<variant>_sizes, optional (weak) */
    ev_op_pack_fn pack;   /* ev_<name>_<variant>_pack, optional (weak) */
} ev_op_impl;

/* Fused preprocessing: see preprocess.h. */
struct ev_preprocess_plan;
typedef void (*ev_preprocess_fn)(const struct ev_preprocess_plan *plan, const uint8_t *src, void *dst,
                                 int row_begin, int row_end);

typedef struct ev_preprocess_impl {
    ev_preprocess_fn run;
    const char *name;
} ev_preprocess_impl;

typedef struct ev_kernels {
    const char *name; /* "ref", "sse41", "avx2", "avx512vnni", "neon", "dotprod" */
    ev_op_impl ops[EV_OP_COUNT];
    ev_preprocess_impl preprocess;
} ev_kernels;

/* The tables each variant defines (only those built for this architecture exist; see setup.py). */
extern const ev_kernels ev_kernels_ref;
#ifdef EV_HAVE_X86_SSE41
extern const ev_kernels ev_kernels_sse41;
#endif
#ifdef EV_HAVE_X86_AVX2
extern const ev_kernels ev_kernels_avx2;
#endif
#ifdef EV_HAVE_X86_AVX512VNNI
extern const ev_kernels ev_kernels_avx512vnni;
#endif
#ifdef EV_HAVE_NEON
extern const ev_kernels ev_kernels_neon;
#endif
#ifdef EV_HAVE_DOTPROD
extern const ev_kernels ev_kernels_dotprod;
#endif

/* A variant's table with its empty slots taken from `fallback` (a less specialised variant, ending at ref). */
void ev_kernels_complete(ev_kernels *out, const ev_kernels *variant, const ev_kernels *fallback);

/* cpu.c: does this CPU (and OS) run the named variant? 1 yes, 0 no, -1 not a variant built here. */
int ev_cpu_supports(const char *variant);
/* cpu.c: a one-line description of the CPU features detection saw, for `edgevision info`. */
const char *ev_cpu_features(void);

/* Weak declarations of every kernel of one variant, and its table's .ops initialiser (see table_*.c). */
#define EV_WEAK __attribute__((weak, visibility("hidden")))
#define EV_DECLARE_KERNEL_(U, l, v)                                                                           \
    EV_WEAK void ev_##l##_##v(const ev_op *op, int begin, int end, int thread);                              \
    EV_WEAK void ev_##l##_##v##_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes);         \
    EV_WEAK void ev_##l##_##v##_pack(const ev_op *op, void *packed);
#define EV_SLOT_(U, l, v) [EV_OP_##U] = {ev_##l##_##v, "ev_" #l "_" #v, ev_##l##_##v##_sizes, ev_##l##_##v##_pack},
#define EV_DECLARE_KERNELS(v) EV_OPS_V_(EV_DECLARE_KERNEL_, v)
#define EV_KERNEL_SLOTS(v) {EV_OPS_V_(EV_SLOT_, v)}
/* EV_OPS with an extra argument passed through */
#define EV_OPS_V_(M, v) EV_OPS_APPLY_(M, v)
#define EV_OPS_APPLY_(M, v)                                                                                        \
    M(CONV_2D, conv_2d, v) M(DEPTHWISE_CONV_2D, depthwise_conv_2d, v) M(FULLY_CONNECTED, fully_connected, v)      \
    M(ADD, add, v) M(MUL, mul, v) M(AVERAGE_POOL_2D, average_pool_2d, v) M(MAX_POOL_2D, max_pool_2d, v)           \
    M(MEAN, mean, v) M(PAD, pad, v) M(COPY, copy, v) M(CONCATENATION, concatenation, v) M(SOFTMAX, softmax, v)    \
    M(LOGISTIC, logistic, v) M(HARD_SWISH, hard_swish, v) M(QUANTIZE, quantize, v) M(DEQUANTIZE, dequantize, v)   \
    M(RESIZE_BILINEAR, resize_bilinear, v) M(RESIZE_NEAREST_NEIGHBOR, resize_nearest_neighbor, v)             \
    M(RELU, relu, v) M(TANH, tanh, v) M(PRELU, prelu, v) M(TRANSPOSE, transpose, v)

typedef int (*ev_check_fn)(const ev_op *op, char *err, size_t errlen);

#endif /* EV_H */
