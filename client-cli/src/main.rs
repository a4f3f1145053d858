//! `copl`: the operator's command line for CoPL-serve.
//!
//! `health` (the standard grpc.health.v1 check, usable as a container HEALTHCHECK and in
//! probes), `info`, `score`, `compare`, `onboard`, `user get`, `user delete`, `survey`,
//! `bench` (the load generator), `keygen`. Every verb prints text, or its typed result as
//! JSON with `--json`. Exit codes follow grpc_health_probe ([`exit`]): 1 bad arguments,
//! 2 connection failure, 3 a failed call, 4 a timeout, 20 not serving. The address is
//! `host:port` or a URL ([`connect`]); TLS with `--ca-cert`, mutual TLS with `--cert` and
//! `--key`; API keys and their digests are in [`key`].

mod bench;
mod connect;
mod exit;
mod health;
mod info;
mod key;
mod output;
mod reload;
mod scoring;
mod users;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use output::emit;

#[derive(Parser)]
#[command(name = "copl", version, about = "Operate a CoPL-serve server")]
struct Cli {
    #[command(flatten)]
    target: connect::Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random API key and the sha256 digest the server's configuration takes
    /// (`auth.scoring_keys_sha256` or `auth.admin_keys_sha256`). Needs no server.
    Keygen {
        #[arg(long)]
        json: bool,
    },
    /// Exit 0 if the server reports SERVING (for a service, or the whole server), 20 if
    /// it answers otherwise.
    Health(health::HealthArgs),
    /// The server's model, checkpoint and limits.
    Info(info::InfoArgs),
    /// The reward of one response for a user (empty user: the population reward).
    Score(scoring::ScoreArgs),
    /// P(a preferred to b) for a user, and both rewards.
    Compare(scoring::CompareArgs),
    /// Onboard a new user from pairwise answers on catalogue responses.
    Onboard(users::OnboardArgs),
    /// Look up or delete a user.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Load generator: Score calls at a concurrency, for a duration or a count;
    /// throughput and p50/p90/p99 latency.
    Bench(bench::BenchArgs),
    /// Pairs to ask a new user next (given the answers so far).
    Survey(users::SurveyArgs),
    /// Load a checkpoint beside the serving one and swap it in, without downtime (admin
    /// key). The old one finishes its calls; a failed load leaves it serving.
    Reload(reload::ReloadArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and succeed; a bad flag is exit code 1.
            let bad = e.use_stderr();
            let _ = e.print();
            return if bad {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("copl: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("copl: {e:#}");
            ExitCode::from(exit::code_of(&e))
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let target = cli.target;
    match cli.command {
        Command::Keygen { json } => emit(&key::Keys::new(), json),
        Command::Health(args) => {
            let health = health::check(&args, &target.connect().await?).await?;
            emit(&health, args.json)?;
            health.serving()
        }
        Command::Info(args) if args.also.is_empty() => {
            emit(&info::info(&target.connect().await?).await?, args.json)
        }
        Command::Info(args) => {
            let replicas = info::Replicas::ask(&target, &args.also).await?;
            emit(&replicas, args.json)?;
            replicas.agree()
        }
        Command::Reload(args) => emit(
            &reload::reload(&args, &target.connect().await?).await?,
            args.json,
        ),
        Command::Score(args) => {
            let json = args.json;
            emit(&scoring::score(args, &target.connect().await?).await?, json)
        }
        Command::Compare(args) => {
            let json = args.json;
            emit(
                &scoring::compare(args, &target.connect().await?).await?,
                json,
            )
        }
        Command::Onboard(args) => {
            let json = args.json;
            emit(&users::onboard(args, &target).await?, json)
        }
        Command::User(users::UserCommand::Get {
            user,
            embedding,
            json,
        }) => emit(
            &users::get(user, embedding, &target.connect().await?).await?,
            json,
        ),
        Command::User(users::UserCommand::Delete { user, json }) => {
            emit(&users::delete(user, &target.connect().await?).await?, json)
        }
        Command::Bench(args) => {
            let json = args.json;
            emit(&bench::run(&target.connect().await?, args).await?, json)
        }
        Command::Survey(args) => {
            let json = args.json;
            emit(&users::survey(args, &target).await?, json)
        }
    }
}
