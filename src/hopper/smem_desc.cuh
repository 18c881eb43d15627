// The wgmma shared-memory matrix descriptor (PTX ISA §9.7.15.5.1.2, "Matrix Descriptor Format").
#pragma once

#include <cstdint>

namespace etap::hopper {

// Swizzle modes as encoded in bits 62–63.
enum class Swizzle : uint64_t { kNone = 0, k128B = 1, k64B = 2, k32B = 3 };

// 128-byte swizzle: a 1024-byte atom of 8 rows × 128 bytes; 16-byte chunk c of row r lives at chunk c ^ (r %
// 8).
inline constexpr int kSwizzleAtomBytes = 1024;
inline constexpr int kSwizzleRowBytes = 128;

union SmemDescriptor {
  uint64_t raw;
  struct {
    uint64_t start_address : 14;  // byte address >> 4
    uint64_t : 2;
    uint64_t leading_byte_offset : 14;  // >> 4
    uint64_t : 2;
    uint64_t stride_byte_offset : 14;  // >> 4
    uint64_t : 3;
    uint64_t base_offset : 3;  // 0: atoms are 1024-byte aligned
    uint64_t : 10;
    uint64_t swizzle : 2;
  } bits;
};
static_assert(sizeof(SmemDescriptor) == 8);

// Descriptor of a tile made of 128B-swizzled atoms (1024-byte aligned) whose 8-row groups are 1024 bytes
// apart. For a K-major tile the leading offset is unused; for an MN-major tile of 64 elements along MN
// (one atom wide) only the K-direction stride between 8-row groups is used, which is 1024 bytes under
// either reading of LBO/SBO — both fields carry it.
__device__ __forceinline__ uint64_t make_sw128_desc(const void* smem) {
  SmemDescriptor d{};
  d.bits.start_address = static_cast<uint32_t>(__cvta_generic_to_shared(smem)) >> 4;
  d.bits.leading_byte_offset = kSwizzleAtomBytes >> 4;
  d.bits.stride_byte_offset = kSwizzleAtomBytes >> 4;
  d.bits.base_offset = 0;
  d.bits.swizzle = static_cast<uint64_t>(Swizzle::k128B);
  return d.raw;
}

// Descriptor of an MN-major operand wider than one swizzle atom: `atoms` columns of 64 elements, each a
// stack of 128B-swizzled 1024-byte atoms along K, `atom_stride` bytes apart (the KV block's 64-column boxes).
// MN-major 128B layout ((8 elems, 8, atoms), (8, k)) : ((1, 8, LBO), (row, SBO)) — LBO steps between atom
// columns along MN, SBO between 8-row groups along K (PTX ISA §9.7.15.5.1.2, "Major-ness supported by
// Strides"; CUTLASS's GmmaDescriptor comment states the same canonical form).
__device__ __forceinline__ uint64_t make_sw128_mn_desc(const void* smem, uint32_t atom_stride) {
  SmemDescriptor d{};
  d.bits.start_address = static_cast<uint32_t>(__cvta_generic_to_shared(smem)) >> 4;
  d.bits.leading_byte_offset = atom_stride >> 4;
  d.bits.stride_byte_offset = kSwizzleAtomBytes >> 4;
  d.bits.base_offset = 0;
  d.bits.swizzle = static_cast<uint64_t>(Swizzle::k128B);
  return d.raw;
}

// Moves a descriptor's start address by `bytes` (multiple of 16; no carry out of 14 bits for smem < 256 KiB).
__device__ __forceinline__ uint64_t desc_advance(uint64_t desc, uint32_t bytes) {
  return desc + (bytes >> 4);
}

// Byte offset of element (row, col16) — col in 16-bit elements, < 64 — inside a 128B-swizzled tile whose
// rows are 128 bytes; the tile starts on a 1024-byte boundary.
__host__ __device__ __forceinline__ uint32_t sw128_offset(uint32_t row, uint32_t col) {
  const uint32_t chunk = (col >> 3) ^ (row & 7);
  return row * kSwizzleRowBytes + (chunk << 4) + (col & 7) * 2;
}

}  // namespace etap::hopper
