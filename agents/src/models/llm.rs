//! SmolLM2-135M-Instruct on candle's quantized llama: chat prompt, seeded sampling, timings.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::ModelWeights;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::{ModelError, SMOLLM2_ID, gguf_tokenizer};

/// How to sample one completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    /// Most new tokens.
    pub max_tokens: usize,
    /// Sampling temperature; 0 means greedy.
    pub temperature: f64,
    /// Nucleus mass.
    pub top_p: f64,
    /// Candidates kept before the nucleus cut.
    pub top_k: usize,
    /// Penalty on tokens seen in the last [`REPEAT_WINDOW`] tokens (1.0 = none).
    pub repeat_penalty: f32,
    /// Seed of the sampler: the same prompt, params and seed give the same text.
    pub seed: u64,
    /// Never sample the end-of-turn tokens: generation runs until `max_tokens` or until the
    /// callback stops it (the director stops once it has every scene line).
    pub ignore_eos: bool,
}

/// How many recent tokens the repeat penalty looks at.
pub const REPEAT_WINDOW: usize = 64;

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.7,
            top_p: 0.9,
            top_k: 40,
            repeat_penalty: 1.1,
            seed: 0,
            ignore_eos: false,
        }
    }
}

/// One completion and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The generated text (prompt excluded, special tokens dropped).
    pub text: String,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Time to process the prompt, ms.
    pub prefill_ms: u64,
    /// Time to generate, ms.
    pub generate_ms: u64,
    /// Why generation stopped: `eos`, `max_tokens` or `caller` (the callback said stop).
    pub stop: String,
}

impl Generation {
    /// Prompt tokens per second.
    pub fn prefill_tok_s(&self) -> f64 {
        self.prompt_tokens as f64 / (self.prefill_ms.max(1) as f64 / 1000.0)
    }
    /// Generated tokens per second.
    pub fn generate_tok_s(&self) -> f64 {
        self.generated_tokens as f64 / (self.generate_ms.max(1) as f64 / 1000.0)
    }
}

/// The loaded LLM. Every call works on its own copy of the KV cache (a [`Prefix`]); the
/// registry still keeps it behind a mutex so two generations do not split the CPU.
pub struct Llm {
    model: ModelWeights,
    tokenizer: Tokenizer,
    stop_ids: Vec<u32>,
    newlines: Arc<Vec<u8>>,
    device: Device,
}

/// Wrap a system and a user message in SmolLM2's chat template, ready for the assistant.
pub fn chat_prompt(system: &str, user: &str) -> String {
    format!("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")
}

