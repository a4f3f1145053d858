//! Word lists and sentence parts of the synthetic benchmarks' text.
//!
//! Advice texts (UF-P and PersonalLLM analogues) draw on [`TOPICS`]; Reddit-style posts
//! and their summaries (TL;DR analogue) on the lists under "TL;DR".

/// A topic someone asks advice on, with the slots concrete tips are written from.
pub struct Topic {
    /// What the user wants to do, as a gerund phrase ("baking sourdough bread").
    pub activity: &'static str,
    /// A habit to practise ("feeding the starter").
    pub practice: &'static str,
    /// A tool or aid ("a kitchen scale").
    pub tool: &'static str,
    /// A common mistake ("adding flour whenever the dough feels sticky").
    pub mistake: &'static str,
    /// Something worth tracking ("how long the dough takes to double").
    pub metric: &'static str,
    /// A place to learn more ("a beginner's baking book").
    pub resource: &'static str,
    /// Who to ask when in doubt ("an experienced baker").
    pub expert: &'static str,
}

macro_rules! topics {
    ($( ($a:expr, $p:expr, $t:expr, $m:expr, $me:expr, $r:expr, $e:expr) ),* $(,)?) => {
        &[$(Topic { activity: $a, practice: $p, tool: $t, mistake: $m, metric: $me, resource: $r, expert: $e }),*]
    };
}

