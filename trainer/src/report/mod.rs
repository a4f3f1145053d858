//! Issue #9's report (paper tables and figures on our benchmarks), being built. What is
//! here so far are its building blocks, each tested on its own:
//!
//! - [`projection`]: 2-D principal components of user embeddings (Fig. 1 / A2);
//! - [`experts`]: which expert each group's users are routed to, per projection (Fig. 6);
//! - [`figures`]: PNG line charts, scatter plots and grouped bars with an embedded font
//!   (no system font library needed).
//!
//! - [`results`]: `copl-train report`, the tables and figures from the runs' JSON.
//!
//! What is left (the stages not run yet, the analyses without a JSON yet) is listed in
//! docs/next.md.

pub mod experts;
pub mod figures;
pub mod projection;
pub mod results;
