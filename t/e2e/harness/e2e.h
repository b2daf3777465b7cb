#pragma once

// What every e2e test file includes: Catch2, the harness, and small helpers for writing
// configs and checking responses.

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

#include "e2e/harness/checksum.h"
#include "e2e/harness/fake_upstream.h"
#include "e2e/harness/http_client.h"
#include "e2e/harness/lb_instance.h"
#include "e2e/harness/net.h"
#include "e2e/harness/process.h"
#include "e2e/harness/wait.h"

namespace lb::e2e {

// A pools = ( ... ) element: `name`, round robin unless `extra` says otherwise, one backend per
// address ("127.0.0.1:port" or "127.0.0.1:port; weight = 2" — the text after the address goes
// into that backend's group verbatim).
std::string poolBlock(const std::string& name, const std::vector<std::string>& backends,
                      const std::string& extra = "");

// A whole config body with one HTTP listener on @PORT_0@ sending everything to pool "p" over
// `backends`; `pool_extra` goes into the pool, `listener_extra` into the listener, `top` before
// the listeners (e.g. an http = { ... } group).
std::string singlePoolConfig(const std::vector<std::string>& backends,
                             const std::string& pool_extra = "",
                             const std::string& listener_extra = "", const std::string& top = "");

// A field of backend `address` in `lb backends --json` (one object per line), as written:
// "\"draining\"", "3", "true". Empty when the backend or the field is absent.
std::string jsonField(const std::string& json, const std::string& address,
                      const std::string& field);

// "status 200, headers ..., body ..." or the client's error, for INFO.
std::string describe(const std::optional<HttpResponse>& r, const std::string& error = "");

// How many times `what` occurs in `text` (log lines, say).
int occurrences(const std::string& text, const std::string& what);

}  // namespace lb::e2e
