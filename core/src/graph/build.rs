//! Building the graph from a data set: which users are nodes, and their rows.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::PreferenceGraph;
use crate::data::{Dataset, Split};

/// External ids of the graph's rows: `users[i]` is user row i, `responses[j]` response
/// row j (the data set's response order). Saved as the checkpoint's `ids.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphIds {
    pub users: Vec<String>,
    pub responses: Vec<String>,
}

impl GraphIds {
    /// Row of each user id.
    pub fn user_rows(&self) -> HashMap<&str, u32> {
        rows(&self.users)
    }

    /// Row of each response id.
    pub fn response_rows(&self) -> HashMap<&str, u32> {
        rows(&self.responses)
    }
}

fn rows(ids: &[String]) -> HashMap<&str, u32> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u32))
        .collect()
}

/// The graph of a data set's **seen** users (not marked `unseen` in the ground truth)
/// from their **training** pairs only, every response a node. Users are numbered in
/// order of their first training pair; a user without training pairs is no node.
pub fn graph_of(dataset: &Dataset) -> (PreferenceGraph, GraphIds) {
    let unseen = dataset.unseen_users();
    let mut user_rows: HashMap<&str, u32> = HashMap::new();
    let mut users = Vec::new();
    let mut pairs = Vec::new();
    for a in dataset.split(Split::Train) {
        if unseen.contains(a.user.as_str()) {
            continue;
        }
        let u = *user_rows.entry(a.user.as_str()).or_insert_with(|| {
            users.push(a.user.clone());
            (users.len() - 1) as u32
        });
        // Validated data: both ids are known responses.
        if let (Some(c), Some(r)) = (
            dataset.response_row(&a.chosen),
            dataset.response_row(&a.rejected),
        ) {
            pairs.push((u, c as u32, r as u32));
        }
    }
    let responses: Vec<String> = dataset.responses().iter().map(|r| r.id.clone()).collect();
    let graph = PreferenceGraph::from_pairs(users.len(), responses.len(), &pairs);
    (graph, GraphIds { users, responses })
}
