//! The command line's grammar (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Read, write, query, watch, import and export Blaze data.
#[derive(Debug, Parser)]
#[command(name = "blaze", version)]
pub struct Cli {
    /// The server (http, https, ws or wss).
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8787",
        env = "BLAZE_URL"
    )]
    pub url: String,
    /// A user's token (a JWT), sent in the WebSocket `hello` [env: BLAZE_TOKEN].
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// An admin key, sent in the WebSocket `hello` [env: BLAZE_KEY]. Not with a token.
    #[arg(long, global = true)]
    pub key: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a document as JSON (`"exists": false` when there is none).
    Get {
        /// A document path, such as `rooms/r1`.
        path: String,
    },
    /// Create or replace a document.
    Set(SetArgs),
    /// Change an existing document: merge patch, JSON Patch or fields by path.
    Update(UpdateArgs),
    /// Delete a document (succeeds when it does not exist).
    Delete {
        /// A document path.
        path: String,
        /// Delete only if the document has this version.
        #[arg(long)]
        if_version: Option<u64>,
    },
    /// Run a query once and print one JSON line per document.
    Query(QueryArgs),
    /// Listen to a document or a query; print one JSON line per change.
    Watch(QueryArgs),
    /// Write JSON lines (`{"id": …, "data": {…}}`) into a collection.
    Import(ImportArgs),
    /// Print a collection as JSON lines (`{"id": …, "data": {…}}`), in id order.
    Export(ExportArgs),
    /// Copy files to or from the server: `blaze cp LOCAL blaze:PATH` or
    /// `blaze cp blaze:PATH LOCAL`; a folder is copied with its
    /// subfolders. Files over `--resumable-over` bytes go up in resumable
    /// parts, and running the same copy again after it stopped resumes it.
    Cp(CpArgs),
    /// List a remote folder (`blaze:avatars`, `blaze:` for the root): its
    /// files, one JSON line each in name order, then its subfolders
    /// (`{"folder": PATH}`).
    Ls {
        /// The folder.
        folder: String,
    },
    /// Delete a remote file (`blaze:avatars/a.png`).
    Rm {
        /// The file.
        path: String,
    },
    /// Print a development token for `--token` (HS256 with the local
    /// development secret unless told otherwise), or with `--keygen` a key
    /// pair for a local JWKS. Connects to nothing.
    Token(TokenArgs),
    /// Check or test access rules offline, against the engine itself.
    /// Connects to nothing.
    #[command(subcommand)]
    Rules(RulesCommand),
}

/// `blaze rules`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Compile a rules file: print each warning and error with its
    /// position; exit 1 if it does not compile.
    Check {
        /// The rules file (such as `blaze.rules`).
        file: PathBuf,
    },
    /// Run rule unit tests (a JSON tests file, the format of
    /// `spec/vectors/rules/`): each case passes or fails, a failure with the
    /// `allow` statements evaluated and why none held; exit 1 if any fails.
    Test {
        /// The rules file.
        rules: PathBuf,
        /// The tests file.
        tests: PathBuf,
    },
}

/// `blaze set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// A document path.
    pub path: String,
    /// The document, a JSON object; `-` reads it from standard input.
    pub data: String,
    /// Fail with `already_exists` if the document exists.
    #[arg(long, conflicts_with = "if_version")]
    pub create: bool,
    /// Write only if the document has this version.
    #[arg(long)]
    pub if_version: Option<u64>,
}

/// `blaze update`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").required(true).args(["merge", "patch", "field"])))]
pub struct UpdateArgs {
    /// A document path.
    pub path: String,
    /// A JSON merge patch (RFC 7396).
    #[arg(long)]
    pub merge: Option<String>,
    /// A JSON Patch (RFC 6902): an array of operations.
    #[arg(long)]
    pub patch: Option<String>,
    /// `a.b=VALUE`: set a field by path (VALUE is JSON, else a string; `null` deletes). Repeatable.
    #[arg(long)]
    pub field: Vec<String>,
    /// Update only if the document has this version.
    #[arg(long)]
    pub if_version: Option<u64>,
}

