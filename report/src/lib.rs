//! `copl-report` (issue #9): the paper's tables and figures from the JSON that
//! `copl-train` and the benchmark scripts write, read back as their writers' structs.
//!
//! - [`results`]: the report itself, its layout of inputs, and the sections on experts,
//!   projections, adaptation and GCF;
//! - `paper`: the paper's published numbers the tables set beside ours;
//! - [`runs`]: reading the runs directory and the formatting every section shares (a
//!   leaf: no section imports another's);
//! - [`reward_models`]: Tables 2 and 3 (seen/unseen, controversial/common, bounds);
//! - [`imbalance`]: Fig. 4 (group imbalance) and the paper's §7 options measured;
//! - [`longer`]: grid sets retrained with more steps, beside the grid's run;
//! - [`mole_seeds`]: Table 2's reward-model cells over seeds, mean ± std, and the paired
//!   differences issue #13's criteria name;
//! - [`strength`]: the baselines at the paper's LoRA rank beside CoPL (issue #13 item 3);
//! - [`routing`]: the gates' routing over training and CoPL against oracle routing
//!   (issue #13 items 1–2);
//! - [`noise`]: CoPL and Uniform under label noise, GCF's kept epoch (issue #13 item 5);
//! - [`seeds`]: GCF and adaptation over several seeds, mean ± std;
//! - [`variants`]: one benchmark run directory's tables (what
//!   `scripts/mole-benchmarks.sh` prints);
//! - [`figures`]: PNG line charts, scatter plots and grouped bars with an embedded font
//!   (no system font library needed).
//!
//! What is left is listed in docs/next.md.

pub mod figures;
pub mod imbalance;
pub mod longer;
pub mod mole_seeds;
pub mod new_texts;
pub mod noise;
mod paper;
pub mod results;
pub mod reward_models;
pub mod routing;
pub mod runs;
pub mod seeds;
pub mod strength;
pub mod variants;
