// Design notes: a replica has at most ~251 layers, so every function here is
// a linear scan; clarity wins over maps. ValidateChain walks each layer's
// parents with a step bound to find cycles without extra state.
#include "replicad/core/layer_chain.h"

#include <algorithm>
#include <set>

#include "common/names.h"

namespace shorthorn::replicad {

const LayerMeta* FindLayer(const ReplicaMeta& meta, uint64_t id) {
  for (const auto& l : meta.layers) {
    if (l.id == id) return &l;
  }
  return nullptr;
}

LayerMeta* FindLayer(ReplicaMeta& meta, uint64_t id) {
  for (auto& l : meta.layers) {
    if (l.id == id) return &l;
  }
  return nullptr;
}

const LayerMeta* FindSnapshot(const ReplicaMeta& meta, std::string_view name) {
  for (const auto& l : meta.layers) {
    if (l.is_snapshot() && l.name == name) return &l;
  }
  return nullptr;
}

std::vector<uint64_t> ActiveChain(const ReplicaMeta& meta) {
  std::vector<uint64_t> chain;
  const LayerMeta* l = FindLayer(meta, meta.head);
  while (l != nullptr && chain.size() <= meta.layers.size()) {
    chain.push_back(l->id);
    l = l->parent ? FindLayer(meta, *l->parent) : nullptr;
  }
  return chain;
}

std::vector<uint64_t> Children(const ReplicaMeta& meta, uint64_t id) {
  std::vector<uint64_t> out;
  for (const auto& l : meta.layers) {
    if (l.parent && *l.parent == id) out.push_back(l.id);
  }
  return out;
}

std::vector<uint64_t> MergesDue(const ReplicaMeta& meta) {
  std::vector<uint64_t> out;
  for (const auto& l : meta.layers) {
    if (l.is_snapshot() && l.removed && Children(meta, l.id).size() <= 1) out.push_back(l.id);
  }
  return out;
}

size_t SnapshotCount(const ReplicaMeta& meta) {
  size_t n = 0;
  for (const auto& l : meta.layers) {
    if (l.is_snapshot()) ++n;
  }
  return n - MergesDue(meta).size();
}

Status ValidateChain(const ReplicaMeta& meta) {
  auto bad = [](const std::string& reason) {
    return Status(ErrorKind::kIoError, "layer tree: " + reason, EIO);
  };
  std::set<uint64_t> ids;
  std::set<std::string> names, files;
  for (const auto& l : meta.layers) {
    std::string what = "layer " + std::to_string(l.id);
    if (!ids.insert(l.id).second) return bad(what + " is listed twice");
    if (l.id >= meta.next_layer_id) return bad(what + " is not below next_layer_id");
    if (Status s = ValidateName("layer file", l.file); !s.ok())
      return bad(what + ": " + s.message());
    if (!files.insert(l.file).second) return bad(what + ": file " + l.file + " is used twice");
    if (l.is_snapshot()) {
      if (Status s = ValidateName("snapshot", l.name); !s.ok()) return bad(s.message());
      if (!names.insert(l.name).second) return bad("snapshot " + l.name + " is listed twice");
      if (l.id == meta.head) return bad("the head has a snapshot name");
    } else if (l.id != meta.head) {
      return bad(what + " has no name but is not the head");
    }
  }
  if (FindLayer(meta, meta.head) == nullptr) return bad("head layer is missing");
  for (const auto& l : meta.layers) {
    if (!l.parent) continue;
    if (*l.parent == meta.head)
      return bad("layer " + std::to_string(l.id) + " has the head as parent");
    if (FindLayer(meta, *l.parent) == nullptr) {
      return bad("parent of layer " + std::to_string(l.id) + " is missing");
    }
    // A walk longer than the number of layers has met a cycle.
    const LayerMeta* p = &l;
    size_t steps = 0;
    while (p != nullptr && p->parent) {
      if (++steps > meta.layers.size())
        return bad("layer " + std::to_string(l.id) + " is in a cycle");
      p = FindLayer(meta, *p->parent);
    }
  }
  return Status::Ok();
}

uint64_t ApplySnapshot(ReplicaMeta& meta, const std::string& name, const std::string& created,
                       bool user_created) {
  LayerMeta* head = FindLayer(meta, meta.head);
  head->name = name;
  head->created = created;
  head->user_created = user_created;
  head->removed = false;
  head->checksum.clear();
  LayerMeta fresh;
  fresh.id = meta.next_layer_id++;
  fresh.file = LayerFileName(fresh.id);
  fresh.parent = head->id;
  meta.layers.push_back(fresh);
  meta.head = fresh.id;
  return fresh.id;
}

uint64_t ApplyRevert(ReplicaMeta& meta, uint64_t target) {
  uint64_t old = meta.head;
  std::erase_if(meta.layers, [old](const LayerMeta& l) { return l.id == old; });
  LayerMeta fresh;
  fresh.id = meta.next_layer_id++;
  fresh.file = LayerFileName(fresh.id);
  fresh.parent = target;
  meta.layers.push_back(fresh);
  meta.head = fresh.id;
  return fresh.id;
}

void ApplyMerge(ReplicaMeta& meta, uint64_t id) {
  const LayerMeta* gone = FindLayer(meta, id);
  if (gone == nullptr) return;
  std::optional<uint64_t> parent = gone->parent;
  for (auto& l : meta.layers) {
    if (l.parent && *l.parent == id) {
      l.parent = parent;
      if (l.is_snapshot()) l.checksum.clear();
    }
  }
  std::erase_if(meta.layers, [id](const LayerMeta& l) { return l.id == id; });
}

}  // namespace shorthorn::replicad
