//! The signed user–response preference graph (paper §4.1).
//!
//! A training pair (a ≻ b) of user u adds a **positive edge** u–a and a **negative
//! edge** u–b; duplicate edges sum. Each polarity is its own adjacency, stored as CSR in
//! both directions (users → responses and responses → users) with the normalisation of
//! eq. 2: α_{u,r} = A⁺[u,r] / √(|N⁺_u| |N⁺_r|) and β likewise for negative edges, the
//! degrees taken in that polarity's own (summed) adjacency, as the authors' code does.

mod build;
mod csr;

pub use build::{GraphIds, graph_of};
pub use csr::Csr;

/// One polarity's normalised adjacency in both directions.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedAdjacency {
    /// `users × responses`, normalised (α or β of eq. 2).
    pub user_to_response: Csr,
    /// `responses × users`, the transpose.
    pub response_to_user: Csr,
    /// For each entry of `response_to_user`, its position in `user_to_response`.
    pub transpose_source: Vec<u32>,
    /// Degree of each user (sum of raw edge weights).
    pub user_degree: Vec<f32>,
    /// Degree of each response (sum of raw edge weights).
    pub response_degree: Vec<f32>,
}

impl SignedAdjacency {
    /// Normalises raw `(user, response)` edges (duplicates sum) as eq. 2 does.
    pub fn from_edges(users: usize, responses: usize, edges: &[(u32, u32)]) -> Self {
        let raw = Csr::from_triples(
            users,
            responses,
            edges.iter().map(|&(u, r)| (u, r, 1.0)).collect(),
        );
        let user_degree: Vec<f32> = (0..users).map(|u| raw.row_sum(u)).collect();
        let mut response_degree = vec![0f32; responses];
        for (&r, &v) in raw.indices.iter().zip(&raw.values) {
            response_degree[r as usize] += v;
        }
        let mut normalised = raw;
        for (u, &degree) in user_degree.iter().enumerate() {
            for k in normalised.indptr[u] as usize..normalised.indptr[u + 1] as usize {
                let r = normalised.indices[k] as usize;
                normalised.values[k] /= (degree * response_degree[r]).sqrt();
            }
        }
        let (response_to_user, transpose_source) = normalised.transpose();
        Self {
            user_to_response: normalised,
            response_to_user,
            transpose_source,
            user_degree,
            response_degree,
        }
    }

    /// Edges of this polarity.
    pub fn edges(&self) -> usize {
        self.user_to_response.nnz()
    }
}

/// The signed bipartite graph of seen users and responses.
#[derive(Clone, Debug, PartialEq)]
pub struct PreferenceGraph {
    /// Seen users (rows).
    pub users: usize,
    /// Response nodes (columns).
    pub responses: usize,
    /// Positive edges u–chosen (α of eq. 2).
    pub positive: SignedAdjacency,
    /// Negative edges u–rejected (β of eq. 2).
    pub negative: SignedAdjacency,
}

impl PreferenceGraph {
    /// Builds the graph from training pairs `(user, chosen, rejected)` given as rows.
    pub fn from_pairs(users: usize, responses: usize, pairs: &[(u32, u32, u32)]) -> Self {
        let positive: Vec<(u32, u32)> = pairs.iter().map(|&(u, a, _)| (u, a)).collect();
        let negative: Vec<(u32, u32)> = pairs.iter().map(|&(u, _, b)| (u, b)).collect();
        Self {
            users,
            responses,
            positive: SignedAdjacency::from_edges(users, responses, &positive),
            negative: SignedAdjacency::from_edges(users, responses, &negative),
        }
    }
}
