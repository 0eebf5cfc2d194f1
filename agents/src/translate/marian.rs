//! Marian (opus-mt style) translation on candle: greedy decoding of one language pair.
//!
//! A model directory holds `config.json` (candle's Marian config), `model.safetensors`, and
//! the source and target tokenizers in `tokenizers` JSON format (`tokenizer.json`,
//! `tokenizer-target.json`). No such weights can be installed from this project's package
//! sources, so users point `translation.marian` in the config at their own directories; the
//! loading and decoding code is tested on tiny random weights.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::marian::{Config, MTModel};
use tokenizers::Tokenizer;

use super::{TranslateError, Translator};

/// A loaded Marian model for one pair.
pub struct MarianTranslator {
    from: String,
    to: String,
    name: String,
    config: Config,
    model: Mutex<MTModel>,
    source: Tokenizer,
    target: Tokenizer,
    device: Device,
    /// Most tokens per output sentence.
    pub max_tokens: usize,
}

impl std::fmt::Debug for MarianTranslator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarianTranslator")
            .field("name", &self.name)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// The files a Marian model directory must hold.
pub const FILES: [&str; 4] = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer-target.json"];

impl MarianTranslator {
    /// Load the model in `dir` for `from` → `to`.
    pub fn load(dir: &Path, from: &str, to: &str) -> Result<Self, TranslateError> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "marian".into());
        let err = |m: String| TranslateError { backend: format!("marian:{name}"), message: m };
        for f in FILES {
            if !dir.join(f).is_file() {
                return Err(err(format!("{} is missing", dir.join(f).display())));
            }
        }
        let path = |f: &str| -> PathBuf { dir.join(f) };
        let config: Config = std::fs::read_to_string(path("config.json"))
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
            .map_err(|e| err(format!("config.json: {e}")))?;
        let source = Tokenizer::from_file(path("tokenizer.json")).map_err(|e| err(format!("tokenizer.json: {e}")))?;
        let target = Tokenizer::from_file(path("tokenizer-target.json"))
            .map_err(|e| err(format!("tokenizer-target.json: {e}")))?;
        let device = Device::Cpu;
        // SAFETY: read-only memory map of a weights file nobody modifies while it is loaded.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path("model.safetensors")], DType::F32, &device) }
            .map_err(|e| err(format!("model.safetensors: {e}")))?;
        let model = MTModel::new(&config, vb).map_err(|e| err(format!("building the model: {e}")))?;
        Ok(Self {
            from: from.into(),
            to: to.into(),
            name,
            config,
            model: Mutex::new(model),
            source,
            target,
            device,
            max_tokens: 64,
        })
    }

    fn translate_one(&self, model: &mut MTModel, text: &str) -> Result<String, String> {
        let mut ids = self.source.encode(text, true).map_err(|e| e.to_string())?.get_ids().to_vec();
        if ids.last() != Some(&self.config.eos_token_id) {
            ids.push(self.config.eos_token_id);
        }
        let e = |e: candle_core::Error| e.to_string();
        let input = Tensor::new(ids.as_slice(), &self.device).and_then(|t| t.unsqueeze(0)).map_err(e)?;
        model.reset_kv_cache();
        let encoded = model.encoder().forward(&input, 0).map_err(e)?;
        let mut out = vec![self.config.decoder_start_token_id];
        let mut past = 0;
        for step in 0..self.max_tokens {
            let ctx = if step == 0 { &out[..] } else { &out[out.len() - 1..] };
            let x = Tensor::new(ctx, &self.device).and_then(|t| t.unsqueeze(0)).map_err(e)?;
            let logits = model.decode(&x, &encoded, past).map_err(e)?;
            past += ctx.len();
            let last = logits.i((0, logits.dim(1).map_err(e)? - 1)).map_err(e)?;
            let next = last.argmax(0).and_then(|t| t.to_scalar::<u32>()).map_err(e)?;
            if next == self.config.eos_token_id || next == self.config.forced_eos_token_id {
                break;
            }
            out.push(next);
        }
        self.target.decode(&out[1..], true).map_err(|e| e.to_string())
    }
}

