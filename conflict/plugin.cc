// custom: a user plug-in loaded with dlopen (conflict/zonemesh_plugin.h).
#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <mutex>

#include "conflict/strategy.h"
#include "conflict/zonemesh_plugin.h"

namespace zonemesh::conflict {
namespace {

using AbiFn = int (*)();
using NameFn = const char* (*)();
using ResolveFn = int (*)(const zonemesh_conflict*, zonemesh_decision*);
using ReleaseFn = void (*)(zonemesh_decision*);

// Text form of a value as the ABI passes it; nullopt for NULL.
std::optional<std::string> ToText(const db::Value& v) {
  if (v.IsNull()) return std::nullopt;
  return v.AsText();
}

// Keeps the strings a zonemesh_row points into alive for one call.
struct RowBuffer {
  std::vector<std::optional<std::string>> text;
  std::vector<const char*> ptrs;

  zonemesh_row Fill(const RowState& s) {
    zonemesh_row row{};
    row.exists = s.exists ? 1 : 0;
    row.hlc = s.version.hlc;
    row.node = s.version.node.c_str();
    if (s.row) {
      for (const db::Value& v : s.row->values) text.push_back(ToText(v));
      for (const auto& t : text) ptrs.push_back(t ? t->c_str() : nullptr);
      row.values = ptrs.data();
    }
    return row;
  }
};

class Plugin final : public Strategy {
 public:
  explicit Plugin(const std::string& path) : path_(path) {
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) throw std::runtime_error("conflict plug-in " + path + ": " + dlerror());
    auto abi = Symbol<AbiFn>("zonemesh_plugin_abi");
    auto name = Symbol<NameFn>("zonemesh_plugin_name");
    resolve_ = Symbol<ResolveFn>("zonemesh_resolve");
    release_ = Symbol<ReleaseFn>("zonemesh_release");
    if (abi() != ZONEMESH_PLUGIN_ABI) {
      throw std::runtime_error("conflict plug-in " + path + " speaks ABI " + std::to_string(abi()) +
                               "; this zonemesh speaks " + std::to_string(ZONEMESH_PLUGIN_ABI));
    }
    const char* n = name();
    if (!n || !*n) throw std::runtime_error("conflict plug-in " + path + " has no name");
    name_ = n;
  }
  ~Plugin() override {
    if (handle_) dlclose(handle_);
  }

  std::string Name() const override { return "custom:" + name_; }

  Decision Resolve(const ConflictInput& in) const override {
    std::vector<const char*> columns;
    for (const schema::Column& c : in.spec.columns) columns.push_back(c.name.c_str());
    RowBuffer lbuf, rbuf;
    zonemesh_conflict c{};
    c.table = in.spec.name.c_str();
    c.key = in.key.c_str();
    const schema::RowImage* any = in.remote.row ? in.remote.row : in.local.row;
    c.zone = any && any->zone ? any->zone->c_str() : nullptr;
    c.column_count = columns.size();
    c.column_names = columns.data();
    c.local = lbuf.Fill(in.local);
    c.remote = rbuf.Fill(in.remote);

    zonemesh_decision d{};
    int rc;
    {
      std::lock_guard<std::mutex> lock(mu_);  // one call at a time, as the ABI promises
      rc = resolve_(&c, &d);
    }
    Decision out;
    try {
      if (rc != 0) throw std::runtime_error("returned " + std::to_string(rc));
      out = Convert(in, d);
    } catch (const std::exception& e) {
      spdlog::error("conflict plug-in {} on {} [{}]: {}; deciding by latest-wins", name_,
                    in.spec.name, in.key, e.what());
      out = MakeLatestWins()->Resolve(in);
      out.reason = "plug-in failed (" + std::string(e.what()) + "); " + out.reason;
    }
    if (rc == 0) {
      std::lock_guard<std::mutex> lock(mu_);
      release_(&d);
    }
    return out;
  }

 private:
  template <typename Fn>
  Fn Symbol(const char* name) {
    void* p = dlsym(handle_, name);
    if (!p) throw std::runtime_error("conflict plug-in " + path_ + " does not export " + name);
    return reinterpret_cast<Fn>(p);
  }

  static Decision Convert(const ConflictInput& in, const zonemesh_decision& d) {
    Decision out;
    out.reason = d.reason ? d.reason : "decided by the plug-in";
    switch (d.resolution) {
      case ZONEMESH_KEEP_LOCAL:
        out.resolution = Resolution::kKeepLocal;
        return out;
      case ZONEMESH_TAKE_REMOTE:
        out.resolution = Resolution::kTakeRemote;
        return out;
      case ZONEMESH_MERGE:
        break;
      default:
        throw std::runtime_error("unknown resolution " + std::to_string(d.resolution));
    }
    if (!d.merged || d.merged_count != in.spec.columns.size()) {
      throw std::runtime_error("merge needs " + std::to_string(in.spec.columns.size()) +
                               " values, got " + std::to_string(d.merged ? d.merged_count : 0));
    }
    schema::RowImage merged;
    const schema::RowImage* any = in.remote.row ? in.remote.row : in.local.row;
    if (any) merged.zone = any->zone;
    for (size_t i = 0; i < in.spec.columns.size(); ++i) {
      const char* v = d.merged[i];
      if (!v) {
        merged.values.emplace_back();
        continue;
      }
      db::Value text{std::string(v)};
      switch (in.spec.columns[i].type) {
        case schema::ColumnType::kBool:
          merged.values.emplace_back(text.AsBool());
          break;
        case schema::ColumnType::kInt:
          merged.values.emplace_back(text.AsInt());
          break;
        default:
          merged.values.push_back(text);
      }
    }
    if (schema::EncodeKey(in.spec, merged) != in.key) {
      throw std::runtime_error("merged row has another natural key");
    }
    out.resolution = Resolution::kMerge;
    out.merged = std::move(merged);
    return out;
  }

  std::string path_;
  std::string name_;
  void* handle_ = nullptr;
  ResolveFn resolve_ = nullptr;
  ReleaseFn release_ = nullptr;
  mutable std::mutex mu_;
};

}  // namespace

std::unique_ptr<Strategy> MakePlugin(const std::string& path) {
  return std::make_unique<Plugin>(path);
}

}  // namespace zonemesh::conflict
