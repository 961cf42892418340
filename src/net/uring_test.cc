// The io_uring ring driving an asio loop: Transport reads and writes through it, asio's own work
// (timers, posts from this and other threads) still runs, and closing aborts pending reads.
// Real sockets on loopback; skipped where io_uring is unavailable.
#include "net/uring.h"

#include <gtest/gtest.h>

#include <asio/connect.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <memory>
#include <string>
#include <thread>

#include "net/transport.h"

namespace mast::net {
namespace {

class UringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ring_ = Uring::create(loop_, &why);
    if (!ring_) GTEST_SKIP() << "no io_uring here: " << why;
    asio::ip::tcp::acceptor acc(loop_, {asio::ip::make_address("127.0.0.1"), 0});
    client_ = std::make_unique<asio::ip::tcp::socket>(loop_);
    client_->connect(acc.local_endpoint());
    server_ = std::make_unique<Transport>(acc.accept());
  }
  // Runs the ring-driven loop on this thread until stop() is called or 5 s pass.
  void runRing() {
    asio::steady_timer guard(loop_, std::chrono::seconds(5));
    guard.async_wait([this](std::error_code ec) {
      if (!ec) {
        timed_out_ = true;
        loop_.stop();
      }
    });
    auto work = asio::make_work_guard(loop_);
    ring_->run();
    EXPECT_FALSE(timed_out_) << "the loop did not finish in 5 s";
  }

  asio::io_context loop_{1};
  std::unique_ptr<Uring> ring_;
  std::unique_ptr<asio::ip::tcp::socket> client_;
  std::unique_ptr<Transport> server_;
  bool timed_out_ = false;
};

TEST_F(UringTest, EchoesThroughTheRingWithAsioTimersAndPostsAlongside) {
  EXPECT_EQ(Uring::onThisThread(), nullptr);
  std::string got;
  char buf[4];  // smaller than the message: several reads
  std::function<void()> readMore = [&] {
    server_->asyncReadSome(asio::buffer(buf), [&](std::error_code ec, size_t n) {
      EXPECT_NE(Uring::onThisThread(), nullptr);
      if (ec) {
        EXPECT_EQ(ec, asio::error::eof);
        server_->asyncWrite(asio::buffer(got), [&](std::error_code wec, size_t sent) {
          EXPECT_FALSE(wec);
          EXPECT_EQ(sent, got.size());
          // A post from a ring handler on this thread, which wakes nothing by itself.
          asio::post(loop_, [&] { loop_.stop(); });
        });
        return;
      }
      got.append(buf, n);
      readMore();
    });
  };
  readMore();
  // The client writes from an asio timer, i.e. from the reactor side of the same loop.
  asio::steady_timer later(loop_, std::chrono::milliseconds(20));
  later.async_wait([&](std::error_code) {
    asio::write(*client_, asio::buffer(std::string("hello, ring")));
    client_->shutdown(asio::ip::tcp::socket::shutdown_send);
  });
  runRing();
  EXPECT_EQ(got, "hello, ring");
  std::string back(got.size(), '\0');
  asio::read(*client_, asio::buffer(back));
  EXPECT_EQ(back, "hello, ring");
}

TEST_F(UringTest, LargeWriteCompletesWholeAcrossShortSends) {
  std::string big(8 << 20, 'x');  // far beyond the socket buffers: the kernel sends it in parts
  size_t sent_total = 0;
  server_->asyncWrite(asio::buffer(big), [&](std::error_code ec, size_t sent) {
    EXPECT_FALSE(ec);
    sent_total = sent;
    loop_.stop();
  });
  std::thread reader([this, n = big.size()] {
    std::string sink(n, '\0');
    asio::error_code ec;
    asio::read(*client_, asio::buffer(sink), ec);
    EXPECT_FALSE(ec);
  });
  runRing();
  reader.join();
  EXPECT_EQ(sent_total, big.size());
}

TEST_F(UringTest, CloseAbortsAPendingRead) {
  char buf[16];
  std::error_code result;
  bool called = false;
  server_->asyncReadSome(asio::buffer(buf), [&](std::error_code ec, size_t) {
    called = true;
    result = ec;
    loop_.stop();
  });
  asio::steady_timer later(loop_, std::chrono::milliseconds(20));
  later.async_wait([&](std::error_code) { server_->close(); });
  runRing();
  EXPECT_TRUE(called);
  EXPECT_EQ(result, asio::error::operation_aborted);
  EXPECT_EQ(ring_->inflight(), 0u);
}

TEST_F(UringTest, WakeRunsHandlersPostedByAnotherThread) {
  bool ran = false;
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    asio::post(loop_, [&] {
      ran = true;
      loop_.stop();
    });
    ring_->wake();
  });
  runRing();
  other.join();
  EXPECT_TRUE(ran);
  // It was the wake-up that brought the loop back, not the ring's periodic safety timeout.
  EXPECT_EQ(ring_->wakeups(), 1u);
}

TEST(UringCreateTest, TurnedOffByEnvironment) {
  asio::io_context loop(1);
  ::setenv("MAST_IO_URING", "0", 1);
  std::string why;
  auto ring = Uring::create(loop, &why);
  ::unsetenv("MAST_IO_URING");
  EXPECT_EQ(ring, nullptr);
  EXPECT_NE(why.find("MAST_IO_URING=0"), std::string::npos) << why;
}

}  // namespace
}  // namespace mast::net
