//! The checkpoint directory: `manifest.json`, `ids.json`, `graph.safetensors`,
//! `gcf.safetensors`, `survey.safetensors` (and, later, `mole.safetensors`).
//!
//! Every file is written to a temporary sibling and renamed, so a checkpoint never holds
//! a half-written file. The manifest has one section per training stage; writing one
//! section keeps the others.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::graph::{Csr, GraphIds, PreferenceGraph, SignedAdjacency};

/// Version of the checkpoint layout this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";
pub const IDS_FILE: &str = "ids.json";
pub const GRAPH_FILE: &str = "graph.safetensors";
pub const GCF_FILE: &str = "gcf.safetensors";
pub const SURVEY_FILE: &str = "survey.safetensors";
pub const MOLE_FILE: &str = "mole.safetensors";
pub const CATALOGUE_FILE: &str = "catalogue.jsonl";
/// Tensor names in `gcf.safetensors` of the final (layer-L, unnormalised) embeddings.
pub const USER_EMBEDDINGS: &str = "final.user_embeddings";
pub const RESPONSE_EMBEDDINGS: &str = "final.response_embeddings";

/// A checkpoint that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Tensor {
        path: PathBuf,
        source: candle_core::Error,
    },
}

fn invalid(path: &Path, message: impl Into<String>) -> CheckpointError {
    CheckpointError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The GCF stage's part of the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GcfManifest {
    /// `gcf` or `mf` (the matrix-factorisation baseline).
    pub model: String,
    /// Embedding size d.
    pub dim: usize,
    /// Seen users and response nodes (rows of the embeddings).
    pub users: usize,
    pub responses: usize,
    /// sha256 of the training data (`core::data::data_hash`).
    pub data_hash: String,
    /// Every hyper-parameter, as the trainer names them.
    pub hyper_parameters: serde_json::Value,
    /// Training results (best epoch, accuracies, timings).
    pub metrics: serde_json::Value,
}

/// The reward-model stage's part of the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub config: crate::model::config::RewardModelConfig,
    /// The backbone directory it was trained on, as given.
    pub backbone: String,
    /// sha256 of the backbone's `model.safetensors`, checked at load.
    pub backbone_sha256: String,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// Where a refreshed checkpoint came from (`copl-train refresh`, issue #18).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// [`checkpoint_id`] of the checkpoint it was refreshed from, and its directory.
    pub parent_checkpoint_id: String,
    pub parent_checkpoint: String,
    /// The data hashes of the parent's GCF and of this one's (the parent's data and the
    /// onboarded users' answers).
    pub parent_data_hash: String,
    pub data_hash: String,
    /// Onboarded users whose answers were added, and their answers.
    pub users_added: usize,
    pub answers_added: usize,
}

/// `manifest.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcf: Option<GcfManifest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelManifest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
    /// Sections of later stages, kept as they are.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Manifest {
    /// Reads `dir/manifest.json`; a missing file is an empty manifest.
    pub fn load_or_default(dir: &Path) -> Result<Self, CheckpointError> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Ok(Self {
                format_version: FORMAT_VERSION,
                ..Self::default()
            });
        }
        Self::load(dir)
    }

    /// Reads `dir/manifest.json`, refusing an unknown format version.
    pub fn load(dir: &Path) -> Result<Self, CheckpointError> {
        let path = dir.join(MANIFEST_FILE);
        let text = fs::read_to_string(&path).map_err(|source| CheckpointError::Io {
            path: path.clone(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| invalid(&path, e.to_string()))?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(invalid(
                &path,
                format!(
                    "format_version {} is not supported (this build reads {FORMAT_VERSION})",
                    manifest.format_version
                ),
            ));
        }
        Ok(manifest)
    }

    /// The backbone directory to load `dir`'s reward model on: `given`, or the one its
    /// manifest names (as it was given to `copl-train mole`).
    pub fn backbone_of(dir: &Path, given: Option<PathBuf>) -> Result<PathBuf, CheckpointError> {
        if let Some(given) = given {
            return Ok(given);
        }
        let model = Self::load(dir)?.model.ok_or_else(|| {
            invalid(
                &dir.join(MANIFEST_FILE),
                "no model section (train one with copl-train mole)",
            )
        })?;
        Ok(PathBuf::from(model.backbone))
    }

    /// Writes `dir/manifest.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| invalid(dir, e.to_string()))?;
        write_atomic(&dir.join(MANIFEST_FILE), text.as_bytes())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    crate::atomic::write(path, bytes).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), CheckpointError> {
    crate::atomic::replace(path, |tmp| candle_core::safetensors::save(tensors, tmp)).map_err(
        |source| CheckpointError::Tensor {
            path: path.to_path_buf(),
            source,
        },
    )
}

