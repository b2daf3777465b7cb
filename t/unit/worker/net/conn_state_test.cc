#include "worker/net/conn_state.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "shared/log/log.h"

namespace lb::worker {
namespace {

using S = ConnState;

// An independent copy of the transition list in DESIGN terms; the implementation's table must
// agree with it on every one of the 15 x 15 pairs.
const std::map<S, std::set<S>>& expectedTable() {
  static const std::map<S, std::set<S>> table = {
      {S::Accepting, {S::SslHandshaking, S::ReadingRequest, S::KeepAlive, S::Closing}},
      {S::SslHandshaking, {S::ReadingRequest, S::Closing, S::Error}},
      {S::ReadingRequest, {S::ParsingRequest, S::Draining, S::Closing, S::Error}},
      {S::ParsingRequest,
       {S::ReadingRequest, S::SelectingBackend, S::SendingResponse, S::Closing, S::Error}},
      {S::SelectingBackend,
       {S::ConnectingBackend, S::SendingRequest, S::SendingResponse, S::Closing, S::Error}},
      {S::ConnectingBackend,
       {S::SendingRequest, S::SelectingBackend, S::SendingResponse, S::Closing, S::Error}},
      {S::SendingRequest,
       {S::ReadingResponse, S::SelectingBackend, S::SendingResponse, S::Closing, S::Error}},
      {S::ReadingResponse, {S::SendingResponse, S::SelectingBackend, S::Closing, S::Error}},
      {S::SendingResponse,
       {S::ReadingResponse, S::KeepAlive, S::WebSocket, S::Draining, S::Closing, S::Error}},
      {S::KeepAlive, {S::ReadingRequest, S::ParsingRequest, S::Draining, S::Closing}},
      {S::WebSocket, {S::Draining, S::Closing, S::Error}},
      {S::Draining, {S::Closing}},
      {S::Closing, {S::Closed}},
      {S::Closed, {}},
      {S::Error, {S::Draining, S::Closing}},
  };
  return table;
}

S state(int i) {
  return static_cast<S>(i);
}

// Sends the error log to a temporary file for the lifetime of the object, so a test can read
// what was logged; standard error is restored afterwards.
class CapturedLog {
 public:
  CapturedLog() {
    char tmpl[] = "/tmp/lb-conn-state-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    path_ = tmpl;
    REQUIRE(log::open(path_, log::Level::Debug));
  }
  ~CapturedLog() {
    (void)log::open("stderr", log::Level::Notice);
    ::unlink(path_.c_str());
  }
  std::string text() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::string path_;
};

}  // namespace

TEST_CASE("every state has its name", "[state]") {
  const char* names[] = {"Accepting",      "SslHandshaking",   "ReadingRequest",
                         "ParsingRequest", "SelectingBackend", "ConnectingBackend",
                         "SendingRequest", "ReadingResponse",  "SendingResponse",
                         "KeepAlive",      "WebSocket",        "Draining",
                         "Closing",        "Closed",           "Error"};
  REQUIRE(std::size(names) == static_cast<size_t>(kConnStateCount));
  for (int i = 0; i < kConnStateCount; ++i) {
    CHECK(std::string(connStateName(state(i))) == names[i]);
  }
  CHECK(std::string(connStateName(ConnState::kCount)) == "Invalid");
}

TEST_CASE("the transition table matches the specification on all 225 pairs", "[state]") {
  REQUIRE(expectedTable().size() == static_cast<size_t>(kConnStateCount));
  int allowed = 0;
  for (int f = 0; f < kConnStateCount; ++f) {
    const std::set<S>& targets = expectedTable().at(state(f));
    for (int t = 0; t < kConnStateCount; ++t) {
      const bool expected = targets.count(state(t)) != 0;
      INFO(connStateName(state(f)) << " -> " << connStateName(state(t)));
      CHECK(isAllowedTransition(state(f), state(t)) == expected);
      allowed += expected ? 1 : 0;
    }
  }
  CHECK(allowed == 52);
}

TEST_CASE("no state may stay in itself and Closed is terminal", "[state]") {
  for (int i = 0; i < kConnStateCount; ++i) {
    INFO(connStateName(state(i)));
    CHECK_FALSE(isAllowedTransition(state(i), state(i)));
    CHECK_FALSE(isAllowedTransition(S::Closed, state(i)));
    CHECK_FALSE(isAllowedTransition(state(i), S::Accepting));
  }
  CHECK_FALSE(isAllowedTransition(S::kCount, S::Closing));
  CHECK_FALSE(isAllowedTransition(S::Closing, S::kCount));
}

TEST_CASE("every state but Closed can reach Closed", "[state]") {
  for (int start = 0; start < kConnStateCount; ++start) {
    std::set<int> seen = {start};
    std::vector<int> todo = {start};
    while (!todo.empty()) {
      int s = todo.back();
      todo.pop_back();
      for (int t = 0; t < kConnStateCount; ++t) {
        if (isAllowedTransition(state(s), state(t)) && seen.insert(t).second) {
          todo.push_back(t);
        }
      }
    }
    INFO(connStateName(state(start)));
    CHECK(seen.count(static_cast<int>(S::Closed)) == 1);
  }
}

TEST_CASE("a proxied keep-alive connection walks the machine without an alert", "[state]") {
  CapturedLog log;
  ConnStateMachine m;
  CHECK(m.state() == S::Accepting);
  const S path[] = {S::ReadingRequest,
                    S::ParsingRequest,
                    S::SelectingBackend,
                    S::ConnectingBackend,
                    S::SelectingBackend,
                    S::ConnectingBackend,
                    S::SendingRequest,
                    S::ReadingResponse,
                    S::SendingResponse,
                    S::ReadingResponse,
                    S::SendingResponse,
                    S::KeepAlive,
                    S::ParsingRequest,
                    S::SendingResponse,
                    S::Draining,
                    S::Closing,
                    S::Closed};
  for (S next : path) {
    INFO(connStateName(m.state()) << " -> " << connStateName(next));
    CHECK(m.transition(next));
    CHECK(m.state() == next);
  }
  CHECK(log.text().find("[alert]") == std::string::npos);
}

TEST_CASE("an illegal transition returns false, logs an alert and still moves", "[state]") {
  CapturedLog log;
  ConnStateMachine m;
  REQUIRE(m.transition(S::ReadingRequest));
  CHECK_FALSE(m.transition(S::SendingRequest));
  CHECK(m.state() == S::SendingRequest);
  // From the state it was forced into, the machine goes on as usual.
  CHECK(m.transition(S::ReadingResponse));
  CHECK(m.transition(S::Closing));
  CHECK(m.transition(S::Closed));
  CHECK_FALSE(m.transition(S::ReadingRequest));
  CHECK(m.state() == S::ReadingRequest);

  const std::string text = log.text();
  CHECK_THAT(
      text,
      Catch::Contains("[alert]") &&
          Catch::Contains("illegal connection state transition ReadingRequest -> SendingRequest") &&
          Catch::Contains("illegal connection state transition Closed -> "
                          "ReadingRequest"));
  CHECK(text.find("SendingRequest -> ReadingResponse") == std::string::npos);
}

}  // namespace lb::worker
