// File: queue_service.h
//
// QueueServiceImpl: the QueueService gRPC API (proto/ndx/v1/queue_service.proto) over the Redis
// queue (libs/queue). Handlers are thin: check the request, call the queue, map the result; every
// failure is a gRPC status code with a message a person can act on.
//
// Queues are named; each request may pick one (default: the configured NDX_QUEUE). The names in
// use are recorded in the Redis set "ndx:queues", so any ndx-queue process finds an execution by
// id whichever queue it is in.
//
// Thread-safe. WaitExecution calls are parked on one waiter thread, not on gRPC threads.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/clock.h"
#include "libs/common/redis/redis_client.h"
#include "libs/queue/enqueue_batcher.h"
#include "libs/queue/redis_queue.h"
#include "libs/store/execution_store.h"
#include "ndx/v1/queue_service.grpc.pb.h"
#include "services/queue/job_payload.h"
#include "services/queue/queue_metrics.h"

namespace ndx::queue {

// Direct-mode executions go to "<queue><kDirectQueueSuffix>".
inline constexpr absl::string_view kDirectQueueSuffix = ".direct";

class QueueServiceImpl final : public v1::QueueService::CallbackService {
 public:
  struct Options {
    QueueOptions queue;                  // policies; `name` is the default queue
    std::string default_mode = "queue";  // NDX_DEFAULT_EXECUTION_MODE
    WorkflowValidator validator;         // deep workflow checks (engine); may be empty
    // The queue of direct-mode executions (use_queue=false), run by the runners embedded in
    // ndx-queue; "" = direct mode disabled (UNIMPLEMENTED).
    std::string direct_queue;
    QueueMetrics* metrics = nullptr;  // optional; must outlive the service
    // The execution history (PostgreSQL, or its outbox); optional. The row exists before the job
    // can run; GetExecution adds the node executions; ListExecutions reads it.
    store::ExecutionStore* store = nullptr;
    // Loads a workflow by id for requests that carry none (NodeDrop's `workflows` table);
    // optional: without it such requests are INVALID_ARGUMENT.
    std::function<absl::StatusOr<v1::Workflow>(const std::string& id, const std::string& workspace)>
        workflow_loader;
    absl::Duration max_wait = absl::Hours(1);  // WaitExecution without a timeout or deadline
    absl::Duration wait_poll = absl::Milliseconds(20);
  };

  // `pool` and `clock` must outlive the service.
  QueueServiceImpl(redis::RedisPool& pool, Options options, common::Clock& clock);
  ~QueueServiceImpl() override;

  grpc::ServerUnaryReactor* ExecuteWorkflow(grpc::CallbackServerContext* context,
                                            const v1::ExecuteWorkflowRequest* request,
                                            v1::ExecuteWorkflowResponse* response) override;
  grpc::ServerUnaryReactor* GetExecution(grpc::CallbackServerContext* context,
                                         const v1::GetExecutionRequest* request,
                                         v1::Execution* response) override;
  grpc::ServerUnaryReactor* ListExecutions(grpc::CallbackServerContext* context,
                                           const v1::ListExecutionsRequest* request,
                                           v1::ListExecutionsResponse* response) override;
  grpc::ServerUnaryReactor* CancelExecution(grpc::CallbackServerContext* context,
                                            const v1::CancelExecutionRequest* request,
                                            v1::Execution* response) override;
  grpc::ServerUnaryReactor* DeleteExecution(grpc::CallbackServerContext* context,
                                            const v1::DeleteExecutionRequest* request,
                                            v1::DeleteExecutionResponse* response) override;
  grpc::ServerUnaryReactor* ListWorkers(grpc::CallbackServerContext* context,
                                        const v1::ListWorkersRequest* request,
                                        v1::ListWorkersResponse* response) override;
  grpc::ServerUnaryReactor* RetryExecution(grpc::CallbackServerContext* context,
                                           const v1::RetryExecutionRequest* request,
                                           v1::Execution* response) override;
  grpc::ServerUnaryReactor* GetQueueStats(grpc::CallbackServerContext* context,
                                          const v1::GetQueueStatsRequest* request,
                                          v1::GetQueueStatsResponse* response) override;
  grpc::ServerUnaryReactor* WaitExecution(grpc::CallbackServerContext* context,
                                          const v1::WaitExecutionRequest* request,
                                          v1::Execution* response) override;

