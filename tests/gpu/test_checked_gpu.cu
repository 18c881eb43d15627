// Checked mode: bad page ids and seqlens are caught on the device and reported with the request, the
// block-table position and the value; a good problem passes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <etap/etap.hpp>
#include <string>
#include <vector>

#include "cpu/test_util.hpp"
#include "decode/checked/checked.hpp"
#include "gpu/gpu_test_util.hpp"
#include "testing/problem.hpp"

namespace etap {
namespace {

constexpr int kNumSms = 132;
constexpr int32_t kBatch = 4;
constexpr int32_t kMaxPages = 4;
constexpr int32_t kNumPages = 10;
constexpr std::size_t kStandInBytes = 256;

using ::etap::test::Contains;

using ::etap::test::DeviceBuffer;

// A 4-request problem whose seqlens need 2, 4, 0 and 2 pages; unused block-table columns hold the padding id.
class CheckedMode : public ::testing::Test {
 protected:
  void SetUp() override {
    ETAP_REQUIRE_SM90();
    problem_.batch = kBatch;
    problem_.h_q = 16;
    problem_.num_pages = kNumPages;
    problem_.max_pages_per_seq = kMaxPages;
    table_ = {3,
              7,
              kPaddingPageId,
              kPaddingPageId,  //
              0,
              1,
              2,
              9,  //
              kPaddingPageId,
              kPaddingPageId,
              kPaddingPageId,
              kPaddingPageId,  //
              5,
              4,
              kPaddingPageId,
              kPaddingPageId};
    seqlens_ = {100, 256, 0, 65};
  }

