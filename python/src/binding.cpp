// etap._C: a torch-agnostic binding over libetap's C ABI (<etap/etap.h>).
//
// Tensors arrive as raw device addresses (int), element strides and etap_dtype codes; a cudaStream_t as an
// int (0: the legacy default stream). No PyTorch header is included, so one binary serves every PyTorch
// version (no C++ ABI coupling) and builds without one; the torch layer (etap/_ops.py) stays in Python.
//
// Every failure raises an etap exception carrying the library's message: ValueError subclasses for what the
// caller can fix (invalid argument, unsupported, buffer too small, checked-mode findings), RuntimeError
// subclasses for the machine (no device, CUDA error). The calls release the GIL while in the library.
#include <etap/etap.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace py = pybind11;

namespace {

// Exception types, owned by the module (kept alive for the process: the module is never unloaded).
struct Exceptions {
  PyObject* base = nullptr;  // etap.Error
  PyObject* invalid_argument = nullptr;
  PyObject* unsupported = nullptr;
  PyObject* workspace_too_small = nullptr;
  PyObject* check_failed = nullptr;
  PyObject* no_device = nullptr;
  PyObject* cuda_error = nullptr;
};
Exceptions exceptions;

PyObject* new_exception(py::module_& m, const char* name, PyObject* bases, const char* doc) {
  const std::string qualified = std::string("etap._C.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (type == nullptr) throw py::error_already_set();
  m.attr(name) = py::reinterpret_borrow<py::object>(type);  // the module holds one reference, we keep ours
  return type;
}

PyObject* exception_for(etap_status status) {
  switch (status) {
    case ETAP_INVALID_ARGUMENT:
      return exceptions.invalid_argument;
    case ETAP_UNSUPPORTED:
      return exceptions.unsupported;
    case ETAP_WORKSPACE_TOO_SMALL:
      return exceptions.workspace_too_small;
    case ETAP_CHECK_FAILED:
      return exceptions.check_failed;
    case ETAP_NO_DEVICE:
      return exceptions.no_device;
    case ETAP_CUDA_ERROR:
      return exceptions.cuda_error;
    case ETAP_OK:
      break;
  }
  return exceptions.cuda_error;  // an unknown code: not the caller's to fix
}

[[noreturn]] void raise(etap_status status, const std::string& message) {
  PyErr_SetString(exception_for(status), message.c_str());
  throw py::error_already_set();
}

// Runs a library call without the GIL and raises on failure with its message (read on this thread).
template <typename Call>
void run(Call&& call) {
  etap_status status = ETAP_OK;
  std::string message;
  {
    py::gil_scoped_release release;
    status = call();
    if (status != ETAP_OK) message = etap_last_error();
  }
  if (status != ETAP_OK) raise(status, message);
}

template <typename T>
T* address(std::uintptr_t value) {
  return reinterpret_cast<T*>(value);
}

void* stream_handle(std::uintptr_t stream) {
  return reinterpret_cast<void*>(stream);
}

// A problem as the 13-tuple (batch, s_q, h_q, h_kv, d_qk, d_v, page_size, num_pages, max_pages_per_seq,
// q_dtype, kv_dtype, out_dtype, kv_format): the field order of etap_problem.
constexpr std::size_t kProblemFields = 13;

etap_problem to_problem(const py::tuple& t) {
  if (t.size() != kProblemFields)
    throw py::value_error("problem must be a tuple of " + std::to_string(kProblemFields) + " ints; got " +
                          std::to_string(t.size()));
  int32_t v[kProblemFields];
  for (std::size_t i = 0; i < kProblemFields; ++i) {
    const int64_t value = t[i].cast<int64_t>();
    if (value < INT32_MIN || value > INT32_MAX)
      throw py::value_error("problem field " + std::to_string(i) + " = " + std::to_string(value) +
                            " does not fit in int32");
    v[i] = static_cast<int32_t>(value);
  }
  // varlen_q stays 0 here: decode_varlen sets it.
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], 0};
}

