//! Text of the synthetic benchmarks. Every latent attribute is *readable from the text*:
//!
//! | attribute | level 0 | level 4 |
//! |---|---|---|
//! | detail | one vague line | four concrete tips, each with a number or an example |
//! | hedging | a confident assertion | hedged sentences and caveats |
//! | structure | one paragraph | a heading, a numbered list and a summary line |
//! | formality | casual openers, fillers, contractions, "!!" | formal wording, connectors, no contractions |
//!
//! and for TL;DR the summary's length grows with its level (more facts, longer forms).

use rand::{Rng, seq::IndexedRandom, seq::SliceRandom};

use super::words::{self, Topic};

/// Number of attribute levels (0..LEVELS).
pub const LEVELS: u8 = 5;

/// Attribute levels of an advice response, each in `0..LEVELS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdviceLevels {
    pub detail: u8,
    pub hedging: u8,
    pub structure: u8,
    pub formality: u8,
}

impl AdviceLevels {
    /// Names of the attributes, in [`AdviceLevels::as_array`] order.
    pub const NAMES: [&'static str; 4] = ["detail", "hedging", "structure", "formality"];

    /// Uniformly random levels.
    pub fn random(rng: &mut impl Rng) -> Self {
        Self {
            detail: rng.random_range(0..LEVELS),
            hedging: rng.random_range(0..LEVELS),
            structure: rng.random_range(0..LEVELS),
            formality: rng.random_range(0..LEVELS),
        }
    }

    pub fn as_array(&self) -> [u8; 4] {
        [self.detail, self.hedging, self.structure, self.formality]
    }
}

/// An advice question about `topic`.
pub fn advice_prompt(rng: &mut impl Rng, topic: &Topic) -> String {
    pick(rng, words::QUESTIONS).replace("{a}", topic.activity)
}

/// Most words an advice response may have.
pub const MAX_WORDS: usize = 120;

/// An advice response about `topic` whose text shows `levels`, of at most
/// [`MAX_WORDS`] words: long combinations are redrawn, then lose their closing, then
/// their core statement (neither carries an attribute the levels need).
pub fn advice_response(rng: &mut impl Rng, topic: &Topic, levels: AdviceLevels) -> String {
    let mut text = String::new();
    for attempt in 0..24 {
        let trim = match attempt {
            0..12 => Trim::None,
            12..16 => Trim::Closing,
            _ => Trim::ClosingAndCore,
        };
        text = compose_advice(rng, topic, levels, trim);
        if text.split_whitespace().count() <= MAX_WORDS {
            break;
        }
    }
    text
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trim {
    None,
    Closing,
    ClosingAndCore,
}

fn compose_advice(rng: &mut impl Rng, topic: &Topic, levels: AdviceLevels, trim: Trim) -> String {
    let AdviceLevels {
        detail,
        hedging,
        structure,
        formality,
    } = levels;
    let formality = usize::from(formality);
    let opener = pick(rng, words::OPENERS[formality]).replace("{a}", topic.activity);

    // The items: a core statement, then the concrete tips (detail).
    let mut items = Vec::new();
    if trim != Trim::ClosingAndCore || detail < 2 {
        items.push(pick(rng, words::CORE).to_string());
    }
    if detail == 0 {
        items.push(pick(rng, words::VAGUE).to_string());
    } else {
        let tips: Vec<&str> = words::TIPS
            .choose_multiple(rng, usize::from(detail))
            .copied()
            .collect();
        for tip in tips {
            items.push(fill_tip(rng, tip, topic));
        }
    }

    // Hedging: hedged items, a caveat, or a confident assertion.
    let hedged = [0, 0, 1, 2, 3][usize::from(hedging)];
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.shuffle(rng);
    for &i in order.iter().take(hedged) {
        // The core and the vague line are statements; tips are imperatives.
        let imperative = detail > 0 && (i > 0 || trim == Trim::ClosingAndCore);
        let hedges = if imperative {
            words::IMPERATIVE_HEDGES
        } else {
            words::HEDGES
        };
        items[i] = format!("{} {}", pick(rng, hedges), lower_first(&items[i]));
    }
    let mut extras = Vec::new();
    match hedging {
        0 => extras.push(pick(rng, words::ASSERTIONS).to_string()),
        3 => extras.push(pick(rng, words::CAVEATS).replace("{e}", topic.expert)),
        4 => {
            extras.push(pick(rng, words::CAVEATS).replace("{e}", topic.expert));
            extras.push(pick(rng, words::DOUBTS).to_string());
        }
        _ => {}
    }

    // Formality beyond wording: fillers and exclamations, or formal connectors.
    if formality == 0 {
        items[0] = format!("{} {}", pick(rng, words::FILLERS), lower_first(&items[0]));
        if let Some(last) = items.last_mut() {
            exclaim(last);
        }
    } else if formality == 4 && structure != 2 && trim != Trim::ClosingAndCore {
        // (Structure 2 has ordinal markers already; connectors would stack on them.)
        for item in items.iter_mut().skip(2) {
            *item = format!("{} {}", pick(rng, words::CONNECTORS), lower_first(item));
        }
    }
    let closing = if trim == Trim::None {
        pick(rng, words::CLOSINGS[formality]).to_string()
    } else {
        String::new()
    };

    let text = layout(rng, structure, &opener, &items, &extras, &closing, trim);
    if formality <= 2 {
        contract(&text)
    } else {
        text
    }
}

/// Lays out the parts by the structure level.
fn layout(
    rng: &mut impl Rng,
    structure: u8,
    opener: &str,
    items: &[String],
    extras: &[String],
    closing: &str,
    trim: Trim,
) -> String {
    let tail = extras
        .iter()
        .map(String::as_str)
        .chain([closing])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let numbered = || {
        items
            .iter()
            .enumerate()
            .map(|(i, item)| format!("{}. {item}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match structure {
        0 => format!("{opener} {} {tail}", items.join(" ")),
        1 => format!("{opener}\n\n{}\n\n{tail}", items.join(" ")),
        2 => {
            let last = items.len() - 1;
            let body = items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let marker = if i == last && i > 0 {
                        "Finally,"
                    } else {
                        words::ORDINALS[i.min(words::ORDINALS.len() - 2)]
                    };
                    format!("{marker} {}", lower_first(item))
                })
                .collect::<Vec<_>>()
                .join(" ");
            format!("{opener} {body} {tail}")
        }
        3 => format!("{opener}\n{}\n\n{tail}", numbered()),
        _ if trim == Trim::ClosingAndCore => {
            format!("{opener}\n\nSteps:\n{}\n\n{tail}", numbered())
        }
        _ => {
            let summary = pick(
                rng,
                &[
                    "keep it simple and regular.",
                    "small steps, done often.",
                    "practise a little, measure, adjust.",
                ],
            );
            format!(
                "{opener}\n\nSteps:\n{}\n\nIn short: {summary} {tail}",
                numbered()
            )
        }
    }
}

fn fill_tip(rng: &mut impl Rng, tip: &str, topic: &Topic) -> String {
    let n = *[2, 3, 4, 5, 10, 15, 20, 30].choose(rng).unwrap_or(&10);
    tip.replace("{practice}", topic.practice)
        .replace("{tool}", topic.tool)
        .replace("{mistake}", topic.mistake)
        .replace("{metric}", topic.metric)
        .replace("{resource}", topic.resource)
        .replace("{n}", &n.to_string())
}

/// Applies the casual contractions.
fn contract(text: &str) -> String {
    words::CONTRACTIONS
        .iter()
        .fold(text.to_string(), |t, (long, short)| t.replace(long, short))
}

fn exclaim(sentence: &mut String) {
    if sentence.ends_with('.') {
        sentence.pop();
        sentence.push('!');
    }
}

/// Lower-cases the first letter unless the sentence starts with the pronoun "I".
fn lower_first(s: &str) -> String {
    if s.starts_with("I ") || s.starts_with("I'") {
        return s.to_string();
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn pick<'a>(rng: &mut impl Rng, options: &[&'a str]) -> &'a str {
    options.choose(rng).copied().unwrap_or("")
}

// ---------------------------------------------------------------------------------
// TL;DR
// ---------------------------------------------------------------------------------

/// The facts of a Reddit-style post, from which the post and its summaries are written.
#[derive(Clone, Debug)]
pub struct Post {
    relation: &'static str,
    offence: (&'static str, &'static str),
    duration: &'static str,
    time: &'static str,
    reaction: (&'static str, &'static str),
    feeling: &'static str,
    constraint: (&'static str, &'static str),
    question: (&'static str, &'static str),
    times_raised: u32,
    /// The post as the prompt shows it.
    pub text: String,
}

/// Number of summary levels (0 shortest … `SUMMARY_LEVELS - 1` longest).
pub const SUMMARY_LEVELS: u8 = 5;

/// A new random post.
pub fn tldr_post(rng: &mut impl Rng) -> Post {
    let age: u32 = rng.random_range(19..46);
    let sex = if rng.random_bool(0.5) { 'F' } else { 'M' };
    let other_age: u32 = rng.random_range(19..50);
    let relation = pick(rng, words::RELATIONS);
    let offence = *words::OFFENCES.choose(rng).unwrap_or(&words::OFFENCES[0]);
    let duration = pick(rng, words::DURATIONS);
    let time = pick(rng, words::TIMES);
    let reaction = *words::REACTIONS.choose(rng).unwrap_or(&words::REACTIONS[0]);
    let feeling = pick(rng, words::FEELINGS);
    let constraint = *words::CONSTRAINTS
        .choose(rng)
        .unwrap_or(&words::CONSTRAINTS[0]);
    let question = *words::QUESTIONS_TLDR
        .choose(rng)
        .unwrap_or(&words::QUESTIONS_TLDR[0]);
    let times_raised: u32 = rng.random_range(2..5);

    let mut middle = [
        format!("This has been going on for {duration}."),
        format!("It happened again {time}, and I honestly could not believe it."),
        format!(
            "I have brought it up {times_raised} times, and each time they {}.",
            reaction.0
        ),
    ];
    middle.shuffle(rng);
    let text = format!(
        "I ({age}{sex}) have a {relation} ({other_age}) who {}. {} I am starting to feel {feeling}. {} \
         So, how do I {} without {}?",
        offence.0,
        middle.join(" "),
        constraint.0,
        question.0,
        question.1,
    );
    Post {
        relation,
        offence,
        duration,
        time,
        reaction,
        feeling,
        constraint,
        question,
        times_raised,
        text,
    }
}

/// A summary of `post` at `level` (0 shortest): higher levels include more facts, in
/// longer forms, so length (the TL;DR attribute) grows with the level.
pub fn tldr_summary(rng: &mut impl Rng, post: &Post, level: u8) -> String {
    let p = post;
    let core_short = format!("{} {}", upper_first(p.relation), p.offence.1);
    let core_long = format!(
        "My {} {} and it has been going on for {}",
        p.relation, p.offence.0, p.duration
    );
    let reaction_short = format!("they {} when I raised it", p.reaction.1);
    let reaction_long = format!(
        "I've raised it {} times and every time they {}",
        p.times_raised, p.reaction.0
    );
    let feeling_short = format!("I feel so {}", p.feeling);
    let feeling_long = format!(
        "I'm starting to feel really {} about the whole situation",
        p.feeling
    );
    let time_long = format!("it happened again {}, which was the last straw", p.time);
    let constraint_short = p.constraint.1.to_string();
    let constraint_long = lower_first(p.constraint.0.trim_end_matches('.'));
    let question_short = format!("how do I {}?", p.question.0);
    let question_long = format!("how do I {} without {}?", p.question.0, p.question.1);

    let (parts, question): (Vec<String>, String) = match level {
        0 => (
            vec![core_short, feeling_short, reaction_short],
            question_short,
        ),
        1 => (vec![core_long, reaction_short], question_short),
        2 => (
            vec![core_long, reaction_long, feeling_short, constraint_short],
            question_long,
        ),
        3 => (
            vec![core_long, reaction_long, time_long, feeling_long],
            question_long,
        ),
        _ => (
            vec![
                core_long,
                reaction_long,
                time_long,
                feeling_long,
                constraint_long,
            ],
            question_long,
        ),
    };
    let joiner = pick(rng, &[", ", "; "]);
    let prefix = pick(rng, &["TL;DR: ", "tl;dr ", "TLDR: "]);
    format!("{prefix}{}{joiner}{question}", parts.join(joiner),)
}
