//! `blaze`: read, write, query, watch, import and export Blaze data, and
//! copy, list and remove files, from the command line. Every command is a thin layer over `blaze-client`.
//!
//! Exit status: 0 on success, 1 when the server or the connection fails (the
//! error's code, when it has one, is printed first), 2 for bad arguments.
//!
//! The credential: `--token` / `--key`, else `BLAZE_TOKEN` / `BLAZE_KEY`
//! (spec 13). `blaze token` mints development tokens and connects to nothing.

mod args;
mod credential;
mod documents;
mod files;
mod output;
mod parse;
mod query;
mod token;
mod transfer;
mod watch;

use std::io::Write;
use std::process::ExitCode;

use blaze_client::{Blaze, ConnectOptions};
use clap::Parser;

use args::{Cli, Command, RulesCommand};

/// A failure of a command: bad arguments (exit 2) or a failed call (exit 1).
#[derive(Debug)]
pub enum Failure {
    /// The arguments or the input file are wrong; nothing was sent.
    Usage(String),
    /// The client call failed.
    Client(blaze_client::Error),
    /// Reading input or writing output failed.
    Io(std::io::Error),
    /// The command ran and printed why it failed (a rules file that does
    /// not compile, a failed rules test).
    Failed,
}

impl From<blaze_client::Error> for Failure {
    fn from(error: blaze_client::Error) -> Self {
        Failure::Client(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Io(error)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Token(args) => token::run(&args),
        Command::Rules(command) => rules(&command),
        command => connect_and_run(cli.url, cli.token, cli.key, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("blaze: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Client(error)) => {
            eprintln!("blaze: {error}");
            ExitCode::from(1)
        }
        Err(Failure::Io(error)) => {
            eprintln!("blaze: {error}");
            ExitCode::from(1)
        }
        Err(Failure::Failed) => ExitCode::from(1),
    }
}

async fn connect_and_run(
    url: String,
    token: Option<String>,
    key: Option<String>,
    command: Command,
) -> Result<(), Failure> {
    let env = |name: &str| std::env::var(name).ok();
    let options = ConnectOptions {
        credentials: credential::credentials(token, key, env).map_err(Failure::Usage)?,
        ..ConnectOptions::default()
    };
    let db = Blaze::connect_with(&url, options).await?;
    run(&db, &url, command).await
}

async fn run(db: &Blaze, url: &str, command: Command) -> Result<(), Failure> {
    match command {
        Command::Get { path } => documents::get(db, &path).await,
        Command::Set(args) => documents::set(db, args).await,
        Command::Update(args) => documents::update(db, args).await,
        Command::Delete { path, if_version } => documents::delete(db, &path, if_version).await,
        Command::Query(args) => query::run(db, &args).await,
        Command::Watch(args) => watch::run(db, &args).await,
        Command::Import(args) => transfer::import(db, &args).await,
        Command::Export(args) => transfer::export(db, &args).await,
        Command::Cp(args) => files::copy::run(db, url, &args).await,
        Command::Ls { folder } => files::list(db, &folder).await,
        Command::Rm { path } => files::remove(db, &path).await,
        Command::Token(args) => token::run(&args),
        Command::Rules(command) => rules(&command),
    }
}

/// `blaze rules check` / `blaze rules test`: prints the report; a rules
/// file that does not compile or a failed case is exit 1.
fn rules(command: &RulesCommand) -> Result<(), Failure> {
    let report = match command {
        RulesCommand::Check { file } => blaze_cli::rules::check(file),
        RulesCommand::Test { rules, tests } => blaze_cli::rules::test(rules, tests),
    }
    .map_err(Failure::Usage)?;
    let mut out = std::io::stdout().lock();
    for line in &report.lines {
        if writeln!(out, "{line}").is_err() {
            break; // the reader left (`| head`)
        }
    }
    if report.ok {
        Ok(())
    } else {
        Err(Failure::Failed)
    }
}
