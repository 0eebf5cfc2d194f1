//! The store suite: every behaviour the pipeline and the service rely on, written once and
//! run against both backends. SQLite runs everywhere; PostgreSQL needs a server
//! (`AIPROD_TEST_PG_URL`, default [`LOCAL_URL`](crate::store::pg::LOCAL_URL); each test
//! gets a scratch database), so those tests are ignored unless asked for (`make test` does).

use std::sync::Arc;
use std::time::Duration;

use super::pg::ScratchDatabase;
use super::service::{Claim, IdempotencyClaim, JobApiOptions, Submission};
use super::*;
use crate::finance::audit::{AuditKind, verify};
use crate::store::cache::{KIND_DELIVERED, delivered_entry};

/// The admin URL tests create scratch databases through.
pub fn test_pg_url() -> String {
    std::env::var("AIPROD_TEST_PG_URL").unwrap_or_else(|_| super::pg::LOCAL_URL.into())
}

/// Claims in the suite lapse after this long (PostgreSQL), so takeovers are testable.
const LEASE: Duration = Duration::from_millis(1500);

/// One backend under test: opens handles on the same database (as separate processes would).
/// Other suites of the store module (the consistency cache's) run on it too.
pub(super) enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(ScratchDatabase),
}

impl Backend {
    pub(super) fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    pub(super) fn postgres() -> Self {
        Self::Postgres(ScratchDatabase::create(&test_pg_url()).expect("a PostgreSQL server for the store suite"))
    }

    fn url(&self) -> StoreUrl {
        match self {
            Self::Sqlite(dir) => StoreUrl::Sqlite(dir.path().join("aiprod.db")),
            Self::Postgres(db) => StoreUrl::Postgres(db.url.clone()),
        }
    }

    /// A new handle (connection) on the backend's database.
    pub(super) fn open(&self) -> Arc<dyn Database> {
        open(&self.url(), LEASE).unwrap()
    }

