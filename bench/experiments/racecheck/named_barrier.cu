// Does compute-sanitizer racecheck honour a named-barrier handoff between two warpgroups of a
// warp-specialised CTA? One warpgroup writes shared memory, both pass `bar.sync id, 256` (or the writer
// `bar.arrive`s), the other reads. The variants change only what the CTA's other threads do, as the decode
// kernel's producer warpgroup does: exit at once, stay to the end, or not exist; with or without setmaxnreg.
//   nvcc -std=c++17 -gencode=arch=compute_90a,code=sm_90a -o named_barrier named_barrier.cu
//   for v in 0 1 2 3 4 5 6 7 8; do compute-sanitizer --tool racecheck ./named_barrier $v; done
#include <cstdio>
#include <cstdlib>

__device__ __forceinline__ void bar_sync(unsigned id, unsigned n) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(n) : "memory");
}
__device__ __forceinline__ void bar_arrive(unsigned id, unsigned n) {
  asm volatile("bar.arrive %0, %1;" ::"r"(id), "r"(n) : "memory");
}

// Variants:
//   0: 384 threads, warpgroup 2 exits at once
//   1: 384 threads, warpgroup 2 stays to a final __syncthreads
//   2: 256 threads
//   3: as 0, writer bar.arrive / reader bar.sync
//   4: as 0, with setmaxnreg (dec 40 / inc 232)
//   5: as 0 with one buffer (as the decode kernel's alpha), and the writer warpgroup also votes each round on
//      a barrier of its own (bar.red.and, 128 threads), as the rows-on-M score warpgroup does
//   6: as 5 with bar.sync 3, 128 instead of the vote
//   7: as 5, and the reader warpgroup also passes a barrier of its own (bar.sync 4, 128) each round
//   8: as 0 with one buffer (the control of 5-7)
template <int kVariant>
__global__ void __launch_bounds__(384, 1) handoff(float* out) {
  __shared__ float buf[2][128];
  const int wg = threadIdx.x / 128, t = threadIdx.x % 128;
  if (wg == 2) {
    if constexpr (kVariant == 4) asm volatile("setmaxnreg.dec.sync.aligned.u32 40;");
    if constexpr (kVariant != 1) return;
  } else if constexpr (kVariant == 4) {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;");
  }
  if (wg < 2) {
    for (int round = 0; round < 4; ++round) {
      float* b = buf[kVariant >= 5 ? 0 : round % 2];  // 5-8: one buffer, as the decode kernel's alpha
      if (wg == 0) {
        if constexpr (kVariant == 5 || kVariant == 7) {
          unsigned all;
          asm volatile(
              "{\n.reg .pred p, q;\nsetp.ne.u32 p, %1, 0;\nbar.red.and.pred q, 3, 128, p;\nselp.u32 %0, 1, "
              "0, q;\n}"
              : "=r"(all)
              : "r"(unsigned(t < 1000))
              : "memory");
          if (all == 0) return;
        } else if constexpr (kVariant == 6) {
          bar_sync(3, 128);
        }
        b[t] = float(round * 1000 + t);
        if constexpr (kVariant == 3)
          bar_arrive(1, 256);
        else
          bar_sync(1, 256);
        bar_sync(2, 256);  // the reader is done with this buffer
      } else {
        if constexpr (kVariant == 7) bar_sync(4, 128);
        bar_sync(1, 256);
        out[round * 128 + t] = b[(t + 1) % 128];
        bar_sync(2, 256);
      }
    }
  }
  if constexpr (kVariant == 1) __syncthreads();
}

int main(int argc, char** argv) {
  const int v = argc > 1 ? atoi(argv[1]) : 0;
  float* out;
  cudaMalloc(&out, 4 * 128 * sizeof(float));
  const int threads = v == 2 ? 256 : 384;
  void (*const kernels[])(float*) = {handoff<0>, handoff<1>, handoff<2>, handoff<3>, handoff<4>,
                                     handoff<5>, handoff<6>, handoff<7>, handoff<8>};
  kernels[v < 0 || v > 8 ? 8 : v]<<<1, threads>>>(out);
  const cudaError_t e = cudaDeviceSynchronize();
  float h[512];
  cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost);
  int bad = 0;
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < 128; ++t) bad += h[r * 128 + t] != float(r * 1000 + (t + 1) % 128);
  printf("variant %d: %s, %d wrong values\n", v, cudaGetErrorString(e), bad);
  return e != cudaSuccess || bad != 0;
}
