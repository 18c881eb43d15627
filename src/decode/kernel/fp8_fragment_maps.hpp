// Index maps of the register-operand FP8 consumer (fp8_consumer.cuh, bench/experiments/fp8_critical_path.md
// 2(d)): which e4m3 byte of a ring box each thread turns into which element of a wgmma A fragment.
//
// The A fragment of wgmma m64nNk16 with 16-bit A in registers (PTX ISA §9.7.15.5.1, the layout
// hopper::pack_fragment builds): warp w of the warpgroup holds rows 16w .. 16w + 15; lane ℓ, g = ℓ / 4,
// q = ℓ % 4, holds a0 = (row g, k 2q, 2q + 1), a1 = (row g + 8, the same k), a2 = (row g, k 2q + 8, 2q + 9),
// a3 = (row g + 8, the same k); the lower k in the low half. Element e = 0..3 of the thread's k set in that
// order (a0/a1's two, then a2/a3's two) is logical k = 2q + (e & 1) + 8 (e >> 1) of the k-step.
//
// A sum over k is invariant under a permutation applied to both operands, so the consumer picks the
// permutations that make each thread's bytes contiguous in shared memory:
//   Sᵀ = K·Qᵀ (rows = tokens, k = d): inside every 64-column box, logical column 16j + k_e (k-step j) is
//     physical byte pi = 16q + 4j + e. A thread's 16 codes of a row are bytes [16q, 16q + 16): one 16-byte
//     load per row and box; word j is k-step j. Q is permuted the same way in shared memory.
//   Oᵀ = Vᵀ·Pᵀ (rows = d, k = tokens): logical kv 16j + k_e is physical token tau = 16j + 4e + q; Pᵀ is
//     written with the same map. Row h·8 + g + 16w of Oᵀ tile t of warpgroup wg is d = sigma =
//     256 wg + 64 w + 8 g + 2 t + h: a thread's 8 rows are 8 contiguous bytes of one token, warp w reads
//     only box 4 wg + w, and the epilogue stores the 8 d values of a column at once.
#pragma once

#include "common/host_device.hpp"

namespace etap::decoding::fp8_fragments {

inline constexpr int kBoxColumns = 64;  // a ring box: 64 e4m3 channels per token
inline constexpr int kStepK = 16;       // k of one wgmma

// Logical k (within a k-step) of element e = 0..3 of quad lane q's k set.
ETAP_HD constexpr int k_of(int q, int e) {
  return 2 * q + (e & 1) + 8 * (e >> 1);
}
// The inverse: which (q, e) holds logical k (0..15) of a k-step.
ETAP_HD constexpr int quad_of(int k) {
  return (k % 8) / 2;
}
ETAP_HD constexpr int element_of(int k) {
  return (k & 1) | ((k / 8) << 1);
}

// Sᵀ: physical byte of logical column l of a 64-column box, and back.
ETAP_HD constexpr int pi(int l) {
  const int j = l / kStepK, k = l % kStepK;
  return 16 * quad_of(k) + 4 * j + element_of(k);
}
ETAP_HD constexpr int pi_inverse(int b) {
  const int q = b / 16, j = (b % 16) / 4, e = b % 4;
  return kStepK * j + k_of(q, e);
}

// Oᵀ: physical token of logical kv l of a 64-token block, and back.
ETAP_HD constexpr int tau(int l) {
  const int j = l / kStepK, k = l % kStepK;
  return kStepK * j + 4 * element_of(k) + quad_of(k);
}
ETAP_HD constexpr int tau_inverse(int token) {
  const int j = token / kStepK, e = (token % kStepK) / 4, q = token % 4;
  return kStepK * j + k_of(q, e);
}

// Oᵀ: channel d of accumulator row `row` (0..63) of tile t (0..3) of warpgroup wg.
ETAP_HD constexpr int sigma(int wg, int t, int row) {
  const int w = row / 16, g = row % 8, h = (row % 16) / 8;
  return 256 * wg + 64 * w + 8 * g + 2 * t + h;
}

// prmt selectors (PTX ISA §9.7.8.7, common/fp8.hpp prmt) of the V pairs: byte `byte` of a (the low half) and
// of b (the high half). Sign-extended, for bf16 (fp8::bf16x2_placed_from_sign_extended): [byte, its sign,
// byte of b, its sign], as fp8::kSignExtendLow does for codes 0, 1 of one word. Plain, for fp16's
// cvt.rn.f16x2.e4m3x2, which reads the low 16 bits only.
ETAP_HD constexpr unsigned pair_select_sign_extended(unsigned byte) {
  return byte | (byte | 8u) << 4 | (byte + 4u) << 8 | ((byte + 4u) | 8u) << 12;
}
ETAP_HD constexpr unsigned pair_select(unsigned byte) {
  return byte | (byte + 4u) << 4;
}

}  // namespace etap::decoding::fp8_fragments
