// The fast backend's C parts: vector optimizer kernels, small matrix products, the two-core
// hand-over and the OpenBLAS loader.
#include "fast_kernels.h"
#include "small_gemm.h"
#include "core_pair.h"
#include "blas_loader.h"
