#include "support/process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace micro::testing {
absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::StartAndWaitReady(
    const std::vector<std::string>& argv, absl::Duration ready_timeout) {
  const int64_t ready_timeout_ms = absl::ToInt64Milliseconds(ready_timeout);
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(pipe_fds[1], STDOUT_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  std::unique_ptr<ChildProcess> child(new ChildProcess(pid, pipe_fds[0]));
  std::string output;
  pollfd poll_fd{pipe_fds[0], POLLIN, 0};
  for (int waited = 0; waited < ready_timeout_ms && output.find("ready\n") == std::string::npos;
       waited += 50) {
    if (poll(&poll_fd, 1, 50) <= 0) continue;
    char buffer[256];
    ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n <= 0) return absl::UnavailableError(absl::StrCat(argv[0], " exited before ready"));
    output.append(buffer, n);
  }
  if (output.find("ready\n") == std::string::npos) {
    return absl::DeadlineExceededError(absl::StrCat(argv[0], " did not print ready in time"));
  }
  return child;
}

ChildProcess::~ChildProcess() {
  Kill();
  close(stdout_fd_);
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void ChildProcess::Terminate(absl::Duration grace) {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (absl::Time give_up = absl::Now() + grace; absl::Now() < give_up;) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  Kill();
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect to port ", port, ": ", strerror(errno)));
  }
  std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  if (write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("write failed");
  }
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) response.append(buffer, n);
  close(fd);
  size_t body = response.find("\r\n\r\n");
  if (body == std::string::npos) return absl::UnavailableError("no HTTP response");
  return response.substr(body + 4);
}

absl::StatusOr<int> SubscriptionCount(int monitor_port) {
  absl::StatusOr<std::string> page = HttpGet(monitor_port, "/subsz");
  if (!page.ok()) return page.status();
  const std::string key = "\"num_subscriptions\":";
  size_t at = page->find(key);
  if (at == std::string::npos) return absl::InternalError(absl::StrCat("no ", key, " in ", *page));
  size_t start = page->find_first_of("0123456789", at + key.size());
  size_t end = page->find_first_not_of("0123456789", start);
  int count = 0;
  if (!absl::SimpleAtoi(page->substr(start, end - start), &count)) {
    return absl::InternalError("bad num_subscriptions");
  }
  return count;
}

int64_t PeakResidentKib(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    int64_t kib = 0;
    if (line.rfind("VmHWM:", 0) == 0 &&
        absl::SimpleAtoi(
            absl::StripAsciiWhitespace(absl::StripSuffix(absl::string_view(line).substr(6), "kB")),
            &kib)) {
      return kib;
    }
  }
  return -1;
}

int ThreadCount() {
  int count = 0;
  if (DIR* dir = opendir("/proc/self/task"); dir != nullptr) {
    while (dirent* entry = readdir(dir)) count += entry->d_name[0] != '.';
    closedir(dir);
  }
  return count;
}

}  // namespace micro::testing
