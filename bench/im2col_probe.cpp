// Times im2col_cpu / col2im_cpu on one layer's shape and prints one JSON line, with a hash
// of the results. bench/flags.py links it with Caffe's own src/caffe/util/im2col.cpp built
// with the build's flags, with candidate flags, and with bench/fast_im2col.cpp, so each
// lever on the convolution's non-GEMM work is measured, and checked bit-exact, without
// rebuilding Caffe.
// usage: im2col_probe CHANNELS HEIGHT WIDTH KERNEL PAD STRIDE REPEATS
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "caffe/util/im2col.hpp"

namespace {

// FNV-1a over the bytes: equal hashes across builds mean bit-identical results
unsigned long long fnv1a(const std::vector<float>& v) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(v.data());
  unsigned long long h = 1469598103934665603ULL;
  for (size_t i = 0; i < v.size() * sizeof(float); ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename F>
double time_ms(F f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: %s CHANNELS HEIGHT WIDTH KERNEL PAD STRIDE REPEATS\n", argv[0]);
    return 2;
  }
  const int c = std::atoi(argv[1]), h = std::atoi(argv[2]), w = std::atoi(argv[3]);
  const int k = std::atoi(argv[4]), pad = std::atoi(argv[5]), stride = std::atoi(argv[6]);
  const int repeats = std::atoi(argv[7]);
  const int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
  std::vector<float> image(static_cast<size_t>(c) * h * w);
  std::vector<float> col(static_cast<size_t>(c) * k * k * oh * ow);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<float>(i % 97) - 48.0f;
  std::vector<double> forward, backward;
  for (int r = 0; r <= repeats; ++r) {  // the first pass is a warm-up (page faults)
    double f = time_ms([&] {
      caffe::im2col_cpu(image.data(), c, h, w, k, k, pad, pad, stride, stride, 1, 1, col.data());
    });
    double b = time_ms([&] {
      caffe::col2im_cpu(col.data(), c, h, w, k, k, pad, pad, stride, stride, 1, 1,
                        image.data());
    });
    if (r > 0) {
      forward.push_back(f);
      backward.push_back(b);
    }
  }
  std::printf("{\"im2col_ms\": %.4f, \"col2im_ms\": %.4f, \"col_bytes\": %zu, "
              "\"hash\": \"%016llx%016llx\"}\n", median(forward), median(backward),
              col.size() * sizeof(float), fnv1a(col), fnv1a(image));
  return 0;
}
