// moescope_bench_packed_gemm: whether packing bf16 weights once into oneDNN's preferred layout
// pays, against reading them in place in the checkpoint's plain [out, in] rows (oneDNN format
// `ba`), which is what the engine does (core/bf16_matmul.cpp).
//
// For each m (activation rows) and (n, k) (weight [n, k]):
//   plain:   oneDNN matmul, bf16 src [m, k] · weights `ba` → f32 dst [m, n];
//   packed:  the same with weights described as format_tag::any, reordered once (dnnl::reorder)
//            into the primitive's layout before timing;
//   engine:  Bf16MatMulTransposed with bf16 activations (adds the fp32 → bf16 conversion of x).
// For the expert shapes (n < k) also gate + up: two plain calls of [n, k] against one packed call
// over the two matrices stacked, [2n, k] (and two packed calls, to separate packing from fusing).
// Each figure is the fastest of N samples (the machine may be shared; BestSeconds). Prints one
// JSON line per shape.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <omp.h>
#include <nlohmann/json.hpp>
#include <oneapi/dnnl/dnnl.hpp>

#include "core/activation_precision.h"
#include "core/bf16_matmul.h"
#include "core/linear.h"
#include "core/model_weights.h"
#include "core/tensor.h"

namespace {

using Clock = std::chrono::steady_clock;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Seconds per call of each of fs: samples of the variants taken in turn, so that all see the
// same load, each sample the mean over enough calls to last about 2 ms (short, to fit between
// the other processes' time slices on a shared machine); the fastest sample of each is returned.
std::vector<double> BestSeconds(int samples, const std::vector<std::function<void()>>& fs) {
  std::vector<int> reps;
  for (const auto& f : fs) {
    f();  // warm-up: first touch of buffers, JIT of kernels
    const auto t0 = Clock::now();
    f();
    const double once = std::chrono::duration<double>(Clock::now() - t0).count();
    reps.push_back(std::max(1, static_cast<int>(0.002 / std::max(once, 1e-7))));
  }
  std::vector<double> best(fs.size(), std::numeric_limits<double>::infinity());
  for (int s = 0; s < samples; ++s)
    for (size_t i = 0; i < fs.size(); ++i) {
      const auto start = Clock::now();
      for (int r = 0; r < reps[i]; ++r) fs[i]();
      const double t = std::chrono::duration<double>(Clock::now() - start).count() / reps[i];
      best[i] = std::min(best[i], t);
    }
  return best;
}

std::vector<uint16_t> RandomBf16(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = moe::F32ToBF16(dist(gen));
  return v;
}

// One matmul of src [m, k] bf16 with weights [k, n] bf16 (plain `ba` rows of the checkpoint, or
// packed once from them) into dst [m, n] f32.
struct MatMul {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  dnnl::memory src, weights, dst, scratch;
  std::vector<uint8_t> scratch_bytes;
  double pack_seconds = 0;  // the one reorder into the packed layout (first touch included)

  MatMul(int64_t m, int64_t n, int64_t k, uint16_t* src_data, const uint16_t* w_rows,
         float* dst_data, bool packed) {
    const dnnl::memory::desc src_md({m, k}, dt::bf16, tag::ab);
    const dnnl::memory::desc plain_md({k, n}, dt::bf16, tag::ba);
    const dnnl::memory::desc w_md({k, n}, dt::bf16, packed ? tag::any : tag::ba);
    const dnnl::memory::desc dst_md({m, n}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_md, dst_md), attr, Engine());
    prim = dnnl::matmul(pd);
    src = dnnl::memory(pd.src_desc(), Engine(), src_data);
    dst = dnnl::memory(pd.dst_desc(), Engine(), dst_data);
    scratch_bytes.resize(std::max<size_t>(pd.scratchpad_desc().get_size(), 1));
    scratch = dnnl::memory(pd.scratchpad_desc(), Engine(), scratch_bytes.data());
    dnnl::memory plain(plain_md, Engine(), const_cast<uint16_t*>(w_rows));
    if (!packed) {
      weights = plain;
      return;
    }
    weights = dnnl::memory(pd.weights_desc(), Engine());  // oneDNN-owned packed copy
    dnnl::stream s(Engine());
    const auto start = Clock::now();
    dnnl::reorder(plain, weights).execute(s, plain, weights);
    s.wait();
    pack_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  }

  void Run(dnnl::stream& s) const {
    prim.execute(s, {{DNNL_ARG_SRC, src},
                     {DNNL_ARG_WEIGHTS, weights},
                     {DNNL_ARG_DST, dst},
                     {DNNL_ARG_SCRATCHPAD, scratch}});
    s.wait();
  }
};

