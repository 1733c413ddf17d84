// The fast backend's C parts: vector optimizer kernels and the OpenBLAS loader.
#include "fast_kernels.h"
#include "blas_loader.h"
