//! The k-hop neighbourhood N⁺(k) of an unseen user (eq. 11): seen users reached from
//! the user's chosen responses by walking positive edges only,
//! u* → response → user (2 hops) → response → user (4 hops) …

use crate::graph::SignedAdjacency;

/// Sorted, distinct users with an edge (of `adjacency`'s polarity) to any of `responses`.
pub(crate) fn users_of(adjacency: &SignedAdjacency, responses: &[u32]) -> Vec<u32> {
    let mut users = Vec::new();
    for &r in responses {
        users.extend_from_slice(adjacency.response_to_user.row(r as usize).0);
    }
    users.sort_unstable();
    users.dedup();
    users
}

/// Sorted, distinct responses with an edge (of `adjacency`'s polarity) to any of `users`.
fn responses_of(adjacency: &SignedAdjacency, users: &[u32]) -> Vec<u32> {
    let mut responses = Vec::new();
    for &u in users {
        responses.extend_from_slice(adjacency.user_to_response.row(u as usize).0);
    }
    responses.sort_unstable();
    responses.dedup();
    responses
}

/// Walks positive edges from the chosen responses and yields, for hops = 2, 4, …,
/// every seen user within that many hops (each set contains the previous). Work is
/// lazy: a 2-hop walk never looks past the chosen responses' users.
pub(crate) struct PositiveWalk<'a> {
    positive: &'a SignedAdjacency,
    frontier_responses: Vec<u32>,
    visited_responses: Vec<u32>,
    last_users: Vec<u32>,
    users: Vec<u32>,
    hops: usize,
}

impl<'a> PositiveWalk<'a> {
    pub(crate) fn new(positive: &'a SignedAdjacency, chosen: &[u32]) -> Self {
        let mut start = chosen.to_vec();
        start.sort_unstable();
        start.dedup();
        Self {
            positive,
            visited_responses: start.clone(),
            frontier_responses: start,
            last_users: Vec::new(),
            users: Vec::new(),
            hops: 0,
        }
    }

    /// Whether further steps can reach nobody new.
    pub(crate) fn exhausted(&self) -> bool {
        self.hops > 0 && self.last_users.is_empty()
    }

    /// Advances two hops and returns (hops, users within them).
    pub(crate) fn step(&mut self) -> (usize, &[u32]) {
        if self.hops > 0 {
            self.frontier_responses = responses_of(self.positive, &self.last_users)
                .into_iter()
                .filter(|r| self.visited_responses.binary_search(r).is_err())
                .collect();
            self.visited_responses
                .extend_from_slice(&self.frontier_responses);
            self.visited_responses.sort_unstable();
        }
        self.last_users = users_of(self.positive, &self.frontier_responses)
            .into_iter()
            .filter(|u| self.users.binary_search(u).is_err())
            .collect();
        self.users.extend_from_slice(&self.last_users);
        self.users.sort_unstable();
        self.hops += 2;
        (self.hops, &self.users)
    }
}
