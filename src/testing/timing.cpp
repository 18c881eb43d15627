#include "testing/timing.hpp"

#include <stdexcept>

namespace etap::testing {

L2Flusher::L2Flusher(int device) {
  int l2 = 0;
  ETAP_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  l2_bytes_ = l2;
  buffer_ = DeviceBuffer(2 * static_cast<std::size_t>(l2 > 0 ? l2 : 1));
}

void L2Flusher::flush(cudaStream_t stream) {
  value_ = (value_ + 1) & 0xFF;
  ETAP_CUDA_CHECK(cudaMemsetAsync(buffer_.get(), value_, buffer_.bytes(), stream));
}

std::vector<double> time_calls(const Call& call, L2Flusher* flusher, const TimingSpec& spec,
                               cudaStream_t stream) {
  int n = 0;
  for (int i = 0; i < spec.warmup; ++i) {
    if (flusher) flusher->flush(stream);
    call(n++, stream);
  }
  std::vector<Event> start(spec.iters), stop(spec.iters);
  for (int i = 0; i < spec.iters; ++i) {
    if (flusher) flusher->flush(stream);
    ETAP_CUDA_CHECK(cudaEventRecord(start[i].get(), stream));
    call(n++, stream);
    ETAP_CUDA_CHECK(cudaEventRecord(stop[i].get(), stream));
  }
  ETAP_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> us(spec.iters);
  for (int i = 0; i < spec.iters; ++i) us[i] = elapsed_us(start[i], stop[i]);
  return us;
}

namespace {

class Graph {
 public:
  Graph(const Call& call, int calls, cudaStream_t stream) {
    ETAP_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      for (int i = 0; i < calls; ++i) call(i, stream);
    } catch (...) {
      cudaGraph_t partial = nullptr;
      cudaStreamEndCapture(stream, &partial);
      if (partial) cudaGraphDestroy(partial);
      cudaGetLastError();
      throw;
    }
    ETAP_CUDA_CHECK(cudaStreamEndCapture(stream, &graph_));
    ETAP_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  ~Graph() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  void launch(cudaStream_t stream) { ETAP_CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace

std::vector<double> time_graph(const Call& call, int calls_per_graph, L2Flusher* flusher,
                               const TimingSpec& spec, cudaStream_t stream) {
  if (calls_per_graph < 1) throw std::invalid_argument("calls_per_graph must be >= 1");
  Graph graph(call, calls_per_graph, stream);
  const Call replay = [&](int, cudaStream_t s) { graph.launch(s); };
  std::vector<double> us = time_calls(replay, flusher, spec, stream);
  for (double& t : us) t /= calls_per_graph;
  return us;
}

}  // namespace etap::testing
