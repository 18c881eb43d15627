#include "hopper/tensor_map.hpp"

#include <cudaTypedefs.h>

namespace etap::hopper {
namespace {

PFN_cuTensorMapEncodeTiled_v12000 look_up_encode() {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult result{};
  if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &result) !=
          cudaSuccess ||
      result != cudaDriverEntryPointSuccess) {
    return nullptr;
  }
  return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
}

// The driver's entry point, looked up once per process (a thread-safe static: the driver a process has
// loaded does not change), not once per map. Null when the driver lacks it.
PFN_cuTensorMapEncodeTiled_v12000 encode_entry_point() {
  static const PFN_cuTensorMapEncodeTiled_v12000 encode = look_up_encode();
  return encode;
}

}  // namespace

cudaError_t encode_tensor_map(const TensorMapSpec& spec, CUtensorMap* map, std::string* error) {
  auto encode = encode_entry_point();
  if (encode == nullptr) {
    if (error) *error = "cuTensorMapEncodeTiled is not available from the CUDA driver";
    return cudaErrorInvalidValue;
  }
  cuuint32_t element_strides[5] = {1, 1, 1, 1, 1};
  const CUtensorMapDataType type =
      spec.element == TmaElement::k16Bit ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_UINT8;
  const CUtensorMapL2promotion promotion = spec.l2_promotion_bytes >= 256 ? CU_TENSOR_MAP_L2_PROMOTION_L2_256B
                                           : spec.l2_promotion_bytes >= 128
                                               ? CU_TENSOR_MAP_L2_PROMOTION_L2_128B
                                           : spec.l2_promotion_bytes >= 64 ? CU_TENSOR_MAP_L2_PROMOTION_L2_64B
                                                                           : CU_TENSOR_MAP_L2_PROMOTION_NONE;
  const CUresult r = encode(
      map, type, static_cast<cuuint32_t>(spec.rank), const_cast<void*>(spec.base),
      reinterpret_cast<const cuuint64_t*>(spec.dims), reinterpret_cast<const cuuint64_t*>(spec.strides_bytes),
      reinterpret_cast<const cuuint32_t*>(spec.box), element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
      spec.swizzle == TmaSwizzle::k128B ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE, promotion,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    if (error) *error = "cuTensorMapEncodeTiled failed with CUresult " + std::to_string(static_cast<int>(r));
    return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

}  // namespace etap::hopper
