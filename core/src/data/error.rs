//! Errors of the preference data readers: every error names the file, the line and,
//! where there is one, the field.

use std::{fmt, path::PathBuf};

/// What kind of problem a [`DataError`] reports (for callers and tests to match on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataErrorKind {
    /// The file could not be opened or read.
    Io,
    /// The line is not a JSON object.
    Json,
    /// A required field is absent (or `null`).
    MissingField,
    /// A field has the wrong JSON type or an invalid value.
    BadValue,
    /// A text field (id, prompt, response, user) is empty or only whitespace.
    EmptyText,
    /// An id appears twice where ids must be unique.
    DuplicateId,
    /// An id refers to nothing (an unknown response or user).
    UnknownId,
    /// A user prefers a response over itself (`chosen == rejected`).
    SelfPreference,
    /// The chosen and rejected responses answer different prompts.
    PromptMismatch,
}

/// One problem in a preference data file.
#[derive(Clone, Debug, PartialEq)]
pub struct DataError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line number; `None` for whole-file problems (I/O).
    pub line: Option<usize>,
    /// The JSON field at fault, if any.
    pub field: Option<String>,
    /// What kind of problem this is.
    pub kind: DataErrorKind,
    /// What was wrong, with the offending value.
    pub message: String,
}

impl DataError {
    pub(crate) fn new(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        field: Option<&str>,
        kind: DataErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            line,
            field: field.map(str::to_owned),
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for DataError {}

/// Every problem found in a data set (reading goes on past the first error so that one
/// run shows them all; at most [`DataErrors::MAX_KEPT`] are kept).
#[derive(Clone, Debug, PartialEq)]
pub struct DataErrors {
    /// The problems kept, in file then line order.
    pub errors: Vec<DataError>,
    /// How many problems were found in all (may exceed `errors.len()`).
    pub total: usize,
}

impl DataErrors {
    /// Problems kept in full; the rest are only counted.
    pub const MAX_KEPT: usize = 50;

    pub(crate) fn new() -> Self {
        Self {
            errors: Vec::new(),
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, error: DataError) {
        self.total += 1;
        if self.errors.len() < Self::MAX_KEPT {
            self.errors.push(error);
        }
    }

    /// Adds every problem of `other` (its uncounted ones too).
    pub(crate) fn extend(&mut self, other: DataErrors) {
        let kept = other.errors.len();
        for error in other.errors {
            self.push(error);
        }
        self.total += other.total - kept;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether any kept error is of `kind`.
    pub fn has(&self, kind: DataErrorKind) -> bool {
        self.errors.iter().any(|e| e.kind == kind)
    }
}

impl fmt::Display for DataErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 10;
        write!(f, "{} problem(s) in the preference data", self.total)?;
        for error in self.errors.iter().take(SHOWN) {
            write!(f, "\n  {error}")?;
        }
        if self.total > SHOWN {
            write!(f, "\n  … and {} more", self.total - SHOWN)?;
        }
        Ok(())
    }
}

impl std::error::Error for DataErrors {}

impl From<DataError> for DataErrors {
    fn from(error: DataError) -> Self {
        let mut errors = Self::new();
        errors.push(error);
        errors
    }
}
