//! A preference data set on disk: a directory with `responses.jsonl`,
//! `annotations.jsonl` and (optional, ground truth) `users.jsonl`.

use std::{
    collections::{HashMap, HashSet},
    fs,
    path::Path,
};

use sha2::{Digest, Sha256};

use super::{
    error::{DataError, DataErrorKind, DataErrors},
    jsonl::{self, read_lines},
    types::{Annotation, Response, Split, UserTruth},
};

/// File of response nodes.
pub const RESPONSES_FILE: &str = "responses.jsonl";
/// File of pairwise annotations.
pub const ANNOTATIONS_FILE: &str = "annotations.jsonl";
/// File of users' ground truth (optional).
pub const USERS_FILE: &str = "users.jsonl";

/// A validated preference data set.
///
/// Invariants (checked by [`Dataset::load`] and [`Dataset::new`]): response ids are
/// unique; every annotation names two different known responses to the same prompt;
/// when ground truth is present, user ids in it are unique and every annotating user is
/// in it.
#[derive(Clone, Debug)]
pub struct Dataset {
    responses: Vec<Response>,
    annotations: Vec<Annotation>,
    users: Vec<UserTruth>,
    response_index: HashMap<String, usize>,
}

impl Dataset {
    /// Builds a data set from records in memory, validating it as [`Dataset::load`] does
    /// (errors name the records by their 1-based position in the would-be files).
    pub fn new(
        responses: Vec<Response>,
        annotations: Vec<Annotation>,
        users: Vec<UserTruth>,
    ) -> Result<Self, DataErrors> {
        Self::validate(
            Path::new(""),
            numbered(responses),
            numbered(annotations),
            numbered(users),
        )
    }

