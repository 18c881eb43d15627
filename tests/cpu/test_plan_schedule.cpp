// plan(problem, seqlens, ...): the schedule without a block table (FlashMLA's older get_mla_metadata). Its
// checks run before any device work, so fake aligned addresses stand in for the buffers; the GPU side (the
// same plan words as plan(args)) is covered by python/tests/test_binding.py on a Hopper machine.
#include <cuda_runtime_api.h>
#include <etap/etap.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <etap/etap.hpp>
#include <string>

#include "cpu/test_util.hpp"

namespace etap {
namespace {

constexpr int kNumSms = 132;
const Options kOptions{kNumSms, false};

using ::etap::test::Contains;
using ::etap::test::fake_address;
using ::etap::test::has_cuda_device;

// What FlashMLA's get_mla_metadata knows: the batch, the rows per KV head and the KV heads.
DecodeProblem metadata_problem(int32_t batch = 4, int32_t s_q = 1, int32_t h_q = 16) {
  DecodeProblem p;
  p.batch = batch;
  p.s_q = s_q;
  p.h_q = h_q;
  return p;  // num_pages and max_pages_per_seq stay 0: unknown
}

const int32_t* fake_seqlens() {
  return fake_address<const int32_t>(0x400000);
}

void* fake_plan() {
  return fake_address<void>(0x700000);
}

Status plan_without_table(const DecodeProblem& p, const int32_t* seqlens, void* buffer, std::size_t bytes) {
  return plan(p, seqlens, buffer, bytes, nullptr, kOptions);
}

TEST(PlanFromSeqlens, BufferSizeIsPlanBytesOfTheFullProblem) {
  DecodeProblem full = metadata_problem(64, 2, 16);
  full.num_pages = 1000;
  full.max_pages_per_seq = 128;
  const std::size_t needed = plan_bytes(full, kOptions);
  ASSERT_GT(needed, 0u);
  const Status status =
      plan_without_table(metadata_problem(64, 2, 16), fake_seqlens(), fake_plan(), needed - 4);
  EXPECT_EQ(status.code(), StatusCode::kWorkspaceTooSmall);
  EXPECT_TRUE(Contains(status.message(), "plan buffer is " + std::to_string(needed - 4) +
                                             " bytes; this problem needs " + std::to_string(needed)));
}

TEST(PlanFromSeqlens, InvalidProblemGivesTheSameMessageAsPlanBytes) {
  DecodeProblem p = metadata_problem();
  p.batch = 0;
  const Status status = plan_without_table(p, fake_seqlens(), fake_plan(), 1 << 20);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "batch must be at least 1; got 0"));
}

TEST(PlanFromSeqlens, TooManyRowsIsUnsupported) {
  const Status status =
      plan_without_table(metadata_problem(16, 64, 128), fake_seqlens(), fake_plan(), 1 << 20);
  EXPECT_EQ(status.code(), StatusCode::kUnsupported);
  EXPECT_TRUE(Contains(status.message(), "s_q·h_q = 8192 query rows per request")) << status.message();
}

TEST(PlanFromSeqlens, NumPagesIsNotRead) {
  DecodeProblem p = metadata_problem();
  p.num_pages = -5;
  const Status status = plan_without_table(p, nullptr, fake_plan(), 1 << 20);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "seqlens is null")) << status.message();
}

TEST(PlanFromSeqlens, NegativeMaxPagesIsRejected) {
  DecodeProblem p = metadata_problem();
  p.max_pages_per_seq = -1;
  const Status status = plan_without_table(p, fake_seqlens(), fake_plan(), 1 << 20);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "max_pages_per_seq must be at least 1; got -1"));
}

TEST(PlanFromSeqlens, UnknownMaxPagesFitsTheCostLineOfAnyUsableBatch) {
  // max_pages_per_seq = 0 takes the largest bound the 32-bit schedule allows, so it never trips the check
  // for a batch that some block table could serve...
  const DecodeProblem large = metadata_problem(1 << 20);
  EXPECT_TRUE(
      Contains(plan_without_table(large, nullptr, fake_plan(), 1 << 30).message(), "seqlens is null"));
  // ...and a batch too large for any block table still gets the check's message.
  const DecodeProblem huge = metadata_problem(static_cast<int32_t>((int64_t{1} << 31) / 65 + 1));
  const Status status = plan_without_table(huge, fake_seqlens(), fake_plan(), std::size_t{1} << 40);
  EXPECT_EQ(status.code(), StatusCode::kUnsupported);
  EXPECT_TRUE(Contains(status.message(), "must stay below 2^31"));
}

TEST(PlanFromSeqlens, NullSeqlens) {
  const Status status = plan_without_table(metadata_problem(), nullptr, fake_plan(), 1 << 20);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "seqlens is null; pass the device address of the int32 sequence lengths [batch]");
}

TEST(PlanFromSeqlens, MisalignedSeqlens) {
  const Status status =
      plan_without_table(metadata_problem(), fake_address<const int32_t>(0x400002), fake_plan(), 1 << 20);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "seqlens must be 4-byte aligned (int32); got address 0x400002"));
}

TEST(PlanFromSeqlens, NullAndMisalignedPlanBuffer) {
  const Status null_buffer = plan_without_table(metadata_problem(), fake_seqlens(), nullptr, 1 << 20);
  EXPECT_EQ(null_buffer.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(null_buffer.message(), "plan buffer is null; allocate"));
  const Status misaligned =
      plan_without_table(metadata_problem(), fake_seqlens(), fake_address<void>(0x700002), 1 << 20);
  EXPECT_EQ(misaligned.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(misaligned.message(), "plan buffer must be 4-byte aligned"));
}

TEST(PlanFromSeqlens, NoDeviceReported) {
  if (has_cuda_device()) GTEST_SKIP() << "a CUDA device is present; this test covers CPU-only machines";
  const Status status = plan_without_table(metadata_problem(), fake_seqlens(), fake_plan(), 1 << 20);
  EXPECT_EQ(status.code(), StatusCode::kNoDevice);
  EXPECT_TRUE(Contains(status.message(), "no CUDA device"));
}

TEST(PlanFromSeqlens, CApiMirrorsTheCppCall) {
  const etap_options options{kNumSms, 0};
  etap_problem p = etap_default_problem();
  p.batch = 8;
  p.s_q = 64;
  p.h_q = 128;
  EXPECT_EQ(etap_plan_from_seqlens(&p, fake_seqlens(), fake_plan(), 1 << 20, nullptr, &options),
            ETAP_UNSUPPORTED);
  EXPECT_TRUE(Contains(etap_last_error(), "s_q·h_q = 8192"));
  p.s_q = 1;
  EXPECT_EQ(etap_plan_from_seqlens(&p, nullptr, fake_plan(), 1 << 20, nullptr, &options),
            ETAP_INVALID_ARGUMENT);
  EXPECT_STREQ(etap_last_error(),
               "seqlens is null; pass the device address of the int32 sequence lengths [batch]");
  EXPECT_EQ(etap_plan_from_seqlens(nullptr, fake_seqlens(), fake_plan(), 1 << 20, nullptr, &options),
            ETAP_INVALID_ARGUMENT);
  EXPECT_STREQ(etap_last_error(), "problem is NULL");
}

}  // namespace
}  // namespace etap
