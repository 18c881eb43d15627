// etap::merge_states on the GPU against the fp64 CPU merge.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <etap/etap.hpp>
#include <etap/reference.hpp>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gpu/gpu_test_util.hpp"

namespace etap {
namespace {

constexpr float kInfF = std::numeric_limits<float>::infinity();

struct MergeCase {
  int num_states = 2, rows = 16, dim = 512;
  int row_stride_pad = 0;  // extra elements between rows of o (and of out)
  LseBase base = LseBase::kNatural;
  DType out_dtype = DType::kFP32;
  double empty_fraction = 0.0;  // states given lse = ±inf (and NaN o)
  bool all_empty_row0 = false;
  bool with_lse_out = true;
  uint64_t seed = 1;
};

using ::etap::test::DeviceBuffer;

double out_value(const std::vector<uint8_t>& bytes, std::size_t index, DType dtype) {
  if (dtype == DType::kFP32) {
    float v;
    std::memcpy(&v, bytes.data() + index * 4, 4);
    return v;
  }
  uint16_t bits;
  std::memcpy(&bits, bytes.data() + index * 2, 2);
  return reference::half_bits_to_float(bits, dtype);
}

void run_merge_case(const MergeCase& mc) {
  const int64_t row_stride = mc.dim + mc.row_stride_pad;
  const int64_t state_stride = mc.rows * row_stride;
  std::mt19937_64 rng(mc.seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> lse_dist(-6.f, 6.f);
  std::uniform_real_distribution<double> unit(0.0, 1.0);

  std::vector<float> o(mc.num_states * state_stride, std::numeric_limits<float>::quiet_NaN());
  std::vector<float> lse(static_cast<std::size_t>(mc.num_states) * mc.rows);
  for (int s = 0; s < mc.num_states; ++s)
    for (int r = 0; r < mc.rows; ++r) {
      const bool empty = unit(rng) < mc.empty_fraction || (mc.all_empty_row0 && r == 0);
      lse[s * mc.rows + r] = empty ? (unit(rng) < 0.5 ? kInfF : -kInfF) : lse_dist(rng);
      if (!empty)
        for (int c = 0; c < mc.dim; ++c) o[s * state_stride + r * row_stride + c] = normal(rng);
    }

  // CPU reference on dense [num_states, rows, dim] doubles.
  std::vector<double> o_ref(static_cast<std::size_t>(mc.num_states) * mc.rows * mc.dim);
  for (int s = 0; s < mc.num_states; ++s)
    for (int r = 0; r < mc.rows; ++r)
      for (int c = 0; c < mc.dim; ++c)
        o_ref[(static_cast<int64_t>(s) * mc.rows + r) * mc.dim + c] =
            o[s * state_stride + r * row_stride + c];
  const std::vector<double> lse_ref_in(lse.begin(), lse.end());
  std::vector<double> out_ref(static_cast<std::size_t>(mc.rows) * mc.dim), lse_ref(mc.rows);
  reference::merge_states(mc.num_states, mc.rows, mc.dim, o_ref.data(), lse_ref_in.data(), mc.base,
                          out_ref.data(), lse_ref.data());

  const std::size_t elem = dtype_bytes(mc.out_dtype);
  DeviceBuffer d_o(o.size() * sizeof(float)), d_lse(lse.size() * sizeof(float)),
      d_lse_out(mc.rows * sizeof(float));
  DeviceBuffer d_out(mc.rows * row_stride * elem);
  ETAP_CUDA_OK(cudaMemcpy(d_o.get<float>(), o.data(), o.size() * 4, cudaMemcpyHostToDevice));
  ETAP_CUDA_OK(cudaMemcpy(d_lse.get<float>(), lse.data(), lse.size() * 4, cudaMemcpyHostToDevice));
  ETAP_CUDA_OK(cudaMemset(d_out.get(), 0xFF, mc.rows * row_stride * elem));
  ETAP_CUDA_OK(cudaMemset(d_lse_out.get<float>(), 0xFF, mc.rows * 4));

  MergeArgs args;
  args.num_states = mc.num_states;
  args.rows = mc.rows;
  args.dim = mc.dim;
  args.o_states = d_o.get<float>();
  args.o_state_stride = state_stride;
  args.o_row_stride = row_stride;
  args.lse_states = d_lse.get<float>();
  args.lse_state_stride = mc.rows;
  args.lse_base = mc.base;
  args.out = d_out.get();
  args.out_dtype = mc.out_dtype;
  args.out_row_stride = row_stride;
  args.lse_out = mc.with_lse_out ? d_lse_out.get<float>() : nullptr;
  const Status status = merge_states(args, nullptr);
  ASSERT_TRUE(status.ok()) << status.message();
  ETAP_CUDA_OK(cudaDeviceSynchronize());

  std::vector<uint8_t> out(mc.rows * row_stride * elem);
  std::vector<float> lse_out(mc.rows);
  ETAP_CUDA_OK(cudaMemcpy(out.data(), d_out.get(), out.size(), cudaMemcpyDeviceToHost));
  ETAP_CUDA_OK(cudaMemcpy(lse_out.data(), d_lse_out.get<float>(), mc.rows * 4, cudaMemcpyDeviceToHost));

  // fp32 accumulation of up to 100 states; bf16/fp16 add their output rounding.
  const double rel = mc.out_dtype == DType::kBF16   ? 1.0 / 128
                     : mc.out_dtype == DType::kFP16 ? 1.0 / 1024
                                                    : 1e-5;
  for (int r = 0; r < mc.rows; ++r) {
    for (int c = 0; c < mc.dim; ++c) {
      const double x = out_value(out, r * row_stride + c, mc.out_dtype);
      const double y = out_ref[static_cast<int64_t>(r) * mc.dim + c];
      ASSERT_NEAR(x, y, 1e-5 + rel * std::abs(y)) << "row " << r << " col " << c;
    }
    if (!mc.with_lse_out) continue;
    if (std::isinf(lse_ref[r])) {
      EXPECT_EQ(lse_out[r], kInfF) << "row " << r;
    } else {
      EXPECT_NEAR(lse_out[r], lse_ref[r], 2e-6 * (1 + std::abs(lse_ref[r]))) << "row " << r;
    }
  }
  if (!mc.with_lse_out) {
    for (float v : lse_out) EXPECT_TRUE(std::isnan(v));  // untouched poison
  }
  // Padding between rows stays untouched.
  for (int r = 0; r < mc.rows; ++r)
    for (int c = mc.dim; c < row_stride; ++c)
      EXPECT_TRUE(std::isnan(out_value(out, r * row_stride + c, mc.out_dtype)));
}

struct NamedMergeCase {
  const char* name;
  MergeCase mc;
};

// gtest prints a parameter's bytes unless it has a PrintTo; the name says it all.
void PrintTo(const NamedMergeCase& c, std::ostream* os) {
  *os << c.name;
}

class MergeGpuCase : public ::testing::TestWithParam<NamedMergeCase> {};

TEST_P(MergeGpuCase, MatchesTheCpuMerge) {
  ETAP_REQUIRE_SM90();
  run_merge_case(GetParam().mc);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MergeGpuCase,
    ::testing::Values(
        NamedMergeCase{"Fp32Natural", {}},
        NamedMergeCase{"Fp32Base2", {.num_states = 5, .base = LseBase::kBase2}},
        NamedMergeCase{"Bf16Out", {.num_states = 3, .out_dtype = DType::kBF16}},
        NamedMergeCase{"Fp16OutBase2", {.base = LseBase::kBase2, .out_dtype = DType::kFP16}},
        // 37 rows: not a multiple of the 8 rows of a block
        NamedMergeCase{"SingleState", {.num_states = 1, .rows = 37}},
        // more states than lanes
        NamedMergeCase{"ManyStates", {.num_states = 100, .rows = 9, .empty_fraction = 0.2}},
        NamedMergeCase{
            "EmptyStatesAndEmptyRows",
            {.num_states = 4, .out_dtype = DType::kBF16, .empty_fraction = 0.5, .all_empty_row0 = true}},
        // fewer columns than 4 per lane, not a multiple of 128
        NamedMergeCase{"SmallDimAndPaddedRows", {.num_states = 7, .dim = 36, .row_stride_pad = 12}},
        // 5 warp steps, the last one partial
        NamedMergeCase{"OddDimWithoutLseOut", {.dim = 644, .with_lse_out = false}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(MergeGpu, DeterministicBits) {
  ETAP_REQUIRE_SM90();
  const int states = 40, rows = 64, dim = 512;
  std::vector<float> o(static_cast<std::size_t>(states) * rows * dim), lse(states * rows);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (float& x : o) x = normal(rng);
  for (float& x : lse) x = 3 * normal(rng);
  DeviceBuffer d_o(o.size() * sizeof(float)), d_lse(lse.size() * sizeof(float)),
      d_out(rows * dim * sizeof(float)), d_lse_out(rows * sizeof(float));
  ETAP_CUDA_OK(cudaMemcpy(d_o.get<float>(), o.data(), o.size() * 4, cudaMemcpyHostToDevice));
  ETAP_CUDA_OK(cudaMemcpy(d_lse.get<float>(), lse.data(), lse.size() * 4, cudaMemcpyHostToDevice));
  MergeArgs args;
  args.num_states = states;
  args.rows = rows;
  args.dim = dim;
  args.o_states = d_o.get<float>();
  args.o_state_stride = rows * dim;
  args.o_row_stride = dim;
  args.lse_states = d_lse.get<float>();
  args.lse_state_stride = rows;
  args.out = d_out.get();
  args.out_dtype = DType::kFP32;
  args.out_row_stride = dim;
  args.lse_out = d_lse_out.get<float>();
  std::vector<float> first(rows * dim), second(rows * dim), lse_first(rows), lse_second(rows);
  ASSERT_TRUE(merge_states(args, nullptr).ok());
  ETAP_CUDA_OK(cudaMemcpy(first.data(), d_out.get(), first.size() * 4, cudaMemcpyDeviceToHost));
  ETAP_CUDA_OK(cudaMemcpy(lse_first.data(), d_lse_out.get<float>(), rows * 4, cudaMemcpyDeviceToHost));
  ASSERT_TRUE(merge_states(args, nullptr).ok());
  ETAP_CUDA_OK(cudaMemcpy(second.data(), d_out.get(), second.size() * 4, cudaMemcpyDeviceToHost));
  ETAP_CUDA_OK(cudaMemcpy(lse_second.data(), d_lse_out.get<float>(), rows * 4, cudaMemcpyDeviceToHost));
  EXPECT_EQ(std::memcmp(first.data(), second.data(), first.size() * 4), 0);
  EXPECT_EQ(std::memcmp(lse_first.data(), lse_second.data(), rows * 4), 0);
}

}  // namespace
}  // namespace etap
