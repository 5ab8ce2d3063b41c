"""The native engine: edgevision's own int8 kernels in C (edgevision._native), needing only numpy at run time.

variants.py chooses the SIMD variant; preprocess.py is the fused frame → int8 input kernel."""