fn load_tensors(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    candle_core::safetensors::load(path, &Device::Cpu).map_err(|source| CheckpointError::Tensor {
        path: path.to_path_buf(),
        source,
    })
}

/// A catalogue response: a response row of the graph with the texts a server shows in
/// surveys and matches answers against. `catalogue.jsonl` holds one per line, in
/// response-row order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    pub id: String,
    pub prompt: String,
    pub response: String,
}

/// Writes `catalogue.jsonl`.
pub fn save_catalogue(dir: &Path, entries: &[CatalogueEntry]) -> Result<(), CheckpointError> {
    let mut text = String::new();
    for entry in entries {
        text.push_str(&serde_json::to_string(entry).map_err(|e| invalid(dir, e.to_string()))?);
        text.push('\n');
    }
    write_atomic(&dir.join(CATALOGUE_FILE), text.as_bytes())
}

/// Reads `catalogue.jsonl`, which must list `ids.responses` in order (errors name the
/// line).
pub fn load_catalogue(dir: &Path, ids: &GraphIds) -> Result<Vec<CatalogueEntry>, CheckpointError> {
    let path = dir.join(CATALOGUE_FILE);
    let text = fs::read_to_string(&path).map_err(|source| CheckpointError::Io {
        path: path.clone(),
        source,
    })?;
    let mut entries = Vec::with_capacity(ids.responses.len());
    for (index, line) in text.lines().enumerate() {
        let entry: CatalogueEntry = serde_json::from_str(line)
            .map_err(|e| invalid(&path, format!("line {}: {e}", index + 1)))?;
        match ids.responses.get(index) {
            Some(id) if *id == entry.id => entries.push(entry),
            expected => {
                return Err(invalid(
                    &path,
                    format!(
                        "line {}: response {:?}, but ids.json has {expected:?} at this row",
                        index + 1,
                        entry.id
                    ),
                ));
            }
        }
    }
    if entries.len() != ids.responses.len() {
        return Err(invalid(
            &path,
            format!(
                "{} responses, ids.json has {}",
                entries.len(),
                ids.responses.len()
            ),
        ));
    }
    Ok(entries)
}

/// Writes `ids.json`.
pub fn save_ids(dir: &Path, ids: &GraphIds) -> Result<(), CheckpointError> {
    let text = serde_json::to_string(ids).map_err(|e| invalid(dir, e.to_string()))?;
    write_atomic(&dir.join(IDS_FILE), text.as_bytes())
}

/// Reads `ids.json`.
pub fn load_ids(dir: &Path) -> Result<GraphIds, CheckpointError> {
    let path = dir.join(IDS_FILE);
    let text = fs::read_to_string(&path).map_err(|source| CheckpointError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| invalid(&path, e.to_string()))
}

fn csr_tensors(
    prefix: &str,
    csr: &Csr,
    out: &mut HashMap<String, Tensor>,
) -> candle_core::Result<()> {
    let dev = Device::Cpu;
    out.insert(
        format!("{prefix}.indptr"),
        Tensor::new(csr.indptr.as_slice(), &dev)?,
    );
    out.insert(
        format!("{prefix}.indices"),
        Tensor::new(csr.indices.as_slice(), &dev)?,
    );
    out.insert(
        format!("{prefix}.values"),
        Tensor::new(csr.values.as_slice(), &dev)?,
    );
    Ok(())
}

