/* Every tile of the pinned sgemm kernel, on both paths: calls the library's kernel
   (sgemm_kernel: one packed block of A times one packed block of B into C, as OpenBLAS's
   drivers call it) on every M <= 72 and N <= 40, for K values around each unrolling and
   blocking edge and two alphas, once on the AVX2 (Haswell) code and once on the AVX-512
   code, with the same random inputs, and counts the calls whose C differs in any byte.
   72 rows are nine 8-row blocks: enough for the first and last pairs, the 32-row tile of
   two middle pairs, a 16-row middle pair, an odd last block and leftover rows; 40 columns
   are three 12-column chunks and every remainder. Prints "<differing> <calls>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sgemm_kernel(long m, long n, long k, float alpha, float *a, float *b, float *c, long ldc);
int openblas_pinned_set_sgemm_path(int avx512);

static unsigned long long state = 88172645463325252ULL;

static float uniform(void)   /* xorshift64: the same inputs on every machine */
{
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return (float)((double)(state >> 40) / (double)(1 << 24) - 0.5);
}

int main(void)
{
  static const long ks[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 24, 31, 33, 64, 100, 320};
  static const float alphas[] = {1.0f, -0.37f};
  const long kmax = 320, mmax = 72, nmax = 40, ldc = mmax + 5;
  float *a = malloc(sizeof(float) * mmax * kmax), *b = malloc(sizeof(float) * nmax * kmax);
  float *c2 = malloc(sizeof(float) * ldc * nmax), *c5 = malloc(sizeof(float) * ldc * nmax);
  long calls = 0, differ = 0, i, m, n;
  size_t ki, ai;
  if (!a || !b || !c2 || !c5) return 2;
  for (i = 0; i < mmax * kmax; i++) a[i] = uniform();
  for (i = 0; i < nmax * kmax; i++) b[i] = uniform();
  if (openblas_pinned_set_sgemm_path(1) != 1) { puts("no-avx512"); return 0; }
  for (m = 1; m <= mmax; m++)
    for (n = 1; n <= nmax; n++)
      for (ki = 0; ki < sizeof ks / sizeof *ks; ki++)
        for (ai = 0; ai < 2; ai++) {
          for (i = 0; i < ldc * n; i++) c2[i] = c5[i] = uniform();
          openblas_pinned_set_sgemm_path(0);
          sgemm_kernel(m, n, ks[ki], alphas[ai], a, b, c2, ldc);
          openblas_pinned_set_sgemm_path(1);
          sgemm_kernel(m, n, ks[ki], alphas[ai], a, b, c5, ldc);
          calls++;
          differ += memcmp(c2, c5, sizeof(float) * ldc * n) != 0;
        }
  printf("%ld %ld\n", differ, calls);
  return 0;
}
