//! Orchestration overhead per job: every transition of the happy path through the pure
//! machine plus its journaling (memory write + history line + state) in SQLite on disk (WAL),
//! without the stages' own work. The design target is < 5 ms per job.
//!
//! And the queue's overhead per step, on each backend: a worker claims a queued job, commits
//! one step under its ownership and releases it (PostgreSQL at `AIPROD_TEST_PG_URL`, default
//! the local server, in a scratch database; left out with a message when none answers).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use aiprod::memory::{MemoryWrite, Section};
use aiprod::pipeline::machine::State;
use aiprod::pipeline::machine::{Decision, Event, Machine};
use aiprod::store::pg::{LOCAL_URL, ScratchDatabase};
use aiprod::store::service::ServiceStore;
use aiprod::store::{Database, NewEvent, NewJob, SqliteStore, StepCommit, Store, StoreUrl};

const PATH: [(Event, Option<Section>); 10] = [
    (Event::InputAccepted, Some(Section::SanitizedInput)),
    (Event::Routed { fast_track: true }, Some(Section::Routing)),
    (Event::Planned, Some(Section::ProductionManifest)),
    (Event::Translated, Some(Section::PromptBundle)),
    (Event::Costed { plan_review: false }, Some(Section::CostCertification)),
    (Event::Rendered, Some(Section::GeneratedAssets)),
    (Event::TechnicalPassed, Some(Section::TechnicalValidationReport)),
    (Event::SemanticScored, Some(Section::ConsistencyReport)),
    (Event::Decided { decision: Decision::Approve }, Some(Section::FinalApproval)),
    (Event::DeliveryPacked, Some(Section::DeliveryManifest)),
];

fn one_job(store: &dyn Store, n: u64) {
    let id = format!("bench-{n}");
    let job = store
        .create_job(&NewJob {
            id: id.clone(),
            request: serde_json::json!({"content": "A calm teaser for a bakery at dawn."}),
            preset: Some("quick_social".into()),
            brand_id: None,
            auto_approve: true,
        })
        .expect("create job");
    let mut machine = Machine::restore(job.state, 1);
    let payload = serde_json::json!({"scenes": [{"caption": "Fresh bread at dawn", "duration_s": 5.0}], "score": 0.91});
    for (event, section) in PATH {
        let from = machine.state().clone();
        let to = machine.apply(&event).expect("happy path").clone();
        let writes = section.map(|s| MemoryWrite::by_stage(s, "bench", payload.clone(), None)).into_iter().collect();
        store
            .commit_step(&StepCommit {
                job_id: id.clone(),
                from,
                to,
                event: NewEvent { event: event.name().into(), duration_ms: 1, attempt: 1, error: None, detail: None },
                writes,
                audit: vec![],
                cache: vec![],
                owner: None,
            })
            .expect("commit");
    }
}

fn orchestration(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("bench.db")).expect("open store");
    let mut n = 0u64;
    c.bench_function("job_transitions_and_journaling_sqlite_wal", |b| {
        b.iter(|| {
            n += 1;
            one_job(&store, n)
        })
    });
    c.bench_function("state_machine_happy_path_only", |b| {
        b.iter(|| {
            let mut m = Machine::new(1);
            for (event, _) in PATH {
                m.apply(&event).expect("happy path");
            }
        })
    });
}

/// Queue one job, then claim it, commit one step as the claiming worker (into plan review,
/// so the released job leaves the queue) and release it.
fn claim_commit(store: &dyn Database, n: u64) {
    let id = format!("queued-{n}");
    store
        .create_job(&NewJob {
            id: id.clone(),
            request: serde_json::json!({"content": "A calm teaser for a bakery at dawn."}),
            preset: None,
            brand_id: None,
            auto_approve: false,
        })
        .expect("create job");
    let job = store.claim_next("bench-worker").expect("claim").expect("a queued job");
    let write = MemoryWrite::by_stage(Section::SanitizedInput, "bench", serde_json::json!({"content": "x"}), None);
    store
        .commit_step(&StepCommit {
            job_id: job.id.clone(),
            from: State::Init {},
            to: State::PlanReview {},
            event: NewEvent { event: "input_accepted".into(), duration_ms: 1, attempt: 1, error: None, detail: None },
            writes: vec![write],
            audit: vec![],
            cache: vec![],
            owner: Some("bench-worker".into()),
        })
        .expect("commit");
    store.release(&job.id, "bench-worker").expect("release");
}

fn queue(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = aiprod::store::open(&StoreUrl::Sqlite(dir.path().join("queue.db")), Duration::from_secs(30))
        .expect("open sqlite");
    let mut n = 0u64;
    c.bench_function("queue_claim_commit_release_sqlite", |b| {
        b.iter(|| {
            n += 1;
            claim_commit(&*sqlite, n)
        })
    });
    let admin = std::env::var("AIPROD_TEST_PG_URL").unwrap_or_else(|_| LOCAL_URL.into());
    let Ok(db) = ScratchDatabase::create(&admin) else {
        eprintln!("queue_claim_commit_release_postgres: no PostgreSQL answers at the test URL; left out");
        return;
    };
    let pg = aiprod::store::open(&StoreUrl::Postgres(db.url.clone()), Duration::from_secs(30)).expect("open postgres");
    c.bench_function("queue_claim_commit_release_postgres", |b| {
        b.iter(|| {
            n += 1;
            claim_commit(&*pg, n)
        })
    });
}

criterion_group!(benches, orchestration, queue);
criterion_main!(benches);
