//! Onboarding of unseen users, offline: its evaluation (paper Table 5, Fig. 5, and
//! suggested against random survey pairs) and its latency benchmark. The adaptation
//! itself lives in `copl_core::adapt`, where the server uses it.

pub mod bench;
mod display;
mod eval;
pub mod user_opt;

pub(crate) use eval::unseen_users;
pub use eval::{
    AdaptationStats, AnswersPoint, EvalUnseenConfig, MethodResult, UnseenEval, eval_unseen,
};