/// Topics of the advice prompts.
pub const TOPICS: &[Topic] = topics![
    (
        "baking sourdough bread",
        "feeding the starter at the same time each day",
        "a kitchen scale",
        "adding flour whenever the dough feels sticky",
        "how long the dough takes to double",
        "a beginner's bread book",
        "an experienced baker"
    ),
    (
        "training for a first ten-kilometre run",
        "an easy run at a pace where you can still talk",
        "a simple running log",
        "increasing the weekly distance too quickly",
        "your resting heart rate in the morning",
        "a beginner's running plan",
        "a physiotherapist"
    ),
    (
        "learning Spanish",
        "a short daily listening session",
        "a flashcard app with spaced repetition",
        "memorising word lists without ever speaking",
        "how many new words you can recall a week later",
        "graded readers for learners",
        "a qualified tutor"
    ),
    (
        "keeping houseplants alive",
        "checking the soil with a finger before watering",
        "a pot with a drainage hole",
        "watering on a fixed schedule regardless of the soil",
        "which leaves turn yellow and when",
        "a plant care guide for your region",
        "someone at a local garden centre"
    ),
    (
        "setting up a monthly budget",
        "a weekly ten-minute review of spending",
        "a spreadsheet with one row per category",
        "budgeting for the average month and forgetting annual bills",
        "what share of income goes to fixed costs",
        "a plain-language personal finance book",
        "a certified financial adviser"
    ),
    (
        "preparing for a job interview",
        "answering common questions out loud",
        "a list of stories from past projects",
        "memorising answers word for word",
        "which questions still make you hesitate",
        "the company's recent reports and blog posts",
        "a mentor in the same field"
    ),
    (
        "writing a first Python script",
        "writing a few lines and running them straight away",
        "a code editor with a linter",
        "copying large blocks of code you do not understand",
        "how often the script fails and why",
        "the official Python tutorial",
        "a more experienced programmer"
    ),
    (
        "improving sleep",
        "going to bed and getting up at the same times",
        "a dim lamp for the last hour of the evening",
        "catching up on sleep with long lie-ins at weekends",
        "when you fall asleep and how often you wake up",
        "a sleep diary template",
        "a doctor"
    ),
    (
        "painting a room",
        "testing the colour on a large patch of wall",
        "a good angled brush and painter's tape",
        "skipping the primer on fresh plaster",
        "how the colour looks in morning and evening light",
        "the paint manufacturer's data sheet",
        "a professional decorator"
    ),
    (
        "starting to meditate",
        "a short session right after waking up",
        "a timer with a gentle sound",
        "judging each session as good or bad",
        "how often your attention wanders",
        "a guided course for beginners",
        "an experienced teacher"
    ),
    (
        "negotiating a raise",
        "listing results with their effect on the business",
        "salary data for your role and region",
        "naming a number before you know the range",
        "what peers in similar roles are paid",
        "a book on negotiation",
        "a trusted manager or recruiter"
    ),
    (
        "growing tomatoes on a balcony",
        "watering deeply in the early morning",
        "a large container with good drainage",
        "planting out before the nights are warm",
        "how many hours of direct sun the balcony gets",
        "a seed catalogue with variety notes",
        "an experienced gardener"
    ),
    (
        "learning to play the guitar",
        "practising chord changes slowly with a metronome",
        "a clip-on tuner",
        "pressing the strings far harder than needed",
        "how cleanly you change between two chords",
        "a structured beginner course",
        "a guitar teacher"
    ),
    (
        "reducing screen time",
        "a phone-free first hour of the day",
        "the phone's built-in usage report",
        "deleting every app at once and then reinstalling them",
        "daily minutes in the apps you reach for most",
        "a book on digital habits",
        "a counsellor if it affects your wellbeing"
    ),
    (
        "making a small website",
        "building one page and publishing it early",
        "a static site generator",
        "spending weeks on the design before writing content",
        "how long the pages take to load",
        "the documentation of the web platform",
        "a web developer"
    ),
    (
        "cooking healthier weeknight meals",
        "cooking a double batch on Sunday",
        "a large sheet pan",
        "buying ingredients for recipes you have no time to cook",
        "how many meals a week you cook at home",
        "a cookbook of quick recipes",
        "a registered dietitian"
    ),
    (
        "saving for a deposit on a home",
        "an automatic transfer on payday",
        "a separate savings account",
        "keeping the savings in the everyday account",
        "how many months of saving are left at the current rate",
        "a guide for first-time buyers",
        "an independent mortgage adviser"
    ),
    (
        "learning to swim as an adult",
        "practising breathing with your face in the water",
        "goggles that fit well",
        "trying to swim whole lengths before you can float",
        "how long you can glide without kicking",
        "adult beginner lessons at a local pool",
        "a swimming instructor"
    ),
    (
        "organising a cluttered garage",
        "sorting one shelf at a time",
        "labelled clear storage boxes",
        "buying storage before you have sorted anything",
        "how much floor space is free",
        "a decluttering checklist",
        "a professional organiser"
    ),
    (
        "getting started with photography",
        "taking a few photos every day of ordinary things",
        "the camera you already have, even a phone",
        "buying new lenses instead of practising",
        "which photos you still like a week later",
        "a book on composition",
        "a local photography club"
    ),
    (
        "writing a cover letter",
        "tailoring the first paragraph to the specific role",
        "the job description with key skills highlighted",
        "repeating the CV line by line",
        "how many applications lead to an interview",
        "examples from a university careers service",
        "a careers adviser"
    ),
    (
        "training a new puppy",
        "short training sessions several times a day",
        "small soft treats",
        "punishing the puppy for accidents indoors",
        "how many hours pass between accidents",
        "a book on reward-based training",
        "a certified dog trainer"
    ),
    (
        "improving posture at a desk",
        "standing up and moving every half hour",
        "a chair with adjustable height",
        "sitting on the front edge of the chair",
        "when in the day your back starts to ache",
        "an ergonomics checklist from a health service",
        "a physiotherapist"
    ),
    (
        "planning a first long-distance hike",
        "walking with the loaded pack on weekends",
        "a lightweight first-aid kit",
        "wearing new boots on the first long day",
        "how your feet feel after ten miles",
        "a trail guidebook",
        "an experienced hiker"
    ),
];

/// Question forms of advice prompts; `{a}` is the topic's activity.
pub const QUESTIONS: &[&str] = &[
    "How can I get better at {a}?",
    "What should I know before {a}?",
    "Any tips for {a}?",
    "I'm struggling with {a}. What would you suggest?",
    "Could you explain how to approach {a}?",
    "What is the best way to get started with {a}?",
    "I have tried {a} before and gave up. How do I stick with it this time?",
    "What are the most important things to focus on when {a}?",
    "My friend recommended {a}, but I don't know where to begin. Any advice?",
    "How would you plan the first month of {a}?",
];

