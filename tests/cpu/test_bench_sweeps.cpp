// The named sweeps of issue 4 and the free-form product (bench/sweeps.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "bench/sweeps.hpp"

namespace etap::bench {
namespace {

TEST(BenchSweeps, PaperIsTheTwoBatchesOverEightLengths) {
  const auto configs = paper_sweep();
  ASSERT_EQ(configs.size(), 16u);
  std::set<int32_t> lengths;
  for (const auto& c : configs) {
    EXPECT_TRUE(c.batch == 16 || c.batch == 32);
    EXPECT_EQ(c.h_q, 16);
    EXPECT_EQ(c.s_q, 1);
    EXPECT_FALSE(c.causal);
    EXPECT_FALSE(c.varlen);
    EXPECT_EQ(c.dtype, "bf16");
    EXPECT_EQ(c.sweep, "paper");
    lengths.insert(c.seqlen);
  }
  EXPECT_EQ(lengths, (std::set<int32_t>{512, 1024, 2048, 4096, 8192, 16384, 32768, 65536}));
}

TEST(BenchSweeps, HeadsCoverTpDegreesAndMtp) {
  const auto configs = heads_sweep();
  ASSERT_EQ(configs.size(), 15u);
  for (const auto& c : configs) {
    EXPECT_EQ(c.batch, 16);
    EXPECT_EQ(c.seqlen, 8192);
    EXPECT_EQ(c.causal, c.s_q > 1) << describe(c);
  }
  EXPECT_EQ(configs.back().rows(), 128 * 4);
}

TEST(BenchSweeps, BatchAndVarlen) {
  const auto batch = batch_sweep();
  ASSERT_EQ(batch.size(), 6u);
  EXPECT_EQ(batch.front().batch, 1);
  EXPECT_EQ(batch.back().batch, 256);
  for (const auto& c : batch) EXPECT_EQ(c.seqlen, 4096);

  const auto varlen = varlen_sweep();
  ASSERT_EQ(varlen.size(), 6u);
  for (const auto& c : varlen) {
    EXPECT_TRUE(c.varlen);
    EXPECT_EQ(c.varlen_seed, kVarlenSeed);
  }
}

TEST(BenchSweeps, CoverageHoldsIssue10sRows) {
  const auto configs = coverage_sweep();
  ASSERT_EQ(configs.size(), 15u);
  const auto has = [&](const BenchConfig& wanted) {
    return std::find(configs.begin(), configs.end(), wanted) != configs.end();
  };
  const BenchConfig base{.sweep = "coverage", .batch = 16, .seqlen = 8192};
  const auto with = [&base](auto change) {
    BenchConfig c = base;
    change(c);
    return c;
  };
  EXPECT_TRUE(has(with([](BenchConfig& c) { c.h_q = 64; })));
  EXPECT_TRUE(has(with([](BenchConfig& c) { c.h_q = 128; })));
  EXPECT_TRUE(has(with([](BenchConfig& c) {
    c.h_q = 64;
    c.s_q = 2;
    c.causal = true;
  })));
  EXPECT_TRUE(has({.sweep = "coverage", .batch = 128, .seqlen = 4096, .h_q = 128}));
  for (int32_t page : {1, 16, 32, 64, 128, 256})
    EXPECT_TRUE(has(with([page](BenchConfig& c) { c.page_size = page; }))) << page;
  EXPECT_TRUE(has(with([](BenchConfig& c) { c.d_qk = c.d_v = 512; })));
  EXPECT_TRUE(has(with([](BenchConfig& c) {
    c.d_qk = 320;
    c.d_v = 256;
  })));
  EXPECT_TRUE(has(with([](BenchConfig& c) {
    c.h_q = 32;
    c.h_kv = 2;
  })));
  EXPECT_TRUE(has(with([](BenchConfig& c) {
    c.h_q = 64;
    c.s_q = 4;
    c.causal = true;
    c.varlen_q = true;
  })));
  EXPECT_EQ(std::count_if(configs.begin(), configs.end(), [](const BenchConfig& c) { return c.varlen_q; }),
            2);
  for (const auto& c : configs) {
    EXPECT_EQ(c.sweep, "coverage");
    EXPECT_EQ(c.causal, c.s_q > 1) << describe(c);
    EXPECT_EQ(c.h_q % c.h_kv, 0) << describe(c);
  }
}

TEST(BenchSweeps, NamedLookup) {
  for (const auto& name : sweep_names()) EXPECT_TRUE(named_sweep(name).has_value()) << name;
  EXPECT_EQ(named_sweep("all")->size(), 16u + 15u + 6u + 6u + 15u + 12u);
  EXPECT_FALSE(named_sweep("nope").has_value());
}

TEST(BenchSweeps, FreeFormIsTheCartesianProduct) {
  FreeForm f;
  f.batches = {1, 16};
  f.seqlens = {1024, 8192, 65536};
  f.h_qs = {16, 32};
  f.s_qs = {1};
  f.dtype = "fp16";
  const auto configs = free_form_sweep(f);
  ASSERT_EQ(configs.size(), 12u);
  EXPECT_EQ(configs.front(), (BenchConfig{.batch = 1, .seqlen = 1024, .h_q = 16, .s_q = 1, .dtype = "fp16"}));
  for (const auto& c : configs) EXPECT_EQ(c.sweep, "custom");

  f.varlen_means = {4096};
  f.h_kvs = {1, 2};
  f.page_sizes = {1, 64, 256};
  f.head_dims = {{576, 512}, {320, 256}};
  const auto varlen = free_form_sweep(f);
  ASSERT_EQ(varlen.size(), 4u * 2 * 3 * 2);  // the means replace the fixed lengths; × h_kv × pages × dims
  for (const auto& c : varlen) {
    EXPECT_TRUE(c.varlen);
    EXPECT_EQ(c.seqlen, 4096);
  }
  EXPECT_EQ(varlen.back().h_kv, 2);
  EXPECT_EQ(varlen.back().page_size, 256);
  EXPECT_EQ(varlen.back().d_v, 256);
}

TEST(BenchSweeps, DescribeNamesTheShape) {
  EXPECT_EQ(describe({.batch = 16, .seqlen = 8192, .h_q = 32, .s_q = 2, .causal = true}),
            "b=16 s_k=8192 h_q=32 s_q=2 causal");
  EXPECT_EQ(describe({.batch = 4, .seqlen = 1024, .varlen = true, .dtype = "fp16"}),
            "b=4 s_k~1024 h_q=16 s_q=1 fp16");
  EXPECT_EQ(
      describe({.h_q = 32, .s_q = 2, .causal = true, .h_kv = 2, .page_size = 1, .d_qk = 320, .d_v = 256}),
      "b=16 s_k=4096 h_q=32 s_q=2 h_kv=2 page=1 d=320/256 causal");
}

}  // namespace
}  // namespace etap::bench
