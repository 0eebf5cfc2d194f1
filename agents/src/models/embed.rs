//! all-MiniLM-L6-v2 sentence embeddings on candle's BERT: longest-in-batch padding, mean
//! pooling over the attention mask, L2 normalisation (the sentence-transformers recipe), so
//! the dot product of two embeddings is their cosine similarity.

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use super::{MINILM_ID, ModelError};

/// Longest input in tokens; all-MiniLM-L6-v2 was trained on 256-token windows.
pub const MAX_TOKENS: usize = 256;

/// The loaded embedding model.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl Embedder {
    /// Load `model.safetensors`, `config.json` and `tokenizer.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let fail = |e: &dyn std::fmt::Display| ModelError::failed(MINILM_ID, format!("{}: {e}", dir.display()));
        let config: Config = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| fail(&e))
            .and_then(|s| serde_json::from_str(&s).map_err(|e| fail(&e)))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| fail(&e))?;
        // The shipped tokenizer pads every input to 128 tokens; pad to the batch's longest.
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
            .map_err(|e| fail(&e))?;
        let device = Device::Cpu;
        // SAFETY: the file is memory-mapped read-only; it is not modified while mapped (the
        // installer writes weights atomically with a rename before any process loads them).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[dir.join("model.safetensors")], DTYPE, &device) }
            .map_err(|e| fail(&e))?;
        let model = BertModel::load(vb, &config).map_err(|e| fail(&e))?;
        Ok(Self { model, tokenizer, device })
    }

    /// Unit-length embeddings of `texts`, one row of 384 floats each.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        if texts.is_empty() {
            return Ok(vec![]);
        }
        let err = |e: candle_core::Error| ModelError::failed(MINILM_ID, e);
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| ModelError::failed(MINILM_ID, format!("tokenizing: {e}")))?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| -> Result<Tensor, ModelError> {
            let data: Vec<Tensor> = enc
                .iter()
                .map(|e| Tensor::new(f(e).as_slice(), &self.device))
                .collect::<Result<_, _>>()
                .map_err(err)?;
            Tensor::stack(&data, 0).map_err(err)
        };
        let ids = rows(&|e| e.get_ids().to_vec())?;
        let types = rows(&|e| e.get_type_ids().to_vec())?;
        let mask = rows(&|e| e.get_attention_mask().to_vec())?;
        let hidden = self.model.forward(&ids, &types, Some(&mask)).map_err(err)?;
        let pooled = (|| {
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&m)?.sum(1)?;
            let counts = m.sum(1)?;
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        })()
        .map_err(err)?;
        Ok(pooled)
    }

    /// Cosine similarity of two texts.
    pub fn similarity(&self, a: &str, b: &str) -> Result<f32, ModelError> {
        let e = self.embed(&[a, b])?;
        Ok(cosine(&e[0], &e[1]))
    }
}

/// Cosine similarity of two embeddings (a dot product when both are unit length).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na * nb) }
}
