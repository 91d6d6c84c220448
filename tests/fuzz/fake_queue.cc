#include "tests/fuzz/fake_queue.h"

#include "grpcpp/server_builder.h"
#include "libs/common/check.h"

namespace ndx::fuzz {
namespace {

// "missing" ids are NOT_FOUND, so the error paths of the routes run too.
grpc::Status Lookup(const std::string& id) {
  if (id == "missing") return {grpc::StatusCode::NOT_FOUND, "execution missing not found"};
  return grpc::Status::OK;
}

void FillExecution(const std::string& id, v1::Execution* e) {
  e->set_id(id.empty() ? "exec-1" : id);
  e->set_workflow_id("wf-1");
  e->set_state(v1::EXECUTION_STATE_COMPLETED);
  e->set_trigger_data_json(R"({"a":1})");
  e->mutable_created_at()->set_seconds(1800000000);
  v1::NodeExecution* n = e->add_node_executions();
  n->set_node_id("t");
  n->set_state(v1::NODE_STATE_COMPLETED);
  n->set_output_json(R"({"main":[{"json":{"a":1}}]})");
}

}  // namespace

class FakeQueue::Queue final : public v1::QueueService::CallbackService {
  grpc::ServerUnaryReactor* ExecuteWorkflow(grpc::CallbackServerContext* ctx,
                                            const v1::ExecuteWorkflowRequest* req,
                                            v1::ExecuteWorkflowResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    if (req->workflow_id() == "missing") {
      r->Finish({grpc::StatusCode::INVALID_ARGUMENT, "node \"x\" (x): unknown node type"});
      return r;
    }
    resp->set_execution_id("exec-1");
    resp->set_state(v1::EXECUTION_STATE_WAITING);
    resp->set_mode(req->use_queue() ? v1::EXECUTION_MODE_QUEUE : v1::EXECUTION_MODE_DIRECT);
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerUnaryReactor* GetExecution(grpc::CallbackServerContext* ctx,
                                         const v1::GetExecutionRequest* req,
                                         v1::Execution* resp) override {
    auto* r = ctx->DefaultReactor();
    grpc::Status s = Lookup(req->execution_id());
    if (s.ok()) FillExecution(req->execution_id(), resp);
    r->Finish(s);
    return r;
  }
  grpc::ServerUnaryReactor* ListExecutions(grpc::CallbackServerContext* ctx,
                                           const v1::ListExecutionsRequest* req,
                                           v1::ListExecutionsResponse* resp) override {
    FillExecution("exec-1", resp->add_executions());
    resp->set_total_size(1);
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerUnaryReactor* CancelExecution(grpc::CallbackServerContext* ctx,
                                            const v1::CancelExecutionRequest* req,
                                            v1::Execution* resp) override {
    auto* r = ctx->DefaultReactor();
    grpc::Status s = Lookup(req->execution_id());
    if (s.ok()) {
      FillExecution(req->execution_id(), resp);
      resp->set_state(v1::EXECUTION_STATE_CANCELLING);
    }
    r->Finish(s);
    return r;
  }
  grpc::ServerUnaryReactor* RetryExecution(grpc::CallbackServerContext* ctx,
                                           const v1::RetryExecutionRequest* req,
                                           v1::Execution* resp) override {
    auto* r = ctx->DefaultReactor();
    grpc::Status s = Lookup(req->execution_id());
    if (s.ok()) FillExecution("exec-2", resp);
    r->Finish(s);
    return r;
  }
  grpc::ServerUnaryReactor* GetQueueStats(grpc::CallbackServerContext* ctx,
                                          const v1::GetQueueStatsRequest* req,
                                          v1::GetQueueStatsResponse* resp) override {
    v1::QueueStats* q = resp->add_queues();
    q->set_queue(req->queue().empty() ? "default" : req->queue());
    q->set_waiting(2);
    q->set_completed(5);
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

class FakeQueue::Events final : public v1::EventStream::CallbackService {
  // Writes one event, then ends the stream (OK: the execution finished).
  class OneEvent final : public grpc::ServerWriteReactor<v1::ExecutionEvent> {
   public:
    explicit OneEvent(const v1::SubscribeRequest& req) {
      event_.set_seq(req.after_seq() + 1);
      event_.set_execution_id(req.execution_id().empty() ? "exec-1" : req.execution_id());
      event_.set_workflow_id(req.workflow_id().empty() ? "wf-1" : req.workflow_id());
      event_.set_type(v1::EVENT_TYPE_COMPLETED);
      event_.set_type_name("completed");
      event_.set_cursor("1-0");
      event_.set_data_json(R"({"outputData":{"a":1}})");
      StartWriteAndFinish(&event_, grpc::WriteOptions(), grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    v1::ExecutionEvent event_;
  };

  grpc::ServerWriteReactor<v1::ExecutionEvent>* Subscribe(
      grpc::CallbackServerContext* ctx, const v1::SubscribeRequest* req) override {
    return new OneEvent(*req);
  }
};

FakeQueue::FakeQueue() : queue_(std::make_unique<Queue>()), events_(std::make_unique<Events>()) {
  grpc::ServerBuilder builder;
  builder.RegisterService(queue_.get());
  builder.RegisterService(events_.get());
  server_ = builder.BuildAndStart();
  NDX_CHECK(server_ != nullptr);
  channel_ = server_->InProcessChannel(grpc::ChannelArguments());
}

FakeQueue::~FakeQueue() { server_->Shutdown(); }

}  // namespace ndx::fuzz