  // Uploads table_ and seqlens_, runs the checks (directly, or through etap::decode in checked mode).
  Status run(bool through_decode = false, bool checked_option = true) {
    DeviceBuffer table(table_.size() * sizeof(int32_t)), seqlens(seqlens_.size() * sizeof(int32_t));
    DeviceBuffer stand_in(kStandInBytes);
    const Options options{kNumSms, checked_option};
    const std::size_t workspace_size = workspace_bytes(problem_, options);
    const std::size_t plan_size = plan_bytes(problem_, options);
    DeviceBuffer workspace(workspace_size), plan_buffer(plan_size);
    EXPECT_EQ(cudaMemcpy(table.get(), table_.data(), table_.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
              cudaSuccess);
    EXPECT_EQ(
        cudaMemcpy(seqlens.get(), seqlens_.data(), seqlens_.size() * sizeof(int32_t), cudaMemcpyHostToDevice),
        cudaSuccess);
    const DecodeArgs args =
        make_dense_args(problem_, stand_in.get(), stand_in.get(), static_cast<int32_t*>(table.get()),
                        static_cast<int32_t*>(seqlens.get()), stand_in.get(), nullptr, 0.1352f, false);
    if (!through_decode) return decoding::run_checks(args, workspace.get(), nullptr);
    const Status planned = plan(args, plan_buffer.get(), plan_size, nullptr, options);
    EXPECT_TRUE(planned.ok()) << planned.message();
    return decode(args, plan_buffer.get(), plan_size, workspace.get(), workspace_size, nullptr, options);
  }

  DecodeProblem problem_;
  std::vector<int32_t> table_, seqlens_;
};

TEST_F(CheckedMode, GoodProblemPasses) {
  const Status status = run();
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST_F(CheckedMode, SeqlenFillingTheWholeRowPasses) {
  seqlens_[1] = kMaxPages * 64;
  EXPECT_TRUE(run().ok());
}

TEST_F(CheckedMode, PaddingIdInAUsedColumn) {
  seqlens_[3] = 129;  // now needs 3 pages: column 2 holds the padding id
  const Status status = run();
  EXPECT_EQ(status.code(), StatusCode::kCheckFailed);
  EXPECT_EQ(status.message(),
            "checked mode: request 3 uses page id 2147480000 at block_table[3][2]; the cache has 10 pages");
}

TEST_F(CheckedMode, NegativePageId) {
  table_[1 * kMaxPages + 3] = -1;
  const Status status = run();
  EXPECT_EQ(status.code(), StatusCode::kCheckFailed);
  EXPECT_TRUE(Contains(status.message(), "request 1 uses page id -1 at block_table[1][3]"));
}

TEST_F(CheckedMode, PageIdEqualToNumPages) {
  table_[0 * kMaxPages + 1] = kNumPages;
  const Status status = run();
  EXPECT_EQ(status.code(), StatusCode::kCheckFailed);
  EXPECT_TRUE(Contains(status.message(), "request 0 uses page id 10 at block_table[0][1]"));
}

TEST_F(CheckedMode, SeqlenLongerThanTheBlockTableRow) {
  seqlens_[2] = 300;
  const Status status = run();
  EXPECT_EQ(status.code(), StatusCode::kCheckFailed);
  EXPECT_EQ(status.message(),
            "checked mode: request 2 has seqlen 300 but its block-table row holds 4 pages (256 tokens)");
}

TEST_F(CheckedMode, NegativeSeqlen) {
  seqlens_[3] = -7;
  const Status status = run();
  EXPECT_EQ(status.code(), StatusCode::kCheckFailed);
  EXPECT_TRUE(Contains(status.message(), "request 3 has seqlen -7"));
}

TEST_F(CheckedMode, ReportsTheFirstOffendingRequest) {
  table_[3 * kMaxPages + 0] = 99;
  table_[1 * kMaxPages + 2] = 42;
  table_[1 * kMaxPages + 3] = 43;
  const Status status = run();
  EXPECT_EQ(status.code(), StatusCode::kCheckFailed);
  EXPECT_TRUE(Contains(status.message(), "request 1 uses page id 42 at block_table[1][2]"));
}

TEST_F(CheckedMode, DecodeStopsBeforeLaunchingTheKernel) {
  table_[0] = kNumPages + 5;
  const Status status = run(/*through_decode=*/true);
  EXPECT_EQ(status.code(), StatusCode::kCheckFailed);
  EXPECT_TRUE(Contains(status.message(), "request 0 uses page id 15 at block_table[0][0]"));
}

TEST_F(CheckedMode, EnabledByEnvironment) {
  table_[0] = -3;
  ASSERT_EQ(setenv("ETAP_CHECKED", "1", 1), 0);
  const Status status = run(/*through_decode=*/true, /*checked_option=*/false);
  unsetenv("ETAP_CHECKED");
  EXPECT_EQ(status.code(), StatusCode::kCheckFailed);
  EXPECT_TRUE(Contains(status.message(), "request 0 uses page id -3"));
}

TEST_F(CheckedMode, RefusedDuringGraphCapture) {
  DeviceBuffer workspace(workspace_bytes(problem_, {kNumSms, true})), stand_in(kStandInBytes);
  const DecodeArgs args =
      make_dense_args(problem_, stand_in.get(), stand_in.get(), static_cast<int32_t*>(stand_in.get()),
                      static_cast<int32_t*>(stand_in.get()), stand_in.get(), nullptr, 0.1352f, false);
  cudaStream_t stream = nullptr;
  ETAP_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  ETAP_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status status = decoding::run_checks(args, workspace.get(), stream);
  cudaGraph_t graph = nullptr;
  ETAP_CUDA_OK(cudaStreamEndCapture(stream, &graph));
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(status.message(), "graph capture"));
}

// A plan buffer filled by etap::plan for another problem (here: the first 2 of 4 requests) is large enough,
// so decode takes it; decode and combine then find a header that does not describe this launch and do nothing
// (out keeps its poison, no fault), and checked mode names the mismatch.
TEST(PlanMismatch, DecodeLeavesOutputUntouchedAndCheckedModeReportsIt) {
  ETAP_REQUIRE_SM90();
  testing::ProblemSpec spec;
  spec.batch = 4;
  spec.seqlens = {3000, 64, 1000, 5};
  const testing::HostData host = testing::make_problem(spec);
  const Options options{kNumSms, false};
  testing::DeviceData device;
  testing::upload(host, LseBase::kNatural, options, device);
  DecodeArgs other = device.args;
  other.problem.batch = 2;
  ASSERT_LE(plan_bytes(other.problem, options), device.plan_size);
  const Status planned = plan(other, device.d_plan, device.plan_size, nullptr, options);
  ASSERT_TRUE(planned.ok()) << planned.message();

  const DecodeProblem& p = host.problem;
  const std::size_t out_bytes = static_cast<std::size_t>(p.batch) * p.s_q * p.h_q * p.d_v * sizeof(uint16_t);
  ETAP_CUDA_OK(cudaMemset(device.d_out, 0xff, out_bytes));
  const Status decoded = decode(device.args, device.d_plan, device.plan_size, device.d_workspace,
                                device.workspace_size, nullptr, options);
  EXPECT_TRUE(decoded.ok()) << decoded.message();
  ETAP_CUDA_OK(cudaDeviceSynchronize());
  std::vector<uint8_t> out(out_bytes);
  ETAP_CUDA_OK(cudaMemcpy(out.data(), device.d_out, out_bytes, cudaMemcpyDeviceToHost));
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0xff; }));

  const Status checked = decode(device.args, device.d_plan, device.plan_size, device.d_workspace,
                                device.workspace_size, nullptr, Options{kNumSms, true});
  EXPECT_EQ(checked.code(), StatusCode::kCheckFailed);
  EXPECT_TRUE(Contains(checked.message(), "holds a plan for batch 2")) << checked.message();
}

}  // namespace
}  // namespace etap
