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
namespace {

// Forks `argv` with each of the given fds (-1: leave as is) as its stdin,
// stdout and stderr; the child dies with the test process.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, int in_fd, int out_fd, int err_fd,
                            const std::vector<int>& close_in_child) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (in_fd >= 0) dup2(in_fd, STDIN_FILENO);
    if (out_fd >= 0) dup2(out_fd, STDOUT_FILENO);
    if (err_fd >= 0) dup2(err_fd, STDERR_FILENO);
    for (int fd : close_in_child) close(fd);
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

// Reads what is ready on `fd` within `wait_ms`; false at end of file.
bool ReadSome(int fd, int wait_ms, std::string* into) {
  pollfd poll_fd{fd, POLLIN, 0};
  if (poll(&poll_fd, 1, wait_ms) <= 0) return true;
  char buffer[4096];
  ssize_t n = read(fd, buffer, sizeof(buffer));
  if (n <= 0) return false;
  into->append(buffer, n);
  return true;
}

int ExitCode(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::StartAndWaitReady(
    const std::vector<std::string>& argv, absl::Duration timeout) {
  return StartAndWaitFor(argv, "ready\n", timeout);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::StartAndWaitFor(
    const std::vector<std::string>& argv, std::string_view marker, absl::Duration timeout) {
  const int64_t timeout_ms = absl::ToInt64Milliseconds(timeout);
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  absl::StatusOr<pid_t> pid = Spawn(argv, -1, pipe_fds[1], -1, {pipe_fds[0], pipe_fds[1]});
  close(pipe_fds[1]);
  if (!pid.ok()) {
    close(pipe_fds[0]);
    return pid.status();
  }
  std::unique_ptr<ChildProcess> child(new ChildProcess(*pid, pipe_fds[0]));
  for (int waited = 0; waited < timeout_ms && child->output_.find(marker) == std::string::npos;
       waited += 50) {
    if (!ReadSome(pipe_fds[0], 50, &child->output_)) {
      return absl::UnavailableError(
          absl::StrCat(argv[0], " exited before printing the marker: ", child->output_));
    }
  }
  if (child->output_.find(marker) == std::string::npos) {
    return absl::DeadlineExceededError(absl::StrCat(argv[0], " did not print the marker in time"));
  }
  return child;
}

absl::StatusOr<int> ChildProcess::Terminate(absl::Duration grace) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  kill(pid_, SIGTERM);
  absl::Time give_up = absl::Now() + grace;
  while (absl::Now() < give_up && ReadSome(stdout_fd_, 50, &output_)) {
  }
  while (absl::Now() < give_up) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return ExitCode(status);
    }
    usleep(10'000);
  }
  Kill();
  return absl::DeadlineExceededError(
      absl::StrCat("did not exit within ", absl::FormatDuration(grace), " of SIGTERM"));
}

absl::StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                         const std::string& input, absl::Duration timeout) {
  int in[2], out[2], err[2];
  if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  absl::StatusOr<pid_t> pid =
      Spawn(argv, in[0], out[1], err[1], {in[0], in[1], out[0], out[1], err[0], err[1]});
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (pid.ok()) {
    // Fits in the pipe's buffer, so this does not wait for the child.
    if (write(in[1], input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
      kill(*pid, SIGKILL);
    }
  }
  close(in[1]);
  ProcessResult result;
  absl::Time deadline = absl::Now() + timeout;
  bool out_open = pid.ok(), err_open = pid.ok();
  while ((out_open || err_open) && absl::Now() < deadline) {
    if (out_open) out_open = ReadSome(out[0], 5, &result.out);
    if (err_open) err_open = ReadSome(err[0], 5, &result.err);
  }
  close(out[0]);
  close(err[0]);
  if (!pid.ok()) return pid.status();
  bool timed_out = out_open || err_open;
  if (timed_out) kill(*pid, SIGKILL);
  int status = 0;
  waitpid(*pid, &status, 0);
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " still ran after ", absl::FormatDuration(timeout),
                     "; stdout: ", result.out, " stderr: ", result.err));
  }
  result.exit_code = ExitCode(status);
  return result;
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
