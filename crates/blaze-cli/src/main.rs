//! `blaze`: read, write, query, watch, import and export Blaze data from the
//! command line. Every command is a thin layer over `blaze-client`.
//!
//! Exit status: 0 on success, 1 when the server or the connection fails (the
//! error's code, when it has one, is printed first), 2 for bad arguments.

mod args;
mod documents;
mod output;
mod parse;
mod query;
mod transfer;
mod watch;

use std::process::ExitCode;

use blaze_client::{Blaze, ConnectOptions, Credentials};
use clap::Parser;

use args::{Cli, Command};

/// A failure of a command: bad arguments (exit 2) or a failed call (exit 1).
#[derive(Debug)]
pub enum Failure {
    /// The arguments or the input file are wrong; nothing was sent.
    Usage(String),
    /// The client call failed.
    Client(blaze_client::Error),
    /// Reading input or writing output failed.
    Io(std::io::Error),
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
    let options = ConnectOptions {
        credentials: cli
            .token
            .clone()
            .map_or(Credentials::None, Credentials::AdminKey),
        ..ConnectOptions::default()
    };
    let result = match Blaze::connect_with(&cli.url, options).await {
        Ok(db) => run(&db, cli.command).await,
        Err(error) => Err(Failure::Client(error)),
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
    }
}

async fn run(db: &Blaze, command: Command) -> Result<(), Failure> {
    match command {
        Command::Get { path } => documents::get(db, &path).await,
        Command::Set(args) => documents::set(db, args).await,
        Command::Update(args) => documents::update(db, args).await,
        Command::Delete { path, if_version } => documents::delete(db, &path, if_version).await,
        Command::Query(args) => query::run(db, &args).await,
        Command::Watch(args) => watch::run(db, &args).await,
        Command::Import(args) => transfer::import(db, &args).await,
        Command::Export(args) => transfer::export(db, &args).await,
    }
}
