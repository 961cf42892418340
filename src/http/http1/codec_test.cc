#include "http/http1/codec.h"

#include <gtest/gtest.h>

#include <vector>

namespace mast::http1 {
namespace {

struct Recorder : Callbacks {
  struct Msg {
    http::HeaderMap headers;
    bool headers_end = false;
    std::string body;
    bool ended = false;
    http::HeaderMap trailers;
  };
  std::vector<Msg> msgs;
  int error_status = 0;
  std::string error_details;
  void onHeaders(http::HeaderMap&& h, bool end) override {
    msgs.push_back({});
    msgs.back().headers = std::move(h);
    msgs.back().headers_end = end;
    msgs.back().ended = end;
  }
  void onData(std::string_view d, bool end) override {
    ASSERT_FALSE(msgs.empty());
    ASSERT_FALSE(msgs.back().ended);
    msgs.back().body.append(d);
    if (end) msgs.back().ended = true;
  }
  void onTrailers(http::HeaderMap&& t) override {
    msgs.back().trailers = std::move(t);
    msgs.back().ended = true;
  }
  void onError(int status, std::string_view details) override {
    EXPECT_EQ(error_status, 0) << "onError fired twice";
    error_status = status;
    error_details = details;
  }
};

// Feeds like a connection manager: re-dispatches unconsumed bytes after each response.
size_t feedServer(ServerCodec& c, std::string_view in, size_t piece = 0) {
  std::string pending;
  size_t requests = 0;
  auto pump = [&](std::string_view bytes) {
    pending.append(bytes);
    while (!pending.empty()) {
      size_t used = c.dispatch(pending.data(), pending.size());
      pending.erase(0, used);
      if (c.failed()) return;
      if (used == 0 || !pending.empty()) {
        c.resumeAfterResponse();
        ++requests;
        if (used == 0 && pending.empty()) return;
      }
    }
  };
  if (piece == 0) {
    pump(in);
  } else {
    for (size_t i = 0; i < in.size(); i += piece) pump(in.substr(i, piece));
  }
  return requests;
}

TEST(Http1ServerTest, SimpleGet) {
  Recorder r;
  ServerCodec c(r, {});
  std::string req = "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-Foo:  bar \r\n\r\n";
  EXPECT_EQ(c.dispatch(req.data(), req.size()), req.size());
  ASSERT_EQ(r.msgs.size(), 1u);
  auto& h = r.msgs[0].headers;
  EXPECT_EQ(h.method(), "GET");
  EXPECT_EQ(h.path(), "/a?b=1");
  EXPECT_EQ(h.authority(), "example.com");
  EXPECT_EQ(h.getOr("x-foo"), "bar");
  EXPECT_TRUE(r.msgs[0].headers_end);
  EXPECT_EQ(c.protocol(), http::Protocol::Http11);
  EXPECT_FALSE(c.shouldClose());
}

TEST(Http1ServerTest, ByteAtATimeAndPipelining) {
  std::string reqs =
      "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n";
  for (size_t piece : {size_t(0), size_t(1), size_t(7)}) {
    Recorder r;
    ServerCodec c(r, {});
    feedServer(c, reqs, piece);
    ASSERT_EQ(r.error_status, 0) << r.error_details << " piece " << piece;
    ASSERT_EQ(r.msgs.size(), 3u) << "piece " << piece;
    EXPECT_EQ(r.msgs[0].headers.path(), "/1");
    EXPECT_EQ(r.msgs[1].body, "hello");
    EXPECT_TRUE(r.msgs[1].ended);
    EXPECT_EQ(r.msgs[2].body, "abcde");
    EXPECT_EQ(r.msgs[2].trailers.getOr("x-trailer"), "t");
    EXPECT_FALSE(r.msgs[2].headers.has("transfer-encoding"));
  }
}

TEST(Http1ServerTest, PausesAfterEachRequest) {
  Recorder r;
  ServerCodec c(r, {});
  std::string two = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n";
  size_t used = c.dispatch(two.data(), two.size());
  EXPECT_EQ(used, two.size() / 2);
  EXPECT_EQ(r.msgs.size(), 1u);
  EXPECT_EQ(c.dispatch(two.data() + used, two.size() - used), 0u);
  c.resumeAfterResponse();
  EXPECT_EQ(c.dispatch(two.data() + used, two.size() - used), two.size() - used);
  EXPECT_EQ(r.msgs.size(), 2u);
}

struct BadCase {
  const char* name;
  std::string request;
  int status;
};

TEST(Http1ServerTest, SmugglingAndMalformedInputRejected) {
  std::vector<BadCase> cases = {
      {"cl+te",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: "
       "chunked\r\n\r\n0\r\n\r\n",
       400},
      {"te+cl",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: "
       "4\r\n\r\n0\r\n\r\n",
       400},
      {"dup cl",
       "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400},
      {"bad chunk size",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
       400},
      {"bare lf", "GET / HTTP/1.1\nHost: x\n\n", 400},
      {"bare lf in header", "GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400},
      {"bare cr", "GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
      {"te not chunked last",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400},
      {"garbage", "GARBAGE\r\n\r\n", 400},
      {"bad version", "GET / HTTP/2.7\r\nHost: x\r\n\r\n", 400},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400},
      {"bare cr in value", "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", 400},
      {"cr cr lf", "GET / HTTP/1.1\r\nHost: x\r\r\n\r\n", 400},
      {"bare cr in request line", "GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"tab before colon", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400},
  };
  // The header-block scan keeps state across reads: every verdict must hold whatever the
  // read boundaries are (one piece, byte by byte, odd sizes that split CR from LF).
  for (size_t piece : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{7}})
    for (const auto& bc : cases) {
      SCOPED_TRACE(std::string(bc.name) + " piece=" + std::to_string(piece));
      Recorder r;
      ServerCodec c(r, {});
      feedServer(c, bc.request, piece);
      EXPECT_EQ(r.error_status, bc.status) << bc.name;
      EXPECT_TRUE(c.failed()) << bc.name;
      // Nothing more is accepted.
      std::string more = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
      size_t msgs = r.msgs.size();
      c.dispatch(more.data(), more.size());
      EXPECT_EQ(r.msgs.size(), msgs) << bc.name;
    }
}

TEST(Http1ServerTest, ValidBlocksPassInAnyPieces) {
  const std::string req =
      "GET /p?q=1 HTTP/1.1\r\nHost: a.example\r\nUser-Agent: curl/7.88\r\nX-Empty:\r\n"
      "X-Spaces:   padded value\t\r\nAccept: */*\r\n\r\n";
  for (size_t piece : {size_t{0}, size_t{1}, size_t{2}, size_t{5}, size_t{13}}) {
    SCOPED_TRACE("piece=" + std::to_string(piece));
    Recorder r;
    ServerCodec c(r, {});
    feedServer(c, req + req, piece);
    ASSERT_EQ(r.error_status, 0);
    ASSERT_EQ(r.msgs.size(), 2u);
    for (const auto& m : r.msgs) {
      EXPECT_EQ(*m.headers.get(":authority"), "a.example");
      EXPECT_EQ(*m.headers.get("x-spaces"), "padded value");
      EXPECT_EQ(*m.headers.get("x-empty"), "");
    }
  }
}

TEST(Http1ServerTest, HeaderLimitsGive431) {
  Recorder r;
  ServerSettings s;
  s.max_request_headers_kb = 1;
  ServerCodec c(r, s);
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
  feedServer(c, req);
  EXPECT_EQ(r.error_status, 431);
  Recorder r2;
  ServerCodec c2(r2, {});
  std::string many = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 150; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  feedServer(c2, many);
  EXPECT_EQ(r2.error_status, 431);
}

TEST(Http1ServerTest, Http10KeepAliveRules) {
  Recorder r;
  ServerCodec c(r, {});
  std::string req = "GET / HTTP/1.0\r\n\r\n";
  c.dispatch(req.data(), req.size());
  EXPECT_EQ(c.protocol(), http::Protocol::Http10);
  EXPECT_TRUE(c.shouldClose());
  EXPECT_FALSE(r.msgs[0].headers.has(":authority"));
  std::string out;
  c.encodeHeaders(http::HeaderMap{{":status", "200"}}, false, out);
  EXPECT_EQ(out.find("transfer-encoding"), std::string::npos);
  EXPECT_EQ(out.substr(0, 17), "HTTP/1.0 200 OK\r\n");
}

TEST(Http1ServerTest, EncodesChunkedWhenLengthUnknown) {
  Recorder r;
  ServerCodec c(r, {});
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  c.dispatch(req.data(), req.size());
  std::string out;
  c.encodeHeaders(http::HeaderMap{{":status", "200"}, {"connection", "keep-alive"}, {"x", "y"}},
                  false, out);
  c.encodeData("hello", false, out);
  c.encodeData("", true, out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nx: y\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  std::string out2;
  c.encodeHeaders(http::HeaderMap{{":status", "404"}}, true, out2);
  EXPECT_EQ(out2, "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
}

TEST(Http1ServerTest, UpgradeSwitchesToRaw) {
  Recorder r;
  ServerCodec c(r, {});
  std::string req =
      "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nRAWBYTES";
  EXPECT_EQ(c.dispatch(req.data(), req.size()), req.size());
  ASSERT_EQ(r.msgs.size(), 1u);
  EXPECT_EQ(r.msgs[0].headers.getOr("upgrade"), "websocket");
  EXPECT_EQ(r.msgs[0].body, "RAWBYTES");
  std::string more = "\x81\x05hello";
  c.dispatch(more.data(), more.size());
  EXPECT_EQ(r.msgs[0].body, "RAWBYTES" + more);
}

TEST(Http1ClientTest, ParsesResponsesAndReuse) {
  Recorder r;
  ClientCodec c(r);
  std::string out;
  c.encodeHeaders(http::HeaderMap{{":method", "GET"}, {":path", "/x"}, {":authority", "h"}}, true,
                  out);
  EXPECT_EQ(out, "GET /x HTTP/1.1\r\nhost: h\r\n\r\n");
  std::string resp = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  for (char ch : resp) c.dispatch(&ch, 1);
  ASSERT_EQ(r.msgs.size(), 1u);
  EXPECT_EQ(r.msgs[0].headers.status(), 200);
  EXPECT_EQ(r.msgs[0].body, "abc");
  EXPECT_TRUE(r.msgs[0].ended);
  EXPECT_TRUE(c.keepAlive());
  c.reset();
  std::string out2;
  c.encodeHeaders(http::HeaderMap{{":method", "HEAD"}, {":path", "/"}, {":authority", "h"}}, true,
                  out2);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
  c.dispatch(head.data(), head.size());
  ASSERT_EQ(r.msgs.size(), 2u);
  EXPECT_TRUE(r.msgs[1].headers_end);
}

TEST(Http1ClientTest, ChunkedAndCloseDelimited) {
  Recorder r;
  ClientCodec c(r);
  std::string out;
  c.encodeHeaders(http::HeaderMap{{":method", "POST"}, {":path", "/"}, {":authority", "h"}}, false,
                  out);
  c.encodeData("abc", true, out);
  EXPECT_NE(out.find("transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), std::string::npos);
  std::string resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
  c.dispatch(resp.data(), resp.size());
  EXPECT_EQ(r.msgs[0].body, "hi");
  EXPECT_TRUE(r.msgs[0].ended);
  Recorder r2;
  ClientCodec c2(r2);
  std::string out2;
  c2.encodeHeaders(http::HeaderMap{{":method", "GET"}, {":path", "/"}}, true, out2);
  std::string resp2 = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close";
  c2.dispatch(resp2.data(), resp2.size());
  EXPECT_FALSE(r2.msgs[0].ended);
  c2.onConnectionClose();
  EXPECT_TRUE(r2.msgs[0].ended);
  EXPECT_EQ(r2.msgs[0].body, "until close");
  EXPECT_FALSE(c2.keepAlive());
}

TEST(Http1ClientTest, TruncatedResponseIsAnError) {
  Recorder r;
  ClientCodec c(r);
  std::string out;
  c.encodeHeaders(http::HeaderMap{{":method", "GET"}, {":path", "/"}}, true, out);
  std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
  c.dispatch(resp.data(), resp.size());
  c.onConnectionClose();
  EXPECT_EQ(r.error_status, 502);
}

}  // namespace
}  // namespace mast::http1
