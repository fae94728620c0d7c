//! The client side: connecting, starting a run and following it to its
//! outcome, the worker, and replaying recorded histories.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowFetchHistoryOptions,
    WorkflowGetResultOptions, WorkflowHistory, WorkflowQueryOptions, WorkflowStartOptions,
};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use super::activities::Activities;
use super::blob::{self, Carried};
use super::spec::{EventsPage, Outcome, RunSpec, SpecRef, StartArg};
use super::units::GuardflowUnit;
use super::workflow::GuardflowRun;
use crate::engine::Engine;
use crate::runtime::Event;

/// A Temporal server and where runs go on it.
#[derive(Debug, Clone)]
pub struct Target {
    /// `HOST:PORT` (or a URL).
    pub address: String,
    pub namespace: String,
    pub task_queue: String,
}

pub const DEFAULT_NAMESPACE: &str = "default";
pub const DEFAULT_TASK_QUEUE: &str = "guardflow";

impl Target {
    fn url(&self) -> Result<Url, String> {
        let text = if self.address.contains("://") {
            self.address.clone()
        } else {
            format!("http://{}", self.address)
        };
        Url::from_str(&text).map_err(|e| format!("`{}` is not a server address: {e}", self.address))
    }

    /// A client of the target's namespace.
    pub async fn connect(&self) -> Result<Client, String> {
        let options = ConnectionOptions::new(self.url()?)
            .identity(format!("guardflow@{}", std::process::id()))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build();
        let connection = Connection::connect(options)
            .await
            .map_err(|e| format!("cannot reach the Temporal server at {}: {e}", self.address))?;
        Client::new(
            connection,
            ClientOptions::new(self.namespace.clone()).build(),
        )
        .map_err(|e| format!("cannot use namespace `{}`: {e}", self.namespace))
    }
}

/// Starts a run of `spec` as workflow `workflow_id`: the spec is stored
/// as a blob (activities read it from there) and given inline when
/// small.
pub async fn start_run(
    client: &Client,
    target: &Target,
    spec: &RunSpec,
    workflow_id: &str,
) -> Result<(), String> {
    let text = serde_json::to_vec(spec).map_err(|e| format!("cannot encode the run: {e}"))?;
    let sha256 = blob::put(Path::new(&spec.blob_dir), &text)?;
    let arg = StartArg {
        spec: Carried::pack(spec, &spec.blob_dir, spec.inline_max)?,
        spec_blob: SpecRef {
            dir: spec.blob_dir.clone(),
            sha256,
        },
        before: None,
        judge_numbers: Default::default(),
        judged: Default::default(),
    };
    client
        .start_workflow(
            GuardflowRun::run,
            arg,
            WorkflowStartOptions::new(target.task_queue.clone(), workflow_id.to_string()).build(),
        )
        .await
        .map_err(|e| format!("cannot start the run on Temporal: {e}"))?;
    Ok(())
}

/// How often a followed run is asked for its new events.
const POLL: Duration = Duration::from_millis(500);

/// How long one such question may take (no worker may be there to
/// answer it: the run goes on, and so does following it).
const QUERY_WAIT: Duration = Duration::from_secs(10);

/// Follows workflow `workflow_id` to its end, handing `mirror` each of
/// its events from index `seen` on, once and in order: while it runs
/// from its `events` query (every half second), and what is left from
/// its result. Its outcome.
pub async fn follow_live(
    client: &Client,
    workflow_id: &str,
    mut seen: u64,
    mut mirror: impl FnMut(Event),
) -> Result<Outcome, String> {
    let handle = client.get_workflow_handle::<GuardflowRun>(workflow_id.to_string());
    let result = handle.get_result(WorkflowGetResultOptions::default());
    tokio::pin!(result);
    loop {
        let from = seen;
        let handle = &handle;
        let tick = async move {
            tokio::time::sleep(POLL).await;
            let asked = handle.query(GuardflowRun::events, from, WorkflowQueryOptions::default());
            match tokio::time::timeout(QUERY_WAIT, asked).await {
                Ok(Ok(c)) => c.open::<EventsPage>().ok(),
                _ => None,
            }
        };
        tokio::select! {
            biased;
            done = &mut result => {
                let carried: Carried = done
                    .map_err(|e| format!("the workflow {workflow_id} did not complete: {e}"))?;
                let outcome: Outcome = carried.open()?;
                let from = usize::try_from(seen).unwrap_or(usize::MAX);
                for e in outcome.events.iter().skip(from) {
                    mirror(e.clone());
                }
                return Ok(outcome);
            }
            page = tick => {
                // a page from where the mirror is, else asked again
                if let Some(page) = page.filter(|p| p.from == seen) {
                    for e in page.events {
                        mirror(e);
                        seen += 1;
                    }
                }
            }
        }
    }
}

/// The history of workflow `workflow_id`, as Temporal's JSON.
pub async fn fetch_history(client: &Client, workflow_id: &str) -> Result<Vec<u8>, String> {
    let handle = client.get_workflow_handle::<GuardflowRun>(workflow_id.to_string());
    handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .map_err(|e| format!("cannot read the history of {workflow_id}: {e}"))
}

/// Replays a recorded history (Temporal's JSON) through this build's
/// workflow code; an error names the nondeterminism or failure found.
pub async fn replay_history(json: &[u8]) -> Result<(), String> {
    let history = WorkflowHistory::from_json(json).map_err(|e| format!("not a history: {e}"))?;
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<GuardflowRun>()
        .map_err(|e| e.to_string())?
        .register_workflow::<GuardflowUnit>()
        .map_err(|e| e.to_string())?
        .build();
    let replayer = WorkflowReplayer::new(options).map_err(|e| e.to_string())?;
    replayer
        .replay_workflow(history)
        .await
        .map_err(|e| e.to_string())
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub target: Target,
    /// Activities run at once, at most.
    pub max_activities: usize,
}

/// Runs a worker until it fails or the process stops: the workflow and
/// the activities, with `engine`'s externs (the standard library and
/// what a host registered).
pub async fn run_worker(engine: Engine, config: &WorkerConfig) -> Result<(), String> {
    super::spec::set_engine(engine.clone());
    let runtime = Runtime::from_current_tokio(Default::default())
        .map_err(|e| format!("cannot start the Temporal runtime: {e}"))?;
    let client = config.target.connect().await?;
    use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(100))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(config.max_activities.max(1)))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(10))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build();
    let options = WorkerOptions::new(config.target.task_queue.clone())
        .tuner(tuner)
        .register_workflow::<GuardflowRun>()
        .map_err(|e| e.to_string())?
        .register_workflow::<GuardflowUnit>()
        .map_err(|e| e.to_string())?
        .register_activities(Activities::new(engine))
        .build();
    let mut worker = Worker::new(&runtime, client, options)
        .map_err(|e| format!("cannot start the worker: {e}"))?;
    worker
        .run()
        .await
        .map_err(|e| format!("the worker stopped: {e}"))
}