struct Shape {
  int64_t n, k;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bf16 GEMMs with weights read in place against weights packed once (oneDNN)"};
  std::vector<int64_t> ms{16, 64, 128, 512};
  int samples = 50, threads = 1;
  app.add_option("--m", ms, "activation rows")->delimiter(',');
  app.add_option("--samples", samples, "samples per figure; the fastest is reported");
  app.add_option("--threads", threads, "OpenMP threads");
  // Expert gate/up and down of shapes S and M, and an attention projection of shape M.
  std::vector<std::string> shape_args{"352:1024", "1024:352", "688:2048", "2048:688", "2048:2048"};
  app.add_option("--shapes", shape_args, "weight shapes n:k (output width : input width)")
      ->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  moe::SetNumThreads(threads);

  std::vector<Shape> shapes;
  for (const std::string& a : shape_args) {
    const size_t colon = a.find(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "--shapes: '%s' is not n:k\n", a.c_str());
      return 1;
    }
    shapes.push_back({std::stoll(a.substr(0, colon)), std::stoll(a.substr(colon + 1))});
  }
  dnnl::stream stream(Engine());
  for (const Shape& sh : shapes) {
    const bool expert_in = sh.n < sh.k;  // a gate/up shape: fuse gate and up
    // [2n, k]: gate rows then up rows, as the two matrices would be stacked.
    const std::vector<uint16_t> w = RandomBf16(static_cast<size_t>(2 * sh.n * sh.k), 1);
    for (int64_t m : ms) {
      std::vector<uint16_t> x = RandomBf16(static_cast<size_t>(m * sh.k), 2);
      std::vector<float> xf(x.size());
      for (size_t i = 0; i < x.size(); ++i) xf[i] = moe::BF16ToF32(x[i]);
      std::vector<float> y(static_cast<size_t>(m * 2 * sh.n)), y2(y.size());

      const MatMul plain(m, sh.n, sh.k, x.data(), w.data(), y.data(), false);
      const MatMul packed(m, sh.n, sh.k, x.data(), w.data(), y.data(), true);
      const moe::Matrix wm{moe::DType::kBF16, w.data(), sh.n, sh.k};
      const std::vector<double> t =
          BestSeconds(samples, {[&] { plain.Run(stream); }, [&] { packed.Run(stream); },
                                [&] {
                                  moe::Bf16MatMulTransposed(xf.data(), m, wm, y.data(), false,
                                                            moe::ActivationPrecision::kBF16);
                                }});
      const double t_plain = t[0], t_packed = t[1], t_engine = t[2];
      const double flop = 2.0 * m * sh.n * sh.k;
      nlohmann::json out{{"m", m},
                         {"n", sh.n},
                         {"k", sh.k},
                         {"threads", threads},
                         {"samples", samples},
                         {"plain_impl", plain.pd.impl_info_str()},
                         {"packed_impl", packed.pd.impl_info_str()},
                         {"plain_us", t_plain * 1e6},
                         {"packed_us", t_packed * 1e6},
                         {"engine_us", t_engine * 1e6},
                         {"plain_gflops", flop / t_plain * 1e-9},
                         {"packed_gflops", flop / t_packed * 1e-9},
                         {"packed_speedup", t_plain / t_packed},
                         {"pack_once_us", packed.pack_seconds * 1e6}};
      if (expert_in) {
        // Up's rows follow gate's in w; its output goes to a second buffer.
        const MatMul plain_up(m, sh.n, sh.k, x.data(), w.data() + sh.n * sh.k, y2.data(), false);
        const MatMul packed_up(m, sh.n, sh.k, x.data(), w.data() + sh.n * sh.k, y2.data(), true);
        const MatMul fused(m, 2 * sh.n, sh.k, x.data(), w.data(), y.data(), true);
        const std::vector<double> g = BestSeconds(samples, {[&] {
                                                              plain.Run(stream);
                                                              plain_up.Run(stream);
                                                            },
                                                            [&] {
                                                              packed.Run(stream);
                                                              packed_up.Run(stream);
                                                            },
                                                            [&] { fused.Run(stream); }});
        const double t_two_plain = g[0], t_two_packed = g[1], t_fused = g[2];
        out["gate_up_two_plain_us"] = t_two_plain * 1e6;
        out["gate_up_two_packed_us"] = t_two_packed * 1e6;
        out["gate_up_fused_packed_us"] = t_fused * 1e6;
        out["gate_up_fused_speedup"] = t_two_plain / t_fused;
      }
      std::printf("%s\n", out.dump().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
