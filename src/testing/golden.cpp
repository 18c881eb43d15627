// Loader of the golden cases: one JSON file of metadata plus raw little-endian tensors per case.
#include "testing/golden.hpp"

#include <bit>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace etap::testing {
namespace {

static_assert(std::endian::native == std::endian::little, "golden tensors are stored little-endian");

template <typename T>
std::vector<T> read_raw(const std::string& path, std::size_t expected_elems) {
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) throw std::runtime_error("cannot open " + path);
  const auto bytes = static_cast<std::size_t>(file.tellg());
  if (bytes != expected_elems * sizeof(T))
    throw std::runtime_error(path + " holds " + std::to_string(bytes) + " bytes; expected " +
                             std::to_string(expected_elems * sizeof(T)));
  std::vector<T> data(expected_elems);
  file.seekg(0);
  file.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(bytes));
  if (!file) throw std::runtime_error("short read of " + path);
  return data;
}

}  // namespace

std::vector<std::string> golden_case_names() {
  return {"case1_tails", "case2_mtp_causal", "case3_empty", "case4_large_logits", "case5_mtp4_h8"};
}

GoldenCase load_golden(const std::string& dir, const std::string& name) {
  const std::string json_path = dir + "/" + name + ".json";
  std::ifstream json_file(json_path);
  if (!json_file) throw std::runtime_error("golden: cannot open " + json_path);

  GoldenCase g;
  g.name = name;
  try {
    const nlohmann::json meta = nlohmann::json::parse(json_file);
    DecodeProblem& p = g.data.problem;
    p.batch = meta.at("batch").get<int32_t>();
    p.s_q = meta.at("s_q").get<int32_t>();
    p.h_q = meta.at("h_q").get<int32_t>();
    p.h_kv = meta.at("h_kv").get<int32_t>();
    p.d_qk = meta.at("d_qk").get<int32_t>();
    p.d_v = meta.at("d_v").get<int32_t>();
    p.page_size = meta.at("page_size").get<int32_t>();
    p.num_pages = meta.at("num_pages").get<int32_t>();
    p.q_dtype = p.kv_dtype = p.out_dtype = DType::kBF16;
    g.data.softmax_scale = meta.at("softmax_scale").get<double>();
    g.data.causal = meta.at("causal").get<bool>();
    g.data.seqlens = meta.at("seqlens").get<std::vector<int32_t>>();

    const auto table = meta.at("block_table").get<std::vector<std::vector<int32_t>>>();
    if (static_cast<int32_t>(table.size()) != p.batch ||
        static_cast<int32_t>(g.data.seqlens.size()) != p.batch)
      throw std::runtime_error("block_table and seqlens must have `batch` rows");
    p.max_pages_per_seq = table.empty() ? 0 : static_cast<int32_t>(table.front().size());
    for (const auto& row : table) {
      if (static_cast<int32_t>(row.size()) != p.max_pages_per_seq)
        throw std::runtime_error("block_table rows differ in length");
      g.data.block_table.insert(g.data.block_table.end(), row.begin(), row.end());
    }

    const std::string lse_base = meta.at("lse_base").get<std::string>();
    if (lse_base != "e" && lse_base != "2") throw std::runtime_error("lse_base must be \"e\" or \"2\"");
    g.base = lse_base == "e" ? LseBase::kNatural : LseBase::kBase2;

    const auto& files = meta.at("files");
    const std::size_t rows = static_cast<std::size_t>(p.batch) * p.s_q * p.h_q;
    g.data.q = read_raw<uint16_t>(dir + "/" + files.at("q").get<std::string>(), rows * p.d_qk);
    g.data.kv_cache =
        read_raw<uint16_t>(dir + "/" + files.at("kv_cache").get<std::string>(),
                           static_cast<std::size_t>(p.num_pages) * p.page_size * p.h_kv * p.d_qk);
    g.out = read_raw<double>(dir + "/" + files.at("out").get<std::string>(), rows * p.d_v);
    g.lse = read_raw<double>(dir + "/" + files.at("lse").get<std::string>(), rows);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("golden: malformed " + json_path + ": " + e.what());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("golden: " + name + ": " + e.what());
  }
  return g;
}

}  // namespace etap::testing
