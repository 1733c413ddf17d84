// OpenBLAS's C interface (BSD-3-Clause), for the fast backend's matrix products.
// Debian: libopenblas-dev (installed by scripts/setup.sh); the header lives in the multiarch
// include folder, which the compiler searches by default.
#ifndef SPECBENCH_COPENBLAS_SHIM_H
#define SPECBENCH_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
