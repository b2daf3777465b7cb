#include "e2e/harness/pki.h"

#include <catch2/catch.hpp>

#include "e2e/harness/e2e.h"

namespace lb::e2e {

void Pki::run(const std::vector<std::string>& argv) {
  auto r = runCommand(argv, 30s);
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
}

void Pki::ca(const std::string& name, const std::string& cn, bool rsa) {
  std::vector<std::string> key =
      rsa ? std::vector<std::string>{"-newkey", "rsa:2048"}
          : std::vector<std::string>{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"};
  std::vector<std::string> argv = {"openssl", "req", "-x509"};
  argv.insert(argv.end(), key.begin(), key.end());
  argv.insert(argv.end(), {"-nodes", "-keyout", path(name + ".key"), "-out", path(name + ".pem"),
                           "-days", "2", "-subj", "/CN=" + cn});
  run(argv);
}

void Pki::make(const std::string& name, const std::string& ca, const std::string& cn,
               const std::string& san, bool rsa) {
  if (rsa) {
    run({"openssl", "genrsa", "-out", path(name + ".key"), "2048"});
  } else {
    run({"openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out",
         path(name + ".key")});
  }
  run({"openssl", "req", "-new", "-key", path(name + ".key"), "-out", path(name + ".csr"), "-subj",
       "/CN=" + cn + "/O=lb tests"});
  std::vector<std::string> sign = {"openssl",
                                   "x509",
                                   "-req",
                                   "-in",
                                   path(name + ".csr"),
                                   "-CA",
                                   path(ca + ".pem"),
                                   "-CAkey",
                                   path(ca + ".key"),
                                   "-CAcreateserial",
                                   "-out",
                                   path(name + ".pem"),
                                   "-days",
                                   "2"};
  if (!san.empty()) {
    writeFile(path(name + ".ext"), "subjectAltName=" + san + "\n");
    sign.push_back("-extfile");
    sign.push_back(path(name + ".ext"));
  }
  run(sign);
}

std::string Pki::cert(const std::string& name, const std::string& extra) const {
  return "{ cert = \"" + path(name + ".pem") + "\"; key = \"" + path(name + ".key") + "\";" +
         extra + " }";
}

}  // namespace lb::e2e
