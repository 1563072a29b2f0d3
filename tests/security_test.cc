// Connections to nats-servers that demand credentials or TLS: good
// credentials work end to end, wrong ones fail at connect with a clear status.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "micro/transport.h"
#include "support/nats_jwt.h"
#include "support/nats_server.h"
#include "support/nkeys.h"
#include "util/notification.h"

namespace micro {
namespace {

using ::micro::testing::NatsServer;
using ::micro::testing::NKey;
using ::micro::testing::NKeyType;
using ::micro::testing::RunOpenssl;

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

// Files made for one test suite (certificates, keys, credentials) in a
// directory removed after it.
class FilesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir_template[] = "/tmp/micro-security-XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
  }

  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  static std::string File(const std::string& name) { return absl::StrCat(dir_, "/", name); }

  // Writes `text` to the file `name`; its path.
  static std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(File(name)) << text;
    return File(name);
  }

  static std::string dir_;
};

std::string FilesTest::dir_;

// Certificates made for the test with openssl: a CA, a server certificate
// for 127.0.0.1/localhost, a client certificate, and an unrelated CA.
class TlsTest : public FilesTest {
 protected:
  static void SetUpTestSuite() {
    FilesTest::SetUpTestSuite();
    Write("server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    Write("client.ext", "extendedKeyUsage=clientAuth\n");
    const std::vector<std::string> key = {"-newkey", "ec", "-pkeyopt",
                                          "ec_paramgen_curve:prime256v1", "-nodes"};
    // A self-signed certificate (a CA) or a request for one, with its key.
    auto request = [&](const std::string& name, const std::string& subject, bool self_signed) {
      std::vector<std::string> args = {"req"};
      if (self_signed) args.insert(args.end(), {"-x509", "-days", "2"});
      args.insert(args.end(), key.begin(), key.end());
      args.insert(args.end(), {"-keyout", File(name + ".key"), "-out",
                               File(name + (self_signed ? ".pem" : ".csr")), "-subj", subject});
      return args;
    };
    // The certificate of `name`'s request, signed by the CA.
    auto sign = [&](const std::string& name) {
      std::vector<std::string> args = {
          "x509",  "-req", "-in",      File(name + ".csr"), "-out", File(name + ".pem"),
          "-days", "2",    "-extfile", File(name + ".ext")};
      args.insert(args.end(), {"-CA", File("ca.pem"), "-CAkey", File("ca.key"), "-CAcreateserial"});
      return args;
    };
    for (const std::vector<std::string>& args :
         {request("ca", "/CN=micro-test-ca", true), request("other", "/CN=micro-other-ca", true),
          request("server", "/CN=localhost", false), sign("server"),
          request("client", "/CN=client", false), sign("client")}) {
      absl::StatusOr<std::string> made = RunOpenssl(args);
      ASSERT_TRUE(made.ok()) << made.status();
    }
  }

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
};

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

// The user key of the NATS documentation's NKey example.
constexpr char kDocSeedHex[] = "29497ba00f41dd45936b4cc4bda1decb67c128e69fb3d490ee820daf7c318c0a";
constexpr char kDocSeed[] = "SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY";
constexpr char kDocPublicKey[] = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4";

TEST(SecurityNKeyEncoding, Base32IsRfc4648WithoutPadding) {
  // RFC 4648, section 10, less the padding.
  EXPECT_EQ(testing::Base32(""), "");
  EXPECT_EQ(testing::Base32("f"), "MY");
  EXPECT_EQ(testing::Base32("fo"), "MZXQ");
  EXPECT_EQ(testing::Base32("foo"), "MZXW6");
  EXPECT_EQ(testing::Base32("foob"), "MZXW6YQ");
  EXPECT_EQ(testing::Base32("fooba"), "MZXW6YTB");
  EXPECT_EQ(testing::Base32("foobar"), "MZXW6YTBOI");
}

TEST(SecurityNKeyEncoding, DocumentationExampleEncodesAsPublished) {
  auto key = NKey::FromSeed(NKeyType::kUser, absl::HexStringToBytes(kDocSeedHex));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->Seed(), kDocSeed);
  EXPECT_EQ(key->PublicKey(), kDocPublicKey);
}

