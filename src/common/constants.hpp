// Constants of the hardware and of the MLA shape, named once for the whole library.
#pragma once

#include <numbers>

namespace etap {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullWarpMask = 0xffffffffu;
inline constexpr float kLog2e = std::numbers::log2e_v<float>;
inline constexpr float kLn2 = std::numbers::ln2_v<float>;

}  // namespace etap

// The shape the kernels are built for (DeepSeek-V3 MLA): one latent KV head of 512 columns ‖ 64 RoPE
// columns, V = the first 512 columns of each cache row, 64-token pages.
namespace etap::mla {

inline constexpr int kDqk = 576;
inline constexpr int kDv = 512;
inline constexpr int kPageSize = 64;

}  // namespace etap::mla
