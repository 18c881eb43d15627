// The index maps of the register-operand FP8 consumer (decode/kernel/fp8_fragment_maps.hpp), emulated on the
// host lane by lane: what each thread loads (fp8_fragments.cuh) is the element the wgmma A fragment layout
// expects there, the permuted products equal the plain ones, and the loads are free of bank conflicts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "common/fp8.hpp"
#include "decode/kernel/fp8_fragment_maps.hpp"

namespace etap {
namespace {

using namespace decoding::fp8_fragments;

constexpr int kRowBytes = 64, kTokens = 64, kBoxBytes = kRowBytes * kTokens;

TEST(Fp8FragmentMaps, PiAndTauAreBijectionsWithTheirInverses) {
  std::set<int> pis, taus;
  for (int l = 0; l < 64; ++l) {
    EXPECT_EQ(pi_inverse(pi(l)), l);
    EXPECT_EQ(tau_inverse(tau(l)), l);
    EXPECT_EQ(pi(pi_inverse(l)), l);
    EXPECT_EQ(tau(tau_inverse(l)), l);
    pis.insert(pi(l));
    taus.insert(tau(l));
  }
  EXPECT_EQ(pis.size(), 64u);
  EXPECT_EQ(taus.size(), 64u);
  EXPECT_EQ(*pis.rbegin(), 63);
  EXPECT_EQ(*taus.rbegin(), 63);
}

TEST(Fp8FragmentMaps, SigmaCoversEveryChannelOnce) {
  std::vector<int> seen(512, 0);
  for (int wg = 0; wg < 2; ++wg)
    for (int t = 0; t < 4; ++t)
      for (int row = 0; row < 64; ++row) ++seen[static_cast<std::size_t>(sigma(wg, t, row))];
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }));
}

// The A fragment layout (PTX ISA, wgmma register A, 16-bit): lane (g, q) of warp w holds (row, k) =
// (16w + g + 8 h, k_of(q, e)) for register e / 2 · 2 + h.
TEST(Fp8FragmentMaps, KFragmentsReadThePermutedChannel) {
  // Thread (w, g, q), k-step j of a box, element e: byte 16q + 4j + e of its row (word j of its 16-byte
  // load), which must be the channel pi of the logical column the fragment puts there.
  for (int q = 0; q < 4; ++q)
    for (int j = 0; j < 4; ++j)
      for (int e = 0; e < 4; ++e) EXPECT_EQ(pi(kStepK * j + k_of(q, e)), 16 * q + 4 * j + e);
  // The k set of a quad lane: e = 0, 1 are a0's (a1's) halves, e = 2, 3 a2's (a3's).
  for (int k = 0; k < kStepK; ++k) EXPECT_EQ(k_of(quad_of(k), element_of(k)), k);
}

// Sᵀ with the permuted operands: K read as the thread reads it, Q permuted in smem (Q_smem[l] = Q[pi(l)]).
TEST(Fp8FragmentMaps, PermutedDotProductEqualsThePlainOne) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> v(-9, 9);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<int> k(576), q(576);
    for (auto& x : k) x = v(rng);
    for (auto& x : q) x = v(rng);
    long plain = 0, permuted = 0;
    for (int d = 0; d < 576; ++d) plain += long{k[d]} * q[d];
    for (int box = 0; box < 9; ++box)
      for (int l = 0; l < 64; ++l) {
        const int q_smem = q[64 * box + pi(l)];
        // the fragment element at logical column l: thread quad_of(l % 16), k-step l / 16, element
        // element_of(l % 16) reads byte 16 quad + 4 j + e of the box
        const int byte = 16 * quad_of(l % kStepK) + 4 * (l / kStepK) + element_of(l % kStepK);
        permuted += long{k[64 * box + byte]} * q_smem;
      }
    EXPECT_EQ(permuted, plain);
  }
}

// Oᵀ: thread (w, g, q) of warpgroup wg reads token 16j + 4e + q, bytes [8g, +8) of box 4wg + w; byte
// 2t + h is row 16w + g + 8h of tile t (channel sigma), its logical kv 16j + k_of(q, e) (token tau).
TEST(Fp8FragmentMaps, VFragmentsReadThePermutedTokenAndChannel) {
  for (int wg = 0; wg < 2; ++wg)
    for (int w = 0; w < 4; ++w)
      for (int g = 0; g < 8; ++g)
        for (int t = 0; t < 4; ++t)
          for (int h = 0; h < 2; ++h) {
            const int row = 16 * w + g + 8 * h;
            const int channel = 64 * (4 * wg + w) + 8 * g + 2 * t + h;
            EXPECT_EQ(sigma(wg, t, row), channel);
          }
  for (int j = 0; j < 4; ++j)
    for (int q = 0; q < 4; ++q)
      for (int e = 0; e < 4; ++e) EXPECT_EQ(tau(kStepK * j + k_of(q, e)), kStepK * j + 4 * e + q);
}