/// Opening lines by formality level (0 casual … 4 formal); `{a}` is the activity.
pub const OPENERS: [&[&str]; 5] = [
    &[
        "Oh nice, {a} is super fun once you get going!",
        "Honestly, {a} is way easier than it looks!",
        "Ha, I've been there with {a}, so here's the deal!",
    ],
    &[
        "Sure thing, {a} is pretty doable.",
        "Good question, {a} trips a lot of people up.",
        "Happy to help with {a}.",
    ],
    &[
        "Here is how I would approach {a}.",
        "A few things make {a} much easier.",
        "There is a simple way to think about {a}.",
    ],
    &[
        "Approaching {a} well depends on a few principles.",
        "The following points should make {a} more manageable.",
        "There are several considerations when {a}.",
    ],
    &[
        "Certainly. The approach to {a} described below is widely recommended.",
        "Thank you for the question. Success in {a} generally rests on a few principles.",
        "It is advisable to approach {a} methodically, as outlined below.",
    ],
];

/// A general statement every advice text makes (its core).
pub const CORE: &[&str] = &[
    "The main thing is consistency, since small steps every week add up.",
    "It helps to start small and build from what works.",
    "Progress comes from steady practice rather than big bursts of effort.",
    "Most of the difference comes from doing the basics regularly.",
    "Keep the first goal modest so that it is easy to succeed.",
    "It is worth setting aside regular time for it instead of waiting for motivation.",
];

/// Concrete tip templates (the *detail* attribute); slots are a [`Topic`]'s fields,
/// `{n}` a small number. Each names something specific.
pub const TIPS: &[&str] = &[
    "Start with {practice} for {n} minutes at a time.",
    "Use {tool}; after {n} days it will feel natural.",
    "Avoid {mistake}, the usual reason people quit within {n} weeks.",
    "Note {metric} for {n} weeks to see what works.",
    "Read {resource}, the first {n} chapters at least.",
    "Book a fixed slot of {n} minutes, such as after breakfast.",
];

/// Vague filler used when a text has no concrete tip at all.
pub const VAGUE: &[&str] = &[
    "Just keep at it and it will come together.",
    "Everyone finds their own way with this eventually.",
    "It mostly comes down to practice.",
];

/// Hedges put in front of a sentence (the *hedging* attribute).
pub const HEDGES: &[&str] = &[
    "I think",
    "In my experience,",
    "As far as I know,",
    "Probably,",
    "It seems likely that",
];

/// Hedges put in front of an imperative tip.
pub const IMPERATIVE_HEDGES: &[&str] = &[
    "I think it helps to",
    "In my experience, try to",
    "As far as I know, it is best to",
    "Probably best to",
    "It may be a good idea to",
];

/// Caveats added at high hedging; `{e}` is the topic's expert.
pub const CAVEATS: &[&str] = &[
    "That said, I am not completely sure this fits you, so check with {e} if in doubt.",
    "I might be wrong about some of this; {e} could advise you better.",
    "Everyone is different, so it may be worth asking {e} first.",
];

/// Extra doubts at the highest hedging level.
pub const DOUBTS: &[&str] = &[
    "I may be missing something about your situation, though.",
    "Take all of this with a grain of salt.",
    "Then again, I could easily be mistaken.",
];

/// Confident assertions added at zero hedging.
pub const ASSERTIONS: &[&str] = &[
    "Trust me, this works every time.",
    "This is definitely the right way to do it.",
    "Do exactly this and you will not fail.",
];

/// Closings by formality level.
pub const CLOSINGS: [&[&str]; 5] = [
    &["Good luck, you've totally got this!!", "Have fun with it!!"],
    &["Good luck!", "Have fun!"],
    &["Good luck with it.", "Enjoy it."],
    &["I hope this is useful.", "Best of luck with it."],
    &["I hope this proves helpful.", "I wish you every success."],
];

/// Casual fillers spliced in at formality 0.
pub const FILLERS: &[&str] = &["Honestly,", "Basically,", "Real talk,", "To be fair,"];

/// Formal connectors that begin sentences at formality 4.
pub const CONNECTORS: &[&str] = &["Furthermore,", "Additionally,", "Moreover,", "In addition,"];

/// Ordinal markers for structure level 2.
pub const ORDINALS: &[&str] = &["First,", "Second,", "Third,", "Next,", "Then,", "Finally,"];

