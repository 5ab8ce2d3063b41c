/* CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, AVX2 (compiled with -mavx2):
 * 256-bit vectors, 5 x 16 GEMM register tiles. The code is x86_conv.h (shared with the other
 * x86 variant; its design and arithmetic are explained there): this file instantiates it for its ISA and names
 * the kernels and their size and pack hooks as the variant table expects. Same bytes as ref/conv_ref.c. */
#include "x86_conv.h"

void ev_conv_2d_avx2_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    xc_sizes(op, packed_bytes, scratch_bytes);
}
void ev_conv_2d_avx2_pack(const ev_op *op, void *packed) { xc_pack(op, packed); }
void ev_conv_2d_avx2(const ev_op *op, int begin, int end, int thread) { xc_conv(op, begin, end, thread); }

void ev_depthwise_conv_2d_avx2_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    xd_sizes(op, packed_bytes, scratch_bytes);
}
void ev_depthwise_conv_2d_avx2_pack(const ev_op *op, void *packed) { xd_pack(op, packed); }
void ev_depthwise_conv_2d_avx2(const ev_op *op, int begin, int end, int thread) { xd_conv(op, begin, end, thread); }

void ev_fully_connected_avx2_sizes(const ev_op *op, size_t *packed_bytes, size_t *scratch_bytes) {
    xf_sizes(op, packed_bytes, scratch_bytes);
}
void ev_fully_connected_avx2(const ev_op *op, int begin, int end, int thread) { xf_fc(op, begin, end, thread); }
