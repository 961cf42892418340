#include "proxy/xds/grpc_frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace mast::proxy::xds {
namespace {

struct Collector {
  std::vector<std::string> messages;
  GrpcDeframer::OnMessage cb() {
    return [this](std::string_view m) {
      messages.emplace_back(m);
      return Status{};
    };
  }
};

std::string framed(std::initializer_list<std::string_view> messages) {
  std::string out;
  for (auto m : messages) appendGrpcFrame(out, m);
  return out;
}

TEST(GrpcFrame, PrefixIsFlagThenBigEndianLength) {
  std::string out;
  appendGrpcFrame(out, std::string(0x010203, 'x'));
  ASSERT_EQ(out.size(), 5u + 0x010203);
  EXPECT_EQ(out.substr(0, 5), std::string("\x00\x00\x01\x02\x03", 5));
  out.clear();
  appendGrpcFrame(out, "");
  EXPECT_EQ(out, std::string(5, '\0'));
}

TEST(GrpcFrame, SeveralMessagesInOneBuffer) {
  Collector c;
  GrpcDeframer d(1024);
  ASSERT_TRUE(d.feed(framed({"one", "", "three"}), c.cb()));
  EXPECT_EQ(c.messages, (std::vector<std::string>{"one", "", "three"}));
  EXPECT_FALSE(d.midMessage());
}

TEST(GrpcFrame, EverySplitGivesTheSameMessages) {
  const std::string big(3000, 'b');
  const std::string wire = framed({"alpha", big, "", "omega"});
  const std::vector<std::string> want{"alpha", big, "", "omega"};
  // Two pieces at every cut point, then one byte at a time.
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    Collector c;
    GrpcDeframer d(4096);
    ASSERT_TRUE(d.feed(std::string_view(wire).substr(0, cut), c.cb()));
    ASSERT_TRUE(d.feed(std::string_view(wire).substr(cut), c.cb()));
    ASSERT_EQ(c.messages, want) << "cut at " << cut;
    EXPECT_FALSE(d.midMessage());
  }
  Collector c;
  GrpcDeframer d(4096);
  for (char ch : wire) ASSERT_TRUE(d.feed(std::string_view(&ch, 1), c.cb()));
  EXPECT_EQ(c.messages, want);
}

TEST(GrpcFrame, MessageCutShortIsVisible) {
  const std::string wire = framed({"hello"});
  Collector c;
  GrpcDeframer d(1024);
  ASSERT_TRUE(d.feed(std::string_view(wire).substr(0, 3), c.cb()));
  EXPECT_TRUE(d.midMessage());  // inside the prefix
  ASSERT_TRUE(d.feed(std::string_view(wire).substr(3, 4), c.cb()));
  EXPECT_TRUE(d.midMessage());  // inside the body
  EXPECT_EQ(d.bufferedBytes(), 2u);
  ASSERT_TRUE(d.feed(std::string_view(wire).substr(7), c.cb()));
  EXPECT_FALSE(d.midMessage());
  EXPECT_EQ(c.messages, std::vector<std::string>{"hello"});
}

TEST(GrpcFrame, OversizedLengthFailsBeforeBuffering) {
  Collector c;
  GrpcDeframer d(1000);
  ASSERT_TRUE(d.feed(framed({std::string(1000, 'a')}), c.cb()));  // exactly the limit
  // 4 GB - 1 declared, only the prefix sent: rejected from the prefix alone.
  Status s = d.feed(std::string("\x00\xff\xff\xff\xff", 5), c.cb());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), "gRPC message of 4294967295 bytes exceeds the limit of 1000 bytes");
  EXPECT_EQ(d.bufferedBytes(), 0u);
  EXPECT_EQ(c.messages.size(), 1u);
  // The deframer stays failed.
  EXPECT_FALSE(d.feed(framed({"x"}), c.cb()));
  EXPECT_EQ(c.messages.size(), 1u);
}

TEST(GrpcFrame, CompressedFlagIsAnError) {
  Collector c;
  GrpcDeframer d(1024);
  std::string wire = framed({"ok"}) + framed({"zipped"});
  wire[5 + 2] = 1;  // the second message's flag
  Status s = d.feed(wire, c.cb());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().find("compressed flag"), std::string::npos);
  EXPECT_EQ(c.messages, std::vector<std::string>{"ok"});
  GrpcDeframer d2(1024);
  std::string bad = framed({"x"});
  bad[0] = 0x80;  // reserved bits
  EXPECT_EQ(d2.feed(bad, c.cb()).error(), "gRPC message with an invalid flag byte 128");
}

TEST(GrpcFrame, CallbackErrorStopsTheStream) {
  GrpcDeframer d(1024);
  int calls = 0;
  auto cb = [&](std::string_view m) -> Status {
    ++calls;
    if (m == "bad") return Error{"cannot parse"};
    return {};
  };
  Status s = d.feed(framed({"good", "bad", "never"}), cb);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), "cannot parse");
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace mast::proxy::xds
