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

const USER0: &str = "initial.user_embeddings";
const RESPONSE0: &str = "initial.response_embeddings";

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
        let old_user_rows = self.ids.user_rows();
        let users: Vec<f32> = {
            let bound = (6.0 / (ids.users.len() + dim) as f64).sqrt() as f32;
            let mut flat = Vec::with_capacity(ids.users.len() * dim);
            for id in &ids.users {
                if let Some(&r) = old_user_rows.get(id.as_str()) {
                    rows.users_kept += 1;
                    flat.extend_from_slice(&old_users[r as usize]);
                } else if let Some(e) = self.new_users.get(id) {
                    rows.users_adapted += 1;
                    flat.extend(e.iter().map(|x| x * mean_norm));
                } else {
                    rows.users_fresh += 1;
                    flat.extend((0..dim).map(|_| rng.random_range(-bound..bound)));
                }
            }
            flat
        };
        let old_response_rows = self.ids.response_rows();
        let responses: Vec<f32> = {
            let bound = (6.0 / (ids.responses.len() + dim) as f64).sqrt() as f32;
            let mut flat = Vec::with_capacity(ids.responses.len() * dim);
            for id in &ids.responses {
                if let Some(&r) = old_response_rows.get(id.as_str()) {
                    rows.responses_kept += 1;
                    flat.extend_from_slice(&old_responses[r as usize]);
                } else {
                    rows.responses_fresh += 1;
                    flat.extend((0..dim).map(|_| rng.random_range(-bound..bound)));
                }
            }
            flat
        };
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
