//! Durable endpoints over HTTP: a run started by `POST {path}`, kept in the app's
//! [`RunStore`], answered `202` at a checkpoint, and the `/runs` routes that read,
//! list and resume runs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::cost;
use super::identity::Caller;
use super::router::{FinishOnDrop, method_not_allowed};
use super::state::{EndpointState, Shared};
use super::status::{Refused, error_body, error_response, insert_rate_headers, plain_error};
use crate::durable::{Claim, Created, Journal, NewRun, RunRecord, RunStatus, RunStore};
use crate::durable::{RunStoreError, new_run_id, wall_ms};
use crate::error::{AgentError, ErrorClass};
use crate::reliability::rate_limit::SeenLimits;
use crate::reliability::{RequestInfo, Stage};
use crate::spend::Spend;

/// The header naming a durable run in every answer about it.
pub(crate) const X_RUN_ID: &str = "x-run-id";
/// The header a caller sets to start a run at most once.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The most runs `GET /runs` lists at once.
const MAX_LISTED: usize = 500;

/// How long ended runs are kept unless `App::run_retention` says otherwise.
pub(crate) const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Deletes the runs that ended more than `keep` ago, now and then every tenth of
/// `keep` (between 1 s and an hour), until the app stops.
pub(crate) async fn sweep(store: Arc<dyn RunStore>, keep: Duration) {
    let every = (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    loop {
        let before_ms = wall_ms().saturating_sub(keep_ms);
        match store.delete_ended_before(before_ms).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "deleted runs past their retention"),
            Err(err) => tracing::warn!(%err, "could not delete runs past their retention"),
        }
        tokio::time::sleep(every).await;
    }
}

/// The app's durable runs: where they are kept, and the endpoints that run them.
pub(crate) struct Runs {
    pub(crate) store: Arc<dyn RunStore>,
    endpoints: Vec<Arc<EndpointState>>,
}

impl Runs {
    pub(crate) fn new(store: Arc<dyn RunStore>, endpoints: &[Arc<EndpointState>]) -> Self {
        let endpoints = endpoints
            .iter()
            .filter(|e| e.served.durable)
            .cloned()
            .collect();
        Runs { store, endpoints }
    }

    fn endpoint(&self, path: &str) -> Option<&Arc<EndpointState>> {
        self.endpoints.iter().find(|e| e.served.path == path)
    }
}

/// How one run of the body ended.
enum Outcome {
    Completed(Value),
    Checkpointed(u32),
    Failed(AgentError),
}

/// What a caller of a durable endpoint sent, besides its body.
pub(crate) struct Start {
    pub(crate) caller: Caller,
    pub(crate) idempotency_key: Option<String>,
}

impl Start {
    pub(crate) fn of(caller: Caller, headers: &HeaderMap) -> Result<Start, Refused> {
        let key = match headers.get(IDEMPOTENCY_KEY).map(HeaderValue::to_str) {
            None => None,
            Some(Ok(key)) if !key.trim().is_empty() && key.len() <= 255 => Some(key.to_owned()),
            Some(_) => {
                return Err(Refused::new(
                    StatusCode::BAD_REQUEST,
                    ErrorClass::InvalidInput,
                    "`Idempotency-Key` must be 1 to 255 visible ASCII characters",
                ));
            }
        };
        Ok(Start {
            caller,
            idempotency_key: key,
        })
    }
}

/// How long a process holds a run it runs: its whole deadline, plus time to write its
/// last step. A process that dies holding it frees it when this runs out.
fn lease(state: &EndpointState) -> (Duration, Duration) {
    let timeouts = state.pipeline.timeout_policy();
    let write = timeouts.limit(Stage::Checkpoint);
    (timeouts.limit(Stage::Total) + write, write)
}

fn lease_until(lease: Duration) -> i64 {
    let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    wall_ms().saturating_add(lease)
}

/// `POST {path}` on a durable endpoint: creates the run (or finds the one with the same
/// `Idempotency-Key`), runs it, and answers its outcome.
pub(crate) async fn start(
    runs: Arc<Runs>,
    state: Arc<EndpointState>,
    start: Start,
    input: Value,
) -> Response {
    let (lease, write) = lease(&state);
    let new = NewRun {
        id: new_run_id(),
        endpoint: state.served.path.as_str().into(),
        input: input.clone(),
        idempotency_key: start.idempotency_key,
        user: start.caller.user.clone(),
        tenant: start.caller.tenant.clone(),
        now_ms: wall_ms(),
        lease_until_ms: lease_until(lease),
    };
    let run_id = new.id.clone();
    match within(write, runs.store.create(new)).await {
        Err(err) => return store_failed(&err),
        Ok(Created::Existing(run)) => return existing(&run),
        Ok(Created::New) => {}
    }
    let journal = Journal::new(
        runs.store.clone(),
        run_id,
        Vec::new(),
        (lease, write),
        false,
    );
    respond(runs, state, start.caller, journal, input).await
}

