#include "services/gateway/queue_client.h"

#include <utility>

#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "libs/common/grpc_status.h"

namespace ndx::gateway {
namespace {

// One Subscribe stream. It keeps itself alive (self_) until gRPC calls OnDone.
class SubscriptionReactor final : public grpc::ClientReadReactor<v1::ExecutionEvent>,
                                  public EventSubscription {
 public:
  static std::shared_ptr<SubscriptionReactor> Start(v1::EventStream::Stub& stub,
                                                    const v1::SubscribeRequest& request,
                                                    QueueClient::EventCallback on_event,
                                                    QueueClient::DoneCallback on_done) {
    std::shared_ptr<SubscriptionReactor> r(
        new SubscriptionReactor(request, std::move(on_event), std::move(on_done)));
    r->self_ = r;
    r->context_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Hours(24)));
    stub.async()->Subscribe(&r->context_, &r->request_, r.get());
    r->StartRead(&r->event_);
    r->StartCall();
    return r;
  }

  void Cancel() override { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone follows
    on_event_(event_);
    event_.Clear();
    StartRead(&event_);
  }

  void OnDone(const grpc::Status& status) override {
    on_done_(common::FromGrpcStatus(status));
    on_event_ = nullptr;
    on_done_ = nullptr;
    std::shared_ptr<SubscriptionReactor> keep = std::move(self_);  // may destroy *this on return
  }

 private:
  SubscriptionReactor(const v1::SubscribeRequest& request, QueueClient::EventCallback on_event,
                      QueueClient::DoneCallback on_done)
      : request_(request), on_event_(std::move(on_event)), on_done_(std::move(on_done)) {}

  grpc::ClientContext context_;
  v1::SubscribeRequest request_;
  v1::ExecutionEvent event_;
  QueueClient::EventCallback on_event_;
  QueueClient::DoneCallback on_done_;
  std::shared_ptr<SubscriptionReactor> self_;
};

}  // namespace

QueueClient::QueueClient(std::shared_ptr<grpc::Channel> channel, absl::Duration deadline)
    : channel_(std::move(channel)),
      queue_(v1::QueueService::NewStub(channel_)),
      events_(v1::EventStream::NewStub(channel_)),
      deadline_(deadline) {}

#define NDX_GATEWAY_UNARY(Method, Rpc, Request, Response)                   \
  absl::Status QueueClient::Method(const Request& request, Response* out) { \
    grpc::ClientContext context;                                            \
    context.set_deadline(absl::ToChronoTime(absl::Now() + deadline_));      \
    return common::FromGrpcStatus(queue_->Rpc(&context, request, out));     \
  }

NDX_GATEWAY_UNARY(Execute, ExecuteWorkflow, v1::ExecuteWorkflowRequest, v1::ExecuteWorkflowResponse)
NDX_GATEWAY_UNARY(Get, GetExecution, v1::GetExecutionRequest, v1::Execution)
NDX_GATEWAY_UNARY(List, ListExecutions, v1::ListExecutionsRequest, v1::ListExecutionsResponse)
NDX_GATEWAY_UNARY(Cancel, CancelExecution, v1::CancelExecutionRequest, v1::Execution)
NDX_GATEWAY_UNARY(Retry, RetryExecution, v1::RetryExecutionRequest, v1::Execution)
NDX_GATEWAY_UNARY(Delete, DeleteExecution, v1::DeleteExecutionRequest, v1::DeleteExecutionResponse)
NDX_GATEWAY_UNARY(Workers, ListWorkers, v1::ListWorkersRequest, v1::ListWorkersResponse)
NDX_GATEWAY_UNARY(Stats, GetQueueStats, v1::GetQueueStatsRequest, v1::GetQueueStatsResponse)

#undef NDX_GATEWAY_UNARY

std::shared_ptr<EventSubscription> QueueClient::Subscribe(const v1::SubscribeRequest& request,
                                                          EventCallback on_event,
                                                          DoneCallback on_done) {
  return SubscriptionReactor::Start(*events_, request, std::move(on_event), std::move(on_done));
}

}  // namespace ndx::gateway
