#include "http/http2/codec.h"

#include <gtest/gtest.h>

#include <map>

namespace mast::http2 {
namespace {

struct Rec {
  std::map<int32_t, http::HeaderMap> headers;
  std::map<int32_t, std::string> body;
  std::map<int32_t, bool> ended;
  std::map<int32_t, http::HeaderMap> trailers;
  std::map<int32_t, uint32_t> resets;
  std::vector<int32_t> closed;
  void headersCb(int32_t id, http::HeaderMap&& h, bool end) {
    headers[id] = std::move(h);
    if (end) ended[id] = true;
  }
  void dataCb(int32_t id, std::string_view d, bool end) {
    body[id].append(d);
    if (end) ended[id] = true;
  }
};

struct ServerRec : ServerCallbacks, Rec {
  void onStreamHeaders(int32_t id, http::HeaderMap&& h, bool end) override {
    headersCb(id, std::move(h), end);
  }
  void onStreamData(int32_t id, std::string_view d, bool end) override { dataCb(id, d, end); }
  void onStreamTrailers(int32_t id, http::HeaderMap&& t) override {
    trailers[id] = std::move(t);
    ended[id] = true;
  }
  void onStreamReset(int32_t id, uint32_t code) override { resets[id] = code; }
  void onStreamClose(int32_t id) override { closed.push_back(id); }
  void onConnectionError(std::string_view) override {}
};

struct ClientRec : ClientCallbacks, Rec {
  int32_t goaway_last = -1;
  void onStreamHeaders(int32_t id, http::HeaderMap&& h, bool end) override {
    headersCb(id, std::move(h), end);
  }
  void onStreamData(int32_t id, std::string_view d, bool end) override { dataCb(id, d, end); }
  void onStreamTrailers(int32_t id, http::HeaderMap&& t) override {
    trailers[id] = std::move(t);
    ended[id] = true;
  }
  void onStreamReset(int32_t id, uint32_t code) override { resets[id] = code; }
  void onStreamClose(int32_t id) override { closed.push_back(id); }
  void onGoaway(int32_t last, uint32_t) override { goaway_last = last; }
};

struct Pair {
  ServerRec srec;
  ClientRec crec;
  ServerSession server{srec, {}};
  ClientSession client{crec, {}};
  void pump() {
    for (int i = 0; i < 1000; ++i) {
      std::string c2s, s2c;
      client.drainOutput(c2s);
      if (!c2s.empty()) {
        static const std::string kPreface = "";
        ASSERT_TRUE(server.dispatch(c2s.data(), c2s.size()));
      }
      server.drainOutput(s2c);
      if (!s2c.empty()) ASSERT_TRUE(client.dispatch(s2c.data(), s2c.size()));
      if (c2s.empty() && s2c.empty()) return;
    }
  }
};

http::HeaderMap get(const std::string& path) {
  return {{":method", "GET"}, {":scheme", "http"}, {":authority", "h"}, {":path", path}};
}

TEST(Http2Test, RequestResponseWithBodiesAndTrailers) {
  Pair p;
  int32_t id = p.client.submitRequest(
      {{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/p"}}, false);
  ASSERT_GT(id, 0);
  p.client.submitData(id, "hello", true);
  p.pump();
  EXPECT_EQ(p.srec.headers[id].method(), "POST");
  EXPECT_EQ(p.srec.body[id], "hello");
  EXPECT_TRUE(p.srec.ended[id]);
  p.server.submitResponseHeaders(id, {{":status", "200"}, {"connection", "keep-alive"}}, false);
  p.server.submitData(id, "world", false);
  p.server.submitTrailers(id, {{"grpc-status", "0"}});
  p.pump();
  EXPECT_EQ(p.crec.headers[id].status(), 200);
  EXPECT_FALSE(p.crec.headers[id].has("connection"));
  EXPECT_EQ(p.crec.body[id], "world");
  EXPECT_EQ(p.crec.trailers[id].getOr("grpc-status"), "0");
  EXPECT_EQ(p.crec.closed.size(), 1u);
  EXPECT_EQ(p.srec.closed.size(), 1u);
}

TEST(Http2Test, ManyConcurrentStreamsAndLargeBodies) {
  Pair p;
  std::vector<int32_t> ids;
  for (int i = 0; i < 100; ++i)
    ids.push_back(p.client.submitRequest(get("/" + std::to_string(i)), true));
  p.pump();
  std::string big(10 * 1024 * 1024, 'x');
  for (int32_t id : ids) {
    p.server.submitResponseHeaders(id, {{":status", "200"}}, false);
    p.server.submitData(id, id == ids[0] ? big : "ok", true);
  }
  p.pump();
  for (int32_t id : ids) EXPECT_TRUE(p.crec.ended[id]);
  EXPECT_EQ(p.crec.body[ids[0]].size(), big.size());
  EXPECT_EQ(p.crec.body[ids[1]], "ok");
}

TEST(Http2Test, ResetAndGracefulGoaway) {
  Pair p;
  int32_t a = p.client.submitRequest(get("/a"), true);
  int32_t b = p.client.submitRequest(get("/b"), true);
  p.pump();
  p.client.resetStream(a, 0x8);
  p.pump();
  EXPECT_EQ(p.srec.resets[a], 0x8u);
  p.server.goAway(0);
  p.pump();
  EXPECT_EQ(p.crec.goaway_last, b);
  EXPECT_FALSE(p.client.canSubmit());
  EXPECT_FALSE(p.server.wantsClose());  // b is still open
  p.server.submitResponseHeaders(b, {{":status", "204"}}, true);
  p.pump();
  EXPECT_TRUE(p.crec.ended[b]);
  EXPECT_TRUE(p.server.wantsClose());
}

TEST(Http2Test, GarbageIsAConnectionError) {
  ServerRec r;
  ServerSession s(r, {});
  std::string bad = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  bad +=
      std::string("\x00\x00\x04\x09\x00\x00\x00\x00\x01zzzz", 13);  // CONTINUATION without HEADERS
  s.dispatch(bad.data(), bad.size());
  std::string out;
  s.drainOutput(out);
  // nghttp2 answers the protocol error itself; once flushed, the session wants to close.
  EXPECT_TRUE(s.wantsClose());
  // A GOAWAY frame (type 7) went out.
  bool goaway = false;
  for (size_t i = 0; i + 9 <= out.size();) {
    uint32_t len = (uint8_t(out[i]) << 16) | (uint8_t(out[i + 1]) << 8) | uint8_t(out[i + 2]);
    if (out[i + 3] == 7) goaway = true;
    i += 9 + len;
  }
  EXPECT_TRUE(goaway);
  ServerRec r2;
  ServerSession s2(r2, {});
  std::string not_h2 = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_FALSE(s2.dispatch(not_h2.data(), not_h2.size()));
}

// A read-disabled stream keeps what it received out of the peer's window: the peer stops after
// one stream window and continues once reading resumes. Both directions (request bodies on the
// server side, response bodies on the client side).
TEST(Http2Test, ReadDisabledStreamHoldsBackWindowUpdates) {
  ServerRec srec;
  ClientRec crec;
  ServerSettings ss;
  ss.initial_stream_window_size = 65535;
  ClientSettings cs;
  cs.initial_stream_window_size = 65535;
  ServerSession server(srec, ss);
  ClientSession client(crec, cs);
  auto pump = [&] {
    for (int i = 0; i < 1000; ++i) {
      std::string c2s, s2c;
      client.drainOutput(c2s);
      if (!c2s.empty()) ASSERT_TRUE(server.dispatch(c2s.data(), c2s.size()));
      server.drainOutput(s2c);
      if (!s2c.empty()) ASSERT_TRUE(client.dispatch(s2c.data(), s2c.size()));
      if (c2s.empty() && s2c.empty()) return;
    }
  };
  int32_t id = client.submitRequest(
      {{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/up"}}, false);
  pump();
  ASSERT_EQ(srec.headers[id].path(), "/up");
  const std::string body(300000, 'u');
  server.readDisable(id, true);
  server.readDisable(id, true);  // nested: two holders
  client.submitData(id, body, true);
  pump();
  EXPECT_EQ(srec.body[id].size(), 65535u);
  EXPECT_EQ(client.bufferedBytes(id), body.size() - 65535);
  server.readDisable(id, false);
  pump();
  EXPECT_EQ(srec.body[id].size(), 65535u);  // still held by the second holder
  server.readDisable(id, false);
  pump();
  EXPECT_EQ(srec.body[id], body);
  EXPECT_TRUE(srec.ended[id]);

  // Response direction: the client pauses its stream.
  server.submitResponseHeaders(id, {{":status", "200"}}, false);
  pump();
  client.readDisable(id, true);
  const std::string down(200000, 'd');
  server.submitData(id, down, true);
  pump();
  EXPECT_EQ(crec.body[id].size(), 65535u);
  EXPECT_EQ(server.bufferedBytes(id), down.size() - 65535);
  client.readDisable(id, false);
  pump();
  EXPECT_EQ(crec.body[id], down);
  EXPECT_TRUE(crec.ended[id]);
}

// Without pausing, bodies far beyond the windows flow: delivered bytes are given back at once.
TEST(Http2Test, WindowsReopenAsDataIsDelivered) {
  ServerRec srec;
  ClientRec crec;
  ServerSettings ss;
  ss.initial_stream_window_size = 65535;
  ss.initial_connection_window_size = 65535;
  ServerSession server(srec, ss);
  ClientSession client(crec, {});
  int32_t id = client.submitRequest(
      {{":method", "POST"}, {":scheme", "http"}, {":authority", "h"}, {":path", "/up"}}, false);
  const std::string body(1000000, 'x');
  client.submitData(id, body, true);
  for (int i = 0; i < 1000; ++i) {
    std::string c2s, s2c;
    client.drainOutput(c2s);
    if (!c2s.empty()) ASSERT_TRUE(server.dispatch(c2s.data(), c2s.size()));
    server.drainOutput(s2c);
    if (!s2c.empty()) ASSERT_TRUE(client.dispatch(s2c.data(), s2c.size()));
    if (c2s.empty() && s2c.empty()) break;
  }
  EXPECT_EQ(srec.body[id], body);
}

}  // namespace
}  // namespace mast::http2