impl Translator for MarianTranslator {
    fn id(&self) -> String {
        format!("marian:{}", self.name)
    }
    fn supports(&self, from: &str, to: &str) -> bool {
        from == self.from && to == self.to
    }
    fn translate(&self, texts: &[&str], from: &str, to: &str) -> Result<Vec<String>, TranslateError> {
        let err = |m: String| TranslateError { backend: self.id(), message: m };
        if !self.supports(from, to) {
            return Err(err(format!("this model translates {}-{}, not {from}-{to}", self.from, self.to)));
        }
        let mut model = self.model.lock().unwrap_or_else(|p| p.into_inner());
        texts.iter().map(|t| self.translate_one(&mut model, t).map_err(&err)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    const WORDS: [&str; 10] = ["<pad>", "</s>", "<unk>", "le", "pain", "est", "chaud", "fresh", "bread", "is"];

    fn word_tokenizer() -> String {
        let vocab: serde_json::Map<String, serde_json::Value> =
            WORDS.iter().enumerate().map(|(i, w)| (w.to_string(), serde_json::json!(i))).collect();
        serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [
                {"id": 0, "content": "<pad>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
                {"id": 1, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
            ],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
        })
        .to_string()
    }

    /// A 2-layer, 16-wide Marian with random weights and a 10-word vocabulary, written the
    /// way a real model directory is laid out.
    fn tiny_model(dir: &Path) {
        let config = serde_json::json!({
            "vocab_size": WORDS.len(), "decoder_vocab_size": WORDS.len(), "max_position_embeddings": 32,
            "encoder_layers": 2, "encoder_ffn_dim": 32, "encoder_attention_heads": 2,
            "decoder_layers": 2, "decoder_ffn_dim": 32, "decoder_attention_heads": 2,
            "use_cache": true, "is_encoder_decoder": true, "activation_function": "swish", "d_model": 16,
            "decoder_start_token_id": 0, "scale_embedding": true, "pad_token_id": 0, "eos_token_id": 1,
            "forced_eos_token_id": 1, "share_encoder_decoder_embeddings": true
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let cfg: Config = serde_json::from_value(config).unwrap();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        MTModel::new(&cfg, vb).unwrap();
        varmap.save(dir.join("model.safetensors")).unwrap();
        std::fs::write(dir.join("tokenizer.json"), word_tokenizer()).unwrap();
        std::fs::write(dir.join("tokenizer-target.json"), word_tokenizer()).unwrap();
    }

    #[test]
    fn loads_a_model_directory_and_decodes_greedily_within_the_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        let model_dir = dir.path().join("tiny-en-fr");
        std::fs::create_dir(&model_dir).unwrap();
        tiny_model(&model_dir);
        let mut t = MarianTranslator::load(&model_dir, "en", "fr").unwrap();
        t.max_tokens = 6;
        assert_eq!(t.id(), "marian:tiny-en-fr");
        assert!(t.supports("en", "fr") && !t.supports("en", "de"));
        let out = t.translate(&["fresh bread", "bread is fresh"], "en", "fr").unwrap();
        assert_eq!(out.len(), 2);
        for s in &out {
            let words: Vec<&str> = s.split_whitespace().collect();
            assert!(words.len() <= 6, "{s}");
            assert!(words.iter().all(|w| WORDS[2..].contains(w)), "decoded outside the vocabulary: {s}");
        }
        // Greedy decoding with a reset cache is deterministic.
        assert_eq!(t.translate(&["fresh bread", "bread is fresh"], "en", "fr").unwrap(), out);
        assert!(t.translate(&["x"], "en", "de").unwrap_err().message.contains("not en-de"));
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = MarianTranslator::load(dir.path(), "en", "fr").unwrap_err();
        assert!(e.message.contains("config.json is missing"), "{}", e.message);
    }
}
