// A drop-in im2col_cpu<float> / col2im_cpu<float> for Caffe: same results bit for bit (a
// copy is a copy; col2im adds in Caffe's order), faster on the CPU.
//
// Caffe's loops test every element against the image border and run on one thread; for
// FCN-8s at 500x500 (conv1_2 on a 698x698 map writes a 1.1 GB column buffer) that is a
// large share of the gap to the sgemm bound. Here the border is worked out once per
// (kernel row, kernel column): zeros, one contiguous copy (stride 1) or a strided gather,
// zeros; channels are split between hardware threads (std::thread, so no OpenMP pool is
// left spinning against OpenBLAS's threads).
//
// The benchmark builds it as a shared library and puts it in front of libcaffe with
// LD_PRELOAD (the symbols below have the mangled names of Caffe's explicit instantiations,
// and libcaffe reaches them through its PLT), so the lever is measured in real Caffe
// without a rebuild. As a recipe patch it would replace the two float loops in
// src/caffe/util/im2col.cpp. Thread count: FCN_IM2COL_THREADS, else all hardware threads.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace caffe {

template <typename Dtype>
void im2col_cpu(const Dtype* data_im, const int channels, const int height, const int width,
                const int kernel_h, const int kernel_w, const int pad_h, const int pad_w,
                const int stride_h, const int stride_w, const int dilation_h,
                const int dilation_w, Dtype* data_col);

template <typename Dtype>
void col2im_cpu(const Dtype* data_col, const int channels, const int height, const int width,
                const int kernel_h, const int kernel_w, const int pad_h, const int pad_w,
                const int stride_h, const int stride_w, const int dilation_h,
                const int dilation_w, Dtype* data_im);

}  // namespace caffe