etap_options to_options(int32_t num_sms, bool checked) {
  etap_options options = etap_default_options();
  options.num_sms = num_sms;
  options.checked = checked ? 1 : 0;
  return options;
}

// Buffer sizes, raising with the library's message and status when they cannot be computed. The size
// functions return 0 without a status; etap_validate checks the problem with the same messages, so
// when it reports the same message the failure is the problem's (its status applies). Otherwise the problem
// is fine and the SM count could not be queried: no device.
py::tuple buffer_sizes(const py::tuple& problem_tuple, int32_t num_sms) {
  const etap_problem problem = to_problem(problem_tuple);
  const etap_options options = to_options(num_sms, false);
  std::size_t plan = 0, workspace = 0;
  std::string message;
  etap_status status = ETAP_OK;
  {
    py::gil_scoped_release release;
    plan = etap_plan_bytes(&problem, &options);
    if (plan != 0) workspace = etap_workspace_bytes(&problem, &options);
    if (plan == 0 || workspace == 0) {
      message = etap_last_error();
      // The problem's verdict: validate() over aligned stand-in addresses (it reads only their alignment),
      // so that it reaches its last check too (an FP8 format whose kernel is not built).
      const auto stand_in = [](std::uintptr_t offset) {
        return address<void>(std::uintptr_t{1} << 20 | offset);
      };
      etap_decode_args probe{};
      etap_make_dense_args(&problem, stand_in(0), stand_in(0x1000),
                           static_cast<const int32_t*>(stand_in(0x2000)),
                           static_cast<const int32_t*>(stand_in(0x3000)), stand_in(0x4000),
                           static_cast<float*>(stand_in(0x5000)), 1.f, 0, ETAP_LSE_NATURAL, &probe);
      if (problem.kv_format == ETAP_KV_FP8_PER_TENSOR)
        probe.descale_k = static_cast<const float*>(stand_in(0x6000));
      status = etap_validate(&probe);
      if (status == ETAP_OK || message != etap_last_error()) status = ETAP_NO_DEVICE;
    }
  }
  if (plan == 0 || workspace == 0) raise(status, message);
  return py::make_tuple(plan, workspace);
}

// Strides: (batch, seq, head) for q and out, (page, token, head) for kv, (batch, head, seq) for lse.
struct DecodeCall {
  etap_decode_args args{};
  etap_options options{};
};

DecodeCall make_call(const py::tuple& problem, std::uintptr_t q, int64_t q_b, int64_t q_s, int64_t q_h,
                     std::uintptr_t kv, int64_t kv_p, int64_t kv_t, int64_t kv_h, std::uintptr_t block_table,
                     int64_t bt_stride, std::uintptr_t seqlens, std::uintptr_t out, int64_t o_b, int64_t o_s,
                     int64_t o_h, std::uintptr_t lse, int64_t l_b, int64_t l_h, int64_t l_s,
                     double softmax_scale, bool causal, int32_t lse_base, std::uintptr_t descale_k,
                     std::uintptr_t descale_q, int32_t num_sms, bool checked) {
  DecodeCall call;
  const etap_problem p = to_problem(problem);
  etap_make_dense_args(&p, address<const void>(q), address<const void>(kv),
                       address<const int32_t>(block_table), address<const int32_t>(seqlens),
                       address<void>(out), address<float>(lse), static_cast<float>(softmax_scale),
                       causal ? 1 : 0, lse_base, &call.args);
  etap_decode_args& a = call.args;
  a.descale_k = address<const float>(descale_k);
  a.descale_q = address<const float>(descale_q);
  a.q_batch_stride = q_b, a.q_seq_stride = q_s, a.q_head_stride = q_h;
  a.kv_page_stride = kv_p, a.kv_token_stride = kv_t, a.kv_head_stride = kv_h;
  a.block_table_stride = bt_stride;
  a.out_batch_stride = o_b, a.out_seq_stride = o_s, a.out_head_stride = o_h;
  a.lse_batch_stride = l_b, a.lse_head_stride = l_h, a.lse_seq_stride = l_s;
  call.options = to_options(num_sms, checked);
  return call;
}

