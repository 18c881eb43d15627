// The FP8 converter warps' conversions (src/decode/kernel/fp8_dequant.cuh) on the GPU, exhaustively: every
// pair of e4m3 codes in both pairs of a 32-bit word, against the host's exact e4m3 values — bf16 (prmt
// sign extension, shift, mask, bf16x2 rebias), fp16 (cvt.rn.f16x2.e4m3x2) and DeepSeek-V3.2's scaled bf16
// (fp32 product, one rounding, then RN to bf16), bit for bit. NaN codes: ±480 for bf16, NaN otherwise.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <etap/reference.hpp>
#include <vector>

#include "decode/kernel/fp8_dequant.cuh"
#include "gpu/gpu_test_util.hpp"

namespace {

using etap::DType;
using etap::reference::float_to_half_bits;
using etap::reference::fp8_e4m3_to_float;
using etap::reference::half_bits_to_float;

__global__ void convert_words(const uint32_t* words, int n, float scale, uint2* bf16, uint2* fp16,
                              uint2* scaled) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  bf16[i] = etap::decoding::e4m3x4_to<__nv_bfloat16>(words[i]);
  fp16[i] = etap::decoding::e4m3x4_to<__half>(words[i]);
  scaled[i] = etap::decoding::e4m3x4_scaled_bf16(words[i], scale);
}

bool is_nan_code(uint32_t code) {
  return (code & 0x7F) == 0x7F;
}

uint16_t half_of(const uint2& v, int i) {
  const uint32_t w = i < 2 ? v.x : v.y;
  return static_cast<uint16_t>(i % 2 == 0 ? w & 0xFFFF : w >> 16);
}

class Fp8DequantGpu : public ::testing::TestWithParam<float> {};

TEST_P(Fp8DequantGpu, EveryCodePairMatchesTheHostBitForBit) {
  ETAP_REQUIRE_SM90();
  const float scale = GetParam();
  // Pair (a, b) as codes 0, 1 and again as codes 2, 3, next to other codes.
  std::vector<uint32_t> words;
  for (uint32_t a = 0; a < 256; ++a)
    for (uint32_t b = 0; b < 256; ++b) {
      const uint32_t other = ((a * 7 + b * 13) & 0xFF) | ((a ^ b) & 0xFF) << 8;
      words.push_back(a | b << 8 | other << 16);
      words.push_back(other | a << 16 | b << 24);
    }
  const int n = static_cast<int>(words.size());
  etap::test::DeviceBuffer d_words(words.size() * 4), d_bf16(words.size() * 8), d_fp16(words.size() * 8),
      d_scaled(words.size() * 8);
  ETAP_CUDA_OK(cudaMemcpy(d_words.get(), words.data(), words.size() * 4, cudaMemcpyHostToDevice));
  convert_words<<<(n + 255) / 256, 256>>>(
      static_cast<const uint32_t*>(d_words.get()), n, scale, static_cast<uint2*>(d_bf16.get()),
      static_cast<uint2*>(d_fp16.get()), static_cast<uint2*>(d_scaled.get()));
  ETAP_CUDA_OK(cudaGetLastError());
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  std::vector<uint2> bf16(words.size()), fp16(words.size()), scaled(words.size());
  ETAP_CUDA_OK(cudaMemcpy(bf16.data(), d_bf16.get(), words.size() * 8, cudaMemcpyDeviceToHost));
  ETAP_CUDA_OK(cudaMemcpy(fp16.data(), d_fp16.get(), words.size() * 8, cudaMemcpyDeviceToHost));
  ETAP_CUDA_OK(cudaMemcpy(scaled.data(), d_scaled.get(), words.size() * 8, cudaMemcpyDeviceToHost));

  for (size_t w = 0; w < words.size(); ++w)
    for (int i = 0; i < 4; ++i) {
      const uint32_t code = (words[w] >> (8 * i)) & 0xFF;
      const float value = fp8_e4m3_to_float(static_cast<uint8_t>(code));
      if (is_nan_code(code)) {
        ASSERT_EQ(std::fabs(half_bits_to_float(half_of(bf16[w], i), DType::kBF16)), 480.f) << code;
        ASSERT_TRUE(std::isnan(half_bits_to_float(half_of(fp16[w], i), DType::kFP16))) << code;
        ASSERT_TRUE(std::isnan(half_bits_to_float(half_of(scaled[w], i), DType::kBF16))) << code;
        continue;
      }
      ASSERT_EQ(half_of(bf16[w], i), float_to_half_bits(value, DType::kBF16))
          << "word " << w << " code " << code;
      ASSERT_EQ(half_of(fp16[w], i), float_to_half_bits(value, DType::kFP16))
          << "word " << w << " code " << code;
      const float product = value * scale;  // fp32, as the kernel: one rounding, then RN to bf16
      ASSERT_EQ(half_of(scaled[w], i), float_to_half_bits(product, DType::kBF16))
          << "word " << w << " code " << code << " scale " << scale;
    }
}

// Scales: 1 (exact), short and long mantissas, beyond 2^8, tiny (fp32 products near the subnormal range).
INSTANTIATE_TEST_SUITE_P(Scales, Fp8DequantGpu,
                         ::testing::Values(1.f, 0.0123f, 3700.5f, 0x1p-100f, 0.3333333f));

}  // namespace
