//! Who the client connects as (spec section 13): nobody, an admin key, or a
//! user whose token comes from a provider the client asks on every connect
//! and before the token expires.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The future a [`TokenProvider`] returns.
pub(crate) type TokenFuture = Pin<Box<dyn Future<Output = Result<Option<String>, String>> + Send>>;

/// Where the credential of each `hello` (and each in-band refresh) comes from.
///
/// ```no_run
/// # async fn demo() -> Result<(), blaze_client::Error> {
/// use blaze_client::{Blaze, ConnectOptions, Credentials};
/// // A user: the provider is asked on connect, on every reconnect and about
/// // a minute before the server says the token expires.
/// let options = ConnectOptions {
///     credentials: Credentials::token_provider(|| async {
///         // Ask your identity provider (Firebase Auth, Auth0, ...) for a current ID token.
///         Ok::<_, std::io::Error>(Some("eyJhbGciOi...".to_owned()))
///     }),
///     ..ConnectOptions::default()
/// };
/// let db = Blaze::connect_with("https://blaze.example.workers.dev", options).await?;
/// // A server or a script: an admin key, which skips access rules.
/// let admin = ConnectOptions {
///     credentials: Credentials::Fixed(std::env::var("BLAZE_KEY").unwrap_or_default()),
///     ..ConnectOptions::default()
/// };
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub enum Credentials {
    /// No credential: the anonymous identity.
    #[default]
    None,
    /// A fixed credential sent as is in every `hello`: an admin key (or a
    /// token the application never renews). A server that refuses it
    /// (close 4001) makes calls fail with `unauthenticated`: the same
    /// credential is not retried.
    Fixed(String),
    /// A user's token from a provider, fetched afresh for every connection
    /// and before the current one expires.
    Provider(TokenProvider),
}

impl Credentials {
    /// [`Credentials::Provider`] from an async callback that returns the
    /// current token (`None`: connect anonymously) or why it has none.
    pub fn token_provider<F, Fut, E>(provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<String>, E>> + Send + 'static,
        E: fmt::Display,
    {
        Credentials::Provider(TokenProvider::new(provider))
    }
}

/// Never shows the key: options get logged.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::Fixed(_) => f.write_str("Fixed(<redacted>)"),
            Credentials::Provider(_) => f.write_str("Provider"),
        }
    }
}

/// An async callback returning the current token; see [`Credentials::Provider`].
#[derive(Clone)]
pub struct TokenProvider(Arc<dyn Fn() -> TokenFuture + Send + Sync>);

impl TokenProvider {
    /// Wraps an async callback that returns the current token (`None`:
    /// connect anonymously) or why it has none.
    pub fn new<F, Fut, E>(provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<String>, E>> + Send + 'static,
        E: fmt::Display,
    {
        TokenProvider(Arc::new(move || {
            let token = provider();
            Box::pin(async move { token.await.map_err(|e| e.to_string()) })
        }))
    }

    /// Asks for the current token.
    pub(crate) fn fetch(&self) -> TokenFuture {
        (self.0)()
    }
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenProvider")
    }
}