/// Runs the body on `journal` in a task that finishes even if the client leaves, then
/// answers as the outcome says.
async fn respond(
    runs: Arc<Runs>,
    state: Arc<EndpointState>,
    caller: Caller,
    journal: Journal,
    input: Value,
) -> Response {
    let journal = Arc::new(journal);
    let run_id = journal.run_id().clone();
    let spend = Arc::new(Spend::new());
    let seen = Arc::new(SeenLimits::default());
    // The run goes on when the client leaves (its journal keeps what it did); only the
    // app's drain deadline stops it.
    let mut request = RequestInfo::new()
        .cancel_on(state.shared.hard_stop.child_token())
        .spend(spend.clone())
        .report_limits_to(seen.clone())
        .durable(journal.clone());
    if let Some(user) = &caller.user {
        request = request.user(user.clone());
    }
    if let Some(tenant) = &caller.tenant {
        request = request.tenant(tenant.clone());
    }
    let work = {
        let state = state.clone();
        async move {
            let result = state.served.call(&state.pipeline, request, input).await;
            settle(&runs, &state, &journal, result).await
        }
    };
    let outcome = FinishOnDrop::new(work).await;
    let snapshot = state.rate_snapshot(&caller, &seen);
    let mut response = match outcome {
        Outcome::Completed(output) => {
            let mut response = axum::Json(output).into_response();
            if let Some(snapshot) = snapshot {
                insert_rate_headers(response.headers_mut(), &snapshot);
            }
            response
        }
        Outcome::Checkpointed(steps) => checkpointed(&run_id, steps),
        Outcome::Failed(err) => error_response(&err, snapshot),
    };
    cost::insert_headers(response.headers_mut(), &spend);
    insert_run_id(response.headers_mut(), &run_id);
    response
}

/// Writes how the run ended to the store and says what to answer.
async fn settle(
    runs: &Runs,
    state: &EndpointState,
    journal: &Journal,
    result: Result<Value, AgentError>,
) -> Outcome {
    let (status, stored, outcome) = match result {
        Ok(output) => (
            RunStatus::Completed,
            output.clone(),
            Outcome::Completed(output),
        ),
        Err(err) if state.pipeline.checkpoints(&err) => (
            RunStatus::Checkpointed,
            error_body(&err),
            Outcome::Checkpointed(journal.len()),
        ),
        Err(err) => (RunStatus::Failed, error_body(&err), Outcome::Failed(err)),
    };
    let (_, write) = lease(state);
    let finish = runs
        .store
        .finish(journal.run_id().clone(), status, Some(stored));
    if let Err(err) = within(write, finish).await {
        // The caller still gets the outcome; the run stays `running` until its lease
        // runs out, and a resume then replays every step without paying for them.
        tracing::warn!(
            run_id = %journal.run_id(),
            error = %err,
            "a durable run's outcome could not be stored"
        );
    }
    outcome
}

/// A store operation bounded by `limit`; running out is a store failure too.
async fn within<T>(
    limit: Duration,
    operation: impl Future<Output = Result<T, RunStoreError>>,
) -> Result<T, RunStoreError> {
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result,
        Err(_) => Err(RunStoreError::Io {
            store: "run store",
            message: format!(
                "no answer within {} ms (the `checkpoint_ms` limit)",
                limit.as_millis()
            ),
        }),
    }
}

fn insert_run_id(headers: &mut HeaderMap, run_id: &str) {
    if let Ok(value) = HeaderValue::from_str(run_id) {
        headers.insert(X_RUN_ID, value);
    }
}

/// `202 Accepted`: the run stopped at its deadline and waits for a resume.
fn checkpointed(run_id: &str, steps: u32) -> Response {
    let location = format!("/runs/{run_id}");
    let body = json!({
        "run_id": run_id,
        "status": RunStatus::Checkpointed,
        "steps": steps,
        "resume": format!("{location}/resume"),
    });
    let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    insert_run_id(response.headers_mut(), run_id);
    response
}

