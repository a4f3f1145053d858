//! A GCF warm start (issue #18's refresh): the variables of an earlier run, moved onto a
//! new graph's rows by id. Users and responses the earlier graph had keep their initial
//! (layer-0) rows; users it lacked start from their eq. 11 adaptation on it (the final
//! embedding, scaled to the earlier users' mean layer-0 norm: the nearest thing to a row
//! of theirs the earlier run can say) or, with none, a fresh Xavier-uniform row as
//! [`super::GcfModel::new`] draws; new responses a fresh row. The layers' weights carry
//! over as they are (the architecture must be the earlier run's).

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use candle_core::{DType, Device, Tensor};
use copl_core::graph::GraphIds;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::{INITIAL_RESPONSES as RESPONSE0, INITIAL_USERS as USER0};

/// The earlier run, and where its new users start.
#[derive(Debug)]
pub struct WarmStart {
    /// The earlier run's variables, named as [`super::GcfModel::named_vars`] names them
    /// (`gcf.safetensors` holds them beside the final embeddings).
    pub variables: HashMap<String, Tensor>,
    /// Its rows' ids.
    pub ids: GraphIds,
    /// Users it lacked, with their eq. 11 embedding on its graph.
    pub new_users: HashMap<String, Vec<f32>>,
}

/// What the warm start did, row by row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WarmRows {
    pub users_kept: usize,
    pub users_adapted: usize,
    pub users_fresh: usize,
    pub responses_kept: usize,
    pub responses_fresh: usize,
}

impl WarmStart {
    /// The variables of a model over `ids` (d = `dim`), every other variable as the
    /// earlier run left it; `seed` draws the fresh rows.
    pub fn variables_for(
        &self,
        ids: &GraphIds,
        dim: usize,
        seed: u64,
    ) -> Result<(HashMap<String, Tensor>, WarmRows)> {
        let table = |name: &str| -> Result<Vec<Vec<f32>>> {
            let t = self
                .variables
                .get(name)
                .with_context(|| format!("the earlier GCF run has no {name}"))?;
            if t.dims().get(1) != Some(&dim) {
                bail!(
                    "the earlier GCF run's {name} has shape {:?}: not d = {dim} (refresh keeps \
                     the architecture)",
                    t.dims()
                );
            }
            Ok(t.to_dtype(DType::F32)?.to_vec2()?)
        };
        let (old_users, old_responses) = (table(USER0)?, table(RESPONSE0)?);
        let mean_norm = {
            let norms: Vec<f32> = old_users
                .iter()
                .map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt())
                .collect();
            norms.iter().sum::<f32>() / norms.len().max(1) as f32
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut rows = WarmRows::default();
        let no_new_users = HashMap::new();
        let (users, kept, adapted) = moved(
            &ids.users,
            &self.ids.user_rows(),
            &old_users,
            (&self.new_users, mean_norm),
            dim,
            &mut rng,
        );
        (rows.users_kept, rows.users_adapted) = (kept, adapted);
        rows.users_fresh = ids.users.len() - kept - adapted;
        let (responses, kept, _) = moved(
            &ids.responses,
            &self.ids.response_rows(),
            &old_responses,
            (&no_new_users, 1.0),
            dim,
            &mut rng,
        );
        rows.responses_kept = kept;
        rows.responses_fresh = ids.responses.len() - kept;
        let mut variables: HashMap<String, Tensor> = self
            .variables
            .iter()
            .filter(|(name, _)| name.starts_with("layers."))
            .map(|(name, t)| (name.clone(), t.clone()))
            .collect();
        variables.insert(
            USER0.into(),
            Tensor::from_vec(users, (ids.users.len(), dim), &Device::Cpu)?,
        );
        variables.insert(
            RESPONSE0.into(),
            Tensor::from_vec(responses, (ids.responses.len(), dim), &Device::Cpu)?,
        );
        Ok((variables, rows))
    }
}

/// One table's rows for `ids`, row-major: the earlier row of an id `old` has, else the
/// scaled embedding `new` gives it (`(by id, scale)`), else a fresh Xavier-uniform row.
/// Returns the rows and how many were kept and taken from `new`.
fn moved(
    ids: &[String],
    old: &HashMap<&str, u32>,
    old_table: &[Vec<f32>],
    new: (&HashMap<String, Vec<f32>>, f32),
    dim: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<f32>, usize, usize) {
    let bound = (6.0 / (ids.len() + dim) as f64).sqrt() as f32;
    let (mut flat, mut kept, mut adapted) = (Vec::with_capacity(ids.len() * dim), 0, 0);
    for id in ids {
        if let Some(&r) = old.get(id.as_str()) {
            kept += 1;
            flat.extend_from_slice(&old_table[r as usize]);
        } else if let Some(e) = new.0.get(id) {
            adapted += 1;
            flat.extend(e.iter().map(|x| x * new.1));
        } else {
            flat.extend((0..dim).map(|_| rng.random_range(-bound..bound)));
        }
    }
    (flat, kept, adapted)
}
