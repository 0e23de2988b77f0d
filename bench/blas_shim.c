/* A libopenblas.so.0 for Caffe that forwards to numpy's bundled OpenBLAS (a newer release
 * than the distribution's: scipy-openblas, 64-bit integers, symbols prefixed scipy_ and
 * suffixed 64_). Only the 14 CBLAS functions libcaffe.so imports (nm -D --undefined-only)
 * and OpenBLAS's self-description are provided.
 *
 * It lets the benchmark measure "a newer OpenBLAS" as a lever through LD_LIBRARY_PATH,
 * with nothing installed and Caffe untouched. bench/levers.py builds it:
 *   cc -O2 -shared -fPIC blas_shim.c -o DIR/libopenblas.so.0 NUMPY_OPENBLAS -Wl,-rpath,...
 */
#include <stdint.h>

typedef int64_t blasint64;

/* the ILP64 entry points of numpy's OpenBLAS */
float scipy_cblas_sasum64_(blasint64 n, const float* x, blasint64 incx);
double scipy_cblas_dasum64_(blasint64 n, const double* x, blasint64 incx);
void scipy_cblas_saxpy64_(blasint64 n, float a, const float* x, blasint64 incx, float* y,
                          blasint64 incy);
void scipy_cblas_daxpy64_(blasint64 n, double a, const double* x, blasint64 incx, double* y,
                          blasint64 incy);
void scipy_cblas_scopy64_(blasint64 n, const float* x, blasint64 incx, float* y,
                          blasint64 incy);
void scipy_cblas_dcopy64_(blasint64 n, const double* x, blasint64 incx, double* y,
                          blasint64 incy);
float scipy_cblas_sdot64_(blasint64 n, const float* x, blasint64 incx, const float* y,
                          blasint64 incy);
double scipy_cblas_ddot64_(blasint64 n, const double* x, blasint64 incx, const double* y,
                           blasint64 incy);
void scipy_cblas_sscal64_(blasint64 n, float a, float* x, blasint64 incx);
void scipy_cblas_dscal64_(blasint64 n, double a, double* x, blasint64 incx);
void scipy_cblas_sgemv64_(int order, int trans, blasint64 m, blasint64 n, float alpha,
                          const float* a, blasint64 lda, const float* x, blasint64 incx,
                          float beta, float* y, blasint64 incy);
void scipy_cblas_dgemv64_(int order, int trans, blasint64 m, blasint64 n, double alpha,
                          const double* a, blasint64 lda, const double* x, blasint64 incx,
                          double beta, double* y, blasint64 incy);
void scipy_cblas_sgemm64_(int order, int ta, int tb, blasint64 m, blasint64 n, blasint64 k,
                          float alpha, const float* a, blasint64 lda, const float* b,
                          blasint64 ldb, float beta, float* c, blasint64 ldc);
void scipy_cblas_dgemm64_(int order, int ta, int tb, blasint64 m, blasint64 n, blasint64 k,
                          double alpha, const double* a, blasint64 lda, const double* b,
                          blasint64 ldb, double beta, double* c, blasint64 ldc);
char* scipy_openblas_get_config64_(void);
char* scipy_openblas_get_corename64_(void);
int scipy_openblas_get_num_threads64_(void);

float cblas_sasum(int n, const float* x, int incx) { return scipy_cblas_sasum64_(n, x, incx); }
double cblas_dasum(int n, const double* x, int incx) {
  return scipy_cblas_dasum64_(n, x, incx);
}
void cblas_saxpy(int n, float a, const float* x, int incx, float* y, int incy) {
  scipy_cblas_saxpy64_(n, a, x, incx, y, incy);
}
void cblas_daxpy(int n, double a, const double* x, int incx, double* y, int incy) {
  scipy_cblas_daxpy64_(n, a, x, incx, y, incy);
}
void cblas_scopy(int n, const float* x, int incx, float* y, int incy) {
  scipy_cblas_scopy64_(n, x, incx, y, incy);
}
void cblas_dcopy(int n, const double* x, int incx, double* y, int incy) {
  scipy_cblas_dcopy64_(n, x, incx, y, incy);
}
float cblas_sdot(int n, const float* x, int incx, const float* y, int incy) {
  return scipy_cblas_sdot64_(n, x, incx, y, incy);
}
double cblas_ddot(int n, const double* x, int incx, const double* y, int incy) {
  return scipy_cblas_ddot64_(n, x, incx, y, incy);
}
void cblas_sscal(int n, float a, float* x, int incx) { scipy_cblas_sscal64_(n, a, x, incx); }
void cblas_dscal(int n, double a, double* x, int incx) { scipy_cblas_dscal64_(n, a, x, incx); }
void cblas_sgemv(int order, int trans, int m, int n, float alpha, const float* a, int lda,
                 const float* x, int incx, float beta, float* y, int incy) {
  scipy_cblas_sgemv64_(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
void cblas_dgemv(int order, int trans, int m, int n, double alpha, const double* a, int lda,
                 const double* x, int incx, double beta, double* y, int incy) {
  scipy_cblas_dgemv64_(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float* a,
                 int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  scipy_cblas_sgemm64_(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha,
                 const double* a, int lda, const double* b, int ldb, double beta, double* c,
                 int ldc) {
  scipy_cblas_dgemm64_(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
char* openblas_get_config(void) { return scipy_openblas_get_config64_(); }
char* openblas_get_corename(void) { return scipy_openblas_get_corename64_(); }
int openblas_get_num_threads(void) { return scipy_openblas_get_num_threads64_(); }