namespace {

struct Geometry {
  int height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilation_h,
      dilation_w, output_h, output_w;
  // output columns [lo, hi) read inside the image for kernel column kj
  void columns(int kj, int* lo, int* hi) const {
    const int offset = -pad_w + kj * dilation_w;  // input column of output column 0
    int first = offset >= 0 ? 0 : (-offset + stride_w - 1) / stride_w;
    int end = width - offset <= 0 ? 0 : (width - offset + stride_w - 1) / stride_w;
    *lo = std::min(first, output_w);
    *hi = std::max(*lo, std::min(end, output_w));
  }
};

Geometry geometry(int height, int width, int kernel_h, int kernel_w, int pad_h, int pad_w,
                  int stride_h, int stride_w, int dilation_h, int dilation_w) {
  Geometry g{height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w,
             dilation_h, dilation_w, 0, 0};
  g.output_h = (height + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
  g.output_w = (width + 2 * pad_w - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1;
  return g;
}

int thread_count(int channels, size_t work) {
  static const int available = [] {
    const char* env = std::getenv("FCN_IM2COL_THREADS");
    int n = env ? std::atoi(env) : static_cast<int>(std::thread::hardware_concurrency());
    return std::max(1, n);
  }();
  // threads only pay off on large maps (starting one costs tens of microseconds)
  if (work < (1u << 18)) return 1;
  return std::max(1, std::min(available, channels));
}

template <typename Body>
void over_channels(int channels, size_t work, Body body) {
  const int threads = thread_count(channels, work);
  if (threads == 1) {
    body(0, channels);
    return;
  }
  std::vector<std::thread> pool;
  const int per = (channels + threads - 1) / threads;
  for (int t = 1; t < threads; ++t) {
    const int begin = t * per, end = std::min(channels, begin + per);
    if (begin < end) pool.emplace_back(body, begin, end);
  }
  body(0, std::min(channels, per));
  for (auto& th : pool) th.join();
}

void im2col_channels(const float* data_im, const Geometry& g, int begin, int end,
                     float* data_col) {
  const size_t plane = static_cast<size_t>(g.output_h) * g.output_w;
  for (int c = begin; c < end; ++c) {
    const float* image = data_im + static_cast<size_t>(c) * g.height * g.width;
    float* col = data_col + static_cast<size_t>(c) * g.kernel_h * g.kernel_w * plane;
    for (int ki = 0; ki < g.kernel_h; ++ki) {
      for (int kj = 0; kj < g.kernel_w; ++kj, col += plane) {
        int lo, hi;
        g.columns(kj, &lo, &hi);
        const int col_offset = -g.pad_w + kj * g.dilation_w;
        for (int oy = 0; oy < g.output_h; ++oy) {
          float* out = col + static_cast<size_t>(oy) * g.output_w;
          const int row = -g.pad_h + ki * g.dilation_h + oy * g.stride_h;
          if (row < 0 || row >= g.height) {
            std::memset(out, 0, sizeof(float) * g.output_w);
            continue;
          }
          std::memset(out, 0, sizeof(float) * lo);
          const float* in = image + static_cast<size_t>(row) * g.width + col_offset;
          if (g.stride_w == 1) {
            std::memcpy(out + lo, in + lo, sizeof(float) * (hi - lo));
          } else {
            for (int ox = lo; ox < hi; ++ox) out[ox] = in[ox * g.stride_w];
          }
          std::memset(out + hi, 0, sizeof(float) * (g.output_w - hi));
        }
      }
    }
  }
}

// Adds in Caffe's order for each image pixel: channel, kernel row, kernel column, output
// row, output column; a pixel's sum only ever mixes terms of its own channel, so splitting
// by channel keeps every sum's order and the result bit-exact.
void col2im_channels(const float* data_col, const Geometry& g, int begin, int end,
                     float* data_im) {
  const size_t plane = static_cast<size_t>(g.output_h) * g.output_w;
  for (int c = begin; c < end; ++c) {
    float* image = data_im + static_cast<size_t>(c) * g.height * g.width;
    std::memset(image, 0, sizeof(float) * g.height * g.width);
    const float* col = data_col + static_cast<size_t>(c) * g.kernel_h * g.kernel_w * plane;
    for (int ki = 0; ki < g.kernel_h; ++ki) {
      for (int kj = 0; kj < g.kernel_w; ++kj, col += plane) {
        int lo, hi;
        g.columns(kj, &lo, &hi);
        const int col_offset = -g.pad_w + kj * g.dilation_w;
        for (int oy = 0; oy < g.output_h; ++oy) {
          const int row = -g.pad_h + ki * g.dilation_h + oy * g.stride_h;
          if (row < 0 || row >= g.height) continue;
          const float* in = col + static_cast<size_t>(oy) * g.output_w;
          float* out = image + static_cast<size_t>(row) * g.width + col_offset;
          if (g.stride_w == 1) {
            for (int ox = lo; ox < hi; ++ox) out[ox] += in[ox];
          } else {
            for (int ox = lo; ox < hi; ++ox) out[ox * g.stride_w] += in[ox];
          }
        }
      }
    }
  }
}

}  // namespace

namespace caffe {

template <>
void im2col_cpu<float>(const float* data_im, const int channels, const int height,
                       const int width, const int kernel_h, const int kernel_w,
                       const int pad_h, const int pad_w, const int stride_h,
                       const int stride_w, const int dilation_h, const int dilation_w,
                       float* data_col) {
  const Geometry g = geometry(height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
                              stride_w, dilation_h, dilation_w);
  const size_t work = static_cast<size_t>(channels) * kernel_h * kernel_w * g.output_h *
                      g.output_w;
  over_channels(channels, work, [&](int begin, int end) {
    im2col_channels(data_im, g, begin, end, data_col);
  });
}

template <>
void col2im_cpu<float>(const float* data_col, const int channels, const int height,
                       const int width, const int kernel_h, const int kernel_w,
                       const int pad_h, const int pad_w, const int stride_h,
                       const int stride_w, const int dilation_h, const int dilation_w,
                       float* data_im) {
  const Geometry g = geometry(height, width, kernel_h, kernel_w, pad_h, pad_w, stride_h,
                              stride_w, dilation_h, dilation_w);
  const size_t work = static_cast<size_t>(channels) * kernel_h * kernel_w * g.output_h *
                      g.output_w;
  over_channels(channels, work, [&](int begin, int end) {
    col2im_channels(data_col, g, begin, end, data_im);
  });
}

}  // namespace caffe