/// Writes `graph.safetensors`: per polarity (`positive`, `negative`) the normalised
/// users→responses CSR (`indptr`, `indices`, `values`) and the raw degrees. The reverse
/// direction is rebuilt at load (it is the transpose).
pub fn save_graph(dir: &Path, graph: &PreferenceGraph) -> Result<(), CheckpointError> {
    let path = dir.join(GRAPH_FILE);
    let tensor_err = |source| CheckpointError::Tensor {
        path: path.clone(),
        source,
    };
    let mut tensors = HashMap::new();
    for (name, adjacency) in [("positive", &graph.positive), ("negative", &graph.negative)] {
        csr_tensors(name, &adjacency.user_to_response, &mut tensors).map_err(tensor_err)?;
        tensors.insert(
            format!("{name}.user_degree"),
            Tensor::new(adjacency.user_degree.as_slice(), &Device::Cpu).map_err(tensor_err)?,
        );
        tensors.insert(
            format!("{name}.response_degree"),
            Tensor::new(adjacency.response_degree.as_slice(), &Device::Cpu).map_err(tensor_err)?,
        );
    }
    save_tensors(&path, &tensors)
}

/// Reads `graph.safetensors`, checking that its CSR arrays are consistent.
pub fn load_graph(dir: &Path) -> Result<PreferenceGraph, CheckpointError> {
    let path = dir.join(GRAPH_FILE);
    let tensors = load_tensors(&path)?;
    let get = |name: &str| {
        tensors
            .get(name)
            .ok_or_else(|| invalid(&path, format!("tensor {name:?} is missing")))
    };
    let tensor_err = |source| CheckpointError::Tensor {
        path: path.clone(),
        source,
    };
    let mut adjacencies = Vec::new();
    let mut shape = None;
    for name in ["positive", "negative"] {
        let indptr: Vec<u32> = get(&format!("{name}.indptr"))?
            .to_vec1()
            .map_err(tensor_err)?;
        let indices: Vec<u32> = get(&format!("{name}.indices"))?
            .to_vec1()
            .map_err(tensor_err)?;
        let values: Vec<f32> = get(&format!("{name}.values"))?
            .to_vec1()
            .map_err(tensor_err)?;
        let user_degree: Vec<f32> = get(&format!("{name}.user_degree"))?
            .to_vec1()
            .map_err(tensor_err)?;
        let response_degree: Vec<f32> = get(&format!("{name}.response_degree"))?
            .to_vec1()
            .map_err(tensor_err)?;
        let users = indptr.len().saturating_sub(1);
        let responses = response_degree.len();
        let monotone = indptr.windows(2).all(|w| w[0] <= w[1]);
        if indptr.is_empty()
            || !monotone
            || indptr.last().copied() != Some(indices.len() as u32)
            || values.len() != indices.len()
            || user_degree.len() != users
            || indices.iter().any(|&c| c as usize >= responses)
        {
            return Err(invalid(&path, format!("{name}: inconsistent CSR arrays")));
        }
        if let Some(s) = shape
            && s != (users, responses)
        {
            return Err(invalid(&path, "positive and negative shapes differ"));
        }
        shape = Some((users, responses));
        let matrix = Csr {
            cols: responses,
            indptr,
            indices,
            values,
        };
        let (response_to_user, transpose_source) = matrix.transpose();
        adjacencies.push(SignedAdjacency {
            user_to_response: matrix,
            response_to_user,
            transpose_source,
            user_degree,
            response_degree,
        });
    }
    let (users, responses) = shape.unwrap_or((0, 0));
    let negative = adjacencies.pop();
    let positive = adjacencies.pop();
    match (positive, negative) {
        (Some(positive), Some(negative)) => Ok(PreferenceGraph {
            users,
            responses,
            positive,
            negative,
        }),
        _ => Err(invalid(&path, "missing adjacency")),
    }
}

/// Writes `gcf.safetensors` (every named tensor, in f32).
pub fn save_gcf(dir: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), CheckpointError> {
    save_f32(&dir.join(GCF_FILE), tensors)
}

