// What the second core can do for a spirals-sized step, measured outside the trainer with the
// fast backend's own C parts (the hand-over and the small-product kernels):
//   1. the hand-over: two halves that each update 8 KB, on two cores through `core_pair` and
//      both on one core;
//   2. a data-parallel step's products: spirals' eight products (2-64-64-3) for a batch of 64
//      on one core, against a batch of 32 on each core and the weight gradients' halves added.
// Build and run (docs/performance.md, "What limits the rest of the way"):
//   clang -O2 -I Sources/CFastKernels/include Benchmarks/two_cores.c Sources/CFastKernels/core_pair.c \
//     Sources/CFastKernels/small_gemm.c -o /tmp/two_cores -lpthread && /tmp/two_cores
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core_pair.h"
#include "small_gemm.h"

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// 1. The hand-over.
static float block[2 * 2048];
static void touch(void *context, long part) {
  (void)context;
  for (int i = (int)part * 2048; i < ((int)part + 1) * 2048; i++) block[i] += 1;
}

// 2. Spirals' products: forward x·Wᵀ, then per layer from the last dW = gᵀ·x and dx = g·W.
enum { layers = 3 };
static const int width[layers + 1] = {2, 64, 64, 3};
static float *weights[layers], *gradients[2][layers], *activations[2][layers + 1], *spare[2][2], *scratch[2];

static void products(int core, int rows) {
  for (int l = 0; l < layers; l++)
    specbench_small_gemm(0, 1, rows, width[l + 1], width[l], activations[core][l], width[l], weights[l], width[l], 0,
                         activations[core][l + 1], width[l + 1], scratch[core]);
  float *g = activations[core][layers];
  for (int l = layers - 1; l >= 0; l--) {
    specbench_small_gemm(1, 0, width[l + 1], width[l], rows, g, width[l + 1], activations[core][l], width[l], 0, gradients[core][l],
                         width[l], NULL);
    if (l > 0) {
      float *dx = spare[core][l % 2];
      specbench_small_gemm(0, 0, rows, width[l], width[l + 1], g, width[l + 1], weights[l], width[l], 0, dx, width[l], NULL);
      g = dx;
    }
  }
}

static void half_batch(void *context, long part) {
  (void)context;
  products((int)part, 32);
}

static void add_gradients(void *context, long part) {
  (void)context;
  for (int l = 0; l < layers; l++) {
    int n = width[l] * width[l + 1], start = part ? n / 2 : 0, end = part ? n : n / 2;
    for (int i = start; i < end; i++) gradients[0][l][i] += gradients[1][l][i];
  }
}

static float *filled(int count, float value) {
  float *p = malloc(sizeof(float) * (size_t)count);
  for (int i = 0; i < count; i++) p[i] = value;
  return p;
}

int main(void) {
  specbench_pair *pair = specbench_pair_create();
  for (int round = 0; round < 3; round++) {
    const long runs = 200000;
    double start = seconds();
    for (long i = 0; i < runs; i++) specbench_pair_run(pair, touch, NULL);
    double two = (seconds() - start) / runs;
    start = seconds();
    for (long i = 0; i < runs; i++) {
      touch(NULL, 0);
      touch(NULL, 1);
    }
    double one = (seconds() - start) / runs;
    printf("hand-over of two 8 KB halves: %.3f us on two cores, %.3f us on one\n", two * 1e6, one * 1e6);
  }
  for (int l = 0; l < layers; l++) weights[l] = filled(width[l] * width[l + 1], 0.01f);
  for (int core = 0; core < 2; core++) {
    for (int l = 0; l < layers; l++) gradients[core][l] = filled(width[l] * width[l + 1], 0);
    for (int l = 0; l <= layers; l++) activations[core][l] = filled(64 * 64, 0.5f);
    spare[core][0] = filled(64 * 64, 0);
    spare[core][1] = filled(64 * 64, 0);
    scratch[core] = filled(64 * 64, 0);
  }
  for (int round = 0; round < 5; round++) {
    const int steps = 20000;
    double start = seconds();
    for (int i = 0; i < steps; i++) products(0, 64);
    double one = (seconds() - start) / steps;
    start = seconds();
    for (int i = 0; i < steps; i++) {
      specbench_pair_run(pair, half_batch, NULL);
      specbench_pair_run(pair, add_gradients, NULL);
    }
    double two = (seconds() - start) / steps;
    printf("spirals' products: %.2f us a step on one core, %.2f us data-parallel on two (%.2fx)\n", one * 1e6, two * 1e6, one / two);
  }
  specbench_pair_destroy(pair);
  return 0;
}
