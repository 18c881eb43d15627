// The scales an FP8 kernel folds in instead of applying them per element: kFp8PerTensor's e4m3 values are
// converted unscaled (exact, fp8_convert.cuh), so its one scale multiplies the logits and, at the epilogue, O
// (O = Σ P·(v·d) / l = d · Σ P·v / l; the LSE does not see it). An engine's query scale (descale_q)
// multiplies the logits of either format. Dense kernels never read these.
#pragma once

#include <type_traits>

#include "decode/kernel/config.hpp"
#include "decode/kernel/params.hpp"

namespace etap::decoding {

struct FoldedScales {
  float logits;  // scale_log2 · descale_k · descale_q
  float out;     // descale_k (1 for V3.2: its scales are applied by the converter)
};

// Dense kernels hold nothing (their consumers read p.scale_log2 where they always did).
struct NoFoldedScales {};
template <class Cfg>
using FoldedScalesOf = std::conditional_t<Cfg::kFp8, FoldedScales, NoFoldedScales>;

// Reads device memory: call after griddepcontrol.wait (an earlier kernel may write the scales).
template <class Cfg>
__device__ __forceinline__ FoldedScalesOf<Cfg> folded_scales(const KernelParams& p) {
  if constexpr (!Cfg::kFp8) {
    return {};
  } else {
    FoldedScales s{p.scale_log2, 1.f};
    if constexpr (Cfg::kFormat == CacheFormat::kFp8PerTensor) {
      s.out = *p.descale_k;
      s.logits *= s.out;
    }
    if (p.descale_q != nullptr) s.logits *= *p.descale_q;
    return s;
  }
}

// The logit scale (log2 units) and the O scale of the epilogue.
template <class Cfg>
__device__ __forceinline__ float logit_scale(const KernelParams& p, const FoldedScalesOf<Cfg>& s) {
  if constexpr (Cfg::kFp8)
    return s.logits;
  else
    return p.scale_log2;
}
template <class Cfg>
__device__ __forceinline__ float out_scale(const FoldedScalesOf<Cfg>& s) {
  if constexpr (Cfg::kFp8)
    return s.out;
  else
    return 1.f;
}

}  // namespace etap::decoding