/// Writes every named tensor to `path` in f32.
fn save_f32(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), CheckpointError> {
    let path = path.to_path_buf();
    let f32_tensors = tensors
        .iter()
        // Trained on a GPU, written from the host.
        .map(|(k, t)| Ok((k.clone(), t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
        .collect::<candle_core::Result<HashMap<_, _>>>()
        .map_err(|source| CheckpointError::Tensor {
            path: path.clone(),
            source,
        })?;
    save_tensors(&path, &f32_tensors)
}

/// The final user and response embeddings of `gcf.safetensors`, checked against
/// `ids.json`'s row counts and the manifest's dimension.
pub fn load_embeddings(
    dir: &Path,
    ids: &GraphIds,
    dim: usize,
) -> Result<(Tensor, Tensor), CheckpointError> {
    let path = dir.join(GCF_FILE);
    let mut tensors = load_tensors(&path)?;
    let mut take = |name: &str, rows: usize| {
        let t = tensors
            .remove(name)
            .ok_or_else(|| invalid(&path, format!("tensor {name:?} is missing")))?;
        if t.dims() != [rows, dim] {
            return Err(invalid(
                &path,
                format!("{name} has shape {:?}, expected [{rows}, {dim}]", t.dims()),
            ));
        }
        Ok(t)
    };
    let users = take(USER_EMBEDDINGS, ids.users.len())?;
    let responses = take(RESPONSE_EMBEDDINGS, ids.responses.len())?;
    Ok((users, responses))
}

/// Writes `survey.safetensors`: the survey set, distinct response-row pairs `(a, b)` that
/// seen users annotated (SuggestSurvey's candidates), as tensors `survey.a`, `survey.b`.
pub fn save_survey_pairs(dir: &Path, pairs: &[(u32, u32)]) -> Result<(), CheckpointError> {
    let path = dir.join(SURVEY_FILE);
    let (a, b): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
    let tensors = [("survey.a", a), ("survey.b", b)]
        .into_iter()
        .map(|(name, rows)| {
            Ok((
                name.to_string(),
                Tensor::new(rows.as_slice(), &Device::Cpu)?,
            ))
        })
        .collect::<candle_core::Result<HashMap<_, _>>>()
        .map_err(|source| CheckpointError::Tensor {
            path: path.clone(),
            source,
        })?;
    save_tensors(&path, &tensors)
}

/// Reads `survey.safetensors`, checking every row is below `responses`.
pub fn load_survey_pairs(dir: &Path, responses: usize) -> Result<Vec<(u32, u32)>, CheckpointError> {
    let path = dir.join(SURVEY_FILE);
    let tensors = load_tensors(&path)?;
    let column = |name: &str| -> Result<Vec<u32>, CheckpointError> {
        tensors
            .get(name)
            .ok_or_else(|| invalid(&path, format!("tensor {name:?} is missing")))?
            .to_vec1()
            .map_err(|source| CheckpointError::Tensor {
                path: path.clone(),
                source,
            })
    };
    let (a, b) = (column("survey.a")?, column("survey.b")?);
    if a.len() != b.len() {
        return Err(invalid(&path, "survey.a and survey.b differ in length"));
    }
    if let Some(row) = a.iter().chain(&b).find(|&&r| r as usize >= responses) {
        return Err(invalid(
            &path,
            format!("response row {row} is out of range ({responses} responses)"),
        ));
    }
    Ok(a.into_iter().zip(b).collect())
}

/// Writes `mole.safetensors`: the trained adapters (`…mole.*`) and the reward head
/// (`head.*`), in f32.
pub fn save_mole(dir: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), CheckpointError> {
    save_f32(&dir.join(MOLE_FILE), tensors)
}

/// Reads `mole.safetensors`.
pub fn load_mole(dir: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    load_tensors(&dir.join(MOLE_FILE))
}

/// Every tensor of `gcf.safetensors`: the GCF variables as trained (named as the
/// trainer's model names them) and the final embeddings.
pub fn load_gcf(dir: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    load_tensors(&dir.join(GCF_FILE))
}

/// sha256 of a file, hex.
pub fn file_sha256(path: &Path) -> Result<String, CheckpointError> {
    use sha2::Digest;
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}

/// A checkpoint's identity: the first 16 hex digits of the sha256 over the files that
/// decide what it serves (manifest, ids, graph, GCF, survey, MoLE, catalogue; in that
/// order, each present one, with its name and length): two directories holding the same
/// files have the same id. What replicas compare (Info) and lineage records.
pub fn checkpoint_id(dir: &Path) -> Result<String, CheckpointError> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for name in [
        MANIFEST_FILE,
        IDS_FILE,
        GRAPH_FILE,
        GCF_FILE,
        SURVEY_FILE,
        MOLE_FILE,
        CATALOGUE_FILE,
    ] {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let bytes = fs::read(&path).map_err(|source| CheckpointError::Io {
            path: path.clone(),
            source,
        })?;
        hash.update(name.as_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(hex::encode(hash.finalize())[..16].to_string())
}
