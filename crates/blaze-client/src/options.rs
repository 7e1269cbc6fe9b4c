//! Connection options: credentials, timeouts and the reconnect policy.

use std::time::Duration;

use crate::Credentials;

/// How a [`Blaze`](crate::Blaze) client connects and reconnects.
///
/// ```no_run
/// # async fn demo() -> Result<(), blaze_client::Error> {
/// use std::time::Duration;
/// use blaze_client::{Blaze, ConnectOptions, Credentials, ReconnectPolicy};
/// let options = ConnectOptions {
///     credentials: Credentials::Fixed("my-admin-key".into()),
///     request_timeout: Duration::from_secs(5),
///     reconnect: ReconnectPolicy { initial: Duration::from_millis(100), max: Duration::from_secs(5) },
///     ..ConnectOptions::default()
/// };
/// let db = Blaze::connect_with("https://blaze.example.workers.dev", options).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Who the client connects as: see [`Credentials`].
    pub credentials: Credentials,
    /// How long opening a connection (WebSocket upgrade plus handshake) may take.
    pub connect_timeout: Duration,
    /// How long a request waits for its answer, including time spent waiting
    /// for a connection. A commit with no answer by then is given up and
    /// fails with [`Error::CommitOutcomeUnknown`](crate::Error::CommitOutcomeUnknown).
    pub request_timeout: Duration,
    /// How lost connections are retried.
    pub reconnect: ReconnectPolicy,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            credentials: Credentials::None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            reconnect: ReconnectPolicy::default(),
        }
    }
}

/// Exponential backoff with full jitter: attempt `n` waits a random time
/// between zero and `min(max, initial * 2^(n-1))`, so clients that lost one
/// server at once do not come back at once.
#[derive(Clone, Debug, PartialEq)]
pub struct ReconnectPolicy {
    /// The longest wait before the first retry.
    pub initial: Duration,
    /// The longest wait of any attempt.
    pub max: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(10),
        }
    }
}

impl ReconnectPolicy {
    /// The wait before reconnect attempt `attempt` (1 for the first retry),
    /// given a random number in `0.0..1.0`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use blaze_client::ReconnectPolicy;
    /// let policy = ReconnectPolicy { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
    /// assert_eq!(policy.delay(1, 0.5), Duration::from_millis(50));
    /// assert_eq!(policy.delay(3, 0.5), Duration::from_millis(200));
    /// assert_eq!(policy.delay(30, 0.5), Duration::from_millis(500)); // capped at `max`
    /// assert_eq!(policy.delay(4, 0.0), Duration::ZERO);
    /// ```
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let doubling = 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
        let ceiling = self.initial.mul_f64(doubling).min(self.max);
        ceiling.mul_f64(random.clamp(0.0, 1.0))
    }
}
