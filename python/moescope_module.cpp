// The `moescope` Python module (docs/python.md): load a model, tokenize, run forward passes with
// the routing captured into numpy arrays (core/forward_record.h, the tensors `moescope forward`
// writes), routing interventions (core/routing_policy.h), scoring and generation.
//
// Engine failures (moe::Error) surface as moescope.Error, a RuntimeError carrying the engine's
// message. The GIL is released while the engine runs; calls on one Model are serialized (the
// forward recorder attaches to the model's hook registry, which concurrent calls would share).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "analysis/corpus/corpus.h"
#include "analysis/policy/policy_flags.h"
#include "analysis/policy/policy_json.h"
#include "analysis/replay/route_audit.h"
#include "analysis/replay/route_import.h"
#include "analysis/run/corpus_scoring.h"
#include "core/error.h"
#include "core/forward_record.h"
#include "core/generate.h"
#include "core/json_value.h"
#include "core/linear.h"
#include "core/model_loader.h"
#include "core/routing_policy.h"
#include "core/tokenizer.h"
#include "python/acting.h"
#include "python/conversions.h"
#include "python/model_handle.h"

using nlohmann::json;

namespace moe::python {

Corpus DocumentsCorpus(const Model& m, const py::list& documents) {
  CorpusReader reader(nullptr, m.config().vocab_size, {});
  for (size_t d = 0; d < documents.size(); ++d)
    reader.AddIds("documents[" + std::to_string(d) + "]", "doc" + std::to_string(d), "documents",
                  ToIds(documents[d], "documents[" + std::to_string(d) + "]"));
  return reader.Finish();
}

namespace {

// A routing policy, validated for the model it was built for (and again by every forward).
struct Policy {
  RoutingPolicy policy;
};

// None, a Policy, a dict in the JSON form of analysis/policy/policy_json.h, or that JSON as a
// string; validated by the run it is given to.
std::optional<RoutingPolicy> ResolvePolicy(const Model& m, py::handle policy) {
  if (policy.is_none()) return std::nullopt;
  if (py::isinstance<Policy>(policy)) return policy.cast<const Policy&>().policy;
  json j;
  if (py::isinstance<py::str>(policy)) {
    j = ParseJson(policy.cast<std::string>(), "policy");
  } else if (py::isinstance<py::dict>(policy)) {
    j = ToJson(policy, "policy");
  } else {
    throw py::type_error("policy must be None, a moescope.Policy, a dict or a JSON string");
  }
  return PolicyFromJson(j, m.config(), "policy");
}

// ---- the Model methods ----------------------------------------------------------------------

std::unique_ptr<Model> Load(const std::optional<std::filesystem::path>& path) {
  const std::filesystem::path dir = path ? *path : DefaultModelDir();
  py::gil_scoped_release release;
  return std::make_unique<Model>(LoadModel(dir));
}

py::dict Forward(Model& m, py::handle input_ids, py::handle attention_mask, py::handle position_ids,
                 py::handle policy, bool activations) {
  const std::optional<RoutingPolicy> p = ResolvePolicy(m, policy);
  Rows ids;
  if (py::isinstance<py::str>(input_ids))
    ids = {m.loaded.RequireTokenizer().Encode(input_ids.cast<std::string>())};
  else
    ids = ToRows(input_ids, "input_ids");
  const Rows mask = attention_mask.is_none() ? Rows{} : ToRows(attention_mask, "attention_mask");
  const Rows positions = position_ids.is_none() ? Rows{} : ToRows(position_ids, "position_ids");
  std::vector<OwnedTensor> tensors;
  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(m.run);
    // The batch is built exactly as `moescope forward` builds it from its JSON input.
    const Batch batch = Batch::FromRows(ids, mask, positions);
    tensors = RecordForward(*m.loaded.model, batch,
                            {.activations = activations, .policy = p ? &*p : nullptr});
  }
  py::dict out;
  for (OwnedTensor& t : tensors) {
    const std::string name = t.name;
    out[py::str(name)] = ToNumpy(std::move(t));
  }
  return out;
}

// A RouteAudit as {layer, set_agreement, top1_agreement (each with _ci_low/_ci_high),
// delta_nll (with interval), reference_nll, subject_nll, next_token_agreement}.
py::dict AuditDict(const RouteAudit& a) {
  std::vector<float> layer, set, set_lo, set_hi, top1, top1_lo, top1_hi;
  for (const LayerAgreement& l : a.layers) {
    layer.push_back(static_cast<float>(l.layer));
    set.push_back(static_cast<float>(l.set_agreement.value));
    set_lo.push_back(static_cast<float>(l.set_agreement.ci_low));
    set_hi.push_back(static_cast<float>(l.set_agreement.ci_high));
    top1.push_back(static_cast<float>(l.top1_agreement.value));
    top1_lo.push_back(static_cast<float>(l.top1_agreement.ci_low));
    top1_hi.push_back(static_cast<float>(l.top1_agreement.ci_high));
  }
  const AblationDomainResult& all = a.nll.back();
  py::dict out;
  out["reference"] = a.reference;
  out["subject"] = a.subject;
  out["layer"] = ToNumpy(layer);
  out["set_agreement"] = ToNumpy(set);
  out["set_agreement_ci_low"] = ToNumpy(set_lo);
  out["set_agreement_ci_high"] = ToNumpy(set_hi);
  out["top1_agreement"] = ToNumpy(top1);
  out["top1_agreement_ci_low"] = ToNumpy(top1_lo);
  out["top1_agreement_ci_high"] = ToNumpy(top1_hi);
  out["delta_nll"] = all.delta_nll.value;
  out["delta_nll_ci"] = py::make_tuple(all.delta_nll.ci_low, all.delta_nll.ci_high);
  out["reference_nll"] = all.base_nll;
  out["subject_nll"] = all.policy_nll;
  out["next_token_agreement"] = all.agreement.value;
  out["tokens"] = a.tokens;
  return out;
}

// Routes recorded elsewhere ([tokens, layers, k] integers, rows = the documents' tokens in
// order) replayed over `documents`; analysis/replay/route_audit.h.
py::dict ReplayRoutes(Model& m, const py::list& documents,
                      const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& routes,
                      int bootstrap, uint64_t seed) {
  const Corpus corpus = DocumentsCorpus(m, documents);
  RouteArrays arrays;
  arrays.routes.shape.assign(routes.shape(), routes.shape() + routes.ndim());
  arrays.routes.values.assign(routes.data(), routes.data() + routes.size());
  for (const CorpusDocument& d : corpus.documents)
    arrays.token_ids.values.insert(arrays.token_ids.values.end(), d.ids.begin(), d.ids.end());
  arrays.token_ids.shape = {static_cast<int64_t>(arrays.token_ids.values.size())};
  const RouteTable table = RouteTableOf(arrays, corpus, m.config());
  RouteAudit a;
  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(m.run);
    a = AuditImportedRoutes(*m.loaded.model, corpus, table, {.bootstrap = bootstrap, .seed = seed});
  }
  return AuditDict(a);
}