  // Runs the housekeeping of every known queue (serialized across processes by each queue's
  // housekeeping lease). Called periodically by the process. Returns true when a queue's run
  // stopped at its batch with a backlog left (HousekeepingResult::more): call again after
  // QueueOptions::housekeeping_follow_up rather than after the interval.
  bool Housekeep(const std::string& owner);
  // Updates the queue gauges (depth by state, oldest waiting age) of every known queue.
  void RefreshGauges();
  // Brings the history up to date for executions that ended in Redis but are still RUNNING in
  // PostgreSQL: records their checkpointed node runs and their end (service::RecordEndFromQueue).
  // Since ends wait on the queue's unrecorded index until recorded (housekeeping records those its
  // process did not), this is a safety net for ends made without that index (a process without a
  // history, or an older version). Called periodically; any process may run it.
  void ReconcileHistory();

  // The domain operations behind the RPCs (also used by tests and the in-process direct mode).
  absl::Status Execute(const v1::ExecuteWorkflowRequest& request,
                       v1::ExecuteWorkflowResponse& response);
  // Execute without waiting: validates and writes the history row on the calling thread, then
  // hands the job to its queue's EnqueueBatcher (group commit with concurrent calls); `done` gets
  // the call's status once `response` is filled, on this thread or on the one that sent the batch.
  // A job still unsent at `deadline` is not enqueued (DEADLINE_EXCEEDED). `request` and
  // `response` must live until `done` is called.
  void ExecuteAsync(const v1::ExecuteWorkflowRequest& request,
                    v1::ExecuteWorkflowResponse& response, absl::Time deadline,
                    std::function<void(absl::Status)> done);
  absl::Status Get(const std::string& id, const std::string& workspace, v1::ExecutionView view,
                   v1::Execution& out);
  // Jobs waiting for the next enqueue batch of their queue, over all queues (tests).
  size_t PendingEnqueues();
  // The queue that holds execution `id`, visible to `workspace` ("" = any); NOT_FOUND otherwise.
  absl::StatusOr<std::string> Locate(const std::string& id, const std::string& workspace);

 private:
  struct Waiter;
  // A queue and the group commit of its single enqueues.
  struct Queue {
    std::unique_ptr<RedisQueue> queue;
    std::unique_ptr<EnqueueBatcher> batcher;
  };
  // What Execute has settled before the enqueue.
  struct Prepared {
    Queue* queue = nullptr;
    bool use_queue = true;
    NewJob job;
    store::ExecutionStore* history = nullptr;  // the row to mark when the enqueue fails
    bool answered = false;  // a repeated request_id: `response` already names the first execution
  };

  // Everything before the enqueue: validation, the payload, the history row.
  absl::StatusOr<Prepared> Prepare(const v1::ExecuteWorkflowRequest& request,
                                   v1::ExecuteWorkflowResponse& response);
  // Everything after it: the history row of a failed or duplicate enqueue, metrics, the response.
  absl::Status Finish(RedisQueue& queue, bool use_queue, store::ExecutionStore* history,
                      const std::string& id, std::optional<absl::Time> run_at,
                      absl::StatusOr<EnqueueResult> enqueued,
                      v1::ExecuteWorkflowResponse& response);
  absl::StatusOr<Queue*> SlotFor(const std::string& name);
  absl::StatusOr<RedisQueue*> QueueFor(const std::string& name);
  // Finds the queue that holds `id`: NOT_FOUND when none does (or the workspace differs).
  absl::StatusOr<std::pair<RedisQueue*, JobInfo>> Find(const std::string& id,
                                                       const std::string& workspace);
  absl::Status Cancel(const v1::CancelExecutionRequest& request, v1::Execution& out);
  absl::Status Delete(const v1::DeleteExecutionRequest& request);
  absl::Status Workers(const v1::ListWorkersRequest& request, v1::ListWorkersResponse& out);
  absl::Status Retry(const v1::RetryExecutionRequest& request, v1::Execution& out);
  absl::Status Stats(const v1::GetQueueStatsRequest& request, v1::GetQueueStatsResponse& out);
  absl::Status List(const v1::ListExecutionsRequest& request, v1::ListExecutionsResponse& out);
  void WaiterLoop();

  redis::RedisPool& pool_;
  const Options options_;
  common::Clock& clock_;

  absl::Mutex mu_;
  absl::node_hash_map<std::string, Queue> queues_ ABSL_GUARDED_BY(mu_);  // pointers stay valid

  absl::Mutex waiters_mu_;
  std::vector<std::unique_ptr<Waiter>> waiters_ ABSL_GUARDED_BY(waiters_mu_);
  bool stopping_ ABSL_GUARDED_BY(waiters_mu_) = false;
  std::thread waiter_thread_;
};

// Maps the queue's record of a job to the API's Execution (FULL adds trigger data).
void FillExecution(const JobInfo& info, const std::string& queue, v1::ExecutionView view,
                   v1::Execution& out);
// Maps a history row (and its node runs) to the API's Execution.
void FillExecution(const store::ExecutionRecord& record, v1::ExecutionView view,
                   v1::Execution& out);

}  // namespace ndx::queue
