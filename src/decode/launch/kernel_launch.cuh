// Host side of the kernel instantiations: tensor maps, shared-memory opt-in, launch (programmatic dependent
// launch, hopper/launch.hpp), and the choice of N.
// Only the instantiation files (src/decode/kernel/kernel_*.cu, the benchmark's baseline) include this
// definition, so that each kernel is compiled once; the launcher sees kernel_launch.hpp.
#pragma once

#include <etap/etap.hpp>
#include <string>
#include <type_traits>

#include "decode/kernel/fp8_consumer.cuh"
#include "decode/kernel/fp8_staging.hpp"
#include "decode/kernel/kernel.cuh"
#include "decode/launch/kernel_launch.hpp"
#include "hopper/launch.hpp"
#include "hopper/tensor_map.hpp"

namespace etap::decoding {

// L2 fetch granularity of the KV map: a 64×64 box reads 128 bytes of each 1152-byte cache row. Measured on an
// H200 (docs/PERF.md v5, b = 16, 64K tokens): 312 µs with 256 B, 295 µs with 128 B, 296 µs with none.
inline constexpr int kKvL2PromotionBytes = 128;

// Tensor maps of q (box: 64 columns × the row tile's heads × its tokens) and the KV cache (box: 64 columns ×
// 1 head × box_tokens tokens), built per call: they depend on the caller's pointers.
inline cudaError_t make_tensor_maps(const DecodeArgs& args, const KernelParams& params, int box_cols,
                                    int box_tokens, CUtensorMap* q_map, CUtensorMap* kv_map,
                                    CUtensorMap* rope_map) {
  const DecodeProblem& pb = args.problem;
  std::string error;
  hopper::TensorMapSpec q{};
  q.base = args.q;
  q.rank = 4;  // d, head, token, request
  q.dims[0] = pb.d_qk;
  q.dims[1] = pb.h_q;
  // Varlen: one "request" of total_q packed tokens; the box's token coordinate is cu_seqlens_q[i] + token0.
  q.dims[2] = pb.varlen_q ? args.total_q : pb.s_q;
  q.dims[3] = pb.varlen_q ? 1 : pb.batch;
  q.strides_bytes[0] = args.q_head_stride * 2;
  q.strides_bytes[1] = args.q_seq_stride * 2;
  q.strides_bytes[2] = (pb.varlen_q ? args.q_seq_stride * args.total_q : args.q_batch_stride) * 2;
  q.box[0] = box_cols;
  q.box[1] = params.tiling.tile_heads;
  q.box[2] = params.tiling.tile_tokens;
  q.box[3] = 1;
  if (cudaError_t e = hopper::encode_tensor_map(q, q_map, &error); e != cudaSuccess) return e;

  hopper::TensorMapSpec kv{};
  kv.base = args.kv_cache;
  kv.rank = 4;  // d, head, token in page, page
  kv.dims[0] = pb.d_qk;
  kv.dims[1] = pb.h_kv;
  kv.dims[2] = pb.page_size;
  kv.dims[3] = pb.num_pages;
  kv.strides_bytes[0] = args.kv_head_stride * 2;
  kv.strides_bytes[1] = args.kv_token_stride * 2;
  kv.strides_bytes[2] = args.kv_page_stride * 2;
  kv.box[0] = box_cols;
  kv.box[1] = 1;
  kv.box[2] = box_tokens;
  kv.box[3] = 1;
  kv.l2_promotion_bytes = kKvL2PromotionBytes;
  if (pb.kv_format == KvFormat::kDense) {
    if (cudaError_t e = hopper::encode_tensor_map(kv, kv_map, &error); e != cudaSuccess) return e;
    *rope_map = *kv_map;  // unused
    return cudaSuccess;
  }
  // FP8 (fp8_load.cuh): the cache as bytes, strides in bytes, dense 64-byte boxes into the staging ...
  const int64_t row_bytes = pb.kv_format == KvFormat::kFp8DeepSeekV32 ? Fp8DeepSeekV32Token::kBytes : pb.d_qk;
  hopper::TensorMapSpec bytes = kv;
  bytes.element = hopper::TmaElement::k8Bit;
  bytes.swizzle = hopper::TmaSwizzle::kNone;
  bytes.dims[0] = static_cast<uint64_t>(row_bytes);
  bytes.strides_bytes[0] = args.kv_head_stride;
  bytes.strides_bytes[1] = args.kv_token_stride;
  bytes.strides_bytes[2] = args.kv_page_stride;
  bytes.box[0] = Fp8Staging<false>::kRowBytes;
  if (cudaError_t e = hopper::encode_tensor_map(bytes, kv_map, &error); e != cudaSuccess) return e;
  if (pb.kv_format != KvFormat::kFp8DeepSeekV32) {
    *rope_map = *kv_map;  // unused
    return cudaSuccess;
  }
  // ... and V3.2's token as bf16 elements (328 of them), whose RoPE box lands 128B-swizzled in ring box 8.
  hopper::TensorMapSpec rope = bytes;
  rope.element = hopper::TmaElement::k16Bit;
  rope.swizzle = hopper::TmaSwizzle::k128B;
  rope.dims[0] = static_cast<uint64_t>(row_bytes / 2);
  rope.box[0] = static_cast<uint32_t>(box_cols);
  return hopper::encode_tensor_map(rope, rope_map, &error);
}

// Tokens of one KV TMA box: a whole block, a page-aligned chunk, or (gather: the map is not read) one token.
inline int kv_box_tokens(const KernelParams& params) {
  switch (params.kv_load) {
    case KvLoad::kWholeBlocks:
      return kBlockTokens;
    case KvLoad::kChunks:
      return params.chunk_tokens;
    case KvLoad::kGather:
      break;
  }
  return 1;
}

// One instantiation of etap_decode_kernel: N query rows per CTA, element type T, head dims Dims, consumer
// warpgroups ConsumerT. Grid: (parts, row tiles).
// kRegisterFp8Allowed: config.hpp (false: a consumer of the 16-bit ring on a per-tensor FP8 cache).
template <int kN, typename T, class Dims, template <class> class ConsumerT, bool kTiled = false,
          CacheFormat kFormat = CacheFormat::kDense, bool kRegisterFp8Allowed = true>
cudaError_t launch_etap_kernel(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                               cudaStream_t stream) {
  using Cfg = KernelConfig<kN, T, Dims, kTiled, kFormat, kRegisterFp8Allowed>;
  CUtensorMap q_map, kv_map, rope_map;
  if (cudaError_t e =
          make_tensor_maps(args, params, Cfg::kBoxCols, kv_box_tokens(params), &q_map, &kv_map, &rope_map);
      e != cudaSuccess)
    return e;
  constexpr int smem_bytes = sizeof(SharedStorage<Cfg>);
  auto kernel = etap_decode_kernel<Cfg, ConsumerT>;
  static common::PerDevice<bool> opted_in;  // this kernel's shared-memory opt-in, per device
  const hopper::LaunchShape shape{dim3(num_parts, params.tiling.num_tiles), dim3(Cfg::kThreads), smem_bytes};
  return hopper::launch_with_smem_opt_in(kernel, smem_bytes, opted_in, [&] {
    return hopper::launch_programmatic(kernel, shape, stream, q_map, kv_map, rope_map, params);
  });
}

template <typename T, class Dims, bool kTiled, CacheFormat kFormat = CacheFormat::kDense,
          template <class> class ConsumerT = Consumer>
cudaError_t launch_for_rows(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                            cudaStream_t stream) {
  switch (rows_per_cta(params.tiling.tile_rows())) {
    case 16:
      return launch_etap_kernel<16, T, Dims, ConsumerT, kTiled, kFormat>(args, params, num_parts, stream);
    case 32:
      return launch_etap_kernel<32, T, Dims, ConsumerT, kTiled, kFormat>(args, params, num_parts, stream);
    case 48:
      return launch_etap_kernel<48, T, Dims, ConsumerT, kTiled, kFormat>(args, params, num_parts, stream);
    case 64:
      return launch_etap_kernel<64, T, Dims, ConsumerT, kTiled, kFormat>(args, params, num_parts, stream);
    default:
      return cudaErrorNotSupported;
  }
}

// One tile (h_kv = 1, s_q·h_q ≤ 64): the untiled kernels (CtaRows<false>). Varlen always runs the tiled
// ones: only CtaRows<true> narrows its tile to each request's query tokens (the FP8 launcher once took the
// untiled kernels for one-tile varlen problems, which failed on an H200, 2026-12-02).
inline bool untiled_kernels(const KernelParams& params) {
  return params.tiling.num_tiles == 1 && params.cu_seqlens_q == nullptr;
}

template <typename T, class Dims>
cudaError_t launch_decode_kernel(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                                 cudaStream_t stream) {
  return untiled_kernels(params) ? launch_for_rows<T, Dims, false>(args, params, num_parts, stream)
                                 : launch_for_rows<T, Dims, true>(args, params, num_parts, stream);
}

// The FP8 consumer of a configuration: Fp8Consumer on an e4m3 ring where Cfg::kRegisterFp8 (per-tensor,
// N ≤ kRegisterFp8MaxRows, config.hpp), else the converter path's Consumer (64-row tiles, V3.2).
template <class Cfg>
using Fp8ConsumerOf = std::conditional_t<Cfg::kRegisterFp8, Fp8Consumer<Cfg>, Consumer<Cfg>>;

template <typename T, CacheFormat kFormat>
cudaError_t launch_fp8_kernel(const DecodeArgs& args, const KernelParams& params, int32_t num_parts,
                              cudaStream_t stream) {
  return untiled_kernels(params)
             ? launch_for_rows<T, DimsMla, false, kFormat, Fp8ConsumerOf>(args, params, num_parts, stream)
             : launch_for_rows<T, DimsMla, true, kFormat, Fp8ConsumerOf>(args, params, num_parts, stream);
}

}  // namespace etap::decoding