    fn leases(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

fn new_job(store: &dyn Database, id: &str, auto_approve: bool) -> JobRecord {
    store
        .create_job(&NewJob {
            id: id.into(),
            request: serde_json::json!({"content": "a brief for a test"}),
            preset: Some("quick_social".into()),
            brand_id: None,
            auto_approve,
        })
        .unwrap()
}

fn step(id: &str, from: State, to: State, writes: Vec<MemoryWrite>) -> StepCommit {
    StepCommit {
        job_id: id.into(),
        from,
        to,
        event: NewEvent { event: "input_accepted".into(), duration_ms: 3, attempt: 1, error: None, detail: None },
        writes,
        audit: vec![],
        cache: vec![],
        owner: None,
    }
}

fn commit_writes_memory_history_and_state_together(b: &Backend) {
    let store = b.open();
    new_job(&*store, "j1", true);
    let w = MemoryWrite::by_stage(Section::SanitizedInput, "sanitize", serde_json::json!({"content": "x"}), None);
    store.commit_step(&step("j1", State::Init {}, State::Sanitized {}, vec![w])).unwrap();
    assert_eq!(store.job("j1").unwrap().state, State::Sanitized {});
    let h = store.history("j1").unwrap();
    assert_eq!((h.len(), h[0].from.as_str(), h[0].to.as_str()), (1, "init", "sanitized"));
    let m = store.memory("j1").unwrap();
    assert_eq!(m[&Section::SanitizedInput].content, serde_json::json!({"content": "x"}));
    assert_eq!(m[&Section::SanitizedInput].author, "stage:sanitize");
}

fn stale_commit_is_a_conflict_and_changes_nothing(b: &Backend) {
    let store = b.open();
    new_job(&*store, "j1", true);
    store.commit_step(&step("j1", State::Init {}, State::Sanitized {}, vec![])).unwrap();
    let w = MemoryWrite::by_stage(Section::SanitizedInput, "sanitize", serde_json::json!(1), None);
    let err = store.commit_step(&step("j1", State::Init {}, State::Sanitized {}, vec![w])).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(store.history("j1").unwrap().len(), 1);
    assert!(store.memory("j1").unwrap().is_empty());
}

fn sections_are_versioned(b: &Backend) {
    let store = b.open();
    new_job(&*store, "j1", true);
    let w = |v: i32| MemoryWrite::by_stage(Section::ProductionManifest, "planning", serde_json::json!(v), None);
    store.commit_step(&step("j1", State::Init {}, State::Sanitized {}, vec![w(1)])).unwrap();
    store.commit_step(&step("j1", State::Sanitized {}, State::Planning { fast_track: true }, vec![w(2)])).unwrap();
    let e = store.section("j1", Section::ProductionManifest).unwrap().unwrap();
    assert_eq!((e.version, e.content.clone()), (2, serde_json::json!(2)));
    assert_eq!(store.memory("j1").unwrap()[&Section::ProductionManifest].version, 2);
    assert_eq!(store.section_versions("j1", Section::ProductionManifest).unwrap().len(), 2);
}

fn resumable_excludes_terminal_and_waiting_jobs(b: &Backend) {
    let store = b.open();
    for id in ["a", "b", "c"] {
        new_job(&*store, id, true);
    }
    store.commit_step(&step("b", State::Init {}, State::Delivered {}, vec![])).unwrap();
    store.commit_step(&step("c", State::Init {}, State::PlanReview {}, vec![])).unwrap();
    let ids: Vec<_> = store.resumable_jobs().unwrap().into_iter().map(|j| j.id).collect();
    assert_eq!(ids, ["a"]);
}

fn data_survives_reopening(b: &Backend) {
    {
        let store = b.open();
        new_job(&*store, "j1", true);
        store.commit_step(&step("j1", State::Init {}, State::Sanitized {}, vec![])).unwrap();
        store.append(AuditKind::CostDecision, Some("j1"), &serde_json::json!({"estimate": 0.1 + 0.2})).unwrap();
    }
    let store = b.open();
    assert_eq!(store.job("j1").unwrap().state, State::Sanitized {});
    assert!(matches!(store.job("zzz"), Err(StoreError::NotFound(_))));
    assert_eq!(store.entries().unwrap().len(), 1);
}

fn day_spend_reads_the_typed_delivery_manifest(b: &Backend) {
    use crate::memory::sections::{DeliveryCost, DeliveryManifest};
    let config = crate::config::Config::builtin();
    let prices = &config.pricing.table;
    let store = b.open();
    let cpu = |ms: u64| NewEvent {
        event: "stage".into(),
        duration_ms: ms,
        attempt: 1,
        error: None,
        detail: Some(serde_json::json!({"cpu_ms": ms})),
    };
    // A delivered job: its reconciled total counts, its CPU lines do not (again).
    new_job(&*store, "delivered", true);
    let history = vec![HistoryEvent {
        seq: 1,
        at: chrono::Utc::now(),
        from: "rendering".into(),
        to: "technical_qa".into(),
        event: "rendered".into(),
        duration_ms: 9000,
        attempt: 1,
        error: None,
        detail: Some(serde_json::json!({"cpu_ms": 9000})),
    }];
    let estimate =
        crate::finance::model::price(prices, &[("rendering".into(), 5.0)], &Default::default(), None, 0, 10.0);
    let reconciled = crate::finance::reconcile(&config, prices, &estimate, &history, 1_000_000);
    let manifest = DeliveryManifest {
        job_id: "delivered".into(),
        directory: "jobs/delivered".into(),
        location: None,
        files: vec![],
        subtitles: vec![],
        cost: DeliveryCost::Reconciled(Box::new(reconciled)),
        credits: Vec::new(),
        extra: Default::default(),
    };
    let expected = manifest.actual_total().unwrap();
    assert!(expected > 0.0);
    let write = MemoryWrite::of("delivering", &manifest, None).unwrap();
    let mut delivered = step("delivered", State::Init {}, State::Delivered {}, vec![write]);
    delivered.event = cpu(9000);
    store.commit_step(&delivered).unwrap();
    // A job still running: its journaled CPU time counts.
    new_job(&*store, "running", true);
    let mut running = step("running", State::Init {}, State::Sanitized {}, vec![]);
    running.event = cpu(1500);
    store.commit_step(&running).unwrap();
    let mut more = step("running", State::Sanitized {}, State::Costing {}, vec![]);
    more.event = cpu(500);
    store.commit_step(&more).unwrap();

    let spend = store.day_spend(chrono::Utc::now().date_naive()).unwrap();
    assert_eq!(spend.jobs, 2);
    assert!((spend.reconciled_usd - expected).abs() < 1e-12, "{spend:?} vs {expected}");
    assert!((spend.unreconciled_cpu_s - 2.0).abs() < 1e-12, "{spend:?}");
    let yesterday = chrono::Utc::now().date_naive().pred_opt().unwrap();
    assert_eq!(store.day_spend(yesterday).unwrap(), DaySpend::default());
}

fn a_conflicting_step_writes_none_of_its_audit_or_cache_entries(b: &Backend) {
    let store = b.open();
    new_job(&*store, "j1", true);
    let with_effects = |from: State| {
        let mut s = step("j1", from, State::Sanitized {}, vec![]);
        s.audit = vec![AuditAppend { kind: AuditKind::CostDecision, payload: serde_json::json!({"n": 1}) }];
        s.cache = vec![delivered_entry("k", "j1")];
        s
    };
    let err = store.commit_step(&with_effects(State::Costing {})).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    assert!(store.entries().unwrap().is_empty());
    assert!(store.cache_since(KIND_DELIVERED, 0).unwrap().is_empty());
    store.commit_step(&with_effects(State::Init {})).unwrap();
    assert_eq!(store.entries().unwrap().len(), 1);
    assert_eq!(store.cache_since(KIND_DELIVERED, 0).unwrap().len(), 1);
    let line = store.history("j1").unwrap().pop().unwrap();
    assert_eq!(line.detail.unwrap()["audit"][0]["kind"], "cost_decision");
}

fn appended_entries_chain_from_every_handle(b: &Backend) {
    let (one, two) = (b.open(), b.open());
    for (i, v) in [0.1 + 0.2, 1.0 / 3.0, 1e-9, 2.5].into_iter().enumerate() {
        let store = if i % 2 == 0 { &one } else { &two };
        store.append(AuditKind::CostDecision, Some("j"), &serde_json::json!({"estimate": v})).unwrap();
    }
    assert!(one.latest_pricing().unwrap().is_none());
    let entries = b.open().entries().unwrap();
    assert_eq!(verify(&entries), Ok(4));
    assert_eq!(entries[1].prev_hash, entries[0].hash);
}

fn a_job_is_claimed_once(b: &Backend) {
    let store = b.open();
    new_job(&*store, "cli", true);
    new_job(&*store, "a", false);
    let first = store.claim_next("w1").unwrap().unwrap();
    assert_eq!(first.id, "a");
    assert!(store.claim_next("w2").unwrap().is_none(), "a CLI job (auto-approve) is the CLI's to drive");
    assert_eq!(store.queued_count().unwrap(), 0);
    store.release("a", "w1").unwrap();
    assert_eq!(store.queued_count().unwrap(), 1);
    assert_eq!(store.claim_next("w2").unwrap().unwrap().id, "a");
    assert_eq!(store.claim_job("a", "w3").unwrap(), if b.leases() { Claim::Held("w2".into()) } else { Claim::Claimed });
}

fn the_queue_is_ordered_by_priority_then_submission(b: &Backend) {
    let store = b.open();
    for (id, priority) in [
        ("low-1", Some("low")),
        ("normal-1", None),
        ("high-1", Some("High ")),
        ("normal-2", Some("normal")),
        ("high-2", Some("high")),
    ] {
        let mut request = serde_json::json!({"content": "a brief for a test"});
        if let Some(p) = priority {
            request["priority"] = p.into();
        }
        store
            .create_job(&NewJob { id: id.into(), request, preset: None, brand_id: None, auto_approve: false })
            .unwrap();
    }
    let order: Vec<String> = std::iter::from_fn(|| store.claim_next("w").unwrap().map(|j| j.id)).collect();
    assert_eq!(order, ["high-1", "high-2", "normal-1", "normal-2", "low-1"]);
}

/// Four handles (as four workers would) race for 24 queued jobs: each job goes to exactly
/// one of them.
fn racing_workers_claim_each_job_exactly_once(b: &Backend) {
    let store = b.open();
    for i in 0..24 {
        new_job(&*store, &format!("job-{i:02}"), false);
    }
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let store = b.open();
            std::thread::spawn(move || {
                let owner = format!("worker-{w}");
                std::iter::from_fn(|| store.claim_next(&owner).unwrap().map(|j| j.id)).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut claimed: Vec<String> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    claimed.sort();
    let expected: Vec<String> = (0..24).map(|i| format!("job-{i:02}")).collect();
    assert_eq!(claimed, expected);
}

fn a_step_by_an_owner_that_lost_the_job_is_refused(b: &Backend) {
    let store = b.open();
    new_job(&*store, "a", false);
    assert_eq!(store.claim_next("w1").unwrap().unwrap().id, "a");
    let by = |owner: &str| {
        let mut s = step("a", State::Init {}, State::Sanitized {}, vec![]);
        s.owner = Some(owner.into());
        s
    };
    let err = store.commit_step(&by("w2")).unwrap_err();
    assert!(matches!(&err, StoreError::LeaseLost { holder, .. } if holder == "w1"), "{err}");
    assert_eq!(store.job("a").unwrap().state, State::Init {});
    assert!(store.history("a").unwrap().is_empty());
    store.commit_step(&by("w1")).unwrap();
    assert_eq!(store.job("a").unwrap().state, State::Sanitized {});
}

fn human_versions_need_the_expected_state(b: &Backend) {
    let store = b.open();
    new_job(&*store, "a", false);
    let w = MemoryWrite {
        section: Section::ProductionManifest,
        content: serde_json::json!({"x": 1}),
        author: "alice".into(),
        metadata: None,
    };
    let e = NewEvent { event: "manifest_edited".into(), duration_ms: 0, attempt: 0, error: None, detail: None };
    let err = store.write_human_versions("a", &State::PlanReview {}, std::slice::from_ref(&w), &e).unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }));
    store.write_human_versions("a", &State::Init {}, &[w], &e).unwrap();
    let v = store.section_versions("a", Section::ProductionManifest).unwrap();
    assert_eq!((v.len(), v[0].author.as_str()), (1, "alice"));
    assert_eq!(store.history("a").unwrap()[0].event, "manifest_edited");
}

/// Ten submissions with one key, from two handles (as two processes would), race: exactly
/// one job row exists afterwards and every loser is told who holds the key.
fn concurrent_idempotent_submissions_create_exactly_one_job(b: &Backend) {
    let stores = [b.open(), b.open()];
    let threads: Vec<_> = (0..10)
        .map(|i| {
            let store = stores[i % 2].clone();
            std::thread::spawn(move || {
                let new = NewJob {
                    id: format!("job-{i}"),
                    request: serde_json::json!({"content": "a brief for a test"}),
                    preset: None,
                    brand_id: None,
                    auto_approve: false,
                };
                let options = JobApiOptions { submitted_by: "k".into(), callback_url: None, webhook_secret: None };
                let claim = IdempotencyClaim { key_name: "k", key: "order-42", body_sha256: "h1" };
                store.create_api_job(&new, &options, Some(claim)).unwrap()
            })
        })
        .collect();
    let outcomes: Vec<Submission> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let created: Vec<&JobRecord> =
        outcomes.iter().filter_map(|o| if let Submission::Created(j) = o { Some(j) } else { None }).collect();
    assert_eq!(created.len(), 1, "{outcomes:?}");
    for o in &outcomes {
        if let Submission::Held { job_id, body_sha256 } = o {
            assert_eq!((job_id, body_sha256.as_str()), (&created[0].id, "h1"));
        }
    }
    assert_eq!(stores[0].list_jobs().unwrap().len(), 1);
    assert_eq!(stores[1].idempotent_job("k", "order-42").unwrap(), Some((created[0].id.clone(), "h1".into())));
    assert_eq!(stores[1].idempotent_job("other", "order-42").unwrap(), None);
    assert!(stores[0].job_api_options(&created[0].id).unwrap().is_some(), "API options written with the job");
}

fn comments_keys_pages_and_webhooks_round_trip(b: &Backend) {
    use super::service::{Cursor, JobFilter};
    let store = b.open();
    for id in ["a", "b", "c"] {
        new_job(&*store, id, false);
    }
    let root = store.add_comment("a", Section::ProductionManifest, None, "alice", "scene 2 is long").unwrap();
    let reply = store.add_comment("a", Section::ProductionManifest, Some(root.id), "bob", "trimmed").unwrap();
    assert!(store.add_comment("a", Section::ProductionManifest, Some(9999), "bob", "x").is_err());
    let thread = store.comments("a", Some(Section::ProductionManifest)).unwrap();
    assert_eq!(
        thread.iter().map(|c| (c.author.as_str(), c.parent_id)).collect::<Vec<_>>(),
        [("alice", None), ("bob", Some(root.id))]
    );
    assert_eq!(reply.parent_id, Some(root.id));
    store.create_api_key("ed", "editor", "abc123").unwrap();
    assert_eq!(store.api_key_by_hash("abc123").unwrap().unwrap().role, "editor");
    assert!(store.api_key_by_hash("nope").unwrap().is_none());
    let first = store.list_page(&JobFilter::default(), None, 2).unwrap();
    assert_eq!(first.len(), 2);
    let (last, at) = first.last().unwrap();
    let rest = store.list_page(&JobFilter::default(), Some(&Cursor { created_at: at.clone(), id: last.id.clone() }), 2);
    assert_eq!(rest.unwrap().len(), 1);
    store.record_webhook("a", "delivered", 1, "https://example.test/hook", Some(500), Some("server error")).unwrap();
    store.record_webhook("a", "delivered", 1, "https://example.test/hook", Some(200), None).unwrap();
    assert_eq!(store.execution_stats().unwrap().jobs_by_state, [("init".to_owned(), 3)]);
    store.ping().unwrap();
}

/// The API and the workers call the store from async tasks: opening, using and dropping a
/// handle there must neither panic nor block the runtime's threads for good.
fn a_handle_works_from_async_tasks(b: &Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = b.open();
        new_job(&*store, "a", false);
        let claimed = tokio::spawn(async move {
            let job = store.claim_next("w1").unwrap();
            drop(store);
            job
        });
        assert_eq!(claimed.await.unwrap().unwrap().id, "a");
    });
}