/// A query, for `blaze query` and `blaze watch`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// A collection path (`rooms`, `rooms/r1/messages`); for `watch`, a
    /// document path (an even number of segments) listens to that document.
    pub path: String,
    /// `'FIELD OP VALUE'`, such as `'age >= 21'` or `'tags array-contains-any ["a","b"]'`;
    /// VALUE is JSON, else a string. Repeatable; all must match.
    #[arg(long = "where", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// `FIELD` or `FIELD:asc` or `FIELD:desc`. Repeatable.
    #[arg(long, value_name = "FIELD[:DIR]")]
    pub order_by: Vec<String>,
    /// Keep the first N results.
    #[arg(long, conflicts_with = "limit_to_last")]
    pub limit: Option<u64>,
    /// Keep the last N results.
    #[arg(long)]
    pub limit_to_last: Option<u64>,
    /// Start at this cursor (a JSON array of order-by values).
    #[arg(long, conflicts_with = "start_after")]
    pub start_at: Option<String>,
    /// Start after this cursor.
    #[arg(long)]
    pub start_after: Option<String>,
    /// End at this cursor.
    #[arg(long, conflicts_with = "end_before")]
    pub end_at: Option<String>,
    /// End before this cursor.
    #[arg(long)]
    pub end_before: Option<String>,
    /// Print only the number of results (`query` only).
    #[arg(long)]
    pub count: bool,
}

/// `blaze import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The collection to write into.
    pub collection: String,
    /// A JSON lines file; `-` (the default) reads standard input.
    #[arg(default_value = "-")]
    pub file: PathBuf,
    /// Skip the first N lines (to resume an import that stopped).
    #[arg(long, default_value_t = 0)]
    pub skip: u64,
    /// Documents per atomic batch (at most the server's 500).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=500))]
    pub batch: u64,
}

/// `blaze export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The collection to read.
    pub collection: String,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Documents per page read.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub page: u64,
}

/// `blaze cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// What to copy: a local file or folder, or `blaze:PATH` (a remote file,
    /// or the files directly in a remote folder).
    pub from: String,
    /// Where to: `blaze:PATH` (ending in `/`: into that folder), or a local
    /// path (an existing folder, or ending in `/`: into it).
    pub to: String,
    /// The content type of uploads [default: from the file's extension, else application/octet-stream].
    #[arg(long)]
    pub content_type: Option<String>,
    /// The `Cache-Control` downloads of the uploaded files answer with
    /// (spec 15.2), e.g. `public, max-age=86400` [default: private, max-age=0].
    #[arg(long)]
    pub cache_control: Option<String>,
    /// Upload files larger than this many bytes in resumable parts (spec
    /// 15.7); the default is the server's default single-request limit.
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    pub resumable_over: u64,
}

/// `blaze token`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["uid", "keygen"])))]
pub struct TokenArgs {
    /// The user id (the token's `sub`).
    #[arg(long)]
    pub uid: Option<String>,
    /// More claims, a JSON object (such as `'{"role": "admin"}'`).
    #[arg(long)]
    pub claims: Option<String>,
    /// How long the token lives: `90s`, `30m`, `1h`, `7d` (seconds without a unit).
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// The HS256 secret (default: the local development secret).
    #[arg(long, conflicts_with_all = ["secret_env", "jwk"])]
    pub secret: Option<String>,
    /// Read the HS256 secret from the environment variable BLAZE_HS256_SECRET.
    #[arg(long, conflicts_with = "jwk")]
    pub secret_env: bool,
    /// Sign with this private JWK (a file, as `--keygen` prints) instead of HS256.
    #[arg(long, value_name = "FILE")]
    pub jwk: Option<PathBuf>,
    /// The token's `iss`.
    #[arg(long, default_value = "blaze-dev")]
    pub issuer: String,
    /// The token's `aud`.
    #[arg(long, default_value = "blaze")]
    pub audience: String,
    /// Print a new key pair (`EdDSA`, `ES256` or `RS256`) as `{"private": JWK, "public": JWK}`;
    /// put the public JWK in an issuer's inline `jwks`, and sign with `--jwk`.
    #[arg(long, value_name = "ALG", conflicts_with_all = ["uid", "claims", "secret", "secret_env", "jwk"])]
    pub keygen: Option<String>,
}
