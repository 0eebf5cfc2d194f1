//! Identical-request reuse: a request whose normalised form (every sanitised option), config
//! version and agent/model versions match a job delivered within the cache TTL gets that
//! job's artifacts back without running any stage. The key is recorded when a job is
//! delivered; a lookup only counts as a hit when the job is still delivered, its video is
//! still in the artifact store and no person edited its plan (an edited plan no longer follows from the
//! request alone).

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::artifacts::ArtifactStore;
use crate::config::Config;
use crate::memory::Section;
use crate::memory::is_human_author;
use crate::pipeline::machine::State;
use crate::sanitize::SanitizedInput;
use crate::store::Store;
use crate::store::cache::ConsistencyCache;

/// The request's identity: sha256 over the sanitised input, the config version and the
/// versions of every agent and model that shapes the output.
pub fn request_key(config: &Config, input: &SanitizedInput) -> String {
    let installed = |m: &str| agents::models::check_installed(&config.models.dir, m).is_ok();
    let identity = json!({
        "input": input,
        "config_version": config.version,
        "planner": agents::planner::PLANNER_VERSION,
        "director": agents::director::DIRECTOR_VERSION,
        "render": agents::render::RENDER_VERSION,
        "semantic": agents::semantic::SEMANTIC_VERSION,
        "narration": agents::voice::narrate::NARRATION_VERSION,
        "models": {
            agents::models::SMOLLM2_ID: installed(agents::models::SMOLLM2_ID),
            agents::models::MINILM_ID: installed(agents::models::MINILM_ID),
            agents::models::PIPER_JOE_ID: installed(agents::models::PIPER_JOE_ID),
        },
    });
    hex::encode(Sha256::digest(identity.to_string().as_bytes()))
}

/// The delivered job an identical request can reuse, if any (counts a hit or a miss).
/// `None` as well when the consistency cache is switched off (`reuseAcrossJobs: false`) or
/// the caller has none. The delivering stage records deliveries (a cache effect committed
/// with its step).
pub async fn reusable_job(
    config: &Config,
    cache: Option<&ConsistencyCache>,
    store: &dyn Store,
    artifacts: &dyn ArtifactStore,
    input: &SanitizedInput,
) -> Option<String> {
    if !config.consistency_cache.reuse_across_jobs {
        return None;
    }
    let cache = cache?;
    let found = match cache.delivered(&request_key(config, input)).await {
        Some(id) => {
            let ok = usable(store, artifacts, &id).await;
            ok.then_some(id)
        }
        None => None,
    };
    crate::store::cache::count_request_lookup(found.is_some());
    found
}

async fn usable(store: &dyn Store, artifacts: &dyn ArtifactStore, id: &str) -> bool {
    let delivered = store.job(id).is_ok_and(|j| matches!(j.state, State::Delivered {}));
    let video = matches!(artifacts.head(id, "video.mp4").await, Ok(Some(_)));
    let edited =
        store.section(id, Section::ProductionManifest).ok().flatten().is_some_and(|e| is_human_author(&e.author));
    delivered && video && !edited
}
