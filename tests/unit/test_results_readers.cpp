// The readers of the exports the app shows: cache.json (ReadCacheSimTable), the pruning curve's
// comparison CSV (ReadPruneComparison) and the route audit CSV (ReadRouteAuditCsv), each checked
// round-trip against its writer, with the errors they name; and the CSV table under two of them.
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>

#include "analysis/cache/cache_sim.h"
#include "analysis/cache/cache_sim_file.h"
#include "analysis/common/csv_table.h"
#include "analysis/prune/prune_curve.h"
#include "analysis/replay/route_audit.h"
#include "core/error.h"
#include "test_paths.h"

namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

// Equal to the writer's precision (%.10g, or 9 significant digits), NaN equal to NaN.
bool Same(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::abs(a - b) <= 1e-8 * std::max(1.0, std::abs(a));
}

void Write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const moe::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("CsvTable reads quoted fields, doubled quotes, CRLF and empty numbers", "[results]") {
  const auto dir = TempDir("csv-table");
  Write(dir / "t.csv", "a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",1.5\r\n\"multi\nline\",,-3\n");
  const moe::CsvTable t = moe::CsvTable::Read(dir / "t.csv");
  REQUIRE(t.rows() == 2);
  CHECK(t.Text(0, t.Column("a")) == "x, y");
  CHECK(t.Text(0, t.Column("b")) == "say \"hi\"");
  CHECK(t.Number(0, t.Column("c")) == 1.5);
  CHECK(t.Text(1, 0) == "multi\nline");
  CHECK(std::isnan(t.Number(1, 1)));
  CHECK(t.Integer(1, 2) == -3);
  // Line numbers count the line break inside the quoted field.
  CHECK(t.Where(1, 2) == (dir / "t.csv").string() + ": line 3, column 'c'");
  const std::string bad_number = ErrorOf([&] { t.Number(0, 1); });
  CHECK(bad_number.find("line 2, column 'b'") != std::string::npos);
  CHECK(bad_number.find("is not a number") != std::string::npos);
  CHECK(ErrorOf([&] { t.Column("nope"); }).find("has no column 'nope'") != std::string::npos);
  Write(dir / "short.csv", "a,b\n1\n");
  CHECK(ErrorOf([&] {
          moe::CsvTable::Read(dir / "short.csv");
        }).find("line 2 has 1 fields, the header 2") != std::string::npos);
  Write(dir / "open.csv", "a\n\"never closed\n");
  CHECK(ErrorOf([&] { moe::CsvTable::Read(dir / "open.csv"); }).find("never ends") !=
        std::string::npos);
  Write(dir / "empty.csv", "");
  CHECK(ErrorOf([&] { moe::CsvTable::Read(dir / "empty.csv"); }).find("is empty") !=
        std::string::npos);
}

