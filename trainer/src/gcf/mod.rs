//! GCF training (paper §4.1): learn user and response embeddings on the signed
//! preference graph with the BTL loss (eq. 5).

pub mod bench;
mod display;
pub mod fused;
pub mod identify;
pub mod model;
mod run;
pub mod spmm;
mod train;
pub mod warm;

pub use identify::{GroupIdentification, Identification};
pub use model::{GcfArch, GcfModel, GraphOps, scores};
pub use run::{
    GcfEval, GcfSummary, Slice, eval_gcf, run_gcf, run_gcf_from, same_responses, write_catalogue,
};
pub use train::EpochRecord;
pub use train::{
    GcfTraining, PairRows, StepEngine, TrainConfig, accuracy, pair_rows, train, train_from,
};
