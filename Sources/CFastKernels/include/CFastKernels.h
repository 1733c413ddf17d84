// The fast backend's C parts: vector optimizer kernels, small matrix products and the OpenBLAS
// loader.
#include "fast_kernels.h"
#include "small_gemm.h"
#include "blas_loader.h"