TEST(SecurityNKeyEncoding, UserClaimsAreWhatNscWrites) {
  // The claims of a user JWT nsc wrote (published in a how-to), whose ID
  // ("jti") nats-io/jwt derived from the other standard claims.
  auto claims = testing::UserClaims("ABVN73GSBXCC7U6KRAFQWBEVQZVPHPMUHX5D5QK6PPY2FSNK5KQHOMV4",
                                    "UCOVSO2YWZL24IFDSHZ3DDYO2U3EWUIRWRVD2UBSMDCVKPHFQXW25DDX",
                                    "usera", absl::FromUnixSeconds(1641183344));
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(*claims,
            R"({"jti":"NP4I3UG2SRFOXSWT2EAK5RZEXEAW6C3OR4KA3HUVG6C7ZDMIZKBQ","iat":1641183344,)"
            R"("iss":"ABVN73GSBXCC7U6KRAFQWBEVQZVPHPMUHX5D5QK6PPY2FSNK5KQHOMV4","name":"usera",)"
            R"("sub":"UCOVSO2YWZL24IFDSHZ3DDYO2U3EWUIRWRVD2UBSMDCVKPHFQXW25DDX",)"
            R"("nats":{"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1,"type":"user",)"
            R"("version":2}})");
}

// A nats-server that knows one NKey user, whose seed is in "user.nk".
class SecurityNKeyTest : public FilesTest {
 protected:
  static void SetUpTestSuite() {
    FilesTest::SetUpTestSuite();
    absl::StatusOr<NKey> user = NKey::Generate(NKeyType::kUser);
    ASSERT_TRUE(user.ok()) << user.status();
    user_.emplace(*std::move(user));
    Write("user.nk", user_->Seed() + "\n");
    Write("nkey.conf",
          absl::StrCat("authorization { users = [ { nkey: \"", user_->PublicKey(), "\" } ] }\n"));
  }

  static void TearDownTestSuite() {
    user_.reset();
    FilesTest::TearDownTestSuite();
  }

  void SetUp() override {
    auto nats = NatsServer::Start({"-c", File("nkey.conf")});
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
  }

  static TransportOptions NKeyOptions(const std::string& public_key, const std::string& seed_file) {
    TransportOptions options;
    options.nkey_public_key = public_key;
    options.nkey_seed_file = seed_file;
    return options;
  }

  static std::optional<NKey> user_;
  std::unique_ptr<NatsServer> nats_;
};

std::optional<NKey> SecurityNKeyTest::user_;

TEST_F(SecurityNKeyTest, RightSeedConnects) {
  auto transport = Connect(*nats_, NKeyOptions(user_->PublicKey(), File("user.nk")));
  ASSERT_TRUE(transport.ok()) << transport.status();
  ExpectRoundTrip(**transport);
}