// O = Σ_kv P·V with Pᵀ stored at tau_inverse(token) and V read at token tau(l): the plain product.
TEST(Fp8FragmentMaps, PermutedValueProductEqualsThePlainOne) {
  std::mt19937 rng(4);
  std::uniform_int_distribution<int> v(-9, 9);
  std::vector<int> p(64), val(64);
  for (auto& x : p) x = v(rng);
  for (auto& x : val) x = v(rng);
  std::vector<int> p_smem(64);
  for (int token = 0; token < 64; ++token) p_smem[static_cast<std::size_t>(tau_inverse(token))] = p[token];
  long plain = 0, permuted = 0;
  for (int token = 0; token < 64; ++token) plain += long{p[token]} * val[token];
  for (int l = 0; l < 64; ++l) permuted += long{p_smem[l]} * val[tau(l)];
  EXPECT_EQ(permuted, plain);
}

// Shared memory: 32 banks of 4 bytes. A warp's request takes max over banks of the distinct 4-byte words
// there — per 128-byte wavefront for vector accesses: the minimum is bytes / 128.
int wavefronts(const std::vector<int>& byte_addresses, int width) {
  std::set<int> words;
  for (int a : byte_addresses)
    for (int b = 0; b < width; b += 4) words.insert((a + b) / 4);
  std::vector<std::set<int>> per_bank(32);
  for (int word : words) per_bank[static_cast<std::size_t>(word % 32)].insert(word);
  std::size_t most = 0;
  for (const auto& bank : per_bank) most = std::max(most, bank.size());
  return static_cast<int>(most);
}

TEST(Fp8FragmentMaps, LoadsAreFreeOfBankConflicts) {
  for (int w = 0; w < 4; ++w) {
    // K: one 16-byte load per lane of row 16w + g (and + 8), byte 16q.
    for (int h = 0; h < 2; ++h) {
      std::vector<int> k;
      for (int lane = 0; lane < 32; ++lane)
        k.push_back((16 * w + lane / 4 + 8 * h) * kRowBytes + 16 * (lane % 4));
      EXPECT_EQ(wavefronts(k, 16), 4);  // 512 bytes
    }
    // The half box (8 bytes at 16q + 8 wg): every other 8 bytes of the same 512, so as many wavefronts as
    // the whole 16-byte load (2-way over the 256 bytes it uses; once per block and row, against 8 boxes).
    for (int half = 0; half < 2; ++half) {
      std::vector<int> k;
      for (int lane = 0; lane < 32; ++lane)
        k.push_back(4 * kBoxBytes + (16 * w + lane / 4) * kRowBytes + 16 * (lane % 4) + 8 * half);
      EXPECT_EQ(wavefronts(k, 8), 4);
    }
  }
  // V: token 16j + 4e + q, bytes 8g: per (j, e) 256 contiguous bytes.
  for (int j = 0; j < 4; ++j)
    for (int e = 0; e < 4; ++e) {
      std::vector<int> v;
      for (int lane = 0; lane < 32; ++lane)
        v.push_back((16 * j + 4 * e + lane % 4) * kRowBytes + 8 * (lane / 4));
      EXPECT_EQ(wavefronts(v, 8), 2);
    }
}

// The V pair selectors: byte `byte` of two tokens' words → the pair the bf16 placement and the fp16 cvt take.
TEST(Fp8FragmentMaps, PairSelectorsPickOneByteOfEachToken) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 1000; ++trial) {
    const uint32_t a = rng(), b = rng();
    for (unsigned byte = 0; byte < 4; ++byte) {
      const uint32_t ca = (a >> (8 * byte)) & 0xFFu, cb = (b >> (8 * byte)) & 0xFFu;
      const uint32_t ext = fp8::prmt(a, b, pair_select_sign_extended(byte));
      EXPECT_EQ(fp8::bf16x2_placed_from_sign_extended(ext),
                fp8::e4m3x2_placed_bits<fp8::kBf16MantissaBits>(ca | cb << 16));
      EXPECT_EQ(fp8::prmt(a, b, pair_select(byte)) & 0xFFFFu, ca | cb << 8);
    }
  }
}

}  // namespace
}  // namespace etap
