// File: queue_client.h
//
// QueueClient: the gateway's only way to ndx-queue: QueueService unary calls, each with a deadline
// (STYLE.md rule 18), and EventStream.Subscribe as an asynchronous stream (gRPC callback API, no
// thread per subscriber).
//
//   QueueClient client(channel, absl::Seconds(10));
//   v1::Execution e;
//   absl::Status s = client.Get(request, &e);
//   std::shared_ptr<EventSubscription> sub = client.Subscribe(
//       subscribe_request, [](const v1::ExecutionEvent& e) { ... },
//       [](absl::Status end) { ... });  // OK after the terminal event
//   sub->Cancel();
//
// Thread-safe. Callbacks of one subscription are called one at a time, in stream order, from
// gRPC's threads; `on_done` is called exactly once, last.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "ndx/v1/event_stream.grpc.pb.h"
#include "ndx/v1/queue_service.grpc.pb.h"

namespace ndx::gateway {

class EventSubscription {
 public:
  virtual ~EventSubscription() = default;
  // Ends the stream (on_done then receives CANCELLED). Safe to call more than once, and after the
  // stream ended.
  virtual void Cancel() = 0;
};

class QueueClient {
 public:
  using EventCallback = std::function<void(const v1::ExecutionEvent&)>;
  using DoneCallback = std::function<void(const absl::Status&)>;

  QueueClient(std::shared_ptr<grpc::Channel> channel, absl::Duration deadline);

  // The QueueService rpcs; each returns the call's status (codes as in queue_service.proto).
  absl::Status Execute(const v1::ExecuteWorkflowRequest& request,
                       v1::ExecuteWorkflowResponse* response);
  absl::Status Get(const v1::GetExecutionRequest& request, v1::Execution* response);
  absl::Status List(const v1::ListExecutionsRequest& request, v1::ListExecutionsResponse* response);
  absl::Status Cancel(const v1::CancelExecutionRequest& request, v1::Execution* response);
  absl::Status Retry(const v1::RetryExecutionRequest& request, v1::Execution* response);
  absl::Status Delete(const v1::DeleteExecutionRequest& request,
                      v1::DeleteExecutionResponse* response);
  absl::Status Workers(const v1::ListWorkersRequest& request, v1::ListWorkersResponse* response);
  absl::Status Stats(const v1::GetQueueStatsRequest& request, v1::GetQueueStatsResponse* response);

  // Starts EventStream.Subscribe. The stream has a long deadline (a day): subscriptions are idle
  // for long periods, as event_stream.proto asks.
  std::shared_ptr<EventSubscription> Subscribe(const v1::SubscribeRequest& request,
                                               EventCallback on_event, DoneCallback on_done);

  grpc::Channel& channel() { return *channel_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::QueueService::Stub> queue_;
  std::unique_ptr<v1::EventStream::Stub> events_;
  absl::Duration deadline_;
};

}  // namespace ndx::gateway