// make_call for packed variable-length queries: q/out strides (token, token, head) — the batch stride is not
// read — lse (head, head, token), and the device offsets cu_seqlens_q [batch + 1] of total_q packed tokens;
// the problem's s_q is max_seqlen_q.
void make_varlen(DecodeCall& call, std::uintptr_t cu_seqlens_q, int32_t total_q) {
  call.args.problem.varlen_q = 1;
  call.args.cu_seqlens_q = address<const int32_t>(cu_seqlens_q);
  call.args.total_q = total_q;
}

}  // namespace

// The argument names of validate and decode up to lse_base (descale_k and descale_q, the FP8 scales' device
// addresses, follow as keywords defaulting to 0: null).
#define CALL_ARGS                                                                                           \
  py::arg("problem"), py::arg("q"), py::arg("q_batch_stride"), py::arg("q_seq_stride"),                     \
      py::arg("q_head_stride"), py::arg("kv"), py::arg("kv_page_stride"), py::arg("kv_token_stride"),       \
      py::arg("kv_head_stride"), py::arg("block_table"), py::arg("block_table_stride"), py::arg("seqlens"), \
      py::arg("out"), py::arg("out_batch_stride"), py::arg("out_seq_stride"), py::arg("out_head_stride"),   \
      py::arg("lse"), py::arg("lse_batch_stride"), py::arg("lse_head_stride"), py::arg("lse_seq_stride"),   \
      py::arg("softmax_scale"), py::arg("causal"), py::arg("lse_base")

