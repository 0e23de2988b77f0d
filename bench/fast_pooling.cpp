// Caffe's MAX pooling forward, the same loops, with the (image, channel) planes split over
// hardware threads: results and the argmax mask are bit-identical (each output scans its
// window in Caffe's order and keeps the first maximum), and FCN-8s's pool1 on a
// 64x698x698 map stops being a single-threaded 95 ms step.
//
// Like fast_im2col.cpp it is measured by LD_PRELOAD: the definition below has the mangled
// name of PoolingLayer<float>::Forward_cpu, which libcaffe's vtable reaches through a
// symbolic relocation. Other pooling methods go to Caffe's own code (dlsym RTLD_NEXT).
// The library must not bind any of libcaffe's data symbols at load time (only functions,
// bound lazily), so the pooling method is read off the layer's blobs, not its protobuf.
// pycaffe loads libcaffe with RTLD_LOCAL, so on first use libcaffe is promoted to the
// global scope (dlopen RTLD_NOLOAD | RTLD_GLOBAL) for this library's calls into it.
// Thread count: FCN_POOL_THREADS, else all hardware threads.
#include <dlfcn.h>

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "caffe/layers/pooling_layer.hpp"

namespace {

using ForwardFn = void (*)(void*, const std::vector<caffe::Blob<float>*>&,
                           const std::vector<caffe::Blob<float>*>&);

const char kForwardSymbol[] =
    "_ZN5caffe12PoolingLayerIfE11Forward_cpuERKSt6vectorIPNS_4BlobIfEESaIS5_EES9_";

bool caffe_visible() {
  static const bool ok = [] {
    void* handle = dlopen("libcaffe.so.1.0.0", RTLD_NOLOAD | RTLD_GLOBAL | RTLD_LAZY);
    if (handle == nullptr) std::fprintf(stderr, "fast_pooling: libcaffe is not loaded\n");
    return handle != nullptr;
  }();
  return ok;
}

int pool_threads(size_t work, int planes) {
  static const int available = [] {
    const char* env = std::getenv("FCN_POOL_THREADS");
    int n = env ? std::atoi(env) : static_cast<int>(std::thread::hardware_concurrency());
    return std::max(1, n);
  }();
  if (work < (1u << 16)) return 1;
  return std::max(1, std::min(available, planes));
}

}  // namespace

namespace caffe {

template <>
void PoolingLayer<float>::Forward_cpu(const vector<Blob<float>*>& bottom,
                                      const vector<Blob<float>*>& top) {
  // MAX is the method whose Reshape sized max_idx_ like the top (or that has a mask top);
  // reading pooling_param() here would bind protobuf data symbols libcaffe keeps local.
  const bool max_pooling = top.size() > 1 || (max_idx_.count() == top[0]->count() &&
                                               top[0]->count() > 0);
  if (!max_pooling || !caffe_visible()) {
    static const ForwardFn original =
        reinterpret_cast<ForwardFn>(dlsym(RTLD_NEXT, kForwardSymbol));
    original(this, bottom, top);
    return;
  }
  const float* bottom_data = bottom[0]->cpu_data();
  float* top_data = top[0]->mutable_cpu_data();
  const bool use_top_mask = top.size() > 1;
  float* top_mask = use_top_mask ? top[1]->mutable_cpu_data() : nullptr;
  int* mask = use_top_mask ? nullptr : max_idx_.mutable_cpu_data();
  const int planes = bottom[0]->num() * channels_;
  const int in_plane = height_ * width_, out_plane = pooled_height_ * pooled_width_;

  auto run = [&](int begin, int end) {
    for (int p = begin; p < end; ++p) {
      const float* in = bottom_data + static_cast<size_t>(p) * in_plane;
      float* out = top_data + static_cast<size_t>(p) * out_plane;
      float* out_top_mask = use_top_mask ? top_mask + static_cast<size_t>(p) * out_plane
                                         : nullptr;
      int* out_mask = use_top_mask ? nullptr : mask + static_cast<size_t>(p) * out_plane;
      for (int ph = 0; ph < pooled_height_; ++ph) {
        for (int pw = 0; pw < pooled_width_; ++pw) {
          int hstart = ph * stride_h_ - pad_h_, wstart = pw * stride_w_ - pad_w_;
          const int hend = std::min(hstart + kernel_h_, height_);
          const int wend = std::min(wstart + kernel_w_, width_);
          hstart = std::max(hstart, 0);
          wstart = std::max(wstart, 0);
          const int pool_index = ph * pooled_width_ + pw;
          float best = -FLT_MAX;
          int best_index = -1;
          for (int h = hstart; h < hend; ++h) {
            for (int w = wstart; w < wend; ++w) {
              const int index = h * width_ + w;
              if (in[index] > best) {
                best = in[index];
                best_index = index;
              }
            }
          }
          out[pool_index] = best;
          if (use_top_mask) {
            out_top_mask[pool_index] = static_cast<float>(best_index);
          } else {
            out_mask[pool_index] = best_index;
          }
        }
      }
    }
  };

  const int threads = pool_threads(static_cast<size_t>(planes) * in_plane, planes);
  if (threads == 1) {
    run(0, planes);
    return;
  }
  std::vector<std::thread> pool;
  const int per = (planes + threads - 1) / threads;
  for (int t = 1; t < threads; ++t) {
    const int begin = t * per, end = std::min(planes, begin + per);
    if (begin < end) pool.emplace_back(run, begin, end);
  }
  run(0, std::min(planes, per));
  for (auto& th : pool) th.join();
}

}  // namespace caffe
