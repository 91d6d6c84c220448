// File: fake_queue.h
//
// An in-process fake of ndx-queue for the gateway's fuzz targets: QueueService answers every rpc
// with a small canned message (or the error a request field asks for), and EventStream.Subscribe
// sends one event and ends. The gateway reaches it through an in-process channel, so no socket is
// opened.
//
//   static FakeQueue* queue = new FakeQueue();   // once per process
//   Gateway gateway(config, queue->channel());
//
// Thread-safe (gRPC calls the services from its threads).
#pragma once

#include <memory>

#include "grpcpp/channel.h"
#include "grpcpp/server.h"
#include "ndx/v1/event_stream.grpc.pb.h"
#include "ndx/v1/queue_service.grpc.pb.h"

namespace ndx::fuzz {

class FakeQueue {
 public:
  FakeQueue();
  ~FakeQueue();

  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  class Queue;
  class Events;
  std::unique_ptr<Queue> queue_;
  std::unique_ptr<Events> events_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace ndx::fuzz
