//! Orchestration overhead per job: every transition of the happy path through the pure
//! machine plus its journaling (memory write + history line + state) in SQLite on disk (WAL),
//! without the stages' own work. The design target is < 5 ms per job.

use criterion::{Criterion, criterion_group, criterion_main};

use aiprod::memory::{MemoryWrite, Section};
use aiprod::pipeline::machine::{Decision, Event, Machine};
use aiprod::store::{NewEvent, NewJob, SqliteStore, StepCommit, Store};

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

fn one_job(store: &SqliteStore, n: u64) {
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

criterion_group!(benches, orchestration);
criterion_main!(benches);
