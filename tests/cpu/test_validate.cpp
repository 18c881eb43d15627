// validate(): one test per bad input, checking the status code and that the message names the argument and
// what is expected. validate() never dereferences a pointer, so fake aligned addresses stand in for buffers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <etap/etap.hpp>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "cpu/test_util.hpp"

namespace etap {
namespace {

using ::etap::test::Contains;
using ::etap::test::fake_address;

class Validate : public ::testing::Test {
 protected:
  Validate() {
    problem_.batch = 4;
    problem_.h_q = 16;
    problem_.num_pages = 100;
    problem_.max_pages_per_seq = 16;
    reset();
  }

  void reset() {
    args_ = make_dense_args(problem_, fake_address<void>(0x100000), fake_address<void>(0x200000),
                            fake_address<int32_t>(0x300000), fake_address<int32_t>(0x400000),
                            fake_address<void>(0x500000), fake_address<float>(0x600000), 0.1352f, false);
  }

  // Sets a problem field and rebuilds dense strides for it.
  template <typename Edit>
  Status with_problem(Edit edit) {
    edit(problem_);
    reset();
    return validate(args_);
  }

  void expect(StatusCode code, const std::string& text) {
    const Status status = validate(args_);
    EXPECT_EQ(status.code(), code) << status.message();
    EXPECT_TRUE(Contains(status.message(), text));
  }

