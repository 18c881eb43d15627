// Placeholder until the ETAP kernel lands: decode reports kUnsupported-equivalent CUDA error.
#include "decode/launch.hpp"

namespace etap::decode {

cudaError_t launch_decode(const DecodeArgs&, const int32_t*, PlanParams, void*, cudaStream_t) {
  return cudaErrorNotSupported;
}

cudaError_t launch_decode_padded(const DecodeArgs&, const int32_t*, PlanParams, void*, cudaStream_t) {
  return cudaErrorNotSupported;
}

}  // namespace etap::decode
