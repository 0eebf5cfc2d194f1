//! Job memory: the typed sections of v33's memorySchema, each written by exactly one stage.
//!
//! Sections are stored as JSON documents, versioned (a human edit of the manifest adds a
//! version instead of overwriting). The exposed view is what the ICC shows.
//!
//! This module is the typed layer: each section's document is a Rust type implementing
//! [`SectionDoc`] (it knows its [`Section`]), read with [`Memory::read`] / [`Memory::get`] or
//! [`decode`] and written with [`MemoryWrite::of`]. JSON appears only at the storage boundary,
//! so a renamed field is a compile error or a named decode error, never a silent 0 or None.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub mod sections;

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

/// The latest version of a memory section, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// Version number, from 1.
    pub version: i64,
    /// When it was written.
    pub written_at: chrono::DateTime<chrono::Utc>,
    /// Who wrote it.
    pub author: String,
    /// The document.
    pub content: serde_json::Value,
    /// The writing agent's metadata.
    pub metadata: Option<serde_json::Value>,
}

/// A section's document type. Reading or writing memory names the type, and the type names
/// the section, so the two cannot disagree.
pub trait SectionDoc: Serialize + DeserializeOwned {
    /// The section this document is stored in.
    const SECTION: Section;
}

/// Why a section could not be read as its type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MemoryError {
    /// The section has not been written (the stage that writes it has not run).
    #[error("memory section {0} has not been written")]
    Missing(Section),
    /// The stored document does not match its type.
    #[error("memory section {section} is malformed: {message}")]
    Malformed {
        /// The section.
        section: Section,
        /// serde's message, naming the field.
        message: String,
    },
}

/// Decode a stored entry as its section's document type.
pub fn decode<T: SectionDoc>(entry: &MemoryEntry) -> Result<T, MemoryError> {
    T::deserialize(&entry.content).map_err(|e| MemoryError::Malformed { section: T::SECTION, message: e.to_string() })
}

/// A job's memory as read at the start of a stage: the latest version of every written
/// section. Stages read their inputs from this snapshot instead of holding a store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    entries: BTreeMap<Section, MemoryEntry>,
}

impl Memory {
    /// A snapshot over the store's latest entries.
    pub fn new(entries: BTreeMap<Section, MemoryEntry>) -> Self {
        Self { entries }
    }

    /// The raw entry (version, author, metadata) of a section, if written.
    pub fn entry(&self, section: Section) -> Option<&MemoryEntry> {
        self.entries.get(&section)
    }

    /// The section's document; an error when it is missing or malformed.
    pub fn read<T: SectionDoc>(&self) -> Result<T, MemoryError> {
        self.get::<T>()?.ok_or(MemoryError::Missing(T::SECTION))
    }

    /// The section's document if written; an error only when it is malformed.
    pub fn get<T: SectionDoc>(&self) -> Result<Option<T>, MemoryError> {
        self.entries.get(&T::SECTION).map(decode::<T>).transpose()
    }

    /// Every written section, in pipeline order.
    pub fn entries(&self) -> &BTreeMap<Section, MemoryEntry> {
        &self.entries
    }
}

/// Whether a memory entry was written by a person (plan review) rather than a stage
/// ([`MemoryWrite::by_stage`] authors are `stage:<name>`).
pub fn is_human_author(author: &str) -> bool {
    !author.starts_with("stage:")
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
    /// A stage's write of a typed document into its section.
    pub fn of<T: SectionDoc>(
        stage: &str,
        doc: &T,
        metadata: Option<serde_json::Value>,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::by_stage(T::SECTION, stage, serde_json::to_value(doc)?, metadata))
    }

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