TEST_CASE("cache.json reads back what ExportCacheSim wrote", "[results][cache]") {
  moe::CacheSimReport r;
  r.trace = "t.h5";
  r.layers = 2, r.experts = 4, r.top_k = 2;
  r.domains = {"code", "prose"};
  r.expert_bytes = {1024, 2048};
  r.options.capacities = {1, 3};
  r.options.cold_start = true;
  r.options.min_documents = 5;
  for (int l = 0; l < 2; ++l)
    for (int m = 0; m <= 2; ++m)
      for (moe::CachePolicy p : {moe::CachePolicy::kLru, moe::CachePolicy::kBelady})
        for (int c : {1, 3}) {
          moe::CacheSimRow x;
          x.layer = l, x.domain = m, x.policy = p, x.capacity = c;
          x.hit_rate = 0.1 * c + 0.01 * l + 0.001 * m + (p == moe::CachePolicy::kBelady ? 0.2 : 0);
          x.ci_low = m == 1 ? kNan : x.hit_rate - 0.05;
          x.ci_high = m == 1 ? kNan : x.hit_rate + 0.05;
          x.misses_per_token = 2 * (1 - x.hit_rate);
          x.bytes_per_token = x.misses_per_token * r.expert_bytes[static_cast<size_t>(l)];
          x.requests = 100 + m, x.tokens = 50 + m, x.docs = 3 + m;
          if (l == 1) x.prefetch_accuracy = 0.5 + 0.1 * m;  // a prefetch measure, read by name
          r.rows.push_back(x);
        }
  const auto dir = TempDir("cache-json");
  moe::ExportCacheSim(dir, r);
  const moe::CacheSimTable t = moe::ReadCacheSimTable(dir / "cache.json");
  CHECK(t.trace == "t.h5");
  CHECK(t.layers == 2);
  CHECK(t.experts == 4);
  CHECK(t.top_k == 2);
  CHECK(t.cold_start);
  CHECK(t.min_documents == 5);
  CHECK(t.expert_bytes == std::vector<double>{1024, 2048});
  CHECK(t.domains == r.domains);
  CHECK(t.policies == std::vector<std::string>{"lru", "belady"});
  CHECK(t.capacities == std::vector<int>{1, 3});
  // Format 2's prefetch measures are row fields beyond the standard ones (in the file's key
  // order, which nlohmann::json keeps sorted).
  CHECK(t.extra_fields == std::vector<std::string>{"accuracy_ci_high", "accuracy_ci_low",
                                                   "predicted_hit_rate", "prefetch_accuracy",
                                                   "prefetches_per_token",
                                                   "wasted_bytes_per_token"});
  const size_t accuracy = 3, predicted = 2;
  REQUIRE(t.rows.size() == r.rows.size());
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const moe::CacheSimRow& a = r.rows[i];
    const moe::CacheSimTableRow& b = t.rows[i];
    INFO("row " << i);
    CHECK(b.layer == a.layer);
    CHECK(b.domain == a.domain);
    CHECK(t.policies[static_cast<size_t>(b.policy)] == moe::CachePolicyName(a.policy));
    CHECK(b.capacity == a.capacity);
    CHECK(Same(b.hit_rate, a.hit_rate));
    CHECK(Same(b.ci_low, a.ci_low));
    CHECK(Same(b.ci_high, a.ci_high));
    CHECK(Same(b.misses_per_token, a.misses_per_token));
    CHECK(Same(b.bytes_per_token, a.bytes_per_token));
    CHECK(b.requests == a.requests);
    CHECK(b.tokens == a.tokens);
    CHECK(b.docs == a.docs);
    REQUIRE(b.extra.size() == t.extra_fields.size());
    CHECK(Same(b.extra[accuracy], a.prefetch_accuracy));
    CHECK(std::isnan(b.extra[predicted]));
  }
}

