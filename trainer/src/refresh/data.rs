//! The refreshed data set: the parent's data and the onboarded users' answers as
//! training annotations. A user the data already holds as unseen (held out to be
//! onboarded) becomes seen — their annotations are there already —; any other user's
//! kept answers are appended as `train` annotations. Answers on responses the data lacks
//! are skipped and counted; records without answers (written before answers were kept)
//! add nothing.

use std::{collections::HashSet, path::Path};

use anyhow::Result;
use copl_core::{
    data::{Annotation, Dataset, Split, UserTruth},
    stored_user::StoredUser,
};
use serde::{Deserialize, Serialize};

/// What the onboarded users added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Added {
    /// Records read, and those without answers.
    pub records: usize,
    pub records_without_answers: usize,
    /// Users new to the data (their answers appended), and unseen users made seen.
    pub users_added: usize,
    pub users_made_seen: usize,
    /// Answers appended, and those naming a response the data lacks.
    pub answers_added: usize,
    pub answers_skipped: usize,
}

/// The enlarged data set of `data` and `records` (validated as a loaded one is).
pub fn enlarge(data: &Dataset, records: &[StoredUser]) -> Result<(Dataset, Added)> {
    let mut added = Added {
        records: records.len(),
        ..Added::default()
    };
    let annotated: HashSet<&str> = data.annotations().iter().map(|a| a.user.as_str()).collect();
    let onboarded: HashSet<&str> = records
        .iter()
        .filter(|r| r.answers_known())
        .map(|r| r.user_id.as_str())
        .collect();
    let mut annotations = data.annotations().to_vec();
    let mut users: Vec<UserTruth> = data
        .users()
        .iter()
        .map(|u| {
            let mut u = u.clone();
            if u.unseen && onboarded.contains(u.user.as_str()) {
                u.unseen = false;
                added.users_made_seen += 1;
            }
            u
        })
        .collect();
    for record in records {
        let Some(log) = &record.answer_log else {
            added.records_without_answers += 1;
            continue;
        };
        if annotated.contains(record.user_id.as_str()) {
            continue; // the data's own annotations of this user stand
        }
        let before = annotations.len();
        for answer in log {
            if data.response_row(&answer.chosen).is_none()
                || data.response_row(&answer.rejected).is_none()
            {
                added.answers_skipped += 1;
                continue;
            }
            annotations.push(Annotation {
                user: record.user_id.clone(),
                chosen: answer.chosen.clone(),
                rejected: answer.rejected.clone(),
                split: Split::Train,
                controversial: None,
            });
        }
        let appended = annotations.len() - before;
        added.answers_added += appended;
        if appended > 0 {
            added.users_added += 1;
            if !users.is_empty() {
                users.push(UserTruth {
                    user: record.user_id.clone(),
                    group: None,
                    weights: None,
                    unseen: false,
                });
            }
        }
    }
    let dataset = Dataset::new(data.responses().to_vec(), annotations, users)
        .map_err(|e| anyhow::anyhow!("the refreshed data set: {e}"))?;
    Ok((dataset, added))
}

/// Writes `dataset` into `dir` (created).
pub fn save(dataset: &Dataset, dir: &Path) -> Result<()> {
    dataset
        .save(dir)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use copl_core::{
        data::Response,
        file_version::FileVersion,
        stored_user::{KeptAnswer, StoredUser},
    };

    fn response(id: &str) -> Response {
        Response {
            id: id.into(),
            prompt: "p".into(),
            response: format!("text of {id}"),
            attributes: None,
        }
    }

    fn annotation(user: &str, chosen: &str, rejected: &str, split: Split) -> Annotation {
        Annotation {
            user: user.into(),
            chosen: chosen.into(),
            rejected: rejected.into(),
            split,
            controversial: None,
        }
    }

    fn truth(user: &str, unseen: bool) -> UserTruth {
        UserTruth {
            user: user.into(),
            group: None,
            weights: None,
            unseen,
        }
    }

    fn record(id: &str, answers: Option<&[(&str, &str)]>) -> StoredUser {
        StoredUser {
            format_version: FileVersion::CURRENT,
            user_id: id.into(),
            embedding: vec![1.0],
            personalised: true,
            created_unix_ms: 1,
            answers: answers.map_or(0, |a| a.len() as u32),
            space: "s".into(),
            answer_log: answers.map(|a| {
                a.iter()
                    .map(|(c, r)| KeptAnswer {
                        chosen: (*c).into(),
                        rejected: (*r).into(),
                        answered_unix_ms: 1,
                    })
                    .collect()
            }),
            options: None,
        }
    }

    /// An unseen user onboarded becomes seen (their annotations stand); a new user's
    /// answers are appended as train pairs, one on an unknown response skipped; a record
    /// without answers adds nothing.
    #[test]
    fn onboarded_users_join_the_data() {
        let data = Dataset::new(
            ["a", "b", "c"].map(response).to_vec(),
            vec![
                annotation("seen", "a", "b", Split::Train),
                annotation("held", "b", "c", Split::Train),
                annotation("held", "a", "c", Split::Test),
            ],
            vec![truth("seen", false), truth("held", true)],
        )
        .unwrap();
        let records = [
            record("held", Some(&[("b", "c")])),
            record("new", Some(&[("a", "c"), ("a", "zzz")])),
            record("old", None),
        ];
        let (enlarged, added) = enlarge(&data, &records).unwrap();
        assert_eq!(
            added,
            Added {
                records: 3,
                records_without_answers: 1,
                users_added: 1,
                users_made_seen: 1,
                answers_added: 1,
                answers_skipped: 1,
            }
        );
        assert!(enlarged.unseen_users().is_empty());
        let new: Vec<_> = enlarged
            .annotations()
            .iter()
            .filter(|a| a.user == "new")
            .collect();
        assert_eq!(new.len(), 1);
        assert_eq!((new[0].chosen.as_str(), new[0].split), ("a", Split::Train));
        assert_eq!(enlarged.annotations().len(), 4);
        assert!(
            enlarged
                .users()
                .iter()
                .any(|u| u.user == "new" && !u.unseen)
        );
    }
}
