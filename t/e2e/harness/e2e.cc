#include "e2e/harness/e2e.h"

#include <sstream>

namespace lb::e2e {

std::string poolBlock(const std::string& name, const std::vector<std::string>& backends,
                      const std::string& extra) {
  std::string out = "{ name = \"" + name + "\"; backends = (";
  for (size_t i = 0; i < backends.size(); ++i) {
    const std::string& b = backends[i];
    size_t semi = b.find(';');
    std::string address = b.substr(0, semi);
    std::string rest = semi == std::string::npos ? "" : b.substr(semi);
    out += (i ? ", " : " ") + std::string("{ address = \"") + address + "\"" + rest + "; }";
  }
  out += " ); " + extra + " }";
  return out;
}

std::string singlePoolConfig(const std::vector<std::string>& backends,
                             const std::string& pool_extra, const std::string& listener_extra,
                             const std::string& top) {
  return top + "\nlisteners = ( { name = \"web\"; listen = \"127.0.0.1:@PORT_0@\"; " +
         "protocol = \"http\"; pool = \"p\"; " + listener_extra + " } );\npools = ( " +
         poolBlock("p", backends, pool_extra) + " );\n";
}

std::string jsonField(const std::string& json, const std::string& address,
                      const std::string& field) {
  std::istringstream in(json);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"address\": \"" + address + "\"") == std::string::npos) {
      continue;
    }
    const std::string name = "\"" + field + "\": ";
    size_t at = line.find(name);
    if (at == std::string::npos) {
      return "";
    }
    at += name.size();
    return line.substr(at, line.find_first_of(",}", at) - at);
  }
  return "";
}

int occurrences(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

std::string describe(const std::optional<HttpResponse>& r, const std::string& error) {
  if (!r) {
    return "no response: " + error;
  }
  std::string body = r->body.data.substr(0, 300);
  return "response: " + r->head + "[body " + std::to_string(r->body.length()) + " bytes] " + body;
}

}  // namespace lb::e2e