py::dict PrecisionAudit(Model& m, const py::list& documents, int bootstrap, uint64_t seed) {
  const Corpus corpus = DocumentsCorpus(m, documents);
  RouteAudit a;
  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(m.run);
    a = AuditPrecision(*m.loaded.model, corpus, {.bootstrap = bootstrap, .seed = seed});
  }
  return AuditDict(a);
}

py::dict Score(Model& m, py::handle text_or_ids, py::handle policy) {
  const std::optional<RoutingPolicy> p = ResolvePolicy(m, policy);
  const bool is_text = py::isinstance<py::str>(text_or_ids);
  std::string text;
  std::vector<int32_t> ids;
  if (is_text) {
    text = text_or_ids.cast<std::string>();
    ids = m.loaded.RequireTokenizer().Encode(text);
  } else {
    ids = ToIds(text_or_ids, "ids");
  }
  if (is_text && text.empty()) Fail("score", "the text is empty");
  // One document scored as `moescope score` scores it (analysis/run/corpus_scoring.h).
  const ModelConfig& c = m.loaded.config();
  CorpusReader reader(nullptr, c.vocab_size, {});
  reader.AddIds(is_text ? "text" : "ids", "score", "", ids);
  const Corpus corpus = reader.Finish();
  CorpusScore s;
  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(m.run);
    s = ScoreCorpus(*m.loaded.model, corpus,
                    {.windows = {c.context_length(), c.context_length()},
                     .policy = p ? &*p : nullptr,
                     .token_nll = true});
  }
  const DocumentScore& d = s.documents.at(0);
  py::dict out;
  out["ids"] = ids;
  out["token_nll"] = ToNumpy(d.token_nll);
  out["scored_tokens"] = d.predicted;
  out["total_nll"] = d.total_nll;
  out["mean_nll"] = d.mean_nll();
  out["perplexity"] = std::exp(d.mean_nll());
  return out;
}