/// PostgreSQL only: a claim lapses when its owner stops heartbeating, another worker takes
/// the job over (journaled), and the first owner's step is then refused.
fn a_lapsed_lease_is_taken_over_and_the_old_owner_refused(b: &Backend) {
    let store = b.open();
    new_job(&*store, "a", false);
    assert_eq!(store.claim_next("w1").unwrap().unwrap().id, "a");
    // Heartbeats keep the claim past its first lease.
    for _ in 0..3 {
        std::thread::sleep(LEASE / 2);
        assert_eq!(store.heartbeat("w1").unwrap(), 1);
    }
    assert!(store.claim_next("w2").unwrap().is_none(), "a renewed lease is not taken");
    std::thread::sleep(LEASE + Duration::from_millis(300));
    assert_eq!(store.queued_count().unwrap(), 1, "a lapsed lease queues the job again");
    assert_eq!(store.claim_next("w2").unwrap().unwrap().id, "a");
    let line = store.history("a").unwrap().pop().unwrap();
    assert_eq!(line.event, "lease_taken_over");
    assert_eq!(line.detail.unwrap()["previous_owner"], "w1");
    assert_eq!(store.lease_takeovers().unwrap(), [("a".to_owned(), 1)]);
    let mut late = step("a", State::Init {}, State::Sanitized {}, vec![]);
    late.owner = Some("w1".into());
    assert!(matches!(store.commit_step(&late), Err(StoreError::LeaseLost { .. })));
    assert_eq!(store.heartbeat("w1").unwrap(), 0, "the old owner holds nothing");
}

