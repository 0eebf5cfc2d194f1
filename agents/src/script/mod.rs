//! The script: what the video says, written from what the brief means.
//!
//! A brief mixes *direction* (how to make the video: "a calm 15-second teaser", "in four
//! scenes", "end with the logo") with *content* (what it says: the subject, the points, the
//! numbers and names). [`analysis`] separates them and drops text that tries to steer the
//! system ([`injection`]); [`writer`] turns the content into one narration line and one
//! caption per scene, sized to the time the voice has ([`speech`]); [`check`] holds every
//! writer (the planner, the built-in model) to the same rules — facts kept, nothing
//! invented, no direction read aloud — and repairs what fails.
//!
//! Module map: [`text`] (sentences, words), [`lexicon`] (the language-specific word
//! lists), [`facts`] (numbers, names, quoted strings).

pub mod analysis;
pub mod check;
pub mod facts;
pub mod injection;
pub mod lexicon;
pub mod speech;
pub mod text;
pub mod writer;

pub use analysis::{BriefAnalysis, analyze};
pub use check::{LineAction, ScriptReport, review};
pub use injection::SuspiciousInstruction;
pub use writer::SceneText;
