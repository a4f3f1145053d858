//! `check` (a data set loaded and validated) and `catalogue` (a checkpoint's
//! `catalogue.jsonl` written from its data).

use std::{fmt, path::PathBuf};

use anyhow::Result;
use clap::Args;
use copl_core::data::Dataset;
use serde::Serialize;

use super::Run;

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// Directory with responses.jsonl, annotations.jsonl and (optional) users.jsonl.
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    json: bool,
}

/// A valid data set's counts.
#[derive(Serialize)]
pub(crate) struct DataCounts {
    data: PathBuf,
    responses: usize,
    annotations: usize,
    users_with_ground_truth: usize,
}

impl fmt::Display for DataCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} responses, {} annotations, {} users with ground truth: valid",
            self.data.display(),
            self.responses,
            self.annotations,
            self.users_with_ground_truth
        )
    }
}

impl Run for CheckArgs {
    type Output = DataCounts;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<DataCounts> {
        let dataset = Dataset::load(&self.data).map_err(anyhow::Error::new)?;
        Ok(DataCounts {
            responses: dataset.responses().len(),
            annotations: dataset.annotations().len(),
            users_with_ground_truth: dataset.users().len(),
            data: self.data,
        })
    }
}

#[derive(Args)]
pub(crate) struct CatalogueArgs {
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    ckpt: PathBuf,
    #[arg(long)]
    json: bool,
}

/// What `catalogue` wrote.
#[derive(Serialize)]
pub(crate) struct CatalogueWritten {
    ckpt: PathBuf,
    responses: usize,
}

impl fmt::Display for CatalogueWritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: catalogue.jsonl written ({} responses)",
            self.ckpt.display(),
            self.responses
        )
    }
}

impl Run for CatalogueArgs {
    type Output = CatalogueWritten;
    fn json(&self) -> bool {
        self.json
    }
    fn run(self) -> Result<CatalogueWritten> {
        let responses = copl_trainer::gcf::write_catalogue(&self.data, &self.ckpt)?;
        Ok(CatalogueWritten {
            ckpt: self.ckpt,
            responses,
        })
    }
}