py::dict GenerateTokens(Model& m, py::handle prompt, int max_new_tokens, float temperature,
                        int top_k, float top_p, uint64_t seed, py::handle policy, bool stop_at_eos,
                        bool step_logits, py::object on_token, const std::string& kv_cache) {
  const std::optional<RoutingPolicy> p = ResolvePolicy(m, policy);
  const bool is_text = py::isinstance<py::str>(prompt);
  const std::vector<int32_t> ids =
      is_text ? m.loaded.RequireTokenizer().Encode(prompt.cast<std::string>())
              : ToIds(prompt, "prompt");
  if (ids.empty()) Fail("generate", "the prompt is empty");
  if (max_new_tokens < 0) Fail("generate", "max_new_tokens must be >= 0");
  const std::optional<KvCacheType> cache_type = ParseKvCacheType(kv_cache);
  if (!cache_type) Fail("kv_cache", "is '" + kv_cache + "', expected 'f32' or 'bf16'");
  GenerationOptions options;
  options.kv_cache = *cache_type;
  options.max_new_tokens = max_new_tokens;
  options.sampling = {.temperature = temperature, .top_k = top_k, .top_p = top_p, .seed = seed};
  options.stop_at_eos = stop_at_eos;
  options.policy = p ? &*p : nullptr;
  std::function<void(int32_t)> callback;
  if (!on_token.is_none())
    callback = [&on_token](int32_t id) {
      py::gil_scoped_acquire acquire;
      on_token(id);
    };
  GenerationResult r;
  {
    py::gil_scoped_release release;
    std::lock_guard<std::mutex> lock(m.run);
    r = Generate(*m.loaded.model, ids, options, callback, step_logits);
  }
  py::dict out;
  out["prompt_ids"] = ids;
  out["ids"] = r.tokens;
  out["text"] = m.loaded.tokenizer ? py::object(py::str(m.loaded.tokenizer->Decode(r.tokens)))
                                   : py::object(py::none());
  if (step_logits) {
    const auto n = static_cast<py::ssize_t>(r.step_logits.size());
    const auto v = static_cast<py::ssize_t>(m.config().vocab_size);
    py::array_t<float> a({n, v});
    float* dst = a.mutable_data();
    for (const std::vector<float>& row : r.step_logits)
      dst = std::copy(row.begin(), row.end(), dst);
    out["step_logits"] = a;
  }
  out["prefill_seconds"] = r.prefill_seconds;
  out["decode_seconds"] = r.decode_seconds;
  return out;
}

std::string ModelRepr(const Model& m) {
  const ModelConfig& c = m.config();
  std::string s = "<moescope.Model '" + m.loaded.dir.string() + "': " + c.model_type + ", " +
                  std::to_string(c.num_hidden_layers) + " layers, hidden " +
                  std::to_string(c.hidden_size);
  if (c.is_moe)
    s += ", " + std::to_string(c.num_experts) + " experts top-" + std::to_string(c.num_selects);
  return s + ">";
}

void BindTokenizerMethods(py::class_<Tokenizer>& cls) {
  cls.def("tokenize", &Tokenizer::Encode, py::arg("text"), py::arg("bos") = true,
          py::arg("eos") = false, "Token ids of a text (BOS prepended unless bos=False)")
      .def(
          "detokenize",
          [](const Tokenizer& t, py::handle ids) { return t.Decode(ToIds(ids, "ids")); },
          py::arg("ids"), "Text of token ids (BOS, EOS and padding dropped)")
      .def("piece", &Tokenizer::Piece, py::arg("id"), "The vocabulary's string of one id")
      .def(
          "pieces",
          [](const Tokenizer& t, py::handle ids) {
            std::vector<std::string> out;
            for (int32_t id : ToIds(ids, "ids")) out.push_back(t.Piece(id));
            return out;
          },
          py::arg("ids"), "The pieces of token ids")
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("bos_id", &Tokenizer::bos_id)
      .def_property_readonly("eos_id", &Tokenizer::eos_id);
}

}  // namespace
}  // namespace moe::python