TEST_CASE("cache.json keeps policies and row fields it does not know, by name",
          "[results][cache]") {
  const auto dir = TempDir("cache-json-extra");
  const std::string row =
      R"("layer": 0, "domain": "all", "capacity": 2, "hit_rate": 0.5, "ci_low": null,
         "ci_high": null, "misses_per_token": 1, "bytes_per_token": 10, "requests": 4,
         "tokens": 2, "docs": 1)";
  Write(dir / "cache.json",
        R"({"format": "moescope-cache-sim", "format_version": 1, "num_layers": 1,
            "num_experts": 4, "top_k": 2, "expert_bytes": [10], "rows": [
            {"policy": "lru", )" +
            row + R"(},
            {"policy": "prefetch-token", "prefetch_accuracy": 0.75, )" +
            row + "}]}");
  const moe::CacheSimTable t = moe::ReadCacheSimTable(dir / "cache.json");
  CHECK(t.policies == std::vector<std::string>{"lru", "prefetch-token"});
  CHECK(t.extra_fields == std::vector<std::string>{"prefetch_accuracy"});
  REQUIRE(t.rows.size() == 2);
  CHECK(std::isnan(t.rows[0].extra[0]));
  CHECK(t.rows[1].extra[0] == 0.75);
  CHECK(t.rows[1].domain == 0);  // "all" is row M = 0: no domain rows
  CHECK(std::isnan(t.rows[1].ci_low));

  // Errors name the file and the field.
  const std::string path = (dir / "bad.json").string();
  Write(dir / "bad.json", R"({"format": "moescope-cache-sim", "format_version": 1,
      "num_layers": 1, "num_experts": 4, "top_k": 2, "expert_bytes": [10], "rows": [
      {"policy": "lru", "layer": 0, "domain": "all", "capacity": 2, "hit_rate": "high"}]})");
  const std::string e = ErrorOf([&] { moe::ReadCacheSimTable(path); });
  CHECK(e.find(path) != std::string::npos);
  CHECK(e.find("rows[0].hit_rate") != std::string::npos);
  Write(dir / "bad.json", R"({"format": "moescope-cache-sim", "format_version": 1,
      "num_layers": 1, "num_experts": 4, "top_k": 2, "expert_bytes": [10], "rows": [
      {"policy": "lru", "layer": 3}]})");
  CHECK(ErrorOf([&] { moe::ReadCacheSimTable(path); }).find("rows[0].layer") != std::string::npos);
  Write(dir / "bad.json", R"({"format": "something else"})");
  CHECK(ErrorOf([&] { moe::ReadCacheSimTable(path); }).find("format") != std::string::npos);
}

TEST_CASE("the pruning curve's comparison CSV reads back what PruneComparisonCsv wrote",
          "[results][prune]") {
  std::vector<moe::PruneVsRandom> rows;
  for (int m = 0; m <= 2; ++m) {
    moe::PruneVsRandom r;
    r.set = "reap-25%";
    r.domain = m;
    r.controls = 3;
    r.set_delta_nll = 0.123456789 + m;
    r.random_delta_nll = 0.5 / (m + 1);
    r.difference = {r.set_delta_nll - r.random_delta_nll, -0.25 + m, 0.75 + m};
    r.p_value = m == 2 ? kNan : 0.01 * (m + 1);
    r.q_value = m == 2 ? kNan : 0.02 * (m + 1);
    rows.push_back(r);
  }
  const auto dir = TempDir("prune-csv");
  const std::vector<std::string> plain = {"code", "prose"};
  Write(dir / "p.csv", moe::PruneComparisonCsv(rows, plain));
  const std::vector<moe::PruneVsRandom> back = moe::ReadPruneComparison(dir / "p.csv", plain);
  REQUIRE(back.size() == rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    INFO("row " << i);
    CHECK(back[i].set == rows[i].set);
    CHECK(back[i].domain == rows[i].domain);
    CHECK(back[i].controls == 3);
    CHECK(Same(back[i].set_delta_nll, rows[i].set_delta_nll));
    CHECK(Same(back[i].random_delta_nll, rows[i].random_delta_nll));
    CHECK(Same(back[i].difference.value, rows[i].difference.value));
    CHECK(Same(back[i].difference.ci_low, rows[i].difference.ci_low));
    CHECK(Same(back[i].difference.ci_high, rows[i].difference.ci_high));
    CHECK(Same(back[i].p_value, rows[i].p_value));
    CHECK(Same(back[i].q_value, rows[i].q_value));
  }
  // A domain the results file does not have is named with its line and column.
  const std::string e = ErrorOf([&] { moe::ReadPruneComparison(dir / "p.csv", {"code"}); });
  CHECK(e.find("line 3, column 'domain'") != std::string::npos);
  CHECK(e.find("'prose'") != std::string::npos);

  REQUIRE(moe::ParsePruneSetName("reap-25%"));
  CHECK(moe::ParsePruneSetName("reap-25%")->score == "reap");
  CHECK(moe::ParsePruneSetName("reap-25%")->ratio == Approx(0.25));
  CHECK(moe::ParsePruneSetName("max_activation-12.5%")->score == "max_activation");
  CHECK(moe::ParsePruneSetName("max_activation-12.5%")->ratio == Approx(0.125));
  CHECK(!moe::ParsePruneSetName("reap-25%/random0"));
  CHECK(!moe::ParsePruneSetName("none"));
  CHECK(!moe::ParsePruneSetName("reap-x%"));
}

