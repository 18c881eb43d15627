// ETAP_HD: a function compiled for host and device from one source (plain inline in C++ translation units).
#pragma once

#if defined(__CUDACC__)
#define ETAP_HD __host__ __device__ __forceinline__
#else
#define ETAP_HD inline
#endif
