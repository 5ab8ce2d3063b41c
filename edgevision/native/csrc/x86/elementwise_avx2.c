/* ADD, MUL, MEAN, AVERAGE_POOL_2D, MAX_POOL_2D, QUANTIZE, RELU, PRELU and HARD_SWISH, AVX2 (compiled with -mavx2):
 * 256-bit vectors, chunks of 32 int8. The code is x86_elementwise.h (shared with the other x86 variant; its
 * design and arithmetic are explained there): this file instantiates it for its ISA and names the kernels as the
 * variant table expects. Same bytes as the reference kernels (ref/elementwise_ref.c, ref/activation_ref.c,
 * ref/misc_ref.c). */
#include "x86_elementwise.h"

void ev_add_avx2(const ev_op *op, int begin, int end, int thread) { xe_add(op, begin, end, thread); }
void ev_mul_avx2(const ev_op *op, int begin, int end, int thread) { xe_mul(op, begin, end, thread); }
void ev_mean_avx2(const ev_op *op, int begin, int end, int thread) { xe_mean(op, begin, end, thread); }
void ev_average_pool_2d_avx2(const ev_op *op, int begin, int end, int thread) {
    xe_average_pool(op, begin, end, thread);
}
void ev_max_pool_2d_avx2(const ev_op *op, int begin, int end, int thread) { xe_max_pool(op, begin, end); }
void ev_quantize_avx2(const ev_op *op, int begin, int end, int thread) { xe_quantize(op, begin, end, thread); }
void ev_relu_avx2(const ev_op *op, int begin, int end, int thread) { xe_relu(op, begin, end); }
void ev_hard_swish_avx2(const ev_op *op, int begin, int end, int thread) { xe_hard_swish(op, begin, end); }
void ev_prelu_avx2(const ev_op *op, int begin, int end, int thread) { xe_prelu(op, begin, end, thread); }
