// One instruction set's small-product kernels (see include/small_gemm.h), included by
// small_gemm.c once per set with LANES (floats a vector), SUFFIX and TARGET defined.
// C(i, j) (+)= Σ_p A(i, p)·B(p, j), with A(i, p) = a[i·a_row + p·a_col], B(p, j) = b[p·b_row + j]
// (unit stride along j: the vectors run along C's rows) and C(i, j) = c[i·c_row + j·c_col].

#define NAME_(base, suffix) base##_##suffix
#define NAME(base, suffix) NAME_(base, suffix)
#define VEC NAME(vec, SUFFIX)

typedef float VEC __attribute__((vector_size(LANES * 4), aligned(4)));

TARGET static inline __attribute__((always_inline)) VEC NAME(load, SUFFIX)(const float *p) {
  VEC v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

TARGET static inline __attribute__((always_inline)) void NAME(store, SUFFIX)(float *p, VEC v) { __builtin_memcpy(p, &v, sizeof v); }

/// x in every lane (a broadcast; `(VEC){0} + x` would be an addition, which −0 keeps apart).
TARGET static inline __attribute__((always_inline)) VEC NAME(splat, SUFFIX)(float x) {
  VEC v;
  for (int l = 0; l < LANES; l++) v[l] = x;
  return v;
}

/// Rows i..i+mr (mr ≤ 6) by columns j..j+vectors·LANES: acc[r][v] held in registers over the
/// whole k loop, then added to or stored into C.
TARGET static inline __attribute__((always_inline)) void NAME(tile, SUFFIX)(const int mr, const int vectors, const float *a, long a_row,
                                                                              long a_col, const float *b, long b_row, float *c,
                                                                              long c_row, long c_col, long k, int accumulate) {
  VEC acc[6][2];
  for (int r = 0; r < mr; r++)
    for (int v = 0; v < vectors; v++) acc[r][v] = (VEC){0};
  for (long p = 0; p < k; p++) {
    VEC bv[2];
    for (int v = 0; v < vectors; v++) bv[v] = NAME(load, SUFFIX)(b + p * b_row + v * LANES);
    for (int r = 0; r < mr; r++) {
      VEC av = NAME(splat, SUFFIX)(a[r * a_row + p * a_col]);
      for (int v = 0; v < vectors; v++) acc[r][v] += av * bv[v];
    }
  }
  for (int r = 0; r < mr; r++) {
    for (int v = 0; v < vectors; v++) {
      float *row = c + r * c_row + v * LANES * c_col;
      if (c_col == 1) {
        VEC out = accumulate ? NAME(load, SUFFIX)(row) + acc[r][v] : acc[r][v];
        NAME(store, SUFFIX)(row, out);
      } else {
        for (int l = 0; l < LANES; l++) row[l * c_col] = (accumulate ? row[l * c_col] : 0.0f) + acc[r][v][l];
      }
    }
  }
}

/// Rows i..i+mr by the `width` (< LANES) last columns, one scalar sum each.
TARGET static inline __attribute__((always_inline)) void NAME(narrow, SUFFIX)(const int mr, long width, const float *a, long a_row,
                                                                                long a_col, const float *b, long b_row, float *c,
                                                                                long c_row, long c_col, long k, int accumulate) {
  for (long j = 0; j < width; j++) {
    float acc[6] = {0};
    for (long p = 0; p < k; p++) {
      float bj = b[p * b_row + j];
      for (int r = 0; r < mr; r++) acc[r] += a[r * a_row + p * a_col] * bj;
    }
    for (int r = 0; r < mr; r++) {
      float *out = c + r * c_row + j * c_col;
      *out = (accumulate ? *out : 0.0f) + acc[r];
    }
  }
}

/// mr rows (a constant once inlined) across every column.
TARGET static inline __attribute__((always_inline)) void NAME(rows, SUFFIX)(const int mr, long n, const float *a, long a_row, long a_col,
                                                                              const float *b, long b_row, float *c, long c_row,
                                                                              long c_col, long k, int accumulate) {
  long j = 0;
  for (; j + 2 * LANES <= n; j += 2 * LANES)
    NAME(tile, SUFFIX)(mr, 2, a, a_row, a_col, b + j, b_row, c + j * c_col, c_row, c_col, k, accumulate);
  for (; j + LANES <= n; j += LANES)
    NAME(tile, SUFFIX)(mr, 1, a, a_row, a_col, b + j, b_row, c + j * c_col, c_row, c_col, k, accumulate);
  if (j < n) NAME(narrow, SUFFIX)(mr, n - j, a, a_row, a_col, b + j, b_row, c + j * c_col, c_row, c_col, k, accumulate);
}

TARGET static void NAME(strided, SUFFIX)(long m, long n, long k, const float *a, long a_row, long a_col, const float *b, long b_row,
                                         float *c, long c_row, long c_col, int accumulate) {
  long i = 0;
  for (; i + 6 <= m; i += 6) NAME(rows, SUFFIX)(6, n, a + i * a_row, a_row, a_col, b, b_row, c + i * c_row, c_row, c_col, k, accumulate);
  const float *ai = a + i * a_row;
  float *ci = c + i * c_row;
  switch (m - i) {
  case 5: NAME(rows, SUFFIX)(5, n, ai, a_row, a_col, b, b_row, ci, c_row, c_col, k, accumulate); break;
  case 4: NAME(rows, SUFFIX)(4, n, ai, a_row, a_col, b, b_row, ci, c_row, c_col, k, accumulate); break;
  case 3: NAME(rows, SUFFIX)(3, n, ai, a_row, a_col, b, b_row, ci, c_row, c_col, k, accumulate); break;
  case 2: NAME(rows, SUFFIX)(2, n, ai, a_row, a_col, b, b_row, ci, c_row, c_col, k, accumulate); break;
  case 1: NAME(rows, SUFFIX)(1, n, ai, a_row, a_col, b, b_row, ci, c_row, c_col, k, accumulate); break;
  default: break;
  }
}

/// Rows i..i+mr by columns j..j+nc of dot products along k (mr ≤ 4, nc ≤ 2 once inlined): each
/// vector of a row of a and of b loaded once for every product it takes part in.
TARGET static inline __attribute__((always_inline)) void NAME(dot_tile, SUFFIX)(const int mr, const int nc, long k, const float *a,
                                                                                  long lda, const float *b, long ldb, float *c,
                                                                                  long ldc, int accumulate) {
  VEC acc[4][2];
  for (int r = 0; r < mr; r++)
    for (int q = 0; q < nc; q++) acc[r][q] = (VEC){0};
  long p = 0;
  for (; p + LANES <= k; p += LANES) {
    VEC bv[2];
    for (int q = 0; q < nc; q++) bv[q] = NAME(load, SUFFIX)(b + q * ldb + p);
    for (int r = 0; r < mr; r++) {
      VEC av = NAME(load, SUFFIX)(a + r * lda + p);
      for (int q = 0; q < nc; q++) acc[r][q] += av * bv[q];
    }
  }
  for (int r = 0; r < mr; r++)
    for (int q = 0; q < nc; q++) {
      float sum = 0;
      for (int l = 0; l < LANES; l++) sum += acc[r][q][l];
      for (long t = p; t < k; t++) sum += a[r * lda + t] * b[q * ldb + t];
      float *out = c + r * ldc + q;
      *out = (accumulate ? *out : 0.0f) + sum;
    }
}

/// C(i, j) (+)= Σ_p a[i·lda + p]·b[j·ldb + p]: both operands along k, for a product with fewer
/// columns than a vector has lanes (a dense layer's forward product into a few outputs).
TARGET static void NAME(dots, SUFFIX)(long m, long n, long k, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                                      int accumulate) {
  long i = 0;
  for (; i + 4 <= m; i += 4) {
    long j = 0;
    for (; j + 2 <= n; j += 2) NAME(dot_tile, SUFFIX)(4, 2, k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
    if (j < n) NAME(dot_tile, SUFFIX)(4, 1, k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
  }
  for (; i < m; i++)
    for (long j = 0; j < n; j++) NAME(dot_tile, SUFFIX)(1, 1, k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
}

/// b `[n, k]` (row width ldb) into t `[k, n]`, in 8 × 8 blocks.
TARGET static void NAME(transpose, SUFFIX)(long n, long k, const float *b, long ldb, float *t) {
  for (long j0 = 0; j0 < n; j0 += 8)
    for (long p0 = 0; p0 < k; p0 += 8) {
      long j1 = j0 + 8 < n ? j0 + 8 : n, p1 = p0 + 8 < k ? p0 + 8 : k;
      for (long j = j0; j < j1; j++)
        for (long p = p0; p < p1; p++) t[p * n + j] = b[j * ldb + p];
    }
}

#undef VEC
#undef NAME
#undef NAME_
