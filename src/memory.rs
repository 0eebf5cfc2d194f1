//! Job memory: the typed sections of v33's memorySchema, each written by exactly one stage.
//!
//! Sections are stored as JSON documents, versioned (a human edit of the manifest adds a
//! version instead of overwriting). The exposed view is what the ICC shows.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One memory section. The names are the v33 memorySchema's, so documents written by this
/// pipeline read the same as the design's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// The brief after the InputSanitizer (stage: sanitize).
    SanitizedInput,
    /// Complexity score and the chosen path (stage: route).
    Routing,
    /// Script and scenes (stage: planning).
    ProductionManifest,
    /// Style, palette, mood, lighting (stage: planning).
    ConsistencyMarkers,
    /// The render plan and subtitle cues (stage: translating).
    PromptBundle,
    /// Tier and backend chosen, with the alternatives (stage: costing).
    OptimizedBackendSelection,
    /// Cost estimate (stage: costing).
    CostCertification,
    /// Narration per scene and language: clips, speech durations, word timings, voice,
    /// engine, real-time factor, fitted scene durations (stage: voicing).
    Narration,
    /// Video, preview, keyframes, subtitles (stage: rendering).
    GeneratedAssets,
    /// The technical QA report (stage: technical_qa).
    TechnicalValidationReport,
    /// The semantic QA report (stage: semantic_qa).
    ConsistencyReport,
    /// The supervisor's decision (stage: supervising).
    FinalApproval,
    /// The deliverables with sizes and checksums (stage: delivering).
    DeliveryManifest,
}

impl Section {
    /// Every section in pipeline order.
    pub const ALL: [Section; 13] = [
        Section::SanitizedInput,
        Section::Routing,
        Section::ProductionManifest,
        Section::ConsistencyMarkers,
        Section::PromptBundle,
        Section::OptimizedBackendSelection,
        Section::CostCertification,
        Section::Narration,
        Section::GeneratedAssets,
        Section::TechnicalValidationReport,
        Section::ConsistencyReport,
        Section::FinalApproval,
        Section::DeliveryManifest,
    ];

    /// The sections the ICC shows (DESIGN §3).
    pub const EXPOSED: [Section; 4] = [
        Section::ProductionManifest,
        Section::CostCertification,
        Section::ConsistencyReport,
        Section::DeliveryManifest,
    ];

    /// The section's name in storage and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::SanitizedInput => "sanitized_input",
            Section::Routing => "routing",
            Section::ProductionManifest => "production_manifest",
            Section::ConsistencyMarkers => "consistency_markers",
            Section::PromptBundle => "prompt_bundle",
            Section::OptimizedBackendSelection => "optimized_backend_selection",
            Section::CostCertification => "cost_certification",
            Section::Narration => "narration",
            Section::GeneratedAssets => "generated_assets",
            Section::TechnicalValidationReport => "technical_validation_report",
            Section::ConsistencyReport => "consistency_report",
            Section::FinalApproval => "final_approval",
            Section::DeliveryManifest => "delivery_manifest",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Section {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Section::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| format!("unknown memory section '{s}'"))
    }
}

/// One write into a section, as a stage produces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryWrite {
    /// The section written.
    pub section: Section,
    /// The document.
    pub content: serde_json::Value,
    /// Who wrote it: a stage name, or a person for human edits.
    pub author: String,
    /// The writing agent's metadata (model used, timings), when an agent wrote it.
    pub metadata: Option<serde_json::Value>,
}

impl MemoryWrite {
    /// A write by a pipeline stage.
    pub fn by_stage(
        section: Section,
        stage: &str,
        content: serde_json::Value,
        metadata: Option<serde_json::Value>,
    ) -> Self {
        Self { section, content, author: format!("stage:{stage}"), metadata }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_names_round_trip() {
        for s in Section::ALL {
            assert_eq!(s.as_str().parse::<Section>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::String(s.as_str().into()));
        }
        assert!("nope".parse::<Section>().is_err());
    }
}
