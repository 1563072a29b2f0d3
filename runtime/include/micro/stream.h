// Typed streams, shaped like gRPC's synchronous streaming API: generated
// stubs return ClientReader / ClientWriter / ClientReaderWriter, and
// generated handlers receive ServerReader / ServerWriter / ServerReaderWriter.
// They encode messages onto a transport Socket (docs/PROTOCOL.md, "Streams").
//
// Read and Write return false once the stream can carry no more messages:
// at its normal end, or because it failed. The client then learns why from
// Finish; a server handler simply returns its status. Reading and writing
// may happen on two threads at once; two concurrent Writes (or Reads) may not.
#ifndef MICRO_STREAM_H_
#define MICRO_STREAM_H_

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "micro/client.h"
#include "micro/codec.h"
#include "micro/context.h"
#include "micro/service.h"
#include "micro/transport.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace micro {

// Messages over a socket, untyped; the typed classes below wrap it.
class MessageStream {
 public:
  // `decode_error` is the status a message that does not decode cancels the
  // stream with: INVALID_ARGUMENT on a server (the client sent it), INTERNAL
  // on a client.
  MessageStream(Socket* socket, const Codec* codec, absl::StatusCode decode_error);

  bool Read(google::protobuf::Message* message);
  bool Write(const google::protobuf::Message& message);
  Socket* socket() const { return socket_; }

  // Server side: the first Write sends the initial metadata `context` has
  // by then; more than `max_bytes` of it cancels the stream with
  // RESOURCE_EXHAUSTED.
  void SendInitialMetadataOf(ServerContext* context, size_t max_bytes) {
    initial_metadata_of_ = context;
    max_initial_metadata_bytes_ = max_bytes;
  }

 private:
  Socket* socket_;
  const Codec* codec_;
  absl::StatusCode decode_error_;
  ServerContext* initial_metadata_of_ = nullptr;  // Until the first Write.
  size_t max_initial_metadata_bytes_ = 0;
};

// The client side of one streaming call: owns the socket and finishes it.
class ClientStream {
 public:
  // Opens `method`; a failure to open is reported by Finish (Read and Write
  // return false).
  ClientStream(Client& client, ClientContext* context, const MethodInfo& method);
  ~ClientStream();  // Cancels the call if it has not finished.
  ClientStream(const ClientStream&) = delete;
  ClientStream& operator=(const ClientStream&) = delete;

  // The first message read also fills the context's initial_metadata().
  bool Read(google::protobuf::Message* message);
  bool Write(const google::protobuf::Message& message);
  bool WritesDone();
  // Cancels the call; the server sees CANCELLED.
  void TryCancel();
  // Waits for the end of the call and returns its status; the server's
  // trailing metadata lands in the context's response_metadata().
  absl::Status Finish();
  // For calls with one response (client streaming): reads it, then finishes.
  absl::Status FinishWithResponse(google::protobuf::Message* response);

 private:
  ClientContext* context_;
  absl::Status open_status_;
  std::unique_ptr<Socket> socket_;
  std::unique_ptr<MessageStream> messages_;
  bool read_any_ = false;
};

// Client side of a server-streaming call.
template <typename Response>
class ClientReader {
 public:
  ClientReader(Client& client, ClientContext* context, const MethodInfo& method,
               const google::protobuf::Message& request)
      : stream_(client, context, method) {
    if (stream_.Write(request)) stream_.WritesDone();
  }
  bool Read(Response* response) { return stream_.Read(response); }
  void TryCancel() { stream_.TryCancel(); }
  absl::Status Finish() { return stream_.Finish(); }

 private:
  ClientStream stream_;
};

// Client side of a client-streaming call; Finish fills the response.
template <typename Request>
class ClientWriter {
 public:
  ClientWriter(Client& client, ClientContext* context, const MethodInfo& method,
               google::protobuf::Message* response)
      : stream_(client, context, method), response_(response) {}
  bool Write(const Request& request) { return stream_.Write(request); }
  bool WritesDone() { return stream_.WritesDone(); }
  void TryCancel() { stream_.TryCancel(); }
  // Half-closes if WritesDone was not called, then waits for the response.
  absl::Status Finish() {
    stream_.WritesDone();
    return stream_.FinishWithResponse(response_);
  }

 private:
  ClientStream stream_;
  google::protobuf::Message* response_;
};

// Client side of a bidirectional call.
template <typename Request, typename Response>
class ClientReaderWriter {
 public:
  ClientReaderWriter(Client& client, ClientContext* context, const MethodInfo& method)
      : stream_(client, context, method) {}
  bool Write(const Request& request) { return stream_.Write(request); }
  bool WritesDone() { return stream_.WritesDone(); }
  bool Read(Response* response) { return stream_.Read(response); }
  void TryCancel() { stream_.TryCancel(); }
  absl::Status Finish() { return stream_.Finish(); }

 private:
  ClientStream stream_;
};

// Server side of a client-streaming call: the client's messages.
template <typename Request>
class ServerReader {
 public:
  explicit ServerReader(MessageStream* stream) : stream_(stream) {}
  bool Read(Request* request) { return stream_->Read(request); }

 private:
  MessageStream* stream_;
};

// Server side of a server-streaming call: the messages to the client.
template <typename Response>
class ServerWriter {
 public:
  explicit ServerWriter(MessageStream* stream) : stream_(stream) {}
  bool Write(const Response& response) { return stream_->Write(response); }

 private:
  MessageStream* stream_;
};

// Server side of a bidirectional call.
template <typename Response, typename Request>
class ServerReaderWriter {
 public:
  explicit ServerReaderWriter(MessageStream* stream) : stream_(stream) {}
  bool Write(const Response& response) { return stream_->Write(response); }
  bool Read(Request* request) { return stream_->Read(request); }

 private:
  MessageStream* stream_;
};

// Reads the single request of a server-streaming call: INVALID_ARGUMENT
// unless the client sent exactly one message and half-closed.
absl::Status ReadSingleRequest(MessageStream* stream, google::protobuf::Message* request);

// Adapters from typed handler methods to StreamHandler, for generated code.
template <typename Request, typename Response, typename Method>
StreamHandler ServerStreamingHandler(Method method) {
  return [method](ServerContext* context, MessageStream* stream) {
    Request request;
    if (absl::Status status = ReadSingleRequest(stream, &request); !status.ok()) return status;
    ServerWriter<Response> writer(stream);
    return method(context, &request, &writer);
  };
}

template <typename Request, typename Response, typename Method>
StreamHandler ClientStreamingHandler(Method method) {
  return [method](ServerContext* context, MessageStream* stream) {
    ServerReader<Request> reader(stream);
    Response response;
    absl::Status status = method(context, &reader, &response);
    if (status.ok() && !stream->Write(response)) {
      return absl::UnavailableError("the stream ended before the response could be sent");
    }
    return status;
  };
}

template <typename Request, typename Response, typename Method>
StreamHandler BidiStreamingHandler(Method method) {
  return [method](ServerContext* context, MessageStream* stream) {
    ServerReaderWriter<Response, Request> reader_writer(stream);
    return method(context, &reader_writer);
  };
}

}  // namespace micro

#endif  // MICRO_STREAM_H_