/// The answer to a second start with the same `Idempotency-Key`: the first run's output
/// if it completed, else where it is.
fn existing(run: &RunRecord) -> Response {
    if run.status == RunStatus::Completed {
        let output = run.result.clone().unwrap_or(Value::Null);
        let mut response = axum::Json(output).into_response();
        insert_run_id(response.headers_mut(), &run.run_id);
        return response;
    }
    conflict(
        run,
        format!(
            "a run with this Idempotency-Key exists and is {}: read it at `GET /runs/{id}`{}",
            run.status,
            match run.status {
                RunStatus::Running => ", or wait for it",
                _ => ", or run it on with `POST /runs/{id}/resume`",
            },
            id = run.run_id,
        ),
    )
}

fn conflict(run: &RunRecord, message: String) -> Response {
    let body = json!({
        "error": { "class": ErrorClass::InvalidInput.as_str(), "message": message },
        "run_id": run.run_id,
        "status": run.status,
    });
    let mut response = (StatusCode::CONFLICT, axum::Json(body)).into_response();
    insert_run_id(response.headers_mut(), &run.run_id);
    response
}

fn store_failed(err: &RunStoreError) -> Response {
    let mut response = plain_error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::ConnectionError,
        format!("{err}; nothing was run, so the request can be sent again"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn unknown_run(run_id: &str) -> Response {
    plain_error(
        StatusCode::NOT_FOUND,
        ErrorClass::NotFound,
        format!("no durable run `{run_id}` (runs that ended are deleted after their retention)"),
    )
}

/// Whether `caller` may see `run`: a run started by a known user or tenant is theirs.
/// Others get a 404, as if it did not exist.
fn visible_to(run: &RunRecord, caller: &Caller) -> bool {
    let owns =
        |owner: &Option<Arc<str>>, asker: &Option<Arc<str>>| owner.is_none() || owner == asker;
    owns(&run.user, &caller.user) && owns(&run.tenant, &caller.tenant)
}

/// The `/runs` routes.
pub(crate) fn router(shared: &Arc<Shared>, runs: Arc<Runs>) -> Router {
    let read = {
        let (shared, runs) = (shared.clone(), runs.clone());
        get(move |Path(id): Path<String>, headers: HeaderMap| {
            let (shared, runs) = (shared.clone(), runs.clone());
            async move { read(&shared, &runs, &id, &headers).await }
        })
    };
    let resume = {
        let (shared, runs) = (shared.clone(), runs.clone());
        post(move |Path(id): Path<String>, headers: HeaderMap| {
            let (shared, runs) = (shared.clone(), runs.clone());
            async move { resume(shared, runs, id, headers).await }
        })
    };
    let list = {
        let shared = shared.clone();
        // Any query string reads as pairs (undecodable bytes become U+FFFD), so this
        // extractor never answers for us.
        get(
            move |Query(pairs): Query<Vec<(String, String)>>, headers: HeaderMap| {
                let (shared, runs) = (shared.clone(), runs.clone());
                async move { list(&shared, &runs, pairs, &headers).await }
            },
        )
    };
    let get_only = || async { method_not_allowed("GET, HEAD") };
    Router::new()
        .route("/runs", list.fallback(get_only))
        .route("/runs/{id}", read.fallback(get_only))
        .route(
            "/runs/{id}/resume",
            resume.fallback(|| async { method_not_allowed("POST") }),
        )
}

/// `GET /runs/{id}`: the run, its steps, what it used and cost, its output or error.
async fn read(shared: &Shared, runs: &Runs, id: &str, headers: &HeaderMap) -> Response {
    let caller = match shared.identity.resolve(headers) {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    let run = match within(Duration::from_secs(5), runs.store.get(id.into())).await {
        Err(err) => return store_failed(&err),
        Ok(Some(run)) if visible_to(&run, &caller) => run,
        Ok(_) => return unknown_run(id),
    };
    let mut response = axum::Json(view(&run)).into_response();
    insert_run_id(response.headers_mut(), &run.run_id);
    response
}

/// A run as `GET /runs/{id}` shows it.
fn view(run: &RunRecord) -> Value {
    let mut body = serde_json::to_value(run).unwrap_or_else(|_| json!({}));
    if let Value::Object(fields) = &mut body {
        fields.insert("usage".into(), json!(run.usage()));
        let cost = run
            .cost_usd()
            .and_then(|c| c.to_string().parse::<f64>().ok());
        fields.insert("cost_usd".into(), json!(cost));
        let (key, result) = match run.status {
            RunStatus::Completed => ("output", run.result.clone()),
            _ => (
                "error",
                run.result.as_ref().and_then(|r| r.get("error").cloned()),
            ),
        };
        if let Some(result) = result {
            fields.insert(key.into(), result);
        }
        if run.status != RunStatus::Completed {
            let resume = format!("/runs/{}/resume", run.run_id);
            fields.insert("resume".into(), json!(resume));
        }
    }
    body
}

/// `POST /runs/{id}/resume`: runs the run on from its journal. A completed run answers
/// its output again; one another caller is running answers 409.
async fn resume(shared: Arc<Shared>, runs: Arc<Runs>, id: String, headers: HeaderMap) -> Response {
    let caller = match shared.identity.resolve(&headers) {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    let run = match within(Duration::from_secs(5), runs.store.get(id.as_str().into())).await {
        Err(err) => return store_failed(&err),
        Ok(Some(run)) if visible_to(&run, &caller) => run,
        Ok(_) => return unknown_run(&id),
    };
    let Some(state) = runs.endpoint(&run.endpoint).cloned() else {
        return conflict(
            &run,
            format!(
                "run {} belongs to `{}`, which this app does not serve as a durable endpoint",
                run.run_id, run.endpoint
            ),
        );
    };
    let (lease, write) = lease(&state);
    let claim = runs
        .store
        .claim(run.run_id.clone(), wall_ms(), lease_until(lease));
    let run = match within(write, claim).await {
        Err(err) => return store_failed(&err),
        Ok(Claim::Unknown) => return unknown_run(&id),
        Ok(Claim::Completed(run)) => return existing(&run),
        Ok(Claim::Busy(run)) => {
            return conflict(
                &run,
                format!(
                    "run {} is running (started or resumed by another request); read it at \
                     `GET /runs/{}`, or resume it once it stops",
                    run.run_id, run.run_id
                ),
            );
        }
        Ok(Claim::Claimed(run)) => run,
    };
    let run = *run;
    // The run's own caller, as it started: its limits apply to the resumed run too.
    let caller = Caller {
        user: run.user.clone(),
        tenant: run.tenant.clone(),
    };
    let journal = Journal::new(
        runs.store.clone(),
        run.run_id.clone(),
        run.steps,
        (lease, write),
        true,
    );
    respond(runs, state, caller, journal, run.input).await
}

/// The query of `GET /runs`, read by hand so that every bad one (an unknown status, a
/// limit out of range, a key given twice) gets a JSON 400 naming it.
#[derive(Debug, Default)]
struct ListQuery {
    status: Option<RunStatus>,
    limit: Option<usize>,
}

impl ListQuery {
    fn parse(pairs: Vec<(String, String)>) -> Result<ListQuery, String> {
        let mut query = ListQuery::default();
        let mut seen = std::collections::HashSet::new();
        for (key, value) in pairs {
            if !seen.insert(key.clone()) {
                return Err(format!("`{key}` is given twice; give it once"));
            }
            match key.as_str() {
                "status" => query.status = Some(parse_status(&value)?),
                "limit" => query.limit = Some(parse_limit(&value)?),
                _ => {}
            }
        }
        Ok(query)
    }
}

fn parse_status(asked: &str) -> Result<RunStatus, String> {
    RunStatus::parse(asked).ok_or_else(|| {
        let known: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!(
            "`status={asked}` is not a run status; use one of {}",
            known.join(", ")
        )
    })
}

fn parse_limit(asked: &str) -> Result<usize, String> {
    match asked.parse::<usize>() {
        Ok(limit) if (1..=MAX_LISTED).contains(&limit) => Ok(limit),
        _ => Err(format!(
            "`limit={asked}` is not a whole number from 1 to {MAX_LISTED}"
        )),
    }
}

/// `GET /runs?status=…&limit=…`: the newest runs first, for operators.
async fn list(
    shared: &Shared,
    runs: &Runs,
    pairs: Vec<(String, String)>,
    headers: &HeaderMap,
) -> Response {
    if let Err(refused) = shared.identity.operator_access(headers) {
        return refused;
    }
    let query = match ListQuery::parse(pairs) {
        Ok(query) => query,
        Err(problem) => {
            return plain_error(StatusCode::BAD_REQUEST, ErrorClass::InvalidInput, problem);
        }
    };
    let (status, limit) = (query.status, query.limit.unwrap_or(100));
    match within(Duration::from_secs(5), runs.store.list(status, limit)).await {
        Ok(found) => axum::Json(json!({ "runs": found })).into_response(),
        Err(err) => store_failed(&err),
    }
}