TEST_F(SecurityNKeyTest, OtherKeyIsUnauthenticated) {
  absl::StatusOr<NKey> other = NKey::Generate(NKeyType::kUser);
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string other_seed = Write("other.nk", other->Seed() + "\n");
  // A user the server does not know.
  absl::Status status = Connect(*nats_, NKeyOptions(other->PublicKey(), other_seed)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  // The known user, but the nonce signed with another seed.
  status = Connect(*nats_, NKeyOptions(user_->PublicKey(), other_seed)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  // No credentials at all.
  status = Connect(*nats_, {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
}

TEST_F(SecurityNKeyTest, UnreadableSeedFileIsInvalidArgument) {
  absl::Status status =
      Connect(*nats_, NKeyOptions(user_->PublicKey(), File("missing.nk"))).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("missing.nk"), absl::string_view::npos) << status;
}

TEST_F(SecurityNKeyTest, GarbledSeedFileIsInvalidArgument) {
  const std::string garbled = Write("garbled.nk", "SUNOTASEED\n");
  absl::Status status = Connect(*nats_, NKeyOptions(user_->PublicKey(), garbled)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

// A nats-server in operator mode that trusts one operator, which signed one
// account (preloaded into its memory resolver), and the credentials of a
// user of that account ("user.creds") and of a user of an account the
// operator never signed ("stranger.creds").
class SecurityCredentialsTest : public FilesTest {
 protected:
  struct Credentials {
    std::string jwt;
    std::string seed;
  };

  static void SetUpTestSuite() {
    FilesTest::SetUpTestSuite();
    absl::StatusOr<NKey> operator_key = NKey::Generate(NKeyType::kOperator);
    ASSERT_TRUE(operator_key.ok()) << operator_key.status();
    absl::StatusOr<NKey> account = NKey::Generate(NKeyType::kAccount);
    ASSERT_TRUE(account.ok()) << account.status();
    absl::StatusOr<std::string> operator_jwt = testing::OperatorJwt(*operator_key);
    ASSERT_TRUE(operator_jwt.ok()) << operator_jwt.status();
    absl::StatusOr<std::string> account_jwt =
        testing::AccountJwt(*operator_key, account->PublicKey());
    ASSERT_TRUE(account_jwt.ok()) << account_jwt.status();
    Write("operator.jwt", *operator_jwt);
    Write("operator.conf", absl::StrCat("operator: \"", File("operator.jwt"),
                                        "\"\nresolver: MEMORY\n", "resolver_preload: {\n  ",
                                        account->PublicKey(), ": \"", *account_jwt, "\"\n}\n"));
    ASSERT_NO_FATAL_FAILURE(MakeUser(*account, &user_));
    Write("user.creds", testing::FormatCredentials(user_.jwt, user_.seed));
    absl::StatusOr<NKey> stranger_account = NKey::Generate(NKeyType::kAccount);
    ASSERT_TRUE(stranger_account.ok()) << stranger_account.status();
    Credentials stranger;
    ASSERT_NO_FATAL_FAILURE(MakeUser(*stranger_account, &stranger));
    Write("stranger.creds", testing::FormatCredentials(stranger.jwt, stranger.seed));
  }

  // A new user of `account`.
  static void MakeUser(const NKey& account, Credentials* user) {
    absl::StatusOr<NKey> key = NKey::Generate(NKeyType::kUser);
    ASSERT_TRUE(key.ok()) << key.status();
    absl::StatusOr<std::string> jwt = testing::UserJwt(account, key->PublicKey());
    ASSERT_TRUE(jwt.ok()) << jwt.status();
    *user = {*jwt, key->Seed()};
  }

  void SetUp() override {
    auto nats = NatsServer::Start({"-c", File("operator.conf")});
    ASSERT_TRUE(nats.ok()) << nats.status();
    nats_ = *std::move(nats);
  }

  absl::Status ConnectWith(const std::string& credentials_file) {
    TransportOptions options;
    options.credentials_file = credentials_file;
    return Connect(*nats_, options).status();
  }

  static Credentials user_;
  std::unique_ptr<NatsServer> nats_;
};

SecurityCredentialsTest::Credentials SecurityCredentialsTest::user_;

TEST_F(SecurityCredentialsTest, GoodCredentialsConnect) {
  TransportOptions options;
  options.credentials_file = File("user.creds");
  auto transport = Connect(*nats_, options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  ExpectRoundTrip(**transport);
}

TEST_F(SecurityCredentialsTest, UserOfAnotherAccountIsUnauthenticated) {
  absl::Status status = ConnectWith(File("stranger.creds"));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  status = Connect(*nats_, {}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
}

TEST_F(SecurityCredentialsTest, BadCredentialsFilesAreInvalidArgument) {
  absl::Status status = ConnectWith(File("missing.creds"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("missing.creds"), absl::string_view::npos) << status;

  const std::string good = testing::FormatCredentials(user_.jwt, user_.seed);
  status = ConnectWith(Write("truncated.creds", good.substr(0, good.size() / 2)));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("truncated.creds"), absl::string_view::npos) << status;

  std::string seed = user_.seed;
  seed[20] = seed[20] == 'A' ? 'B' : 'A';  // The checksum no longer matches.
  status = ConnectWith(Write("bad-seed.creds", testing::FormatCredentials(user_.jwt, seed)));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("bad-seed.creds"), absl::string_view::npos) << status;
}

TEST_F(SecurityCredentialsTest, GarbledJwtIsUnauthenticated) {
  // nats.c sends the JWT as it is; only the server can tell it is no JWT.
  const std::string garbled = user_.jwt.substr(0, user_.jwt.size() - 10);
  absl::Status status =
      ConnectWith(Write("garbled-jwt.creds", testing::FormatCredentials(garbled, user_.seed)));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
}

}  // namespace
}  // namespace micro
