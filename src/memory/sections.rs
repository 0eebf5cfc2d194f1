//! One Rust type per memory section, each knowing its [`Section`].
//!
//! The documents the pipeline's own stages define live here (routing, generated assets,
//! backend selection, cost certification, delivery manifest); documents produced by agents
//! (manifest, markers, render plan, reports, verdict) keep their types in the agents crate
//! and get their [`SectionDoc`] impl here, so this file is the whole map from section to
//! type. Readers anywhere in the crate (stages, finance, the CLI summary, the API) go through
//! these types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use agents::domain::{ConsistencyMarkers, ProductionManifest, VideoSettings};
use agents::planner::Complexity;
use agents::render::RenderOutput;
use agents::semantic::SemanticReport;
use agents::supervisor::Verdict;
use agents::visual::{LanguageStatus, Translation};
use serde::{Deserialize, Serialize};

use super::{Section, SectionDoc};
use crate::finance::certificate::Certificate;
use crate::finance::daily::DailyStatus;
use crate::finance::{FastTrackCheck, Orchestration, Reconciliation};
use crate::qa_gate::TechnicalReport;
use crate::sanitize::SanitizedInput;

/// Binds each section's Rust type to its section, one line per pair.
macro_rules! section_docs {
    ($($ty:ty => $section:ident),* $(,)?) => {
        $(impl SectionDoc for $ty {
            const SECTION: Section = Section::$section;
        })*
    };
}

section_docs! {
    SanitizedInput => SanitizedInput,
    ProductionManifest => ProductionManifest,
    ConsistencyMarkers => ConsistencyMarkers,
    Translation => PromptBundle,
    TechnicalReport => TechnicalValidationReport,
    SemanticReport => ConsistencyReport,
    Verdict => FinalApproval,
    agents::voice::narrate::Narration => Narration,
}

/// The routing decision, journaled in the `routing` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Routing {
    /// The complexity score and its parts.
    pub complexity: Complexity,
    /// Whether the fast track was chosen.
    pub fast_track: bool,
    /// Why, in words.
    pub reason: String,
    /// The `forceFastTrackIfCostExceeds` check on the brief's estimate.
    #[serde(default)]
    pub cost_check: Option<FastTrackCheck>,
}
impl SectionDoc for Routing {
    const SECTION: Section = Section::Routing;
}

/// What the render stage journals: the render's output with paths relative to the job
/// directory, so a data directory can be moved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratedAssets {
    /// Which render of the job this is (1 = first).
    pub attempt: u32,
    /// The renderer's report, paths relative to the job directory.
    pub output: RenderOutput,
}
impl SectionDoc for GeneratedAssets {
    const SECTION: Section = Section::GeneratedAssets;
}

/// What the costing stage journals in `optimized_backend_selection`: the tier and backend
/// chosen, the render settings that follow from them (the render and technical QA stages
/// read `video` from here, so a tier change re-sizes the render), and the whole decision with
/// the alternatives it rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackendSelection {
    /// The tier rendered.
    pub tier: String,
    /// `local-cpu` or `remote:<name>`.
    pub backend: crate::finance::Backend,
    /// The tier the brief asked for.
    pub requested_tier: String,
    /// Encoder settings of the chosen tier, sized for the brief's aspect ratio.
    pub video: VideoSettings,
    /// The FinancialOrchestrator's decision, every option priced, the rules applied.
    pub orchestration: Orchestration,
    /// Where the decision was audited (the costing step's history line carries the entry's
    /// seq and hash), or why it was not.
    pub audit: serde_json::Value,
}
impl SectionDoc for BackendSelection {
    const SECTION: Section = Section::OptimizedBackendSelection;
}

/// What the costing stage journals in `cost_certification`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostCertification {
    /// The signed certificate (also written to `cost_certificate.json`).
    pub certificate: Certificate,
    /// The brief's budget.
    pub budget: Option<f64>,
    /// The chosen option breaks a money rule (the supervisor reviews it).
    pub over_budget: bool,
    /// The day's spend when the job was costed.
    pub daily: DailyStatus,
    /// Where the signing key came from.
    pub signing_key: String,
}
impl SectionDoc for CostCertification {
    const SECTION: Section = Section::CostCertification;
}

/// One deliverable in the delivery manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deliverable {
    /// Path relative to the job directory.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// The delivery's cost: the reconciliation of actual against estimate, or why there is none
/// (a job costed before certificates existed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DeliveryCost {
    /// Actual cost against the certified estimate.
    Reconciled(Box<Reconciliation>),
    /// Nothing to reconcile, and why.
    NotReconciled {
        /// Why.
        note: String,
    },
}

impl DeliveryCost {
    /// The reconciliation, when there is one.
    pub fn reconciled(&self) -> Option<&Reconciliation> {
        match self {
            DeliveryCost::Reconciled(r) => Some(r),
            DeliveryCost::NotReconciled { .. } => None,
        }
    }
}

/// What the delivering stage journals in `delivery_manifest`: every deliverable with its
/// size and checksum, the subtitle languages, and the reconciled cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryManifest {
    /// The job.
    pub job_id: String,
    /// The working directory the job was delivered from (on the worker that delivered it).
    pub directory: PathBuf,
    /// Where the deliverables live for every node: the artifact directory, or the
    /// object-storage URL (`s3://bucket/prefix/<job>/`). Every file listed here was stored
    /// there before this manifest was committed (upload, then record). Absent in manifests
    /// written before artifact stores existed (then it is `directory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Every deliverable, sorted by path.
    pub files: Vec<Deliverable>,
    /// One entry per requested language (source, translated or unavailable with the reason).
    pub subtitles: Vec<LanguageStatus>,
    /// Actual cost against the estimate.
    pub cost: DeliveryCost,
    /// What the licences of the voices (and other assets) used ask to be credited.
    #[serde(default)]
    pub credits: Vec<String>,
    /// Fields added by later versions, kept so an older reader does not drop them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}
impl SectionDoc for DeliveryManifest {
    const SECTION: Section = Section::DeliveryManifest;
}

impl DeliveryManifest {
    /// The reconciled actual total in USD, when the delivery was reconciled.
    pub fn actual_total(&self) -> Option<f64> {
        self.cost.reconciled().map(|r| r.actual.total)
    }

    /// Total bytes delivered.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}