PYBIND11_MODULE(moescope, m) {
  using namespace moe;
  using namespace moe::python;
  m.doc() =
      "moescope: look inside LLaMA-MoE models (forward passes with routing captured into numpy "
      "arrays, routing interventions, scoring, generation). See docs/python.md.";
  m.attr("__version__") = MOESCOPE_VERSION;
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

  py::class_<Tokenizer> tokenizer(
      m, "Tokenizer",
      "A tokenizer from a file: SentencePiece tokenizer.model, or byte-level BPE tokenizer.json");
  tokenizer.def(py::init([](const std::filesystem::path& path) { return OpenTokenizerFile(path); }),
                py::arg("path"));
  BindTokenizerMethods(tokenizer);

  py::class_<Model> model(m, "Model", "A model folder opened with moescope.load()");
  model.def_property_readonly("config", [](const Model& self) { return ConfigDict(self.config()); })
      .def_property_readonly("path", [](const Model& self) { return self.loaded.dir; })
      .def_property_readonly(
          "tokenizer", [](const Model& self) { return self.loaded.tokenizer.get(); },
          py::return_value_policy::reference_internal,
          "The folder's Tokenizer, or None when it has no tokenizer.model or tokenizer.json")
      .def(
          "tokenize",
          [](const Model& self, const std::string& text, bool bos, bool eos) {
            return self.loaded.RequireTokenizer().Encode(text, bos, eos);
          },
          py::arg("text"), py::arg("bos") = true, py::arg("eos") = false,
          "Token ids of a text (BOS prepended unless bos=False)")
      .def(
          "detokenize",
          [](const Model& self, py::handle ids) {
            return self.loaded.RequireTokenizer().Decode(ToIds(ids, "ids"));
          },
          py::arg("ids"), "Text of token ids (BOS, EOS and padding dropped)")
      .def("forward", &Forward, py::arg("input_ids"), py::arg("attention_mask") = py::none(),
           py::arg("position_ids") = py::none(), py::arg("policy") = py::none(),
           py::arg("activations") = false,
           "One forward pass; returns {name: numpy array} under the names `moescope forward` "
           "writes (logits, final_hidden, layers.{l}.gate_logits, topk_indices, topk_scores, "
           "load, importance; with activations also embeddings and layers.{l}.attn_out, moe_in, "
           "moe_out, hidden_out). input_ids: [S] or [B, S] integers, or a text.")
      .def("replay_routes", &ReplayRoutes, py::arg("documents"), py::arg("routes"),
           py::arg("bootstrap") = 200, py::arg("seed") = 0,
           "Routes recorded elsewhere, int [tokens, layers, k] over the documents' tokens in "
           "order, forced over them: per-layer agreement with the engine's own routing and "
           "ΔNLL (docs/route-replay.md)")
      .def("precision_audit", &PrecisionAudit, py::arg("documents"), py::arg("bootstrap") = 200,
           py::arg("seed") = 0,
           "bf16 against fp32 activations: per-layer routing agreement (1 - flip rate) and ΔNLL")
      .def("score", &Score, py::arg("text_or_ids"), py::arg("policy") = py::none(),
           "Next-token NLL: {ids, token_nll, scored_tokens, total_nll, mean_nll, perplexity}")
      .def("generate", &GenerateTokens, py::arg("prompt"), py::arg("max_new_tokens") = 32,
           py::arg("temperature") = 0.0f, py::arg("top_k") = 0, py::arg("top_p") = 1.0f,
           py::arg("seed") = 0, py::arg("policy") = py::none(), py::arg("stop_at_eos") = true,
           py::arg("step_logits") = false, py::arg("on_token") = py::none(),
           py::arg("kv_cache") = "f32",
           "Continue a prompt (text or ids) through the KV cache (kv_cache 'f32' or 'bf16': "
           "keys and values rounded to bf16 when cached): {prompt_ids, ids, text, ...}")
      .def("__repr__", &ModelRepr);
  BindActing(m, model);

  py::class_<Policy>(m, "Policy", "A routing intervention (core/routing_policy.h)")
      .def_static(
          "from_flags",
          [](const Model& model, const std::string& disable, const std::string& mode,
             const std::string& top_k, const std::string& top_r) {
            // Checked here so a mistake shows where the policy is made; runs check it again.
            Policy p{PolicyFromFlags(disable, mode, top_k, top_r, model.config())};
            p.policy.Validate(model.config());
            return p;
          },
          py::arg("model"), py::kw_only(), py::arg("disable") = "", py::arg("mode") = "",
          py::arg("top_k") = "", py::arg("top_r") = "",
          "From the CLI flags: disable=\"1:3,5:7\", mode=\"reroute\"|\"drop\"|\"drop-renorm\", "
          "top_k=\"*:1\", top_r=\"*:1\"")
      .def_static(
          "from_dict",
          [](const Model& model, py::handle spec) {
            Policy p{*ResolvePolicy(model, spec)};
            p.policy.Validate(model.config());
            return p;
          },
          py::arg("model"), py::arg("spec"),
          "From the JSON form (a dict or a JSON string): {\"mode\": ..., \"disable\": [[l, e]], "
          "\"top_k\": {l: k}, \"top_r\": {l: r}, \"scale_factor\": {l: f}, \"force\": [...]}")
      .def("to_dict", [](const Policy& self) { return FromJson(PolicyToJson(self.policy)); })
      .def_property_readonly("empty", [](const Policy& self) { return self.policy.empty(); })
      .def("__repr__", [](const Policy& self) {
        return "moescope.Policy(" + PolicyToJson(self.policy).dump() + ")";
      });

  m.def("load", &Load, py::arg("path") = py::none(),
        "Open a model folder (None: $MOESCOPE_MODEL or the bundled default model)");
  m.def(
      "default_model_dir", [] { return DefaultModelDir(); },
      "$MOESCOPE_MODEL if set, else the model bundled with moescope");
  m.def("set_num_threads", &SetNumThreads, py::arg("threads"),
        "Threads of the engine (OpenMP and OpenBLAS together)");
  m.def("num_threads", &NumThreads);
}
