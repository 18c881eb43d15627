// tma_issue: how long a producer thread takes to issue one KV block's TMA loads, and when they land, as the
// decode kernel issues them (9 boxes of 64 tokens × 64 bf16 columns, 128B swizzle, one mbarrier per box) and
// as one 4-D load of the whole block (box 64 columns × 64 tokens × 9 column groups: the same 9 swizzled
// 8 KiB tiles in shared memory, one instruction, one mbarrier). Question from docs/PERF.md (2026-12-03e): the
// decode kernel's timeline shows 1–2 µs between the first page id in registers and the first block's last
// box issued, and box 0 landing before the last box is issued.
//
// One CTA per SM (the shared memory forces it), thread 0 issues `blocks` blocks of random pages back to back
// and stamps %globaltimer after each issue and after each landing. Build and run (device):
//   nvcc -O3 -std=c++20 -gencode=arch=compute_90a,code=sm_90a -I src -o /tmp/tma_issue \
//     bench/experiments/tma_issue/tma_issue.cu
//   /tmp/tma_issue
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "testing/cuda.hpp"  // ETAP_CUDA_CHECK (header-only)

namespace {

constexpr int kBoxes = 9, kTokens = 64, kCols = 64, kDqk = kBoxes * kCols;
constexpr int kBlocks = 2;  // blocks issued back to back (the decode ring's two stages)
constexpr int kBoxBytes = kTokens * kCols * 2;
constexpr int kBlockBytes = kBoxes * kBoxBytes;
constexpr int kSmemBytes = kBlocks * kBlockBytes + 1024 + 1024;  // + alignment + barriers
constexpr int kStamps = 2 * kBlocks * kBoxes;                    // issue and landing per box

__device__ __forceinline__ uint64_t now_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void bar_init(uint64_t* b, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void bar_expect(uint64_t* b, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(b)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void bar_wait(uint64_t* b, uint32_t parity) {
  asm volatile(
      "{\n .reg .pred p;\n W: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n @!p bra W;\n}\n" ::"r"(
          smem_addr(b)),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void tma_4d(void* dst, const CUtensorMap* map, int c0, int c1, int c2, int c3,
                                       uint64_t* b) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, "
      "%4, %5}], [%6];" ::"r"(smem_addr(dst)),
      "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(smem_addr(b))
      : "memory");
}

// mode 0: 9 boxes per block (map: cols, h_kv = 1, tokens, pages), one barrier each.
// mode 1: one 4-D box per block (map: cols, tokens, column group, pages), one barrier.
__global__ void __launch_bounds__(128, 1)
    issue_kernel(const __grid_constant__ CUtensorMap map, int mode, const int32_t* pages, uint64_t* out) {
  extern __shared__ __align__(1024) uint8_t raw[];
  uint8_t* tiles = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw) + 1023) & ~uintptr_t{1023});
  auto* bars = reinterpret_cast<uint64_t*>(tiles + kBlocks * kBlockBytes);
  if (threadIdx.x != 0) return;
  for (int i = 0; i < kBlocks * kBoxes; ++i) bar_init(&bars[i], 1);
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  asm volatile("prefetch.tensormap [%0];" ::"l"(&map) : "memory");
  int32_t page[kBlocks];
  for (int k = 0; k < kBlocks; ++k) page[k] = pages[blockIdx.x * kBlocks + k];
  uint64_t stamp[kStamps];
  const uint64_t t0 = now_ns();  // the page ids are in registers (the loop above waited for them)
  for (int k = 0; k < kBlocks; ++k) {
    uint8_t* block = tiles + k * kBlockBytes;
    if (mode == 0) {
      for (int b = 0; b < kBoxes; ++b) {
        bar_expect(&bars[k * kBoxes + b], kBoxBytes);
        tma_4d(block + b * kBoxBytes, &map, b * kCols, 0, 0, page[k], &bars[k * kBoxes + b]);
        stamp[k * kBoxes + b] = now_ns();
      }
    } else {
      bar_expect(&bars[k * kBoxes], kBlockBytes);
      tma_4d(block, &map, 0, 0, 0, page[k], &bars[k * kBoxes]);
      for (int b = 0; b < kBoxes; ++b) stamp[k * kBoxes + b] = now_ns();
    }
  }
  for (int k = 0; k < kBlocks; ++k)
    for (int b = 0; b < kBoxes; ++b) {
      if (mode == 0 || b == 0) bar_wait(&bars[k * kBoxes + b], 0);
      stamp[kBlocks * kBoxes + k * kBoxes + b] = now_ns();
    }
  for (int i = 0; i < kStamps; ++i) out[blockIdx.x * kStamps + i] = stamp[i] - t0;
}

using EncodeFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                              const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                              CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

