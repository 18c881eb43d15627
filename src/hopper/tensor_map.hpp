// Host-side creation of TMA tensor maps (cuTensorMapEncodeTiled, reached through the runtime's driver
// entry point, looked up once per process, so that no -lcuda is needed). Maps are built per call and passed
// by value to the kernel.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

namespace etap::hopper {

enum class TmaElement { k16Bit, k8Bit };
// kNone: the box lands as dense rows of box[0] elements (the FP8 staging buffer, fp8_staging.hpp).
enum class TmaSwizzle { k128B, kNone };

// A tiled map (128B-swizzled unless `swizzle` says otherwise) over a tensor of `rank` (≤ 5) dimensions,
// innermost first. dims[i]: extent; strides_bytes[i]: byte stride of dimension i+1 (multiples of 16); box[i]:
// box extent.
struct TensorMapSpec {
  const void* base = nullptr;
  int rank = 0;
  uint64_t dims[5] = {};
  uint64_t strides_bytes[4] = {};
  uint32_t box[5] = {};
  TmaElement element = TmaElement::k16Bit;
  TmaSwizzle swizzle = TmaSwizzle::k128B;
  int l2_promotion_bytes = 128;  // 0, 64, 128 or 256: L2 fetch granularity of the map's requests
};

// Encodes `spec` into `map`; on failure returns cudaErrorInvalidValue and describes why in *error.
cudaError_t encode_tensor_map(const TensorMapSpec& spec, CUtensorMap* map, std::string* error);

}  // namespace etap::hopper