    /// Reads and validates the data set in `dir`. Every problem found is reported, each
    /// naming its file, line and field.
    pub fn load(dir: &Path) -> Result<Self, DataErrors> {
        let mut errors = DataErrors::new();
        let responses = read_lines(
            &dir.join(RESPONSES_FILE),
            &mut errors,
            jsonl::parse_response,
        );
        let annotations = read_lines(
            &dir.join(ANNOTATIONS_FILE),
            &mut errors,
            jsonl::parse_annotation,
        );
        let users_path = dir.join(USERS_FILE);
        let users = if users_path.exists() {
            read_lines(&users_path, &mut errors, jsonl::parse_user)
        } else {
            Vec::new()
        };
        match Self::validate(dir, responses, annotations, users) {
            Ok(dataset) if errors.is_empty() => Ok(dataset),
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more);
                Err(errors)
            }
        }
    }

    fn validate(
        dir: &Path,
        responses: Vec<(usize, Response)>,
        annotations: Vec<(usize, Annotation)>,
        users: Vec<(usize, UserTruth)>,
    ) -> Result<Self, DataErrors> {
        let mut errors = DataErrors::new();
        let responses_path = dir.join(RESPONSES_FILE);
        let annotations_path = dir.join(ANNOTATIONS_FILE);
        let users_path = dir.join(USERS_FILE);

        let mut response_index = HashMap::with_capacity(responses.len());
        let mut first_line = HashMap::with_capacity(responses.len());
        let mut kept_responses = Vec::with_capacity(responses.len());
        for (line, response) in responses {
            if let Some(first) = first_line.get(&response.id) {
                errors.push(DataError::new(
                    &responses_path,
                    Some(line),
                    Some("id"),
                    DataErrorKind::DuplicateId,
                    format!("response id {:?} already used on line {first}", response.id),
                ));
                continue;
            }
            first_line.insert(response.id.clone(), line);
            response_index.insert(response.id.clone(), kept_responses.len());
            kept_responses.push(response);
        }

        let mut user_lines = HashMap::with_capacity(users.len());
        let mut kept_users = Vec::with_capacity(users.len());
        for (line, user) in users {
            if let Some(first) = user_lines.get(&user.user) {
                errors.push(DataError::new(
                    &users_path,
                    Some(line),
                    Some("user"),
                    DataErrorKind::DuplicateId,
                    format!("user {:?} already listed on line {first}", user.user),
                ));
                continue;
            }
            user_lines.insert(user.user.clone(), line);
            kept_users.push(user);
        }
        let has_truth = !kept_users.is_empty();

        let mut kept_annotations = Vec::with_capacity(annotations.len());
        for (line, annotation) in annotations {
            let error = |field: &str, kind, message: String| {
                DataError::new(&annotations_path, Some(line), Some(field), kind, message)
            };
            let chosen = response_index.get(&annotation.chosen);
            let rejected = response_index.get(&annotation.rejected);
            let problem = if chosen.is_none() {
                Some(error(
                    "chosen",
                    DataErrorKind::UnknownId,
                    format!("unknown response id {:?}", annotation.chosen),
                ))
            } else if rejected.is_none() {
                Some(error(
                    "rejected",
                    DataErrorKind::UnknownId,
                    format!("unknown response id {:?}", annotation.rejected),
                ))
            } else if annotation.chosen == annotation.rejected {
                Some(error(
                    "rejected",
                    DataErrorKind::SelfPreference,
                    format!(
                        "user {:?} prefers response {:?} over itself",
                        annotation.user, annotation.chosen
                    ),
                ))
            } else if has_truth && !user_lines.contains_key(&annotation.user) {
                Some(error(
                    "user",
                    DataErrorKind::UnknownId,
                    format!("user {:?} is not in {USERS_FILE}", annotation.user),
                ))
            } else {
                match (chosen, rejected) {
                    (Some(&a), Some(&b))
                        if kept_responses[a].prompt != kept_responses[b].prompt =>
                    {
                        Some(error(
                            "rejected",
                            DataErrorKind::PromptMismatch,
                            format!(
                                "responses {:?} and {:?} answer different prompts",
                                annotation.chosen, annotation.rejected
                            ),
                        ))
                    }
                    _ => None,
                }
            };
            match problem {
                Some(e) => errors.push(e),
                None => kept_annotations.push(annotation),
            }
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            responses: kept_responses,
            annotations: kept_annotations,
            users: kept_users,
            response_index,
        })
    }

    /// Writes the data set to `dir` (created if needed), each file atomically.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        jsonl::write_jsonl(&dir.join(RESPONSES_FILE), &self.responses)?;
        jsonl::write_jsonl(&dir.join(ANNOTATIONS_FILE), &self.annotations)?;
        if !self.users.is_empty() {
            jsonl::write_jsonl(&dir.join(USERS_FILE), &self.users)?;
        }
        Ok(())
    }

    /// The response nodes, in file order.
    pub fn responses(&self) -> &[Response] {
        &self.responses
    }

    /// The annotations, in file order.
    pub fn annotations(&self) -> &[Annotation] {
        &self.annotations
    }

    /// Users' ground truth (empty when the data set has none).
    pub fn users(&self) -> &[UserTruth] {
        &self.users
    }

    /// Row of a response id in [`Dataset::responses`].
    pub fn response_row(&self, id: &str) -> Option<usize> {
        self.response_index.get(id).copied()
    }

    /// The response with this id.
    pub fn response(&self, id: &str) -> Option<&Response> {
        self.response_row(id).map(|row| &self.responses[row])
    }

    /// Ids of users marked unseen in the ground truth.
    pub fn unseen_users(&self) -> HashSet<&str> {
        self.users
            .iter()
            .filter(|u| u.unseen)
            .map(|u| u.user.as_str())
            .collect()
    }

    /// Annotations of one split.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &Annotation> {
        self.annotations.iter().filter(move |a| a.split == split)
    }

    /// The texts a model has seen annotated: the responses some training or validation
    /// pair has.
    pub fn annotated_texts(&self) -> AnnotatedTexts {
        AnnotatedTexts(
            self.annotations
                .iter()
                .filter(|a| a.split != Split::Test)
                .flat_map(|a| [self.response_row(&a.chosen), self.response_row(&a.rejected)])
                .flatten()
                .collect(),
        )
    }
}

/// Response rows some training or validation pair has ([`Dataset::annotated_texts`]).
#[derive(Clone, Debug, Default)]
pub struct AnnotatedTexts(HashSet<usize>);

impl AnnotatedTexts {
    /// A pair on new texts: neither response annotated outside the test split (`synth
    /// --heldout-prompts`' test pairs). A graph model holds no edge of such a response.
    pub fn new_pair(&self, chosen: usize, rejected: usize) -> bool {
        !self.0.contains(&chosen) && !self.0.contains(&rejected)
    }
}

/// Pairs each record with its 1-based position, as if it were a file line.
fn numbered<T>(items: Vec<T>) -> Vec<(usize, T)> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, x)| (i + 1, x))
        .collect()
}

/// sha256 (hex) of the data set's files, in a fixed order: the training data hash a
/// checkpoint manifest records.
pub fn data_hash(dir: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    for name in [RESPONSES_FILE, ANNOTATIONS_FILE, USERS_FILE] {
        let path = dir.join(name);
        if path.exists() {
            hasher.update(name.as_bytes());
            hasher.update(fs::read(&path)?);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}