PYBIND11_MODULE(_C, m) {
  m.doc() =
      "etap's torch-agnostic binding over the C ABI: raw device addresses, element strides, dtype codes";

  exceptions.base = new_exception(m, "Error", PyExc_Exception, "Base class of every error etap raises.");
  // Each error is an etap.Error and the built-in its policy names (ValueError or RuntimeError).
  const py::tuple value_error = py::make_tuple(py::handle(exceptions.base), py::handle(PyExc_ValueError));
  const py::tuple runtime_error = py::make_tuple(py::handle(exceptions.base), py::handle(PyExc_RuntimeError));
  const auto bases = [&](PyObject* python_base) {
    return python_base == PyExc_ValueError ? value_error.ptr() : runtime_error.ptr();
  };
  exceptions.invalid_argument = new_exception(m, "InvalidArgumentError", bases(PyExc_ValueError),
                                              "A pointer, shape, stride or dtype the caller can fix.");
  exceptions.unsupported = new_exception(m, "UnsupportedError", bases(PyExc_ValueError),
                                         "A valid configuration this build of etap does not implement yet.");
  exceptions.workspace_too_small =
      new_exception(m, "WorkspaceTooSmallError", bases(PyExc_ValueError),
                    "A plan or workspace buffer smaller than plan_bytes()/workspace_bytes().");
  exceptions.check_failed =
      new_exception(m, "CheckFailedError", bases(PyExc_ValueError),
                    "Checked mode found an out-of-range page id or seqlen on the device.");
  exceptions.no_device = new_exception(m, "NoDeviceError", bases(PyExc_RuntimeError),
                                       "No CUDA device, or not compute capability 9.0.");
  exceptions.cuda_error =
      new_exception(m, "CudaError", bases(PyExc_RuntimeError), "A CUDA runtime call failed.");

  m.attr("DTYPE_BF16") = static_cast<int>(ETAP_DTYPE_BF16);
  m.attr("DTYPE_FP16") = static_cast<int>(ETAP_DTYPE_FP16);
  m.attr("DTYPE_FP8_E4M3") = static_cast<int>(ETAP_DTYPE_FP8_E4M3);
  m.attr("DTYPE_FP32") = static_cast<int>(ETAP_DTYPE_FP32);
  m.attr("LSE_NATURAL") = static_cast<int>(ETAP_LSE_NATURAL);
  m.attr("LSE_BASE2") = static_cast<int>(ETAP_LSE_BASE2);
  m.attr("PADDING_PAGE_ID") = static_cast<int>(ETAP_PADDING_PAGE_ID);
  const etap_problem d = etap_default_problem();
  m.attr("DEFAULT_PROBLEM") =
      py::make_tuple(d.batch, d.s_q, d.h_q, d.h_kv, d.d_qk, d.d_v, d.page_size, d.num_pages,
                     d.max_pages_per_seq, d.q_dtype, d.kv_dtype, d.out_dtype, d.kv_format);
  m.attr("KV_DENSE") = static_cast<int>(ETAP_KV_DENSE);
  m.attr("KV_FP8_PER_TENSOR") = static_cast<int>(ETAP_KV_FP8_PER_TENSOR);
  m.attr("KV_FP8_DEEPSEEK_V32") = static_cast<int>(ETAP_KV_FP8_DEEPSEEK_V32);

  m.def(
      "buffer_sizes", &buffer_sizes, py::arg("problem"), py::arg("num_sms") = 0,
      "(plan_bytes, workspace_bytes) of a problem tuple; raises when the problem is invalid or unsupported, "
      "or when num_sms = 0 and no device can be queried");

  m.def(
      "plan_from_seqlens",
      [](const py::tuple& problem, std::uintptr_t seqlens, std::uintptr_t plan, std::size_t plan_bytes,
         std::uintptr_t stream, int32_t num_sms) {
        const etap_problem p = to_problem(problem);
        const etap_options options = to_options(num_sms, false);
        run([&] {
          return etap_plan_from_seqlens(&p, address<const int32_t>(seqlens), address<void>(plan), plan_bytes,
                                        stream_handle(stream), &options);
        });
      },
      py::arg("problem"), py::arg("seqlens"), py::arg("plan"), py::arg("plan_bytes"), py::arg("stream"),
      py::arg("num_sms") = 0,
      "the split-KV schedule from device seqlens into the plan buffer (asynchronous on `stream`); "
      "max_pages_per_seq = 0 in the problem: unknown (no block table yet)");

  m.def(
      "validate",
      [](const py::tuple& problem, std::uintptr_t q, int64_t q_b, int64_t q_s, int64_t q_h, std::uintptr_t kv,
         int64_t kv_p, int64_t kv_t, int64_t kv_h, std::uintptr_t block_table, int64_t bt_stride,
         std::uintptr_t seqlens, std::uintptr_t out, int64_t o_b, int64_t o_s, int64_t o_h,
         std::uintptr_t lse, int64_t l_b, int64_t l_h, int64_t l_s, double softmax_scale, bool causal,
         int32_t lse_base, std::uintptr_t descale_k, std::uintptr_t descale_q) {
        const DecodeCall call = make_call(problem, q, q_b, q_s, q_h, kv, kv_p, kv_t, kv_h, block_table,
                                          bt_stride, seqlens, out, o_b, o_s, o_h, lse, l_b, l_h, l_s,
                                          softmax_scale, causal, lse_base, descale_k, descale_q, 0, false);
        run([&] { return etap_validate(&call.args); });
      },
      CALL_ARGS, py::arg("descale_k") = 0, py::arg("descale_q") = 0,
      "checks shapes, strides, dtypes and alignment of a decode call without touching the device");

  m.def(
      "decode",
      [](const py::tuple& problem, std::uintptr_t q, int64_t q_b, int64_t q_s, int64_t q_h, std::uintptr_t kv,
         int64_t kv_p, int64_t kv_t, int64_t kv_h, std::uintptr_t block_table, int64_t bt_stride,
         std::uintptr_t seqlens, std::uintptr_t out, int64_t o_b, int64_t o_s, int64_t o_h,
         std::uintptr_t lse, int64_t l_b, int64_t l_h, int64_t l_s, double softmax_scale, bool causal,
         int32_t lse_base, std::uintptr_t plan, std::size_t plan_bytes, std::uintptr_t workspace,
         std::size_t workspace_bytes, std::uintptr_t stream, int32_t num_sms, bool checked,
         std::uintptr_t descale_k, std::uintptr_t descale_q) {
        const DecodeCall call = make_call(
            problem, q, q_b, q_s, q_h, kv, kv_p, kv_t, kv_h, block_table, bt_stride, seqlens, out, o_b, o_s,
            o_h, lse, l_b, l_h, l_s, softmax_scale, causal, lse_base, descale_k, descale_q, num_sms, checked);
        run([&] {
          return etap_decode(&call.args, address<const void>(plan), plan_bytes, address<void>(workspace),
                             workspace_bytes, stream_handle(stream), &call.options);
        });
      },
      CALL_ARGS, py::arg("plan"), py::arg("plan_bytes"), py::arg("workspace"), py::arg("workspace_bytes"),
      py::arg("stream"), py::arg("num_sms"), py::arg("checked"), py::arg("descale_k") = 0,
      py::arg("descale_q") = 0,
      "attention (and the combine) with a plan from plan_from_seqlens, asynchronous on `stream`");
#undef CALL_ARGS

  m.def(
      "decode_varlen",
      [](const py::tuple& problem, std::uintptr_t q, int64_t q_s, int64_t q_h, std::uintptr_t kv,
         int64_t kv_p, int64_t kv_t, int64_t kv_h, std::uintptr_t block_table, int64_t bt_stride,
         std::uintptr_t seqlens, std::uintptr_t cu_seqlens_q, int32_t total_q, std::uintptr_t out,
         int64_t o_s, int64_t o_h, std::uintptr_t lse, int64_t l_h, int64_t l_s, double softmax_scale,
         bool causal, int32_t lse_base, std::uintptr_t plan, std::size_t plan_bytes, std::uintptr_t workspace,
         std::size_t workspace_bytes, std::uintptr_t stream, int32_t num_sms, bool checked) {
        DecodeCall call =
            make_call(problem, q, q_s, q_s, q_h, kv, kv_p, kv_t, kv_h, block_table, bt_stride, seqlens, out,
                      o_s, o_s, o_h, lse, l_h, l_h, l_s, softmax_scale, causal, lse_base, /*descale_k=*/0,
                      /*descale_q=*/0, num_sms, checked);
        make_varlen(call, cu_seqlens_q, total_q);
        run([&] {
          return etap_decode(&call.args, address<const void>(plan), plan_bytes, address<void>(workspace),
                             workspace_bytes, stream_handle(stream), &call.options);
        });
      },
      "decode of packed variable-length queries (problem s_q = max_seqlen_q; q/out [total_q, h_q, d], lse "
      "[h_q, total_q], device cu_seqlens_q [batch + 1]), asynchronous on `stream`");

  m.def(
      "merge_states",
      [](int32_t num_states, int32_t rows, int32_t dim, std::uintptr_t o_states, int64_t o_state_stride,
         int64_t o_row_stride, std::uintptr_t lse_states, int64_t lse_state_stride, int32_t lse_base,
         std::uintptr_t out, int32_t out_dtype, int64_t out_row_stride, std::uintptr_t lse_out,
         std::uintptr_t stream) {
        etap_merge_args a{};
        a.num_states = num_states;
        a.rows = rows;
        a.dim = dim;
        a.o_states = address<const float>(o_states);
        a.o_state_stride = o_state_stride;
        a.o_row_stride = o_row_stride;
        a.lse_states = address<const float>(lse_states);
        a.lse_state_stride = lse_state_stride;
        a.lse_base = lse_base;
        a.out = address<void>(out);
        a.out_dtype = out_dtype;
        a.out_row_stride = out_row_stride;
        a.lse_out = address<float>(lse_out);
        run([&] { return etap_merge_states(&a, stream_handle(stream)); });
      },
      "LSE-weighted merge of partial attention states, asynchronous on `stream`");

  m.def(
      "check_device", [](int device) { run([&] { return etap_check_device(device); }); }, py::arg("device"),
      "raises NoDeviceError unless `device` has compute capability 9.0");
}