impl Llm {
    /// Load a GGUF file and build its tokenizer from the same file's metadata.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let fail = |e: &dyn std::fmt::Display| ModelError::failed(SMOLLM2_ID, format!("{}: {e}", path.display()));
        let mut file = File::open(path).map_err(|e| fail(&e))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| fail(&e))?;
        let tokenizer = gguf_tokenizer::from_gguf(&content).map_err(|e| fail(&e))?;
        let device = Device::Cpu;
        let model = ModelWeights::from_gguf(content, &mut file, &device).map_err(|e| fail(&e))?;
        let stop_ids = ["<|im_end|>", "<|endoftext|>"].iter().filter_map(|t| tokenizer.token_to_id(t)).collect();
        let vocab = tokenizer.get_vocab_size(true);
        let newlines = (0..vocab as u32)
            .map(|id| tokenizer.id_to_token(id).map(|t| t.matches('Ċ').count().min(255) as u8).unwrap_or(0))
            .collect();
        Ok(Self { model, tokenizer, stop_ids, newlines: Arc::new(newlines), device })
    }

    /// The tokenizer (for tests and token counting).
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`, special tokens recognised, nothing added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::failed(SMOLLM2_ID, format!("tokenizing: {e}")))
    }

    /// Line breaks per token id (byte-level BPE writes `\n` as `Ċ`), so callers can count
    /// lines as tokens arrive without touching the tokenizer.
    pub fn newline_table(&self) -> Arc<Vec<u8>> {
        self.newlines.clone()
    }

    /// Run `prompt` through the model once and keep the result (KV cache and next-token
    /// logits), so several continuations can share the prefill: the director samples many
    /// scene lines after the same storyboard-so-far.
    pub fn prefill(&self, prompt: &str) -> Result<Prefix, ModelError> {
        let empty = Prefix { model: self.model.clone(), tokens: Vec::new(), logits: None, prefill_ms: 0 };
        self.extend(&empty, prompt)
    }

    /// `prefix` followed by `text`: only the new tokens go through the model. (Tokens are
    /// split where the texts meet, which can differ from tokenising the joined text at that
    /// one boundary; the model reads either fine.)
    pub fn extend(&self, prefix: &Prefix, text: &str) -> Result<Prefix, ModelError> {
        let err = |e: candle_core::Error| ModelError::failed(SMOLLM2_ID, e);
        let ids = self.encode(text)?;
        if ids.is_empty() {
            return Ok(prefix.clone());
        }
        let started = Instant::now();
        let mut model = prefix.model.clone();
        let input = Tensor::new(ids.as_slice(), &self.device).and_then(|t| t.unsqueeze(0)).map_err(err)?;
        let logits = model.forward(&input, prefix.tokens.len()).and_then(|l| l.squeeze(0)).map_err(err)?;
        let mut tokens = prefix.tokens.clone();
        tokens.extend_from_slice(&ids);
        let prefill_ms = prefix.prefill_ms + started.elapsed().as_millis() as u64;
        Ok(Prefix { model, tokens, logits: Some(logits), prefill_ms })
    }

    /// Constrained choice: which of `options` the model finds most likely right after
    /// `prefix`, judged by the log-probability of each option's first token (options should
    /// start differently). Returns the index and every option's log-probability; ties go to
    /// the earlier option.
    pub fn choose(&self, prefix: &Prefix, options: &[&str]) -> Result<(usize, Vec<f32>), ModelError> {
        let err = |e: candle_core::Error| ModelError::failed(SMOLLM2_ID, e);
        let Some(logits) = &prefix.logits else {
            return Err(ModelError::failed(SMOLLM2_ID, "cannot choose after an empty prompt"));
        };
        let logp = candle_nn::ops::log_softmax(logits, 0).and_then(|l| l.to_vec1::<f32>()).map_err(err)?;
        let mut scores = Vec::with_capacity(options.len());
        for option in options {
            let first = *self
                .encode(option)?
                .first()
                .ok_or_else(|| ModelError::failed(SMOLLM2_ID, format!("option {option:?} has no tokens")))?;
            scores.push(logp.get(first as usize).copied().unwrap_or(f32::NEG_INFINITY));
        }
        let best = (0..scores.len()).fold(0, |b, i| if scores[i] > scores[b] { i } else { b });
        Ok((best, scores))
    }

    /// Complete `prompt` (already in chat format). `on_token` is called after each generated
    /// token with the count so far and the token id, and returns `false` to stop early
    /// (cancellation, or the caller has what it needs).
    pub fn generate(
        &self,
        prompt: &str,
        params: &GenerationParams,
        on_token: &mut dyn FnMut(usize, u32) -> bool,
    ) -> Result<Generation, ModelError> {
        let prefix = self.prefill(prompt)?;
        self.continue_from(&prefix, params, on_token)
    }

    /// Sample a continuation of an already prefilled prompt; `prefix` itself is unchanged, so
    /// the same prefix can be continued again with another seed.
    pub fn continue_from(
        &self,
        prefix: &Prefix,
        params: &GenerationParams,
        on_token: &mut dyn FnMut(usize, u32) -> bool,
    ) -> Result<Generation, ModelError> {
        let err = |e: candle_core::Error| ModelError::failed(SMOLLM2_ID, e);
        let Some(mut logits) = prefix.logits.clone() else {
            return Err(ModelError::failed(SMOLLM2_ID, "cannot continue an empty prompt"));
        };
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            Sampling::TopKThenTopP { k: params.top_k, p: params.top_p, temperature: params.temperature }
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        let mut model = prefix.model.clone();
        let started = Instant::now();
        let mut all: Vec<u32> = prefix.tokens.clone();
        let mut out: Vec<u32> = Vec::new();
        let mut stop = "max_tokens";
        // Built once: 0 everywhere, -inf on the end-of-turn ids, added to every step's logits.
        let eos_mask = if params.ignore_eos {
            let mut mask = vec![0f32; logits.dim(0).map_err(err)?];
            for id in &self.stop_ids {
                if let Some(x) = mask.get_mut(*id as usize) {
                    *x = f32::NEG_INFINITY;
                }
            }
            Some(Tensor::new(mask, &self.device).map_err(err)?)
        } else {
            None
        };
        while out.len() < params.max_tokens {
            if params.repeat_penalty != 1.0 {
                let from = all.len().saturating_sub(REPEAT_WINDOW);
                logits = candle_transformers::utils::apply_repeat_penalty(&logits, params.repeat_penalty, &all[from..])
                    .map_err(err)?;
            }
            if let Some(mask) = &eos_mask {
                logits = logits.add(mask).map_err(err)?;
            }
            let next = sampler.sample(&logits).map_err(err)?;
            if self.stop_ids.contains(&next) {
                stop = "eos";
                break;
            }
            out.push(next);
            all.push(next);
            if !on_token(out.len(), next) {
                stop = "caller";
                break;
            }
            if out.len() == params.max_tokens {
                break;
            }
            let input = Tensor::new(&[next], &self.device).and_then(|t| t.unsqueeze(0)).map_err(err)?;
            logits = model.forward(&input, all.len() - 1).and_then(|l| l.squeeze(0)).map_err(err)?;
        }
        let text =
            self.tokenizer.decode(&out, true).map_err(|e| ModelError::failed(SMOLLM2_ID, format!("decoding: {e}")))?;
        Ok(Generation {
            text,
            prompt_tokens: prefix.tokens.len(),
            generated_tokens: out.len(),
            prefill_ms: prefix.prefill_ms,
            generate_ms: started.elapsed().as_millis() as u64,
            stop: stop.into(),
        })
    }
}

/// A prompt the model has already read: its KV cache (cheap to clone: tensors are shared)
/// and the logits for the next token.
#[derive(Clone)]
pub struct Prefix {
    model: ModelWeights,
    tokens: Vec<u32>,
    logits: Option<Tensor>,
    prefill_ms: u64,
}

impl Prefix {
    /// Tokens read so far.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether nothing has been read.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Time spent reading them, ms.
    pub fn prefill_ms(&self) -> u64 {
        self.prefill_ms
    }
}