/// Contractions applied at low formality: (expanded, contracted).
pub const CONTRACTIONS: &[(&str, &str)] = &[
    (" will not ", " won't "),
    ("It is ", "It's "),
    (" it is ", " it's "),
    ("do not ", "don't "),
    ("Do not ", "Don't "),
    ("you will ", "you'll "),
    ("I am ", "I'm "),
    (" is not ", " isn't "),
    ("I would ", "I'd "),
    ("There is ", "There's "),
    ("Here is ", "Here's "),
    (" that is ", " that's "),
    ("I have ", "I've "),
];

// ---------------------------------------------------------------------------------
// TL;DR
// ---------------------------------------------------------------------------------

/// (noun, the way the summary calls them)
pub const RELATIONS: &[&str] = &[
    "roommate",
    "girlfriend",
    "boyfriend",
    "best friend",
    "coworker",
    "boss",
    "sister",
    "brother",
    "neighbour",
    "husband",
    "wife",
    "flatmate",
    "manager",
    "cousin",
];

/// What the other person keeps doing: (post form, summary form).
pub const OFFENCES: &[(&str, &str)] = &[
    (
        "keeps eating the food I buy without asking",
        "eats my food without asking",
    ),
    (
        "borrowed money months ago and never mentions paying it back",
        "won't pay back money they borrowed",
    ),
    (
        "cancels our plans at the last minute almost every weekend",
        "keeps cancelling plans last minute",
    ),
    (
        "presents my work as their own in meetings",
        "takes credit for my work",
    ),
    (
        "makes comments about my weight in front of other people",
        "comments on my weight in public",
    ),
    (
        "is late for everything, sometimes by more than an hour",
        "is always very late",
    ),
    (
        "reads my messages when I leave my phone on the table",
        "reads my messages",
    ),
    (
        "plays loud music until two in the morning on weeknights",
        "plays loud music late at night",
    ),
    (
        "never does their share of the cleaning",
        "never does their share of cleaning",
    ),
    (
        "invites people over without telling me first",
        "invites people over without asking",
    ),
    (
        "talks over me whenever I try to share an idea",
        "talks over me all the time",
    ),
    (
        "keeps asking me to cover their shifts",
        "keeps making me cover their shifts",
    ),
];

/// How long it has been going on.
pub const DURATIONS: &[&str] = &[
    "about six months",
    "almost a year",
    "two years",
    "since the spring",
    "three months",
    "since we moved in together",
    "for as long as I can remember",
    "a few weeks",
];

/// When it last happened.
pub const TIMES: &[&str] = &[
    "last weekend",
    "on Tuesday",
    "two days ago",
    "at a birthday dinner",
    "yesterday",
    "during a team meeting",
    "over the holidays",
    "last night",
];

/// How they reacted when it was raised.
pub const REACTIONS: &[(&str, &str)] = &[
    (
        "laughed it off and said I was overreacting",
        "laughed it off",
    ),
    ("got defensive and changed the subject", "got defensive"),
    (
        "promised to stop and then did it again the next day",
        "promised to stop but didn't",
    ),
    (
        "apologised but nothing changed",
        "apologised but nothing changed",
    ),
    (
        "said everyone else is fine with it",
        "said nobody else minds",
    ),
];

/// How the narrator feels.
pub const FEELINGS: &[&str] = &[
    "resentful",
    "taken for granted",
    "exhausted",
    "invisible",
    "anxious",
    "angry",
    "embarrassed",
    "hurt",
];

/// What makes it hard to walk away: (post form, summary form).
pub const CONSTRAINTS: &[(&str, &str)] = &[
    (
        "We share a lease until next summer, so moving out is not an option yet.",
        "we share a lease",
    ),
    (
        "We work on the same small team, so I see them every day.",
        "we work on the same team",
    ),
    (
        "Our families are close, and I do not want to cause drama at holidays.",
        "our families are close",
    ),
    (
        "Apart from this, they are one of the kindest people I know.",
        "they're otherwise great",
    ),
    (
        "I have never been good at confrontation and I tend to freeze up.",
        "I hate confrontation",
    ),
];

/// What the narrator asks: (goal, fear).
pub const QUESTIONS_TLDR: &[(&str, &str)] = &[
    ("bring this up", "starting a huge fight"),
    ("set a boundary", "ruining the relationship"),
    ("tell them how I feel", "sounding petty"),
    ("get this to stop", "making things awkward"),
    ("handle this", "losing a friend"),
];
