// Connections to nats-servers that demand credentials or TLS: good
// credentials work end to end, wrong ones fail at connect with a clear status.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "micro/transport.h"
#include "support/nats_server.h"
#include "util/notification.h"

namespace micro {
namespace {

using ::micro::testing::NatsServer;

// A request/reply through the server proves the connection works.
void ExpectRoundTrip(Transport& transport) {
  auto subscription = transport.Subscribe("security.echo", "", [&](WireMessage request) {
    transport.Publish(WireMessage{request.reply, "", {}, request.data}).IgnoreError();
  });
  ASSERT_TRUE(subscription.ok()) << subscription.status();
  internal::Notification done;
  absl::StatusOr<WireMessage> reply;
  transport.Request(WireMessage{"security.echo", "", {}, "hello"}, absl::Now() + absl::Seconds(5),
                    [&](absl::StatusOr<WireMessage> r) {
                      reply = std::move(r);
                      done.Notify();
                    });
  done.WaitForNotification();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->data, "hello");
}

absl::StatusOr<std::shared_ptr<Transport>> Connect(const NatsServer& nats, TransportOptions options,
                                                   const std::string& scheme = "nats") {
  options.url = absl::StrCat(scheme, "://127.0.0.1:", nats.port());
  options.connect_timeout = absl::Seconds(2);
  return ConnectNats(options);
}

TEST(Security, UserAndPassword) {
  auto nats = NatsServer::Start({"--user", "alice", "--pass", "s3cret"});
  ASSERT_TRUE(nats.ok()) << nats.status();
  TransportOptions good;
  good.user = "alice";
  good.password = "s3cret";
  auto transport = Connect(**nats, good);
  ASSERT_TRUE(transport.ok()) << transport.status();
  ExpectRoundTrip(**transport);

  TransportOptions wrong = good;
  wrong.password = "guess";
  absl::Status status = Connect(**nats, wrong).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  status = Connect(**nats, {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
}

TEST(Security, Token) {
  auto nats = NatsServer::Start({"--auth", "t0ken"});
  ASSERT_TRUE(nats.ok()) << nats.status();
  TransportOptions good;
  good.token = "t0ken";
  auto transport = Connect(**nats, good);
  ASSERT_TRUE(transport.ok()) << transport.status();
  ExpectRoundTrip(**transport);

  TransportOptions wrong;
  wrong.token = "nope";
  absl::Status status = Connect(**nats, wrong).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
}

// Certificates made for the test with openssl: a CA, a server certificate
// for 127.0.0.1/localhost, a client certificate, and an unrelated CA.
class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir_template[] = "/tmp/micro-tls-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    std::ofstream(dir_ + "/server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    std::ofstream(dir_ + "/client.ext") << "extendedKeyUsage=clientAuth\n";
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for (const std::string& command :
         {absl::StrCat("openssl req -x509 ", key,
                       " -keyout ca.key -out ca.pem -days 2 "
                       "-subj /CN=micro-test-ca"),
          absl::StrCat("openssl req -x509 ", key,
                       " -keyout other.key -out other.pem -days 2 "
                       "-subj /CN=micro-other-ca"),
          absl::StrCat("openssl req ", key,
                       " -keyout server.key -out server.csr "
                       "-subj /CN=localhost"),
          std::string("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
                      "-CAcreateserial -out server.pem -days 2 -extfile server.ext"),
          absl::StrCat("openssl req ", key,
                       " -keyout client.key -out client.csr "
                       "-subj /CN=client"),
          std::string("openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
                      "-CAcreateserial -out client.pem -days 2 -extfile client.ext")}) {
      std::string quiet = absl::StrCat("cd ", dir_, " && ", command, " >/dev/null 2>&1");
      ASSERT_EQ(std::system(quiet.c_str()), 0) << command;
    }
  }

  static void TearDownTestSuite() { std::system(absl::StrCat("rm -rf ", dir_).c_str()); }

  static std::string File(const std::string& name) { return absl::StrCat(dir_, "/", name); }

  // A server that demands TLS and a client certificate signed by the CA.
  static absl::StatusOr<std::unique_ptr<NatsServer>> StartTlsServer() {
    return NatsServer::Start({"--tls", "--tlscert", File("server.pem"), "--tlskey",
                              File("server.key"), "--tlscacert", File("ca.pem"), "--tlsverify"});
  }

  static TransportOptions GoodTls() {
    TransportOptions options;
    options.tls.enabled = true;
    options.tls.ca_file = File("ca.pem");
    options.tls.cert_file = File("client.pem");
    options.tls.key_file = File("client.key");
    return options;
  }

  static std::string dir_;
};

std::string TlsTest::dir_;

TEST_F(TlsTest, GoodCertificatesConnect) {
  auto nats = StartTlsServer();
  ASSERT_TRUE(nats.ok()) << nats.status();
  auto transport = Connect(**nats, GoodTls(), "tls");
  ASSERT_TRUE(transport.ok()) << transport.status();
  ExpectRoundTrip(**transport);
}

TEST_F(TlsTest, MissingClientCertificateIsRejected) {
  auto nats = StartTlsServer();
  ASSERT_TRUE(nats.ok()) << nats.status();
  TransportOptions options = GoodTls();
  options.tls.cert_file.clear();
  options.tls.key_file.clear();
  // The server just closes the connection; nats.c cannot tell why.
  absl::Status status = Connect(**nats, options, "tls").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

TEST_F(TlsTest, ServerSignedByAnotherCaIsRejected) {
  auto nats = StartTlsServer();
  ASSERT_TRUE(nats.ok()) << nats.status();
  TransportOptions options = GoodTls();
  options.tls.ca_file = File("other.pem");
  absl::Status status = Connect(**nats, options, "tls").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_NE(status.message().find("SSL"), absl::string_view::npos) << status;
}

TEST_F(TlsTest, UnreadableCertificateFileIsInvalidArgument) {
  auto nats = StartTlsServer();
  ASSERT_TRUE(nats.ok()) << nats.status();
  TransportOptions options = GoodTls();
  options.tls.ca_file = File("missing.pem");
  absl::Status status = Connect(**nats, options, "tls").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

}  // namespace
}  // namespace micro