TEST_CASE("the route audit CSV reads back what WriteRouteAuditCsv wrote", "[results][replay]") {
  std::vector<moe::RouteAudit> audits(2);
  audits[0].reference = "fp32 activations";
  audits[0].subject = "bf16 activations";
  audits[1].reference = "moescope's own routing";
  audits[1].subject = "imported routes";
  for (size_t a = 0; a < 2; ++a) {
    moe::RouteAudit& r = audits[a];
    r.domains = {"code", "prose"};
    for (int l : {1, 3})
      r.layers.push_back({l, 40 + l, {0.9 - 0.1 * l, 0.8 - 0.1 * l, 0.95}, {0.97, 0.9, 1.0}});
    for (int m = 0; m <= 2; ++m) {
      moe::AblationDomainResult d;
      d.tokens = 10 * (m + 1);
      d.base_nll = 3.25 + m;
      d.policy_nll = 3.5 + m + static_cast<double>(a);
      d.delta_nll = {d.policy_nll - d.base_nll, 0.1, a == 0 ? kNan : 0.4};
      d.agreement = {0.875, 0.75, 1.0};
      r.nll.push_back(d);
    }
    r.tokens = 30;
  }
  const auto dir = TempDir("audit-csv");
  moe::WriteRouteAuditCsv((dir / "a.csv").string(), audits);
  const std::vector<moe::RouteAudit> back = moe::ReadRouteAuditCsv(dir / "a.csv");
  REQUIRE(back.size() == 2);
  for (size_t a = 0; a < 2; ++a) {
    INFO("audit " << a);
    CHECK(back[a].reference == audits[a].reference);
    CHECK(back[a].subject == audits[a].subject);
    CHECK(back[a].domains == audits[a].domains);
    CHECK(back[a].tokens == 30);
    REQUIRE(back[a].layers.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
      const moe::LayerAgreement& x = back[a].layers[i];
      const moe::LayerAgreement& y = audits[a].layers[i];
      CHECK(x.layer == y.layer);
      CHECK(x.tokens == y.tokens);
      CHECK(Same(x.set_agreement.value, y.set_agreement.value));
      CHECK(Same(x.set_agreement.ci_low, y.set_agreement.ci_low));
      CHECK(Same(x.top1_agreement.ci_high, y.top1_agreement.ci_high));
    }
    REQUIRE(back[a].nll.size() == 3);
    for (size_t m = 0; m < 3; ++m) {
      const moe::AblationDomainResult& x = back[a].nll[m];
      const moe::AblationDomainResult& y = audits[a].nll[m];
      CHECK(x.tokens == y.tokens);
      CHECK(Same(x.base_nll, y.base_nll));
      CHECK(Same(x.policy_nll, y.policy_nll));
      CHECK(Same(x.delta_nll.value, y.delta_nll.value));
      CHECK(Same(x.delta_nll.ci_high, y.delta_nll.ci_high));
      CHECK(Same(x.agreement.ci_low, y.agreement.ci_low));
    }
  }
  Write(dir / "bad.csv",
        "audit,layer,domain,metric,value,ci_low,ci_high,n\n\"x vs y\",0,\"all\",bogus,1,,,3\n");
  const std::string e = ErrorOf([&] { moe::ReadRouteAuditCsv(dir / "bad.csv"); });
  CHECK(e.find("line 2, column 'metric'") != std::string::npos);
  CHECK(e.find("unknown metric 'bogus'") != std::string::npos);
  Write(dir / "bad.csv", "audit,layer,domain,metric,value\n");
  CHECK(ErrorOf([&] { moe::ReadRouteAuditCsv(dir / "bad.csv"); }).find("has no column 'ci_low'") !=
        std::string::npos);
}