/// Generates one `#[test]` per backend for each suite function.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::Backend::sqlite()) })*
        }
        mod postgres {
            $(#[test] #[ignore = "needs PostgreSQL (make test provides one)"] fn $name() { super::$name(&super::Backend::postgres()) })*
        }
    };
}

suite!(
    commit_writes_memory_history_and_state_together,
    stale_commit_is_a_conflict_and_changes_nothing,
    sections_are_versioned,
    resumable_excludes_terminal_and_waiting_jobs,
    data_survives_reopening,
    day_spend_reads_the_typed_delivery_manifest,
    a_conflicting_step_writes_none_of_its_audit_or_cache_entries,
    appended_entries_chain_from_every_handle,
    a_job_is_claimed_once,
    the_queue_is_ordered_by_priority_then_submission,
    racing_workers_claim_each_job_exactly_once,
    a_step_by_an_owner_that_lost_the_job_is_refused,
    human_versions_need_the_expected_state,
    concurrent_idempotent_submissions_create_exactly_one_job,
    comments_keys_pages_and_webhooks_round_trip,
    a_handle_works_from_async_tasks,
);

#[test]
#[ignore = "needs PostgreSQL (make test provides one)"]
fn postgres_a_lapsed_lease_is_taken_over_and_the_old_owner_refused() {
    a_lapsed_lease_is_taken_over_and_the_old_owner_refused(&Backend::postgres());
}
