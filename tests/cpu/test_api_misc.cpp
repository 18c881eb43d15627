// Public API helpers that need no GPU: names, sizes, dense strides, buffer checks of plan()/decode() and the
// device check (whose expected answer depends on the machine the test runs on).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <etap/etap.hpp>
#include <set>
#include <string>
#include <tuple>

#include "cpu/test_util.hpp"
#include "decode/launch/launch.hpp"
#include "decode/plan/plan.hpp"

namespace etap {
namespace {

constexpr int kNumSms = 132;

using ::etap::test::Contains;
using ::etap::test::fake_address;
using ::etap::test::has_cuda_device;

DecodeProblem mla_problem(int32_t batch = 4, int32_t s_q = 1, int32_t h_q = 16) {
  return ::etap::test::with_test_shape(DecodeProblem{}, batch, s_q, h_q);
}

DecodeArgs fake_args(const DecodeProblem& p) {
  return make_dense_args(p, fake_address<void>(0x100000), fake_address<void>(0x200000),
                         fake_address<int32_t>(0x300000), fake_address<int32_t>(0x400000),
                         fake_address<void>(0x500000), nullptr, 0.1352f, false);
}

TEST(Names, StatusCodes) {
  EXPECT_STREQ(to_string(StatusCode::kOk), "ok");
  EXPECT_STREQ(to_string(StatusCode::kInvalidArgument), "invalid argument");
  EXPECT_STREQ(to_string(StatusCode::kWorkspaceTooSmall), "workspace too small");
  EXPECT_STREQ(to_string(static_cast<StatusCode>(42)), "unknown status");
  std::set<std::string> names;
  for (int c = 0; c <= static_cast<int>(StatusCode::kCheckFailed); ++c)
    names.insert(to_string(static_cast<StatusCode>(c)));
  EXPECT_EQ(names.size(), 7u);
}

TEST(Names, DTypesAndSizes) {
  EXPECT_STREQ(to_string(DType::kBF16), "bf16");
  EXPECT_STREQ(to_string(DType::kFP16), "fp16");
  EXPECT_STREQ(to_string(DType::kFP8E4M3), "fp8_e4m3");
  EXPECT_STREQ(to_string(DType::kFP32), "fp32");
  EXPECT_EQ(dtype_bytes(DType::kBF16), 2u);
  EXPECT_EQ(dtype_bytes(DType::kFP16), 2u);
  EXPECT_EQ(dtype_bytes(DType::kFP8E4M3), 1u);
  EXPECT_EQ(dtype_bytes(DType::kFP32), 4u);
  EXPECT_EQ(dtype_bytes(static_cast<DType>(9)), 0u);
}

TEST(StatusTest, DefaultIsOk) {
  const Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_TRUE(ok.message().empty());
  const Status bad(StatusCode::kUnsupported, "why");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), StatusCode::kUnsupported);
}

TEST(MakeDenseArgs, StridesOfContiguousTensors) {
  DecodeProblem p = mla_problem(2, 3, 4);
  p.max_pages_per_seq = 7;
  float* lse = fake_address<float>(0x600000);
  const DecodeArgs a = fake_args(p);
  using Strides = std::tuple<int64_t, int64_t, int64_t>;  // batch/page, seq/token, head
  EXPECT_EQ(Strides(a.q_batch_stride, a.q_seq_stride, a.q_head_stride), Strides(3 * 4 * 576, 4 * 576, 576));
  EXPECT_EQ(Strides(a.kv_page_stride, a.kv_token_stride, a.kv_head_stride), Strides(64 * 576, 576, 576));
  EXPECT_EQ(a.block_table_stride, 7);
  EXPECT_EQ(Strides(a.out_batch_stride, a.out_seq_stride, a.out_head_stride),
            Strides(3 * 4 * 512, 4 * 512, 512));
  EXPECT_EQ(Strides(a.lse_batch_stride, a.lse_seq_stride, a.lse_head_stride), Strides(4 * 3, 1, 3));
  const DecodeArgs with_lse =
      make_dense_args(p, a.q, a.kv_cache, a.block_table, a.seqlens, a.out, lse, 0.5f, true, LseBase::kBase2);
  EXPECT_EQ(with_lse.lse, lse);
  EXPECT_EQ(with_lse.softmax_scale, 0.5f);
  EXPECT_TRUE(with_lse.causal);
  EXPECT_EQ(with_lse.lse_base, LseBase::kBase2);
}

TEST(BufferSizes, PlanBytesFollowThePlanLayout) {
  const DecodeProblem p = mla_problem(10);
  EXPECT_EQ(plan_bytes(p, {kNumSms, false}),
            static_cast<std::size_t>(decoding::PlanLayout{10, kNumSms}.bytes()));
  EXPECT_EQ(plan_bytes(p, {kNumSms, false}), 4u * (8 + 6 * kNumSms + 1 + 11 + 3 * 10));
}

TEST(BufferSizes, WorkspaceHoldsTwoSlotsPerPart) {
  const DecodeProblem p = mla_problem(10);
  const std::size_t slots = 2 * kNumSms, rows = 16, d_v = 512;
  EXPECT_EQ(workspace_bytes(p, {kNumSms, false}), 256 + slots * rows * d_v * 4 + slots * rows * 4);
}