CUtensorMap make_map(EncodeFn encode, void* kv, int num_pages, int mode) {
  CUtensorMap map;
  const cuuint64_t row = kDqk * 2, page = static_cast<uint64_t>(kTokens) * row;
  cuuint64_t dims[4], strides[3];
  cuuint32_t box[4], elem[4] = {1, 1, 1, 1};
  if (mode == 0) {  // cols, head (1), tokens, pages: box 64 × 1 × 64 × 1
    dims[0] = kDqk, dims[1] = 1, dims[2] = kTokens, dims[3] = num_pages;
    strides[0] = row, strides[1] = row, strides[2] = page;
    box[0] = kCols, box[1] = 1, box[2] = kTokens, box[3] = 1;
  } else {  // cols (64), tokens, column group (9), pages: box 64 × 64 × 9 × 1
    dims[0] = kCols, dims[1] = kTokens, dims[2] = kBoxes, dims[3] = num_pages;
    strides[0] = row, strides[1] = kCols * 2, strides[2] = page;
    box[0] = kCols, box[1] = kTokens, box[2] = kBoxes, box[3] = 1;
  }
  const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 4, kv, dims, strides, box, elem,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    std::fprintf(stderr, "cuTensorMapEncodeTiled (mode %d) failed: %d\n", mode, static_cast<int>(r));
    std::exit(1);
  }
  return map;
}

// Mean, not median: %globaltimer advances in steps of ~0.25 µs on this card (docs/PERF.md timeline), and the
// mean over many CTAs and runs resolves below one step.
double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

}  // namespace

int main() {
  int sms = 0;
  ETAP_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  int l2 = 0;
  ETAP_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult q;
  ETAP_CUDA_CHECK(
      cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q));
  const auto encode = reinterpret_cast<EncodeFn>(fn);
  const int num_pages = 16384;  // 1.2 GB of KV
  void* kv = nullptr;
  ETAP_CUDA_CHECK(cudaMalloc(&kv, static_cast<size_t>(num_pages) * kBlockBytes));
  ETAP_CUDA_CHECK(cudaMemset(kv, 0x3c, static_cast<size_t>(num_pages) * kBlockBytes));
  void* flush = nullptr;
  ETAP_CUDA_CHECK(cudaMalloc(&flush, size_t{2} * static_cast<size_t>(l2)));
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> pick(0, num_pages - 1);
  std::vector<int32_t> pages(static_cast<size_t>(sms) * kBlocks);
  int32_t* d_pages = nullptr;
  ETAP_CUDA_CHECK(cudaMalloc(&d_pages, pages.size() * 4));
  uint64_t* d_out = nullptr;
  ETAP_CUDA_CHECK(cudaMalloc(&d_out, static_cast<size_t>(sms) * kStamps * 8));
  ETAP_CUDA_CHECK(
      cudaFuncSetAttribute(issue_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  std::printf("SMs %d; block = %d boxes of %d B; %d blocks issued back to back; L2 flushed before each run\n",
              sms, kBoxes, kBoxBytes, kBlocks);
  std::printf("%-8s %5s | %-44s | %-44s\n", "mode", "CTAs", "issued after (us): box 0, box 8, blk1 box 8",
              "landed after (us): box 0, box 8, blk1 box 8");
  for (int mode = 0; mode < 2; ++mode) {
    const CUtensorMap map = make_map(encode, kv, num_pages, mode);
    for (int ctas : {1, 16, sms}) {
      std::vector<std::vector<double>> col(6);
      for (int rep = 0; rep < 20; ++rep) {
        for (auto& p : pages) p = pick(rng);
        ETAP_CUDA_CHECK(cudaMemcpy(d_pages, pages.data(), pages.size() * 4, cudaMemcpyHostToDevice));
        ETAP_CUDA_CHECK(cudaMemset(flush, rep, size_t{2} * static_cast<size_t>(l2)));
        issue_kernel<<<ctas, 128, kSmemBytes>>>(map, mode, d_pages, d_out);
        ETAP_CUDA_CHECK(cudaGetLastError());
        std::vector<uint64_t> out(static_cast<size_t>(ctas) * kStamps);
        ETAP_CUDA_CHECK(cudaMemcpy(out.data(), d_out, out.size() * 8, cudaMemcpyDeviceToHost));
        for (int c = 0; c < ctas; ++c) {
          const uint64_t* s = out.data() + static_cast<size_t>(c) * kStamps;
          const int land = kBlocks * kBoxes;
          const int at[6] = {0, kBoxes - 1, 2 * kBoxes - 1, land, land + kBoxes - 1, land + 2 * kBoxes - 1};
          for (int i = 0; i < 6; ++i) col[i].push_back(s[at[i]] / 1000.0);
        }
      }
      std::printf("%-8s %5d | %12.2f %12.2f %12.2f       | %12.2f %12.2f %12.2f\n",
                  mode == 0 ? "9 boxes" : "1 box", ctas, mean(col[0]), mean(col[1]), mean(col[2]),
                  mean(col[3]), mean(col[4]), mean(col[5]));
    }
  }
  std::printf("(means over 20 runs x CTAs; times from the first issue's start, %%globaltimer)\n");
  return 0;
}
