// Row-major single-precision GEMM over OpenBLAS (the `scipy-openblas32` wheel).
//
// Usage:
//   // c[m, n] = a[m, k] * b[k, n]
//   sn::cpu::sgemm(false, false, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
//
// Note [BLAS symbols]
// The wheel renames every CBLAS symbol with a `scipy_` prefix (scipy_cblas_sgemm) so that
// it never clashes with another BLAS loaded into the same Python process. Its header is
// plain `cblas.h` in the wheel's include directory, which the build puts on the include
// path. The library takes 32-bit indices (blasint is int), so every dimension is checked
// to fit before the call.
#pragma once

#include <cblas.h>

#include <cstdint>
#include <limits>
#include <string>

#include "core/errors.h"

namespace sn::cpu {

inline blasint to_blasint(int64_t v) {
  // Checked in every build type: a silently truncated dimension computes garbage.
  SN_ASSERT(v >= 0 && v <= std::numeric_limits<blasint>::max(),
            "matrix dimension " + std::to_string(v) + " exceeds 32-bit BLAS indices");
  return static_cast<blasint>(v);
}

// c = alpha * op(a) * op(b) + beta * c, all row-major; op(a) is [m, k], op(b) is [k, n].
// lda, ldb, ldc are row strides (in floats) of the matrices as stored.
inline void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc) {
  scipy_cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, to_blasint(m), to_blasint(n),
                    to_blasint(k), alpha, a, to_blasint(lda), b, to_blasint(ldb), beta, c,
                    to_blasint(ldc));
}

}  // namespace sn::cpu
