#include <google/protobuf/message.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "micro/stream.h"
#include "protocol/wire.h"

namespace micro {

MessageStream::MessageStream(Socket* socket, const Codec* codec, absl::StatusCode decode_error)
    : socket_(socket), codec_(codec), decode_error_(decode_error) {}

bool MessageStream::Read(google::protobuf::Message* message) {
  std::string data;
  if (!socket_->Recv(&data).ok()) return false;
  if (absl::Status status = codec_->Decode(data, message); !status.ok()) {
    // A message we cannot understand ends the call loudly on both sides.
    socket_->Cancel(absl::Status(decode_error_, status.message()));
    return false;
  }
  return true;
}

bool MessageStream::Write(const google::protobuf::Message& message) {
  std::string data;
  absl::Status status = codec_->Encode(message, &data);
  if (status.ok() && initial_metadata_of_ != nullptr) {
    Metadata initial = initial_metadata_of_->TakeInitialMetadata();
    initial_metadata_of_ = nullptr;
    if (size_t bytes = protocol::MetadataBytes(initial); bytes > max_initial_metadata_bytes_) {
      status = absl::ResourceExhaustedError(absl::StrCat("handler set initial metadata of ", bytes,
                                                         " bytes, over the server's limit of ",
                                                         max_initial_metadata_bytes_));
    } else if (!initial.empty()) {
      status = socket_->SetInitialMetadata(initial);
    }
  }
  if (!status.ok()) {
    socket_->Cancel(status);
    return false;
  }
  return socket_->Send(std::move(data)).ok();
}

absl::Status ReadSingleRequest(MessageStream* stream, google::protobuf::Message* request) {
  if (!stream->Read(request)) {
    return absl::InvalidArgumentError(
        "a server-streaming call needs exactly one request, got none");
  }
  std::string extra;
  absl::Status status = stream->socket()->Recv(&extra);
  if (status.ok()) {
    return absl::InvalidArgumentError(
        "a server-streaming call needs exactly one request, got more");
  }
  return absl::IsOutOfRange(status) ? absl::OkStatus() : status;
}

ClientStream::ClientStream(Client& client, ClientContext* context, const MethodInfo& method)
    : context_(context) {
  absl::StatusOr<std::unique_ptr<Socket>> socket = client.OpenStream(context, method);
  if (!socket.ok()) {
    open_status_ = socket.status();
    return;
  }
  socket_ = *std::move(socket);
  messages_ =
      std::make_unique<MessageStream>(socket_.get(), &client.codec(), absl::StatusCode::kInternal);
}

ClientStream::~ClientStream() = default;  // The socket cancels an unfinished stream.

bool ClientStream::Read(google::protobuf::Message* message) {
  if (messages_ == nullptr || !messages_->Read(message)) return false;
  if (!read_any_) {
    read_any_ = true;
    *context_->mutable_initial_metadata() = protocol::ExtractMetadata(socket_->InitialHeaders());
  }
  return true;
}

bool ClientStream::Write(const google::protobuf::Message& message) {
  return messages_ != nullptr && messages_->Write(message);
}

bool ClientStream::WritesDone() { return socket_ != nullptr && socket_->CloseSend().ok(); }

void ClientStream::TryCancel() {
  if (socket_ != nullptr) socket_->Cancel(absl::CancelledError("cancelled by the client"));
}

absl::Status ClientStream::Finish() {
  if (socket_ == nullptr) return open_status_;
  absl::Status status = socket_->Finish();
  *context_->mutable_response_metadata() = protocol::ExtractMetadata(socket_->TrailingHeaders());
  return status;
}

absl::Status ClientStream::FinishWithResponse(google::protobuf::Message* response) {
  bool got_response = Read(response);
  absl::Status status = Finish();
  if (status.ok() && !got_response) {
    return absl::InternalError("the server ended the call without a response");
  }
  return status;
}

}  // namespace micro
