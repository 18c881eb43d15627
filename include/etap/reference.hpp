// CPU reference for MLA decode: fp64 accumulation over the paged cache, exact softmax, causal MTP aligned
// bottom-right, empty requests (out = 0, lse = +inf). Multi-threaded over requests. It is what the tests,
// `etap check` and users compare the GPU kernel against.
#pragma once

#include <etap/export.h>

#include <cstdint>
#include <etap/etap.hpp>
#include <vector>

namespace etap::reference {

// 16-bit float bits <-> float (round to nearest even), for host-side data preparation.
ETAP_API float bf16_to_float(uint16_t bits);
ETAP_API uint16_t float_to_bf16(float value);
ETAP_API float fp16_to_float(uint16_t bits);
ETAP_API uint16_t float_to_fp16(float value);
ETAP_API float half_bits_to_float(uint16_t bits, DType dtype);  // dtype kBF16 or kFP16
ETAP_API uint16_t float_to_half_bits(float value, DType dtype);

// e4m3 (OCP FP8 E4M3, PyTorch's float8_e4m3fn): 1 sign, 4 exponent (bias 7), 3 mantissa bits; no
// infinities, S.1111.111 (0x7F, 0xFF) is NaN; largest finite ±448, smallest subnormal 2^-9. Decoding is
// exact for all 256 patterns. Encoding rounds to nearest even and saturates as PTX cvt.rn.satfinite does:
// finite values beyond ±448 and ±inf become ±448, NaN becomes 0x7F (0xFF if negative). (PyTorch's
// .to(float8_e4m3fn) does not saturate: it maps what overflows to NaN.)
ETAP_API float fp8_e4m3_to_float(uint8_t bits);
ETAP_API uint8_t float_to_fp8_e4m3(float value);

// A decode problem in host memory, dense layouts (the strides of make_dense_args).
struct HostProblem {
  DecodeProblem problem;
  const uint16_t* q = nullptr;  // [batch, s_q, h_q, d_qk] bits of problem.q_dtype
  // kv_format kDense: [num_pages, page_size, h_kv, d_qk] bits of problem.kv_dtype
  const uint16_t* kv_cache = nullptr;
  // FP8 formats (kv_dtype kFP8E4M3): [num_pages, page_size, h_kv, row] bytes, row = d_qk e4m3 values
  // (kFp8PerTensor) or one 656-byte Fp8DeepSeekV32Token.
  const uint8_t* kv_bytes = nullptr;
  float descale_k = 1.f;  // kFp8PerTensor: the value *DecodeArgs::descale_k holds (finite, > 0)
  const int32_t* block_table = nullptr;  // [batch, max_pages_per_seq]
  const int32_t* seqlens = nullptr;      // [batch]
  double softmax_scale = 0.0;
  bool causal = false;
  // problem.varlen_q: request i's queries are packed tokens [cu_seqlens_q[i], cu_seqlens_q[i + 1]) of
  // q [total_q, h_q, d_qk]; out is then [total_q, h_q, d_v] and lse [h_q, total_q] (problem.s_q bounds
  // every request's query tokens; causal is bottom-right aligned per request).
  const int32_t* cu_seqlens_q = nullptr;  // [batch + 1]
  int32_t total_q = 0;
};

// Every format is decoded to its exact dequantised values in fp64 (e4m3 · scale, bf16 RoPE) before the
// attention, so an FP8 cache gives the same results as any cache holding those values.
// out: [batch, s_q, h_q, d_v]; lse: [batch, h_q, s_q] in `base` (+inf for rows that see no key). Varlen:
// out [total_q, h_q, d_v], lse [h_q, total_q]; the rows of packed tokens no request owns stay 0 / +inf.
// threads = 0 uses all hardware threads. Never reads a cache slot at or past a request's seqlen, nor a
// block-table entry past its last used page.
// weighted_abs (optional, same layout as out): Σ_i p_i·|v_ic| with p_i the exact softmax weights of the row
// (0 for rows that see no key). It is ≥ |out| and scales the error of a kernel that rounds p_i to 16 bits
// before P·V, which does not shrink when out cancels to near 0 (testing::compare's bound).
ETAP_API void decode(const HostProblem& problem, std::vector<double>& out, std::vector<double>& lse,
                     LseBase base = LseBase::kNatural, int threads = 0,
                     std::vector<double>* weighted_abs = nullptr);

// LSE-weighted merge of partial states for one set of rows (CPU version of etap::merge_states).
// o_states: [num_states, rows, dim]; lse_states: [num_states, rows] in `base`; ±inf = empty state.
ETAP_API void merge_states(int num_states, int rows, int dim, const double* o_states,
                           const double* lse_states, LseBase base, double* out, double* lse_out);

}  // namespace etap::reference
