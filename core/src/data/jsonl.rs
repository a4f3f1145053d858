//! JSONL reading and writing. Readers parse each line on its own, so that an error
//! names the file, the line and the field; writers replace a file atomically.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufRead, BufReader, BufWriter, Write},
    path::Path,
};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{
    error::{DataError, DataErrorKind, DataErrors},
    types::{Annotation, Response, Split, UserTruth},
};

/// Calls `parse` on every non-blank line of `path` (1-based line numbers), collecting
/// the records it returns and the errors of every line that fails.
pub(crate) fn read_lines<T>(
    path: &Path,
    errors: &mut DataErrors,
    mut parse: impl FnMut(&Record<'_>) -> Result<T, DataError>,
) -> Vec<(usize, T)> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            errors.push(DataError::new(
                path,
                None,
                None,
                DataErrorKind::Io,
                format!("cannot open: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line_no = index + 1;
        let text = match line {
            Ok(text) => text,
            Err(e) => {
                errors.push(DataError::new(
                    path,
                    Some(line_no),
                    None,
                    DataErrorKind::Io,
                    format!("cannot read: {e}"),
                ));
                break;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        let object = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(object)) => object,
            Ok(other) => {
                errors.push(DataError::new(
                    path,
                    Some(line_no),
                    None,
                    DataErrorKind::Json,
                    format!("expected a JSON object, got {}", json_kind(&other)),
                ));
                continue;
            }
            Err(e) => {
                errors.push(DataError::new(
                    path,
                    Some(line_no),
                    None,
                    DataErrorKind::Json,
                    format!("invalid JSON: {e}"),
                ));
                continue;
            }
        };
        let record = Record {
            path,
            line: line_no,
            object: &object,
        };
        match parse(&record) {
            Ok(value) => out.push((line_no, value)),
            Err(e) => errors.push(e),
        }
    }
    out
}

/// One parsed JSONL line, with what is needed to name it in an error.
pub(crate) struct Record<'a> {
    pub path: &'a Path,
    pub line: usize,
    pub object: &'a Map<String, Value>,
}

impl Record<'_> {
    pub fn error(&self, field: &str, kind: DataErrorKind, message: impl Into<String>) -> DataError {
        DataError::new(self.path, Some(self.line), Some(field), kind, message)
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    /// A required string field.
    pub fn string(&self, field: &str) -> Result<String, DataError> {
        match self.get(field) {
            None => Err(self.error(field, DataErrorKind::MissingField, "missing")),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.error(
                field,
                DataErrorKind::BadValue,
                format!("expected a string, got {}", json_kind(other)),
            )),
        }
    }

    /// A required string field that must hold visible text.
    pub fn text(&self, field: &str) -> Result<String, DataError> {
        let s = self.string(field)?;
        if s.trim().is_empty() {
            return Err(self.error(field, DataErrorKind::EmptyText, "empty"));
        }
        Ok(s)
    }

    fn optional_string(&self, field: &str) -> Result<Option<String>, DataError> {
        self.get(field).map(|_| self.string(field)).transpose()
    }

    fn optional_bool(&self, field: &str) -> Result<Option<bool>, DataError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(
                field,
                DataErrorKind::BadValue,
                format!("expected true or false, got {}", json_kind(other)),
            )),
        }
    }

    fn finite(&self, field: &str, value: &Value) -> Result<f64, DataError> {
        value.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
            self.error(
                field,
                DataErrorKind::BadValue,
                format!("expected a finite number, got {value}"),
            )
        })
    }
}

/// How a JSON value is called in messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn parse_response(record: &Record<'_>) -> Result<Response, DataError> {
    let attributes = match record.get("attributes") {
        None => None,
        Some(Value::Object(map)) => {
            let mut attributes = BTreeMap::new();
            for (name, value) in map {
                let field = format!("attributes.{name}");
                attributes.insert(name.clone(), record.finite(&field, value)?);
            }
            Some(attributes)
        }
        Some(other) => {
            return Err(record.error(
                "attributes",
                DataErrorKind::BadValue,
                format!("expected an object of numbers, got {}", json_kind(other)),
            ));
        }
    };
    Ok(Response {
        id: record.text("id")?,
        prompt: record.text("prompt")?,
        response: record.text("response")?,
        attributes,
    })
}

pub(crate) fn parse_annotation(record: &Record<'_>) -> Result<Annotation, DataError> {
    let split_name = record.string("split")?;
    let split = Split::parse(&split_name).ok_or_else(|| {
        record.error(
            "split",
            DataErrorKind::BadValue,
            format!("expected \"train\", \"val\" or \"test\", got {split_name:?}"),
        )
    })?;
    Ok(Annotation {
        user: record.text("user")?,
        chosen: record.text("chosen")?,
        rejected: record.text("rejected")?,
        split,
        controversial: record.optional_bool("controversial")?,
    })
}

pub(crate) fn parse_user(record: &Record<'_>) -> Result<UserTruth, DataError> {
    let weights = match record.get("weights") {
        None => None,
        Some(Value::Array(values)) => {
            let mut weights = Vec::with_capacity(values.len());
            for (i, value) in values.iter().enumerate() {
                let w = record.finite(&format!("weights[{i}]"), value)?;
                if w < 0.0 {
                    return Err(record.error(
                        &format!("weights[{i}]"),
                        DataErrorKind::BadValue,
                        format!("weights must not be negative, got {w}"),
                    ));
                }
                weights.push(w);
            }
            Some(weights)
        }
        Some(other) => {
            return Err(record.error(
                "weights",
                DataErrorKind::BadValue,
                format!("expected an array of numbers, got {}", json_kind(other)),
            ));
        }
    };
    let group = record.optional_string("group")?;
    if group.as_deref().is_some_and(|g| g.trim().is_empty()) {
        return Err(record.error("group", DataErrorKind::EmptyText, "empty"));
    }
    Ok(UserTruth {
        user: record.text("user")?,
        group,
        weights,
        unseen: record.optional_bool("unseen")?.unwrap_or(false),
    })
}

/// Writes `items` as JSONL to `path`, atomically and durably ([`crate::atomic::replace`]):
/// the file appears complete or not at all.
pub fn write_jsonl<'a, T: Serialize + 'a>(
    path: &Path,
    items: impl IntoIterator<Item = &'a T>,
) -> std::io::Result<()> {
    crate::atomic::replace(path, |tmp| {
        let mut out = BufWriter::new(File::create(tmp)?);
        for item in items {
            serde_json::to_writer(&mut out, item)?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    })
}
