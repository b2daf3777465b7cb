#pragma once

// Throwaway certificates for TLS tests, made with the openssl command in a test's directory:
// CAs and certificates they sign (RSA or ECDSA), and the lb.conf entry of a certificate.

#include <string>
#include <vector>

namespace lb::e2e {

class Pki {
 public:
  explicit Pki(std::string dir) : dir_(std::move(dir)) {}

  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  // A self-signed CA: <name>.pem and <name>.key.
  void ca(const std::string& name, const std::string& cn, bool rsa = false);
  // A certificate signed by CA `ca`: <name>.pem and <name>.key, subjectAltName `san` ("" for
  // none, e.g. a client certificate).
  void make(const std::string& name, const std::string& ca, const std::string& cn,
            const std::string& san, bool rsa = false);
  // "{ cert = ...; key = ...; <extra> }" for a listener's certificates list.
  std::string cert(const std::string& name, const std::string& extra = "") const;
  // Runs an openssl command; the test fails (REQUIRE) when it does.
  void run(const std::vector<std::string>& argv);

 private:
  std::string dir_;
};

}  // namespace lb::e2e
