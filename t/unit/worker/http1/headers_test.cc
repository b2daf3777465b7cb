#include "worker/http1/headers.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace lb::worker::http1 {
namespace {

// Feeds a head the way llhttp does: every element in pieces of `piece` bytes.
class ArenaFixture {
 public:
  explicit ArenaFixture(uint32_t cap = 4096) : mem_(cap) { arena.reset(mem_.data(), cap); }

  bool url(std::string_view s, size_t piece = 1000) {
    return pieces(s, piece, &HeadArena::appendUrl);
  }
  bool field(std::string_view name, std::string_view value, size_t piece = 1000) {
    if (!pieces(name, piece, &HeadArena::appendName)) {
      return false;
    }
    arena.endName();
    return pieces(value, piece, &HeadArena::appendValue);
  }

  HeadArena arena;

 private:
  bool pieces(std::string_view s, size_t piece, bool (HeadArena::*append)(const char*, size_t)) {
    for (size_t i = 0; i < s.size(); i += piece) {
      size_t n = std::min(piece, s.size() - i);
      if (!(arena.*append)(s.data() + i, n)) {
        return false;
      }
    }
    return true;
  }

  std::vector<char> mem_;
};

TEST_CASE("HeadArena keeps url and fields fed in pieces of any size", "[http1]") {
  for (size_t piece : {1, 2, 3, 7, 1000}) {
    INFO("piece size " << piece);
    ArenaFixture f;
    REQUIRE(f.url("/path/to?x=1", piece));
    REQUIRE(f.field("Host", "example.com", piece));
    REQUIRE(f.field("X-Long-Header-Name", "a value with spaces", piece));
    REQUIRE(f.field("Accept", "*/*", piece));
    CHECK(f.arena.url() == "/path/to?x=1");
    REQUIRE(f.arena.count() == 3);
    CHECK(f.arena.name(0) == "Host");
    CHECK(f.arena.value(0) == "example.com");
    CHECK(f.arena.name(1) == "X-Long-Header-Name");
    CHECK(f.arena.value(1) == "a value with spaces");
    CHECK(f.arena.name(2) == "Accept");
    CHECK(f.arena.value(2) == "*/*");
    CHECK_FALSE(f.arena.overflowed());
  }
}

TEST_CASE("HeadArena find is case-insensitive, returns the first value, empty if absent",
          "[http1]") {
  ArenaFixture f;
  REQUIRE(f.field("X-Dup", "first"));
  REQUIRE(f.field("x-dup", "second"));
  REQUIRE(f.field("Empty", ""));
  CHECK(f.arena.find("X-DUP") == "first");
  CHECK(f.arena.find("x-dup") == "first");
  CHECK(f.arena.find("missing").empty());
  CHECK(f.arena.find("X-Du").empty());
  CHECK(f.arena.find("Empty").empty());
  CHECK(f.arena.count() == 3);
}

TEST_CASE("HeadArena refuses exactly what passes its capacity", "[http1]") {
  ArenaFixture f(16);
  REQUIRE(f.url("/0123456789"));  // 11 bytes
  REQUIRE(f.field("Ab", "cde"));  // 16: exactly full
  CHECK(f.arena.used() == 16);
  CHECK_FALSE(f.arena.overflowed());
  CHECK_FALSE(f.arena.appendValue("f", 1));
  CHECK(f.arena.overflowed());
  // What was there is intact.
  CHECK(f.arena.url() == "/0123456789");
  CHECK(f.arena.value(0) == "cde");

  ArenaFixture g(8);
  CHECK_FALSE(g.url("/123456789"));
  CHECK(g.arena.overflowed());
}

TEST_CASE("HeadArena refuses header number kMaxHeaders + 1, and reset forgets everything",
          "[http1]") {
  ArenaFixture f(64 * 1024);
  for (int i = 0; i < kMaxHeaders; ++i) {
    REQUIRE(f.field("H" + std::to_string(i), "v"));
  }
  CHECK(f.arena.count() == kMaxHeaders);
  CHECK_FALSE(f.arena.tooManyHeaders());
  CHECK_FALSE(f.arena.appendName("X", 1));
  CHECK(f.arena.tooManyHeaders());
  CHECK(f.arena.count() == kMaxHeaders);

  char mem[64];
  f.arena.reset(mem, sizeof(mem));
  CHECK(f.arena.count() == 0);
  CHECK(f.arena.used() == 0);
  CHECK(f.arena.url().empty());
  CHECK(f.arena.status().empty());
  CHECK_FALSE(f.arena.tooManyHeaders());
  CHECK_FALSE(f.arena.overflowed());
  REQUIRE(f.arena.appendStatus("O", 1));
  REQUIRE(f.arena.appendStatus("K", 1));
  CHECK(f.arena.status() == "OK");
}

TEST_CASE("equalsIgnoreCase folds ASCII letters only", "[http1]") {
  CHECK(equalsIgnoreCase("", ""));
  CHECK(equalsIgnoreCase("Content-Length", "content-length"));
  CHECK(equalsIgnoreCase("CONTENT-LENGTH", "content-length"));
  CHECK(equalsIgnoreCase("x-FoO", "X-fOo"));
  CHECK_FALSE(equalsIgnoreCase("host", "hos"));
  CHECK_FALSE(equalsIgnoreCase("", "a"));
  CHECK_FALSE(equalsIgnoreCase("host", "hosu"));
  // Pairs that differ only in bit 0x20 but are not letters must not match.
  CHECK_FALSE(equalsIgnoreCase("@", "`"));
  CHECK_FALSE(equalsIgnoreCase("[", "{"));
  CHECK_FALSE(equalsIgnoreCase("]", "}"));
  CHECK_FALSE(equalsIgnoreCase("^", "~"));
  CHECK_FALSE(equalsIgnoreCase("-", "\r"));
  CHECK_FALSE(equalsIgnoreCase("0", "\x10"));
  CHECK_FALSE(equalsIgnoreCase("\xC1", "\xE1"));  // Latin-1 'Á'/'á' are not folded
  CHECK(equalsIgnoreCase("\xE1", "\xE1"));
  CHECK(equalsIgnoreCase(std::string_view("a\0b", 3), std::string_view("A\0B", 3)));
  CHECK_FALSE(equalsIgnoreCase(std::string_view("a\0b", 3), std::string_view("a b", 3)));
}

TEST_CASE("isHopByHop names the connection-level and framing headers", "[http1]") {
  for (const char* n :
       {"Connection", "connection", "Keep-Alive", "TE", "te", "Trailer", "Upgrade",
        "Transfer-Encoding", "transfer-ENCODING", "Content-Length", "Proxy-Connection"}) {
    INFO(n);
    CHECK(isHopByHop(n));
  }
  for (const char* n : {"Host", "Content-Type", "Trailers", "Tea", "Connections", "Keep-Alive2",
                        "X-Connection", "Content-Lengths", "", "T", "Transfer-Encodin"}) {
    INFO(n);
    CHECK_FALSE(isHopByHop(n));
  }
}

TEST_CASE("isConnectionToken reads comma lists over every Connection header", "[http1]") {
  ArenaFixture f;
  REQUIRE(f.field("Host", "a"));
  REQUIRE(f.field("Connection", "close, X-Foo"));
  REQUIRE(f.field("X-Foo", "1"));
  REQUIRE(f.field("connection", " \tX-Bar\t ,,  , keep-alive "));
  CHECK(isConnectionToken(f.arena, "close"));
  CHECK(isConnectionToken(f.arena, "X-Foo"));
  CHECK(isConnectionToken(f.arena, "x-foo"));
  CHECK(isConnectionToken(f.arena, "X-BAR"));
  CHECK(isConnectionToken(f.arena, "Keep-Alive"));
  CHECK_FALSE(isConnectionToken(f.arena, "X-Fo"));
  CHECK_FALSE(isConnectionToken(f.arena, "X-Foo2"));
  CHECK_FALSE(isConnectionToken(f.arena, "Host"));
  CHECK_FALSE(isConnectionToken(f.arena, ""));
  CHECK(isConnectionToken(f.arena, "CLOSE"));
  CHECK_FALSE(isConnectionToken(f.arena, "upgrade"));

  ArenaFixture none;
  REQUIRE(none.field("X-Connection", "close"));
  CHECK_FALSE(isConnectionToken(none.arena, "close"));
}

TEST_CASE("connectionNamesFields: only tokens isHopByHop does not drop count", "[http1]") {
  ArenaFixture keep;
  REQUIRE(keep.field("Connection", "keep-alive"));
  REQUIRE(keep.field("connection", "Upgrade, TE"));
  CHECK_FALSE(connectionNamesFields(keep.arena));
  ArenaFixture close;
  REQUIRE(close.field("Connection", "close"));
  CHECK(connectionNamesFields(close.arena));  // a field called "close" must still go
  ArenaFixture named;
  REQUIRE(named.field("Connection", "keep-alive, X-Foo"));
  CHECK(connectionNamesFields(named.arena));
  ArenaFixture none;
  REQUIRE(none.field("X-Connection", "X-Foo"));
  CHECK_FALSE(connectionNamesFields(none.arena));
}

TEST_CASE("lastChunk carries the forwardable trailer fields, or is bare", "[http1]") {
  ArenaFixture f(200);
  REQUIRE(f.field("Host", "example.com"));
  int head_fields = f.arena.count();
  CHECK(lastChunk(f.arena, head_fields) == "0\r\n\r\n");
  REQUIRE(f.field("X-Checksum", "abc"));
  REQUIRE(f.field("Connection", "close"));
  REQUIRE(f.field("Content-Length", "3"));
  REQUIRE(f.field("Grpc-Status", "0"));
  CHECK(lastChunk(f.arena, head_fields) == "0\r\nX-Checksum: abc\r\nGrpc-Status: 0\r\n\r\n");
  CHECK(trailerLines(f.arena, head_fields) == "X-Checksum: abc\r\nGrpc-Status: 0\r\n");
  CHECK(trailerLines(f.arena, f.arena.count()).empty());
}

TEST_CASE("lastChunk without room for the trailers is bare", "[http1]") {
  ArenaFixture f(64);
  REQUIRE(f.field("X-Trailer", std::string(40, 'v')));
  CHECK(lastChunk(f.arena, 0) == "0\r\n\r\n");
}

TEST_CASE("validHost takes uri-host [\":\" port] and nothing else", "[http1]") {
  for (const char* ok :
       {"example.com", "example.com:8080", "example.com:", "127.0.0.1", "127.0.0.1:80", "[::1]",
        "[::1]:443", "[2001:db8::7]", "a_b-c~d.example", "xn--bcher-kva.example", "a,b",
        "example.com:65535", "[v1.fe80::a+en1]", "[::ffff:127.0.0.1]"}) {
    INFO(ok);
    CHECK(validHost(ok));
  }
  for (const char* bad : {"",
                          "a b",
                          "a\tb",
                          "user@example.com",
                          "example.com/path",
                          "example.com:80x",
                          "example.com:123456",
                          ":80",
                          "[::1",
                          "[]",
                          "[::1]x",
                          "[zz::1]",
                          "exa\"mple",
                          "example.com\\x",
                          "a?b",
                          "a#b",
                          "a%zz",
                          "a%4",
                          "example.com:65536",
                          "example.com:99999",
                          "[1]",
                          "[::1::2]",
                          "[fe80::1%eth0]",
                          "[fe80::1%25]",
                          "[fe80::1%25eth0]",  // a zone ID means nothing off the client's host
                          "%61dmin.example",   // DNS names need no %XX; routes match names as sent
                          "[v1.]",
                          "[vz.a]",
                          "a:b:80",
                          "[::1]:80:80",
                          "\xc3\xa9.example"}) {
    INFO(bad);
    CHECK_FALSE(validHost(bad));
  }
}

TEST_CASE("methodToken: llhttp stopped inside a token method that SP ends", "[http1]") {
  CHECK(methodToken("FOOBAR / HTTP/1.1\r\n", 0) == MethodToken::Yes);
  CHECK(methodToken("GETX / HTTP/1.1\r\n", 3) == MethodToken::Yes);  // llhttp took "GET"
  CHECK(methodToken("GE / HTTP/1.1\r\n", 2) == MethodToken::Yes);    // ... or a prefix
  CHECK(methodToken("get /", 0) == MethodToken::Yes);
  CHECK(methodToken("A!#$%&'*+-.^_`|~9 /", 0) == MethodToken::Yes);
  CHECK(methodToken(" GET / HTTP/1.1", 0) == MethodToken::No);  // no method at all
  CHECK(methodToken("\r\n / HTTP/1.1", 2) == MethodToken::No);  // the SP follows no token
  CHECK(methodToken("G(T / HTTP/1.1", 1) == MethodToken::No);
  CHECK(methodToken("GET\t/ HTTP/1.1", 3) == MethodToken::No);
  CHECK(methodToken("FOO/BAR / HTTP/1.1", 0) == MethodToken::No);
  CHECK(methodToken("FOO(", 0) == MethodToken::No);
  // The SP has not arrived: the next bytes decide.
  CHECK(methodToken("FOO", 0) == MethodToken::Undecided);
  CHECK(methodToken("TX", 1) == MethodToken::Undecided);  // "GE" came in an earlier read
}

TEST_CASE("onlyChunkedCoding: every Transfer-Encoding coding must be chunked", "[http1]") {
  ArenaFixture f(1024);
  REQUIRE(f.field("Host", "example.com"));
  CHECK(onlyChunkedCoding(f.arena));  // none at all
  REQUIRE(f.field("Transfer-Encoding", "Chunked"));
  CHECK(onlyChunkedCoding(f.arena));
  ArenaFixture g(1024);
  REQUIRE(g.field("Transfer-Encoding", "gzip, chunked"));
  CHECK_FALSE(onlyChunkedCoding(g.arena));
  ArenaFixture h(1024);
  REQUIRE(h.field("Transfer-Encoding", "identity"));
  REQUIRE(h.field("transfer-encoding", "chunked"));
  CHECK_FALSE(onlyChunkedCoding(h.arena));
}

TEST_CASE("followsObsFold: a continuation line is a fold, an empty value is not", "[http1]") {
  const std::string fold = "X: a\r\n b\r\n";
  const char* b = fold.data();
  CHECK_FALSE(followsObsFold(b, b + 3, 1, 'x'));  // "a"
  CHECK(followsObsFold(b, b + 7, 1, 'x'));        // " b" on the next line
  const std::string blank = "X: a\r\n \r\n";
  CHECK(followsObsFold(blank.data(), blank.data() + 7, 0, 'x'));  // a fold of whitespace alone
  // "X-Empty:" then CRLF: llhttp hands over a zero-length value just after the line's CRLF.
  const std::string empty = "X-Empty:\r\nY: 1\r\n";
  CHECK_FALSE(followsObsFold(empty.data(), empty.data() + 10, 0, 'x'));
  CHECK_FALSE(followsObsFold(empty.data(), empty.data(), 0, '\n'));  // at a read's start
  CHECK(followsObsFold(empty.data(), empty.data(), 1, '\n'));
}

TEST_CASE("keepAlive: close wins over keep-alive in either version", "[http1]") {
  const std::pair<const char*, bool> cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", false},
  };
  for (const auto& [text, want] : cases) {
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    // Paused at the end of the message, as lb's parser is: the flags still hold.
    settings.on_message_complete = [](llhttp_t*) { return static_cast<int>(HPE_PAUSED); };
    llhttp_t p;
    llhttp_init(&p, HTTP_REQUEST, &settings);
    std::string_view in = text;
    INFO(in);
    REQUIRE(llhttp_execute(&p, in.data(), in.size()) == HPE_PAUSED);
    CHECK(keepAlive(&p) == want);
  }
}

TEST_CASE("trimOws drops spaces and tabs at both ends only", "[http1]") {
  CHECK(trimOws(" \ta b\t ") == "a b");
  CHECK(trimOws("").empty());
  CHECK(trimOws(" \t ").empty());
}

}  // namespace
}  // namespace lb::worker::http1
