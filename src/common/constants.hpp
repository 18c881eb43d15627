// Constants of the hardware and of the MLA shape, named once for the whole library.
#pragma once

#include <numbers>

namespace etap {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullWarpMask = 0xffffffffu;
inline constexpr float kLog2e = std::numbers::log2e_v<float>;
inline constexpr float kLn2 = std::numbers::ln2_v<float>;

}  // namespace etap

// DeepSeek-V3's MLA shape (the defaults of DecodeProblem): one latent KV head of 512 columns ‖ 64 RoPE
// columns, V = the first 512 columns of each cache row.
namespace etap::mla {

inline constexpr int kDqk = 576;
inline constexpr int kDv = 512;

}  // namespace etap::mla

namespace etap::decoding {

// The kernel streams the KV cache in blocks of 64 tokens, one wgmma M tile, whatever the cache's page size.
inline constexpr int kBlockTokens = 64;

}  // namespace etap::decoding
