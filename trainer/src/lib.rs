//! copl-trainer: the offline half of CoPL — synthetic benchmarks now; GCF and MoLE
//! training, evaluation and reports as they land (see `docs/architecture.md`).

pub mod gcf;
pub mod memory;
pub mod mole;
pub mod onboard;
pub mod optim;
pub mod report;
pub mod synth;
