// GPU unit tests of the Hopper primitives (src/hopper), each against a CPU loop: TMA tensor maps and tiled
// loads with 128B swizzle, the mbarrier pipeline, the wgmma descriptor with K-major and MN-major operands,
// named barriers and setmaxnreg.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gpu/gpu_test_util.hpp"
#include "hopper/barrier.cuh"
#include "hopper/fence.cuh"
#include "hopper/pipeline.cuh"
#include "hopper/regs.cuh"
#include "hopper/smem_desc.cuh"
#include "hopper/tensor_map.hpp"
#include "hopper/tma.cuh"
#include "hopper/wgmma.cuh"

namespace {

using namespace etap::hopper;

constexpr int kTile = 64;  // 64 rows × 64 columns of 16-bit elements = one 128B-swizzled box

template <typename T>
float to_float(T v) {
  return static_cast<float>(v);
}

template <typename T>
std::vector<T> random_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

using ::etap::test::DeviceBuffer;

// ---- TMA + mbarrier + swizzle addressing -------------------------------------------------------------

struct alignas(1024) TmaTile {
  __nv_bfloat16 data[kTile * kTile];
  uint64_t full;
};

// Loads box (col, row, page) of a [pages, 64, 576] tensor and writes it back un-swizzled.
__global__ void tma_roundtrip_kernel(const __grid_constant__ CUtensorMap map, int col, int page,
                                     __nv_bfloat16* out) {
  extern __shared__ __align__(1024) uint8_t raw[];
  auto& tile = *reinterpret_cast<TmaTile*>(raw);
  if (threadIdx.x == 0) {
    mbarrier_init(&tile.full, 1);
    fence_barrier_init();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    mbarrier_arrive_expect_tx(&tile.full, sizeof(tile.data));
    tma_load_3d(tile.data, &map, col, 0, page, &tile.full);
  }
  mbarrier_wait(&tile.full, 0);
  const auto* bytes = reinterpret_cast<const uint8_t*>(tile.data);
  for (int i = threadIdx.x; i < kTile * kTile; i += blockDim.x) {
    const int r = i / kTile, c = i % kTile;
    out[i] = *reinterpret_cast<const __nv_bfloat16*>(bytes + sw128_offset(r, c));
  }
}

TEST(Hopper, TmaLoadsSwizzledBoxOfPagedTensor) {
  ETAP_REQUIRE_SM90();
  constexpr int kPages = 5, kCols = 576;
  const auto host = random_values<__nv_bfloat16>(size_t(kPages) * kTile * kCols, 1);
  DeviceBuffer src(host), out(kTile * kTile * sizeof(__nv_bfloat16));
  TensorMapSpec spec{};
  spec.base = src.get();
  spec.rank = 3;
  spec.dims[0] = kCols;
  spec.dims[1] = kTile;
  spec.dims[2] = kPages;
  spec.strides_bytes[0] = kCols * 2;
  spec.strides_bytes[1] = kTile * kCols * 2;
  spec.box[0] = kTile;
  spec.box[1] = kTile;
  spec.box[2] = 1;
  CUtensorMap map;
  std::string error;
  ASSERT_EQ(encode_tensor_map(spec, &map, &error), cudaSuccess) << error;
  const int smem = sizeof(TmaTile);
  ETAP_CUDA_OK(cudaFuncSetAttribute(tma_roundtrip_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  for (int page : {0, 3}) {
    for (int col : {0, 256, 512}) {
      tma_roundtrip_kernel<<<1, 128, smem>>>(map, col, page, out.get<__nv_bfloat16>());
      ETAP_CUDA_OK(cudaDeviceSynchronize());
      const auto got = out.download<__nv_bfloat16>(kTile * kTile);
      for (int r = 0; r < kTile; ++r)
        for (int c = 0; c < kTile; ++c)
          ASSERT_EQ(to_float(got[r * kTile + c]),
                    to_float(host[(size_t(page) * kTile + r) * kCols + col + c]))
              << "page " << page << " col " << col << " r " << r << " c " << c;
    }
  }
  // A page id past the tensor is zero-filled, never a fault.
  tma_roundtrip_kernel<<<1, 128, smem>>>(map, 0, 2147480000, out.get<__nv_bfloat16>());
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  for (auto v : out.download<__nv_bfloat16>(kTile * kTile)) ASSERT_EQ(to_float(v), 0.f);
}

// ---- mbarrier pipeline ---------------------------------------------------------------------------------

constexpr int kRingStages = 3, kRingItems = 100;

// Thread 0 of warp 0 produces kRingItems values through a 3-stage ring; warps 1..4 consume them.
__global__ void pipeline_kernel(int* sums) {
  __shared__ int slots[kRingStages];
  __shared__ uint64_t full[kRingStages], empty[kRingStages];
  if (threadIdx.x == 0) {
    for (int s = 0; s < kRingStages; ++s) {
      mbarrier_init(&full[s], 1);
      mbarrier_init(&empty[s], 4);
    }
    fence_barrier_init();
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  PipelineState<kRingStages> state;
  if (warp == 0) {
    if (lane == 0) {
      for (int i = 0; i < kRingItems; ++i) {
        mbarrier_wait(&empty[state.index], state.producer_phase());
        slots[state.index] = i + 1;
        mbarrier_arrive(&full[state.index]);
        state.advance();
      }
    }
  } else {
    int sum = 0;
    for (int i = 0; i < kRingItems; ++i) {
      mbarrier_wait(&full[state.index], state.phase);
      sum += slots[state.index];
      __syncwarp();
      if (lane == 0) mbarrier_arrive(&empty[state.index]);
      state.advance();
    }
    if (lane == 0) sums[warp - 1] = sum;
  }
}

TEST(Hopper, MbarrierRingDeliversEveryItemOnce) {
  ETAP_REQUIRE_SM90();
  DeviceBuffer sums(4 * sizeof(int));
  pipeline_kernel<<<1, 160>>>(sums.get<int>());
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  for (int s : sums.download<int>(4)) EXPECT_EQ(s, kRingItems * (kRingItems + 1) / 2);
}

// ---- wgmma ---------------------------------------------------------------------------------------------

// A tile stored as [rows × 64] 16-bit values in 128B-swizzled layout (row = 128 bytes), 1024-aligned.
template <typename T>
__device__ void store_swizzled(T* tile, const T* src, int rows) {
  auto* bytes = reinterpret_cast<uint8_t*>(tile);
  for (int i = threadIdx.x; i < rows * kTile; i += blockDim.x)
    *reinterpret_cast<T*>(bytes + sw128_offset(i / kTile, i % kTile)) = src[i];
}

template <typename T, int kN>
struct alignas(1024) WgmmaTiles {
  T a[kTile * kTile];  // A: [64 rows × 64] (K-major: rows = M) or (MN-major: rows = K)
  T b[kN * kTile];     // B: [N rows × 64 k], K-major
};

// D[64 × N] = A · B over K = 64 (4 k16 steps) with A K-major or MN-major, B K-major.
template <typename T, int kN, Major kMajorA>
__global__ void wgmma_kernel(const T* a, const T* b, float* d) {
  extern __shared__ __align__(1024) uint8_t raw[];
  auto& tiles = *reinterpret_cast<WgmmaTiles<T, kN>*>(raw);
  store_swizzled(tiles.a, a, kTile);
  store_swizzled(tiles.b, b, kN);
  fence_proxy_async_smem();
  __syncthreads();
  float acc[kN / 2];
  for (int i = 0; i < kN / 2; ++i) acc[i] = 0.f;
  wgmma_fence();
  const uint64_t da = make_sw128_desc(tiles.a), db = make_sw128_desc(tiles.b);
#pragma unroll
  for (int ks = 0; ks < 4; ++ks) {
    // K-major: the next 16 k are 32 bytes further along the row; MN-major: 16 rows (2 atoms) further.
    const uint32_t a_step = kMajorA == Major::kK ? ks * 32 : ks * 16 * kSwizzleRowBytes;
    wgmma<kN, T, kMajorA, Major::kK>(acc, desc_advance(da, a_step), desc_advance(db, ks * 32), ks > 0);
  }
  wgmma_commit();
  wgmma_wait<0>();
  fence_accumulator(acc);
  for (int i = 0; i < kN / 2; ++i) {
    const auto rc = accumulator_coord(threadIdx.x, i);
    d[rc.row * kN + rc.col] = acc[i];
  }
}

template <typename T, int kN, Major kMajorA>
void check_wgmma() {
  const auto a = random_values<T>(kTile * kTile, 7 + kN), b = random_values<T>(size_t(kN) * kTile, 11 + kN);
  DeviceBuffer da(a), db(b), dd(kTile * kN * sizeof(float));
  auto kernel = wgmma_kernel<T, kN, kMajorA>;
  const int smem = sizeof(WgmmaTiles<T, kN>);
  ETAP_CUDA_OK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kernel<<<1, 128, smem>>>(da.get<T>(), db.get<T>(), dd.get<float>());
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  const auto got = dd.download<float>(kTile * kN);
  for (int m = 0; m < kTile; ++m) {
    for (int n = 0; n < kN; ++n) {
      double ref = 0;
      for (int k = 0; k < kTile; ++k) {
        const float av = kMajorA == Major::kK ? to_float(a[m * kTile + k]) : to_float(a[k * kTile + m]);
        ref += double(av) * to_float(b[n * kTile + k]);
      }
      ASSERT_NEAR(got[m * kN + n], ref, 1e-3 * (1 + std::fabs(ref)))
          << "N=" << kN << " m=" << m << " n=" << n;
    }
  }
}

// check_wgmma for every N of the list.
template <typename T, Major kMajorA, int... kNs>
void check_wgmma_for() {
  (check_wgmma<T, kNs, kMajorA>(), ...);
}

TEST(Hopper, WgmmaKMajorBf16AllN) {
  ETAP_REQUIRE_SM90();
  check_wgmma_for<__nv_bfloat16, Major::kK, 8, 16, 24, 32, 48, 64>();
}

TEST(Hopper, WgmmaKMajorFp16) {
  ETAP_REQUIRE_SM90();
  check_wgmma_for<__half, Major::kK, 8, 32>();
}

TEST(Hopper, WgmmaMNMajorATransposedView) {
  ETAP_REQUIRE_SM90();
  check_wgmma_for<__nv_bfloat16, Major::kMN, 16, 32, 48, 64>();
  check_wgmma_for<__half, Major::kMN, 16>();
}

// ---- named barriers + setmaxnreg -----------------------------------------------------------------------

// Warpgroup 2 gives registers away, warpgroups 0–1 take them; warpgroup 0 writes, named barrier 1 (256
// threads) publishes, warpgroup 1 reads. Barrier 2 then orders the reverse direction.
__global__ void __launch_bounds__(384, 1) roles_kernel(int* out) {
  __shared__ int exchange[256];
  const int wg = threadIdx.x / 128, t = threadIdx.x % 128;
  if (wg == 2) {
    setmaxnreg_dec<40>();
    return;
  }
  setmaxnreg_inc<232>();
  if (wg == 0) exchange[t] = t * 3 + 1;
  named_barrier_sync(1, 256);
  if (wg == 1) {
    out[t] = exchange[t];
    exchange[128 + t] = t * 5 + 2;
  }
  named_barrier_sync(2, 256);
  if (wg == 0) out[128 + t] = exchange[128 + t];
}

TEST(Hopper, NamedBarriersAndSetmaxnreg) {
  ETAP_REQUIRE_SM90();
  DeviceBuffer out(256 * sizeof(int));
  roles_kernel<<<1, 384>>>(out.get<int>());
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  const auto got = out.download<int>(256);
  for (int t = 0; t < 128; ++t) {
    EXPECT_EQ(got[t], t * 3 + 1);
    EXPECT_EQ(got[128 + t], t * 5 + 2);
  }
}

}  // namespace