  DecodeProblem problem_;
  DecodeArgs args_;
};

void expect_status(const Status& status, StatusCode code, const std::string& text) {
  EXPECT_EQ(status.code(), code) << status.message();
  EXPECT_TRUE(Contains(status.message(), text));
}

TEST_F(Validate, DenseArgsPass) {
  const Status status = validate(args_);
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST_F(Validate, Fp16Passes) {
  const Status status =
      with_problem([](DecodeProblem& p) { p.q_dtype = p.kv_dtype = p.out_dtype = DType::kFP16; });
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST_F(Validate, MtpWith64RowsPasses) {
  const Status status = with_problem([](DecodeProblem& p) { p.s_q = 4; });
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST_F(Validate, NullLseIsAllowed) {
  args_.lse = nullptr;
  args_.lse_batch_stride = args_.lse_head_stride = args_.lse_seq_stride = 0;
  EXPECT_TRUE(validate(args_).ok());
}

TEST_F(Validate, NullQ) {
  args_.q = nullptr;
  expect(StatusCode::kInvalidArgument, "q is null");
}

TEST_F(Validate, NullKvCache) {
  args_.kv_cache = nullptr;
  expect(StatusCode::kInvalidArgument, "kv_cache is null");
}

TEST_F(Validate, NullBlockTable) {
  args_.block_table = nullptr;
  expect(StatusCode::kInvalidArgument, "block_table is null");
}

TEST_F(Validate, NullSeqlens) {
  args_.seqlens = nullptr;
  expect(StatusCode::kInvalidArgument, "seqlens is null");
}

TEST_F(Validate, NullOut) {
  args_.out = nullptr;
  expect(StatusCode::kInvalidArgument, "out is null; pass the device address of the output tensor");
}

TEST_F(Validate, MisalignedQ) {
  args_.q = fake_address<void>(0x100002);
  expect(StatusCode::kInvalidArgument, "q must be 16-byte aligned for TMA; got address 0x100002");
}

TEST_F(Validate, MisalignedKvCache) {
  args_.kv_cache = fake_address<void>(0x200008);
  expect(StatusCode::kInvalidArgument, "kv_cache must be 16-byte aligned for TMA; got address 0x200008");
}

TEST_F(Validate, MisalignedOut) {
  args_.out = fake_address<void>(0x500004);
  expect(StatusCode::kInvalidArgument, "out must be 16-byte aligned");
}

TEST_F(Validate, MisalignedBlockTable) {
  args_.block_table = fake_address<int32_t>(0x300002);
  expect(StatusCode::kInvalidArgument, "block_table must be 4-byte aligned");
}

TEST_F(Validate, MisalignedLse) {
  args_.lse = fake_address<float>(0x600001);
  expect(StatusCode::kInvalidArgument, "lse must be 4-byte aligned");
}

TEST_F(Validate, ZeroStride) {
  args_.q_head_stride = 0;
  expect(StatusCode::kInvalidArgument, "q_head_stride must be positive; got 0 (strides are in elements");
}

TEST_F(Validate, NegativeStride) {
  args_.out_batch_stride = -8192;
  expect(StatusCode::kInvalidArgument, "out_batch_stride must be positive; got -8192");
}

TEST_F(Validate, StrideNotAMultipleOf16Bytes) {
  args_.q_head_stride = 580;
  expect(StatusCode::kInvalidArgument, "q_head_stride = 580 is not a multiple of 8 elements (16 bytes)");
}

TEST_F(Validate, KvTokenStrideOverlapsTheRow) {
  args_.kv_token_stride = 512;
  args_.kv_page_stride = 512 * 64;
  expect(StatusCode::kInvalidArgument, "kv_token_stride = 512 is smaller than 576 elements");
}

TEST_F(Validate, KvPageStrideOverlapsThePage) {
  args_.kv_page_stride = 576;
  expect(StatusCode::kInvalidArgument, "kv_page_stride = 576 is smaller than 36864 elements");
}

TEST_F(Validate, QSeqStrideOverlapsTheHeads) {
  problem_.s_q = 2;
  reset();
  args_.q_seq_stride = 576;
  expect(StatusCode::kInvalidArgument, "q_seq_stride = 576 is smaller than 9216 elements");
}

TEST_F(Validate, OutHeadStrideSmallerThanDv) {
  args_.out_head_stride = 256;
  expect(StatusCode::kInvalidArgument, "out_head_stride = 256 is smaller than 512 elements");
}

TEST_F(Validate, HugeStride) {
  args_.kv_page_stride = int64_t{1} << 40;
  expect(StatusCode::kInvalidArgument, "kv_page_stride = 1099511627776 elements is too large");
}

TEST_F(Validate, HeadMajorQueryLayoutPasses) {
  // q stored as [batch, h_q, s_q, d_qk]: strides permuted, still no overlap.
  problem_.s_q = 2;
  reset();
  args_.q_seq_stride = 576;
  args_.q_head_stride = 2 * 576;
  const Status status = validate(args_);
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST_F(Validate, PaddedRowsPass) {
  args_.kv_token_stride = 640;
  args_.kv_page_stride = 640 * 64 + 64;
  EXPECT_TRUE(validate(args_).ok());
}

TEST_F(Validate, LseStrideZero) {
  args_.lse_head_stride = 0;
  expect(StatusCode::kInvalidArgument, "lse_head_stride must be positive");
}

TEST_F(Validate, LseStridesOverlap) {
  args_.lse_batch_stride = 8;
  expect(StatusCode::kInvalidArgument, "lse_batch_stride = 8 is smaller than 16 elements");
}

TEST_F(Validate, BlockTableStrideSmallerThanMaxPages) {
  args_.block_table_stride = 10;
  expect(StatusCode::kInvalidArgument, "block_table_stride (10) must be at least max_pages_per_seq (16)");
}

TEST_F(Validate, BatchZero) {
  expect_status(with_problem([](DecodeProblem& p) { p.batch = 0; }), StatusCode::kInvalidArgument,
                "batch must be at least 1; got 0");
}

TEST_F(Validate, SqZero) {
  expect_status(with_problem([](DecodeProblem& p) { p.s_q = 0; }), StatusCode::kInvalidArgument,
                "s_q must be at least 1; got 0");
}

TEST_F(Validate, HqZero) {
  expect_status(with_problem([](DecodeProblem& p) { p.h_q = 0; }), StatusCode::kInvalidArgument,
                "h_q must be at least 1; got 0");
}

TEST_F(Validate, HkvZero) {
  expect_status(with_problem([](DecodeProblem& p) { p.h_kv = 0; }), StatusCode::kInvalidArgument,
                "h_kv must be at least 1; got 0");
}

TEST_F(Validate, HqNotDivisibleByHkv) {
  expect_status(with_problem([](DecodeProblem& p) {
                  p.h_q = 10;
                  p.h_kv = 3;
                }),
                StatusCode::kInvalidArgument, "h_q (10) must be divisible by h_kv (3)");
}

TEST_F(Validate, DvLargerThanDqk) {
  expect_status(with_problem([](DecodeProblem& p) { p.d_v = 640; }), StatusCode::kInvalidArgument,
                "d_v (640) must not exceed d_qk (576)");
}

TEST_F(Validate, UnsupportedHeadDims) {
  expect_status(with_problem([](DecodeProblem& p) {
                  p.d_qk = 128;
                  p.d_v = 128;
                }),
                StatusCode::kUnsupported,
                "head dims d_qk=128/d_v=128 are not supported; supported: 576/512, 512/512 and 320/256");
}

TEST_F(Validate, EveryBuiltHeadDimPairIsAccepted) {
  for (auto [d_qk, d_v] : {std::pair{576, 512}, std::pair{512, 512}, std::pair{320, 256}}) {
    const Status status = with_problem([&](DecodeProblem& p) {
      p.d_qk = d_qk;
      p.d_v = d_v;
    });
    EXPECT_TRUE(status.ok()) << d_qk << "/" << d_v << ": " << status.message();
  }
}

TEST_F(Validate, PageSizeZero) {
  expect_status(with_problem([](DecodeProblem& p) { p.page_size = 0; }), StatusCode::kInvalidArgument,
                "page_size must be at least 1; got 0");
}

TEST_F(Validate, AnyPageSizeHkvAndRowCountUpToTheLimitIsAccepted) {
  for (int32_t page_size : {1, 3, 16, 48, 64, 80, 128, 256}) {
    const Status status = with_problem([&](DecodeProblem& p) { p.page_size = page_size; });
    EXPECT_TRUE(status.ok()) << "page " << page_size << ": " << status.message();
  }
  for (auto [s_q, h_q, h_kv] : {std::tuple{1, 128, 1}, std::tuple{16, 128, 1}, std::tuple{2, 16, 2},
                                std::tuple{1, 8, 8}, std::tuple{32, 128, 1}, std::tuple{64, 64, 1}}) {
    const Status status = with_problem([&](DecodeProblem& p) {
      p.s_q = s_q;
      p.h_q = h_q;
      p.h_kv = h_kv;
    });
    EXPECT_TRUE(status.ok()) << s_q << "x" << h_q << "/" << h_kv << ": " << status.message();
  }
}

TEST_F(Validate, TooManyRowsPerRequest) {
  expect_status(with_problem([](DecodeProblem& p) {
                  p.s_q = 33;
                  p.h_q = 128;
                }),
                StatusCode::kUnsupported,
                "s_q·h_q = 4224 query rows per request; this build supports up to 4096");
}

TEST_F(Validate, NumPagesZero) {
  expect_status(with_problem([](DecodeProblem& p) { p.num_pages = 0; }), StatusCode::kInvalidArgument,
                "num_pages must be at least 1; got 0");
}

TEST_F(Validate, MaxPagesPerSeqZero) {
  expect_status(with_problem([](DecodeProblem& p) { p.max_pages_per_seq = 0; }), StatusCode::kInvalidArgument,
                "max_pages_per_seq must be at least 1; got 0");
}

TEST_F(Validate, ScheduleOverflowGuard) {
  expect_status(with_problem([](DecodeProblem& p) {
                  p.batch = 65536;
                  p.max_pages_per_seq = 32768;
                }),
                StatusCode::kUnsupported, "must stay below 2^31");
}

TEST_F(Validate, QueryFp32Unsupported) {
  expect_status(with_problem([](DecodeProblem& p) { p.q_dtype = p.kv_dtype = p.out_dtype = DType::kFP32; }),
                StatusCode::kUnsupported, "q_dtype fp32 is not supported; supported: bf16, fp16");
}

TEST_F(Validate, Fp8DtypeNeedsAnFp8Format) {
  expect_status(with_problem([](DecodeProblem& p) { p.kv_dtype = DType::kFP8E4M3; }),
                StatusCode::kInvalidArgument, "kv_dtype fp8_e4m3 needs an FP8 kv_format");
}

TEST_F(Validate, UnknownKvFormat) {
  expect_status(with_problem([](DecodeProblem& p) { p.kv_format = static_cast<KvFormat>(7); }),
                StatusCode::kInvalidArgument, "kv_format has the unknown value 7");
}

// FP8 problems: valid arguments pass (576/512; V3.2 with bf16 queries), the rest is refused with a status.
class ValidateFp8 : public Validate {
 protected:
  void use(KvFormat format, DType q = DType::kBF16) {
    problem_.kv_format = format;
    problem_.kv_dtype = DType::kFP8E4M3;
    problem_.q_dtype = problem_.out_dtype = q;
    reset();
    if (format == KvFormat::kFp8PerTensor) args_.descale_k = fake_address<float>(0x700000);
  }
  void expect_valid() {
    const Status status = validate(args_);
    EXPECT_TRUE(status.ok()) << status.message();
  }
};

TEST_F(ValidateFp8, ValidArgumentsPass) {
  for (const KvFormat format : {KvFormat::kFp8PerTensor, KvFormat::kFp8DeepSeekV32})
    for (const DType q : {DType::kBF16, DType::kFP16}) {
      SCOPED_TRACE(std::string(to_string(format)) + " q " + to_string(q));
      use(format, q);
      if (format == KvFormat::kFp8DeepSeekV32 && q == DType::kFP16)
        expect(StatusCode::kUnsupported, "kv_format fp8_deepseek_v32 takes bf16 queries only");
      else
        expect_valid();
    }
}

TEST_F(ValidateFp8, PerTensorBuiltForTheMlaHeadDimsOnly) {
  use(KvFormat::kFp8PerTensor);
  args_.problem.d_qk = 512;
  args_.kv_head_stride = args_.kv_token_stride = 512;
  args_.kv_page_stride = 64 * 512;
  expect(StatusCode::kUnsupported, "kv_format fp8_per_tensor is built for d_qk = 576 and d_v = 512 only");
}

TEST_F(ValidateFp8, DenseStridesAreBytes) {
  use(KvFormat::kFp8PerTensor);
  EXPECT_EQ(args_.kv_head_stride, 576);
  EXPECT_EQ(args_.kv_token_stride, 576);
  EXPECT_EQ(args_.kv_page_stride, 64 * 576);
  use(KvFormat::kFp8DeepSeekV32);
  EXPECT_EQ(args_.kv_head_stride, 656);
  EXPECT_EQ(args_.kv_token_stride, 656);
  EXPECT_EQ(args_.kv_page_stride, 64 * 656);
  EXPECT_EQ(args_.q_head_stride, 576);  // q and out keep element strides
  EXPECT_EQ(args_.out_head_stride, 512);
}

TEST_F(ValidateFp8, FormatNeedsE4m3Cache) {
  use(KvFormat::kFp8DeepSeekV32);
  problem_.kv_dtype = DType::kBF16;
  reset();
  expect(StatusCode::kInvalidArgument,
         "kv_format fp8_deepseek_v32 stores e4m3 values; set kv_dtype to fp8_e4m3");
}

TEST_F(ValidateFp8, OutputInTheQueryDtype) {
  use(KvFormat::kFp8PerTensor, DType::kFP16);
  args_.problem.out_dtype = DType::kBF16;
  expect(StatusCode::kInvalidArgument, "out_dtype (bf16) must equal q_dtype (fp16)");
  use(KvFormat::kFp8PerTensor);
  args_.problem.out_dtype = DType::kFP8E4M3;
  expect(StatusCode::kInvalidArgument, "out_dtype (fp8_e4m3) must equal q_dtype (bf16)");
}

TEST_F(ValidateFp8, E4m3QueryUnsupported) {
  use(KvFormat::kFp8PerTensor);
  args_.problem.q_dtype = args_.problem.out_dtype = DType::kFP8E4M3;
  expect(StatusCode::kUnsupported, "q_dtype fp8_e4m3 is not supported; supported: bf16, fp16");
}

TEST_F(ValidateFp8, PerTensorNeedsDescaleK) {
  use(KvFormat::kFp8PerTensor);
  args_.descale_k = nullptr;
  expect(StatusCode::kInvalidArgument,
         "descale_k is null; kv_format fp8_per_tensor needs the device address");
  args_.descale_k = fake_address<float>(0x700002);
  expect(StatusCode::kInvalidArgument, "descale_k must be 4-byte aligned (fp32)");
}

TEST_F(ValidateFp8, DescaleKRefusedWhereUnused) {
  use(KvFormat::kFp8DeepSeekV32);
  args_.descale_k = fake_address<float>(0x700000);
  expect(
      StatusCode::kInvalidArgument,
      "descale_k must be null for kv_format fp8_deepseek_v32: its scales are stored in each 656-byte token");
  args_ = make_dense_args(
      problem_ = DecodeProblem{.batch = 4, .h_q = 16, .num_pages = 100, .max_pages_per_seq = 16},
      fake_address<void>(0x100000), fake_address<void>(0x200000), fake_address<int32_t>(0x300000),
      fake_address<int32_t>(0x400000), fake_address<void>(0x500000), nullptr, 0.1352f, false);
  args_.descale_k = fake_address<float>(0x700000);
  expect(StatusCode::kInvalidArgument,
         "descale_k must be null for kv_format dense: a dense cache is not quantised");
}

TEST_F(ValidateFp8, DescaleQScalesTheQueryOfFp8Calls) {
  for (const KvFormat format : {KvFormat::kFp8PerTensor, KvFormat::kFp8DeepSeekV32}) {
    use(format);
    args_.descale_q = fake_address<float>(0x800000);
    expect_valid();
    args_.descale_q = fake_address<float>(0x800001);
    expect(StatusCode::kInvalidArgument, "descale_q must be 4-byte aligned (fp32)");
  }
  args_ = make_dense_args(
      problem_ = DecodeProblem{.batch = 4, .h_q = 16, .num_pages = 100, .max_pages_per_seq = 16},
      fake_address<void>(0x100000), fake_address<void>(0x200000), fake_address<int32_t>(0x300000),
      fake_address<int32_t>(0x400000), fake_address<void>(0x500000), nullptr, 0.1352f, false);
  args_.descale_q = fake_address<float>(0x800000);
  expect(StatusCode::kInvalidArgument, "descale_q must be null for kv_format dense");
}

TEST_F(ValidateFp8, DeepSeekV32FixesHeadDims) {
  use(KvFormat::kFp8DeepSeekV32);
  args_.problem.d_v = 256;
  expect(StatusCode::kInvalidArgument, "kv_format fp8_deepseek_v32 fixes d_qk = 576 and d_v = 512");
  args_.problem.d_v = 512;
  args_.problem.d_qk = 512;
  expect(StatusCode::kInvalidArgument, "got d_qk = 512, d_v = 512");
}

TEST_F(ValidateFp8, PerTensorHeadDimsAsDense) {
  use(KvFormat::kFp8PerTensor);
  args_.problem.d_v = 256;
  expect(StatusCode::kUnsupported, "head dims d_qk=576/d_v=256 are not supported");
}

TEST_F(ValidateFp8, TokenStrideOf656BytesRows) {
  use(KvFormat::kFp8DeepSeekV32);
  args_.kv_head_stride = 576;  // the element count of a 576-value row, not the 656-byte token
  args_.kv_token_stride = args_.kv_head_stride;
  args_.kv_page_stride = 64 * args_.kv_token_stride;
  expect(StatusCode::kInvalidArgument, "kv_token_stride = 576 is smaller than 656 elements");
  expect(StatusCode::kInvalidArgument, "the KV strides of an FP8 format are in bytes");
  use(KvFormat::kFp8DeepSeekV32);
  args_.kv_token_stride = args_.kv_head_stride = 664;  // 8-byte steps: TMA needs 16
  args_.kv_page_stride = 64 * 664;
  expect(StatusCode::kInvalidArgument, "kv_token_stride = 664 is not a multiple of 16 elements (16 bytes)");
  use(KvFormat::kFp8DeepSeekV32);
  args_.kv_page_stride = 65 * 656;  // FlashMLA's tests pad each page by a token: fine
  expect_valid();
  args_.kv_cache = fake_address<void>(0x200008);
  expect(StatusCode::kInvalidArgument, "kv_cache must be 16-byte aligned for TMA");
}

TEST_F(ValidateFp8, PerTensorByteStrides) {
  use(KvFormat::kFp8PerTensor);
  args_.kv_token_stride = args_.kv_head_stride = 584;
  args_.kv_page_stride = 64 * 584;
  expect(StatusCode::kInvalidArgument, "kv_token_stride = 584 is not a multiple of 16 elements");
  use(KvFormat::kFp8PerTensor);
  args_.kv_page_stride = 64 * 576 + 16;
  expect_valid();
}

TEST_F(ValidateFp8, BufferSizesAsDense) {
  use(KvFormat::kFp8PerTensor);
  Options options;
  options.num_sms = 132;
  const std::size_t plan = plan_bytes(problem_, options), workspace = workspace_bytes(problem_, options);
  EXPECT_GT(plan, 0u);
  EXPECT_GT(workspace, 0u);
  problem_.kv_format = KvFormat::kDense;
  problem_.kv_dtype = DType::kBF16;
  EXPECT_EQ(plan_bytes(problem_, options), plan);
  EXPECT_EQ(workspace_bytes(problem_, options), workspace);
}

TEST_F(Validate, KvDtypeMismatch) {
  expect_status(with_problem([](DecodeProblem& p) { p.kv_dtype = DType::kFP16; }),
                StatusCode::kInvalidArgument, "kv_dtype (fp16) must equal q_dtype (bf16)");
}

TEST_F(Validate, OutDtypeMismatch) {
  expect_status(with_problem([](DecodeProblem& p) { p.out_dtype = DType::kFP32; }),
                StatusCode::kInvalidArgument, "out_dtype (fp32) must equal q_dtype (bf16)");
}

TEST_F(Validate, UnknownDtypeValue) {
  expect_status(with_problem([](DecodeProblem& p) { p.q_dtype = static_cast<DType>(7); }),
                StatusCode::kInvalidArgument, "q_dtype has the unknown value 7");
}

TEST_F(Validate, ZeroSoftmaxScale) {
  args_.softmax_scale = 0.f;
  expect(StatusCode::kInvalidArgument, "softmax_scale must be a finite positive number; got 0");
}

TEST_F(Validate, NegativeSoftmaxScale) {
  args_.softmax_scale = -0.5f;
  expect(StatusCode::kInvalidArgument, "softmax_scale must be a finite positive number; got -0.5");
}

TEST_F(Validate, NanSoftmaxScale) {
  args_.softmax_scale = std::numeric_limits<float>::quiet_NaN();
  expect(StatusCode::kInvalidArgument, "softmax_scale must be a finite positive number");
}

TEST_F(Validate, InfiniteSoftmaxScale) {
  args_.softmax_scale = std::numeric_limits<float>::infinity();
  expect(StatusCode::kInvalidArgument, "softmax_scale must be a finite positive number");
}

TEST_F(Validate, UnknownLseBase) {
  args_.lse_base = static_cast<LseBase>(5);
  expect(StatusCode::kInvalidArgument, "lse_base has the unknown value 5");
}

}  // namespace
}  // namespace etap
