// LayerSet: the index built from the layers' extents (newer layers win),
// slots given and reused, the unneeded lower layers (removed snapshots
// right under the head with one child), and a reserved layer an index can
// name before it joins.
#include "replicad/core/layer_set.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "replicad/core/layer_chain.h"
#include "replicad/core/layer_file.h"
#include "replicad/core/replica_meta.h"
#include "tests/unit/replicad/test_util.h"

namespace shorthorn::replicad {
namespace {

using testing::TempDir;

constexpr uint64_t kSize = 64 * kSectorSize;

class LayerSetTest : public ::testing::Test {
 protected:
  // Creates the file of every layer of meta_ and opens them all into set_.
  void SetUp() override {
    meta_ = NewReplicaMeta("vol", "r1", kSize);
    CreateFiles();
  }
  void CreateFiles() {
    for (const auto& l : meta_.layers) {
      if (set_.Find(l.id) != nullptr) continue;
      ASSERT_TRUE(CreateLayerFile(dir_.path() + "/" + l.file, kSize).ok());
      auto layer = set_.OpenLayer(l, l.id == meta_.head);
      ASSERT_TRUE(layer.ok()) << layer.status().ToString();
      change_.add.push_back(*layer);
    }
  }
  void Install() {
    set_.Install(meta_, std::move(change_));
    change_ = {};
  }
  void WriteBlock(uint64_t id, uint64_t block) {
    LayerPtr l = set_.Find(id);
    ASSERT_NE(l, nullptr);
    std::vector<uint8_t> data(kSectorSize, 1);
    ASSERT_TRUE(
        PwriteFull(l->fd.get(), data.data(), data.size(), block * kSectorSize, l->file).ok());
  }
  // The slot the index names for `block` (kNone: a hole).
  uint16_t SlotOf(uint64_t block) {
    std::vector<BlockIndex::Extent> runs;
    std::vector<LayerPtr> layers;
    set_.Lookup(block, 1, &runs, &layers);
    EXPECT_EQ(runs.size(), 1u);
    return runs.empty() ? BlockIndex::kNone : runs[0].slot;
  }
  void Snapshot(const std::string& name) {
    ApplySnapshot(meta_, name, "t", true);
    CreateFiles();
    Install();
  }

  TempDir dir_;
  ReplicaMeta meta_;
  LayerSet set_{dir_.path(), BlockIndex::kDefaultChunkBits, /*direct_writes=*/false};
  LayerSet::Change change_;
};

TEST_F(LayerSetTest, IndexNamesTheNewestLayerHoldingEachBlock) {
  Install();
  const uint64_t root = meta_.head;
  Snapshot("s1");
  const uint64_t head = meta_.head;
  ASSERT_NE(head, root);
  EXPECT_EQ(set_.head()->id, head);
  WriteBlock(root, 1);
  WriteBlock(root, 2);
  WriteBlock(head, 2);
  auto index = set_.BuildIndex(ActiveChain(meta_), kSize / kSectorSize, set_.All());
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  set_.Install(meta_, {.add = {}, .remove = {}, .index = std::move(*index), .forget = {}});
  EXPECT_EQ(SlotOf(0), BlockIndex::kNone);
  EXPECT_EQ(SlotOf(1), set_.Find(root)->slot);
  EXPECT_EQ(SlotOf(2), set_.Find(head)->slot);
  EXPECT_NE(set_.Find(root)->slot, set_.Find(head)->slot);

  set_.SetRanges({{0, 3, BlockIndex::kNone}, {1, 1, set_.Find(head)->slot}});
  EXPECT_EQ(SlotOf(0), BlockIndex::kNone);
  EXPECT_EQ(SlotOf(1), set_.Find(head)->slot);
  EXPECT_EQ(SlotOf(2), BlockIndex::kNone);
  set_.Relabel(0, 4, set_.Find(head)->slot, set_.Find(root)->slot);
  EXPECT_EQ(SlotOf(1), set_.Find(root)->slot);
}

TEST_F(LayerSetTest, RemovedSnapshotsRightUnderTheHeadAreUnneeded) {
  Install();
  Snapshot("s1");
  Snapshot("s2");
  auto lower = set_.LowerLayers();
  EXPECT_EQ(lower.head->id, meta_.head);
  EXPECT_TRUE(lower.unneeded.empty());
  ASSERT_EQ(lower.kept.size(), 2u);

  // s2 (right under the head) removed, one child: its merge is due.
  FindLayer(meta_, FindSnapshot(meta_, "s2")->id)->removed = true;
  Install();
  lower = set_.LowerLayers();
  ASSERT_EQ(lower.unneeded.size(), 1u);
  EXPECT_EQ(lower.unneeded[0]->id, FindSnapshot(meta_, "s2")->id);
  ASSERT_EQ(lower.kept.size(), 1u);
  EXPECT_EQ(lower.kept[0]->id, FindSnapshot(meta_, "s1")->id);

  // s1 alone removed: s2 still needs it, so nothing under the head is.
  FindLayer(meta_, FindSnapshot(meta_, "s2")->id)->removed = false;
  FindLayer(meta_, FindSnapshot(meta_, "s1")->id)->removed = true;
  Install();
  EXPECT_TRUE(set_.LowerLayers().unneeded.empty());
}

TEST_F(LayerSetTest, SlotsAreReservedFreedAndReused) {
  Install();
  const uint64_t root = meta_.head;
  Snapshot("s1");
  LayerPtr old_head = set_.head();
  const uint16_t old_slot = old_head->slot;

  // Revert to s1: the new head's slot is reserved before the index that
  // names it is built; the old head leaves and its slot is free again.
  ApplyRevert(meta_, root);
  const LayerMeta& fresh = *FindLayer(meta_, meta_.head);
  ASSERT_TRUE(CreateLayerFile(dir_.path() + "/" + fresh.file, kSize).ok());
  auto layer = set_.OpenLayer(fresh, /*head=*/true);
  ASSERT_TRUE(layer.ok());
  set_.Reserve(*layer);
  const uint16_t fresh_slot = (*layer)->slot;
  EXPECT_NE(fresh_slot, old_slot);
  EXPECT_NE(fresh_slot, set_.Find(root)->slot);
  EXPECT_EQ(set_.Find(fresh.id), nullptr);  // reserved, not in the set yet
  set_.Install(meta_, {.add = {*layer}, .remove = {old_head}, .index = {}, .forget = {}});
  EXPECT_EQ(set_.head(), *layer);
  EXPECT_EQ(set_.head()->slot, fresh_slot);  // Install keeps a reserved slot
  EXPECT_EQ(set_.Find(old_head->id), nullptr);
  EXPECT_EQ(set_.All().size(), 2u);

  // A later layer takes the freed slot.
  Snapshot("s2");
  EXPECT_EQ(set_.head()->slot, old_slot);

  // Unreserve gives a slot back without the layer ever joining.
  auto spare = std::make_shared<Layer>();
  set_.Reserve(spare);
  const uint16_t spare_slot = spare->slot;
  set_.Unreserve(spare);
  auto next = std::make_shared<Layer>();
  set_.Reserve(next);
  EXPECT_EQ(next->slot, spare_slot);
}

}  // namespace
}  // namespace shorthorn::replicad
