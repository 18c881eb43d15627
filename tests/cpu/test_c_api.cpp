// The C ABI: same answers as the C++ API, failures readable through etap_last_error() per thread.
#include <cuda_runtime_api.h>
#include <etap/etap.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <etap/etap.hpp>
#include <string>
#include <thread>

#include "cpu/test_util.hpp"

namespace {

constexpr int32_t kNumSms = 132;

using ::etap::test::Contains;
using ::etap::test::fake_address;

etap_problem c_problem(int32_t batch = 4, int32_t s_q = 1, int32_t h_q = 16) {
  return ::etap::test::with_test_shape(etap_default_problem(), batch, s_q, h_q);
}

etap_decode_args c_args(const etap_problem& p) {
  etap_decode_args args;
  etap_make_dense_args(&p, fake_address<void>(0x100000), fake_address<void>(0x200000),
                       fake_address<int32_t>(0x300000), fake_address<int32_t>(0x400000),
                       fake_address<void>(0x500000), fake_address<float>(0x600000), 0.1352f, 0,
                       ETAP_LSE_NATURAL, &args);
  return args;
}

etap::DecodeProblem cpp_problem(const etap_problem& c) {
  etap::DecodeProblem p;
  p.batch = c.batch;
  p.s_q = c.s_q;
  p.h_q = c.h_q;
  p.num_pages = c.num_pages;
  p.max_pages_per_seq = c.max_pages_per_seq;
  return p;
}

TEST(CApi, DefaultsMirrorTheCppStructs) {
  const etap_problem c = etap_default_problem();
  const etap::DecodeProblem cpp;
  EXPECT_EQ(c.batch, cpp.batch);
  EXPECT_EQ(c.s_q, cpp.s_q);
  EXPECT_EQ(c.h_kv, cpp.h_kv);
  EXPECT_EQ(c.d_qk, cpp.d_qk);
  EXPECT_EQ(c.d_v, cpp.d_v);
  EXPECT_EQ(c.page_size, cpp.page_size);
  EXPECT_EQ(c.q_dtype, ETAP_DTYPE_BF16);
  EXPECT_EQ(c.kv_format, ETAP_KV_DENSE);
  EXPECT_EQ(static_cast<int>(cpp.kv_format), ETAP_KV_DENSE);
  const etap_options options = etap_default_options();
  EXPECT_EQ(options.num_sms, 0);
  EXPECT_EQ(options.checked, 0);
}

// The FP8 fields cross the C boundary: byte strides of the 656-byte token, descale_k checked, and the
// missing kernel reported after every check passes.
TEST(CApi, Fp8FormatsCrossTheBoundary) {
  etap_problem p = c_problem();
  p.kv_dtype = ETAP_DTYPE_FP8_E4M3;
  p.kv_format = ETAP_KV_FP8_DEEPSEEK_V32;
  etap_decode_args args = c_args(p);
  EXPECT_EQ(args.kv_token_stride, ETAP_FP8_V32_TOKEN_BYTES);
  EXPECT_EQ(args.descale_k, nullptr);
  EXPECT_EQ(args.descale_q, nullptr);
  EXPECT_EQ(etap_validate(&args), ETAP_OK) << etap_last_error();
  etap_options options = etap_default_options();
  options.num_sms = 132;
  EXPECT_GT(etap_plan_bytes(&p, &options), 0u);

  p.kv_format = ETAP_KV_FP8_PER_TENSOR;
  args = c_args(p);
  EXPECT_EQ(args.kv_token_stride, 576);
  EXPECT_EQ(etap_validate(&args), ETAP_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(etap_last_error(), "descale_k is null"));
  args.descale_k = fake_address<float>(0x700000);
  EXPECT_EQ(etap_validate(&args), ETAP_OK) << etap_last_error();
  args.descale_q = fake_address<float>(0x700000);
  EXPECT_EQ(etap_validate(&args), ETAP_OK) << etap_last_error();
  args.descale_q = fake_address<float>(0x700002);
  EXPECT_EQ(etap_validate(&args), ETAP_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(etap_last_error(), "descale_q must be 4-byte aligned"));
}

TEST(CApi, ValidArgsPass) {
  const etap_decode_args args = c_args(c_problem());
  EXPECT_EQ(etap_validate(&args), ETAP_OK) << etap_last_error();
}

TEST(CApi, ValidationErrorRoundTrip) {
  etap_problem p = c_problem();
  p.h_q = 10;
  p.h_kv = 3;
  const etap_decode_args args = c_args(p);
  EXPECT_EQ(etap_validate(&args), ETAP_INVALID_ARGUMENT);
  EXPECT_STREQ(etap_last_error(), "h_q (10) must be divisible by h_kv (3)");
}

TEST(CApi, DenseArgsMatchTheCppOnes) {
  const etap_problem p = c_problem(3, 2, 8);
  const etap_decode_args c = c_args(p);
  const etap::DecodeArgs cpp = etap::make_dense_args(cpp_problem(p), c.q, c.kv_cache, c.block_table,
                                                     c.seqlens, c.out, c.lse, 0.1352f, false);
  EXPECT_EQ(c.q_batch_stride, cpp.q_batch_stride);
  EXPECT_EQ(c.q_seq_stride, cpp.q_seq_stride);
  EXPECT_EQ(c.q_head_stride, cpp.q_head_stride);
  EXPECT_EQ(c.kv_page_stride, cpp.kv_page_stride);
  EXPECT_EQ(c.kv_token_stride, cpp.kv_token_stride);
  EXPECT_EQ(c.kv_head_stride, cpp.kv_head_stride);
  EXPECT_EQ(c.block_table_stride, cpp.block_table_stride);
  EXPECT_EQ(c.out_batch_stride, cpp.out_batch_stride);
  EXPECT_EQ(c.out_seq_stride, cpp.out_seq_stride);
  EXPECT_EQ(c.out_head_stride, cpp.out_head_stride);
  EXPECT_EQ(c.lse_batch_stride, cpp.lse_batch_stride);
  EXPECT_EQ(c.lse_head_stride, cpp.lse_head_stride);
  EXPECT_EQ(c.lse_seq_stride, cpp.lse_seq_stride);
  EXPECT_EQ(c.causal, 0);
  EXPECT_EQ(c.lse_base, ETAP_LSE_NATURAL);
}

TEST(CApi, LastErrorSurvivesALaterSuccess) {
  EXPECT_EQ(etap_validate(nullptr), ETAP_INVALID_ARGUMENT);
  const etap_decode_args good = c_args(c_problem());
  EXPECT_EQ(etap_validate(&good), ETAP_OK);
  EXPECT_STREQ(etap_last_error(), "args is NULL");
}

TEST(CApi, LastErrorIsPerThread) {
  etap_problem p = c_problem();
  p.d_qk = p.d_v = 128;
  const etap_decode_args args = c_args(p);
  ASSERT_EQ(etap_validate(&args), ETAP_UNSUPPORTED);
  const std::string mine = etap_last_error();
  std::string theirs;
  std::thread other([&] {
    EXPECT_EQ(etap_validate(nullptr), ETAP_INVALID_ARGUMENT);
    theirs = etap_last_error();
  });
  other.join();
  EXPECT_EQ(theirs, "args is NULL");
  EXPECT_EQ(std::string(etap_last_error()), mine);
  EXPECT_TRUE(Contains(mine, "head dims d_qk=128/d_v=128 are not supported"));
}

TEST(CApi, SizesEqualTheCppOnes) {
  const etap_options options{kNumSms, 0};
  for (const etap_problem& p : {c_problem(1), c_problem(4096), c_problem(16, 4, 16), c_problem(3, 1, 64)}) {
    EXPECT_EQ(etap_plan_bytes(&p, &options), etap::plan_bytes(cpp_problem(p), {kNumSms, false}));
    EXPECT_EQ(etap_workspace_bytes(&p, &options), etap::workspace_bytes(cpp_problem(p), {kNumSms, false}));
    EXPECT_GT(etap_plan_bytes(&p, &options), 0u);
  }
}

TEST(CApi, NullOptionsMeansDefaults) {
  const etap_problem p = c_problem();
  EXPECT_EQ(etap_plan_bytes(&p, nullptr), etap::plan_bytes(cpp_problem(p)));
}

TEST(CApi, ZeroSizeSaysWhy) {
  etap_problem p = c_problem();
  p.d_qk = 320;
  p.d_v = 320;
  const etap_options options{kNumSms, 0};
  EXPECT_EQ(etap_workspace_bytes(&p, &options), 0u);
  EXPECT_TRUE(Contains(etap_last_error(), "head dims d_qk=320/d_v=320 are not supported"));
  EXPECT_EQ(etap_plan_bytes(nullptr, &options), 0u);
  EXPECT_STREQ(etap_last_error(), "problem is NULL");
}

TEST(CApi, WorkspaceTooSmall) {
  const etap_problem p = c_problem();
  const etap_options options{kNumSms, 0};
  const etap_decode_args args = c_args(p);
  const etap_status status = etap_decode(&args, fake_address<void>(0x700000), etap_plan_bytes(&p, &options),
                                         fake_address<void>(0x800000), 64, nullptr, &options);
  EXPECT_EQ(status, ETAP_WORKSPACE_TOO_SMALL);
  EXPECT_TRUE(Contains(etap_last_error(), "workspace is 64 bytes; this problem needs"));
}

TEST(CApi, PlanBufferTooSmall) {
  const etap_problem p = c_problem();
  const etap_options options{kNumSms, 0};
  const etap_decode_args args = c_args(p);
  EXPECT_EQ(etap_plan(&args, fake_address<void>(0x700000), 8, nullptr, &options), ETAP_WORKSPACE_TOO_SMALL);
  EXPECT_TRUE(Contains(etap_last_error(), "plan buffer is 8 bytes"));
}

TEST(CApi, NullArgumentsAreRejected) {
  EXPECT_EQ(etap_plan(nullptr, nullptr, 0, nullptr, nullptr), ETAP_INVALID_ARGUMENT);
  EXPECT_EQ(etap_decode(nullptr, nullptr, 0, nullptr, 0, nullptr, nullptr), ETAP_INVALID_ARGUMENT);
  EXPECT_EQ(etap_merge_states(nullptr, nullptr), ETAP_INVALID_ARGUMENT);
  EXPECT_STREQ(etap_last_error(), "args is NULL");
}

TEST(CApi, DenseArgsWithNullProblemSaysSoAndClearsArgs) {
  etap_decode_args args;
  std::memset(&args, 0xAB, sizeof(args));
  etap_make_dense_args(nullptr, fake_address<void>(0x100000), fake_address<void>(0x200000),
                       fake_address<int32_t>(0x300000), fake_address<int32_t>(0x400000),
                       fake_address<void>(0x500000), nullptr, 0.1352f, 0, ETAP_LSE_NATURAL, &args);
  EXPECT_STREQ(etap_last_error(), "problem is NULL");
  EXPECT_EQ(args.problem.batch, 0);
  EXPECT_EQ(args.q, nullptr);
  EXPECT_EQ(etap_validate(&args), ETAP_INVALID_ARGUMENT);  // a zeroed args is never valid

  const etap_problem p = c_problem();
  etap_make_dense_args(&p, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0.1352f, 0, ETAP_LSE_NATURAL,
                       nullptr);
  EXPECT_STREQ(etap_last_error(), "args is NULL");
}

TEST(CApi, MergeWithoutDeviceSaysNoDevice) {
  if (::etap::test::has_cuda_device())
    GTEST_SKIP() << "a CUDA device is present; this test covers CPU-only machines";
  etap_merge_args args{};
  args.num_states = 2;
  args.rows = 4;
  args.dim = 512;
  args.o_states = fake_address<float>(0x100000);
  args.o_state_stride = 4 * 512;
  args.o_row_stride = 512;
  args.lse_states = fake_address<float>(0x200000);
  args.lse_state_stride = 4;
  args.lse_base = ETAP_LSE_NATURAL;
  args.out = fake_address<void>(0x300000);
  args.out_dtype = ETAP_DTYPE_FP32;
  args.out_row_stride = 512;
  EXPECT_EQ(etap_merge_states(&args, nullptr), ETAP_NO_DEVICE) << etap_last_error();
  EXPECT_TRUE(Contains(etap_last_error(), "no CUDA device"));
}

TEST(CApi, StatusStringsMatchTheCppNames) {
  for (int c = ETAP_OK; c <= ETAP_CHECK_FAILED; ++c)
    EXPECT_STREQ(etap_status_string(static_cast<etap_status>(c)),
                 etap::to_string(static_cast<etap::StatusCode>(c)));
}

TEST(CApi, CheckDeviceMatchesTheCppAnswer) {
  const etap::Status cpp = etap::check_device(0);
  EXPECT_EQ(static_cast<int>(etap_check_device(0)), static_cast<int>(cpp.code()));
  if (!cpp.ok()) {
    EXPECT_EQ(std::string(etap_last_error()), cpp.message());
  }
}

}  // namespace
