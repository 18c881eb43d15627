// Named-barrier ids of the decode kernel (0 is __syncthreads). Each name says what became true.
#pragma once

#include <cstdint>

namespace etap::decoding {

enum class NamedBarrier : uint32_t {
  kColumnMaxWritten = 1,  // + warpgroup: a consumer warpgroup's partial column maxima (or sums) are in smem
  kPFree = 3,        // both consumer warpgroups finished the previous Oᵀ += Vᵀ·Pᵀ: Pᵀ/alpha reusable
  kPReady = 4,       // Pᵀ and alpha of this page are in smem and visible to the async proxy
  kTailZeroed = 5,   // + warpgroup: V rows past seqlen are zeroed in this warpgroup's V boxes (transposed)
  kRowSumReady = 7,  // final softmax denominators of all columns are in smem
  kQPadZeroed = 8,   // padding rows of Q are zero (+ warpgroup, unless Sᵀ is split over d: both read all)
  kStagingRead = 11,      // FP8: the converter warps read the rows a group overwrites (fp8_convert.cuh)
  kScoresExchanged = 12,  // Sᵀ split over d: both warpgroups' partial Sᵀ halves are in smem (consumer.cuh)
  kQPermuted = 13,        // register FP8: Q rows read (then: written) by the k permutation (fp8_consumer.cuh)
};

__host__ __device__ constexpr uint32_t barrier_id(NamedBarrier b, int warpgroup = 0) {
  return static_cast<uint32_t>(b) + static_cast<uint32_t>(warpgroup);
}

}  // namespace etap::decoding