TEST(BufferSizes, FewerPartsForMoreRowTilesAndMoreRowsPerSlot) {
  const DecodeProblem p = mla_problem(1, 4, 16);  // R = 64
  const auto params = decoding::plan_params(kNumSms, 1);
  EXPECT_EQ(workspace_bytes(p, {kNumSms, false}),
            static_cast<std::size_t>(decoding::WorkspaceLayout::make(p, params.num_parts).bytes()));
}

TEST(BufferSizes, ZeroForAnInvalidProblem) {
  DecodeProblem p = mla_problem();
  p.h_q = 10;
  p.h_kv = 3;
  EXPECT_EQ(plan_bytes(p, {kNumSms, false}), 0u);
  EXPECT_EQ(workspace_bytes(p, {kNumSms, false}), 0u);
}

TEST(BufferSizes, ZeroForNegativeSmCount) {
  EXPECT_EQ(plan_bytes(mla_problem(), {-1, false}), 0u);
}

TEST(BufferSizes, AutomaticSmCountNeedsADevice) {
  const std::size_t bytes = plan_bytes(mla_problem(), {});
  if (has_cuda_device()) {
    EXPECT_GT(bytes, 0u);
  } else {
    EXPECT_EQ(bytes, 0u);
  }
}

TEST(CheckDevice, ReportsWhatItFound) {
  const Status status = check_device(0);
  if (!has_cuda_device()) {
    EXPECT_EQ(status.code(), StatusCode::kNoDevice);
    EXPECT_TRUE(Contains(status.message(), "no CUDA device found"));
    return;
  }
  cudaDeviceProp prop{};
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  if (prop.major == 9 && prop.minor == 0) {
    EXPECT_TRUE(status.ok()) << status.message();
  } else {
    EXPECT_EQ(status.code(), StatusCode::kNoDevice);
    EXPECT_TRUE(Contains(status.message(), "etap needs compute capability 9.0; found " +
                                               std::to_string(prop.major) + "." +
                                               std::to_string(prop.minor)));
  }
}

TEST(CheckDevice, NonexistentDeviceIndex) {
  const Status status = check_device(1000);
  EXPECT_EQ(status.code(), StatusCode::kNoDevice);
  EXPECT_FALSE(status.message().empty());
}

TEST(PlanCall, InvalidArgsRejectedBeforeAnyDeviceWork) {
  DecodeArgs args = fake_args(mla_problem());
  args.seqlens = nullptr;
  const Status status = plan(args, fake_address<void>(0x700000), 1 << 20, nullptr, {kNumSms, false});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "seqlens is null"));
}

TEST(PlanCall, PlanBufferTooSmall) {
  const DecodeProblem p = mla_problem();
  const Status status = plan(fake_args(p), fake_address<void>(0x700000), 16, nullptr, {kNumSms, false});
  EXPECT_EQ(status.code(), StatusCode::kWorkspaceTooSmall);
  EXPECT_TRUE(Contains(status.message(), "plan buffer is 16 bytes; this problem needs " +
                                             std::to_string(plan_bytes(p, {kNumSms, false})) +
                                             " (etap::plan_bytes)"));
}

TEST(PlanCall, NullPlanBuffer) {
  const Status status = plan(fake_args(mla_problem()), nullptr, 1 << 20, nullptr, {kNumSms, false});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "plan buffer is null; allocate"));
}

TEST(PlanCall, NoDeviceReported) {
  if (has_cuda_device()) GTEST_SKIP() << "a CUDA device is present; this test covers CPU-only machines";
  const Status status =
      plan(fake_args(mla_problem()), fake_address<void>(0x700000), 1 << 20, nullptr, {kNumSms, false});
  EXPECT_EQ(status.code(), StatusCode::kNoDevice);
  EXPECT_TRUE(Contains(status.message(), "no CUDA device"));
}

TEST(DecodeCall, WorkspaceTooSmall) {
  const DecodeProblem p = mla_problem();
  const Options options{kNumSms, false};
  const Status status = decode(fake_args(p), fake_address<void>(0x700000), plan_bytes(p, options),
                               fake_address<void>(0x800000), 1024, nullptr, options);
  EXPECT_EQ(status.code(), StatusCode::kWorkspaceTooSmall);
  EXPECT_TRUE(Contains(status.message(), "workspace is 1024 bytes; this problem needs " +
                                             std::to_string(workspace_bytes(p, options)) +
                                             " (etap::workspace_bytes)"));
}

TEST(DecodeCall, MisalignedWorkspace) {
  const DecodeProblem p = mla_problem();
  const Options options{kNumSms, false};
  const Status status = decode(fake_args(p), fake_address<void>(0x700000), plan_bytes(p, options),
                               fake_address<void>(0x800004), workspace_bytes(p, options), nullptr, options);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "workspace must be 16-byte aligned; got address 0x800004"));
}

TEST(DecodeCall, UnsupportedProblemReportedFirst) {
  DecodeProblem p = mla_problem();
  p.d_qk = 128;
  p.d_v = 128;
  const Status status = decode(fake_args(p), fake_address<void>(0x700000), 1 << 20,
                               fake_address<void>(0x800000), 1 << 30, nullptr, {kNumSms, false});
  EXPECT_EQ(status.code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace etap
