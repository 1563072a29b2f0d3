// util/write_batch.h: which publishes a thread holds back and when it writes
// them. Pure logic, with a writer that counts its flushes.
#include "util/write_batch.h"

#include <gtest/gtest.h>

#include <memory>

namespace micro::internal {
namespace {

class CountingWriter final : public DeferredWriter {
 public:
  void Flush() override { ++flushes; }
  int flushes = 0;
};

TEST(WriteBatch, OutsideAHoldingBatchEveryPublishIsWrittenAtOnce) {
  auto writer = std::make_shared<CountingWriter>();
  EXPECT_FALSE(WriteBatch::Defer(writer));
  WriteBatch batch(/*hold=*/false);
  EXPECT_FALSE(WriteBatch::Defer(writer));
  batch.End(/*idle=*/true);
  EXPECT_EQ(writer->flushes, 0);
}

TEST(WriteBatch, HeldPublishesAreWrittenOnceWhenTheThreadRunsDry) {
  auto writer = std::make_shared<CountingWriter>();
  auto other = std::make_shared<CountingWriter>();
  {
    WriteBatch first(/*hold=*/true);
    EXPECT_TRUE(WriteBatch::Defer(writer));
    EXPECT_TRUE(WriteBatch::Defer(writer));
    first.End(/*idle=*/false);  // More work queued: still held.
  }
  EXPECT_EQ(writer->flushes, 0);
  {
    WriteBatch second(/*hold=*/true);
    EXPECT_TRUE(WriteBatch::Defer(writer));
    EXPECT_TRUE(WriteBatch::Defer(other));
    second.End(/*idle=*/true);
  }
  EXPECT_EQ(writer->flushes, 1);
  EXPECT_EQ(other->flushes, 1);
  WriteBatch::FlushThisThread();  // Nothing left.
  EXPECT_EQ(writer->flushes, 1);
}

TEST(WriteBatch, FlushThisThreadWritesWhatIsHeld) {
  auto writer = std::make_shared<CountingWriter>();
  WriteBatch batch(/*hold=*/true);
  EXPECT_TRUE(WriteBatch::Defer(writer));
  WriteBatch::FlushThisThread();  // As before blocking.
  EXPECT_EQ(writer->flushes, 1);
  batch.End(/*idle=*/true);
  EXPECT_EQ(writer->flushes, 1);
}

TEST(WriteBatch, AnInnerBatchThatDoesNotHoldWritesAtOnceAndRestoresTheOuter) {
  auto writer = std::make_shared<CountingWriter>();
  WriteBatch outer(/*hold=*/true);
  {
    WriteBatch inner(/*hold=*/false);
    EXPECT_FALSE(WriteBatch::Defer(writer));
    inner.End(/*idle=*/true);  // Not the outermost: writes nothing.
  }
  EXPECT_TRUE(WriteBatch::Defer(writer));
  EXPECT_EQ(writer->flushes, 0);
  outer.End(/*idle=*/true);
  EXPECT_EQ(writer->flushes, 1);
}

TEST(WriteBatch, AtMostKMaxDeferredPublishesWait) {
  auto writer = std::make_shared<CountingWriter>();
  WriteBatch batch(/*hold=*/true);
  for (int i = 1; i < WriteBatch::kMaxDeferred; ++i) EXPECT_TRUE(WriteBatch::Defer(writer));
  EXPECT_EQ(writer->flushes, 0);
  EXPECT_TRUE(WriteBatch::Defer(writer));  // Written now, with the rest.
  EXPECT_EQ(writer->flushes, 1);
  batch.End(/*idle=*/false);
  WriteBatch::FlushThisThread();
  EXPECT_EQ(writer->flushes, 1);
}

}  // namespace
}  // namespace micro::internal
