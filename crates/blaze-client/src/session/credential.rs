//! The connection's credential and its lifetime (spec 13.4, 13.5): when to
//! refresh it in-band, and how many refusals in a row the client takes before
//! it tells the application. Time is an argument, in milliseconds since the
//! Unix epoch, the unit of `welcome.auth.expires`.

/// A credential is refreshed this long before it expires...
pub(crate) const REFRESH_MARGIN_MS: u64 = 60_000;

/// ... or, when less than five margins are left, once 80% of what is left has passed.
pub(crate) fn refresh_at(now: u64, expires: u64) -> u64 {
    let left = expires.saturating_sub(now);
    now + left.saturating_sub(REFRESH_MARGIN_MS).max(left - left / 5)
}

/// How many credentials from a provider in a row may fail (the provider
/// errs, or the server refuses the token) before calls and listeners fail
/// with `unauthenticated`. A fixed credential is not retried at all.
pub(crate) const AUTH_ATTEMPTS: u32 = 3;

/// Where an in-band refresh stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// None under way; the next is due at the credential's refresh time.
    Idle,
    /// The driver is asking its provider for a token.
    Fetching,
    /// `auth` with this `rid` went out at `at` and waits for its answer.
    Sent {
        /// The request id of the `auth` frame.
        rid: u64,
        /// When it was sent.
        at: u64,
    },
}

/// The credential of a session across its connections.
#[derive(Debug)]
pub(crate) struct Credential {
    /// Sent in each `hello`.
    pub(crate) token: Option<String>,
    /// Whether a provider can give a fresh token (else it is fixed).
    pub(crate) renewable: bool,
    /// When to refresh the current connection's credential, if it expires.
    pub(crate) refresh_at: Option<u64>,
    pub(crate) refresh: Refresh,
    /// Refused or missing credentials in a row.
    pub(crate) failures: u32,
}

impl Credential {
    /// A fixed credential (`renewable` false) or one from a provider.
    pub(crate) fn new(token: Option<String>, renewable: bool) -> Self {
        Self {
            token,
            renewable,
            refresh_at: None,
            refresh: Refresh::Idle,
            failures: 0,
        }
    }

    /// A connection opened at `now`, its credential valid until `expires`.
    pub(crate) fn connected(&mut self, expires: Option<u64>, now: u64) {
        self.failures = 0;
        self.refresh = Refresh::Idle;
        self.refresh_at = expires.map(|expires| refresh_at(now, expires));
    }

    /// The connection is gone, and with it its credential's lifetime.
    pub(crate) fn disconnected(&mut self) {
        self.refresh = Refresh::Idle;
        self.refresh_at = None;
    }

    /// When the driver should next call `handle_timeout`, if ever.
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        match self.refresh {
            Refresh::Idle if self.renewable => self.refresh_at,
            _ => None,
        }
    }

    /// One more refusal in a row; true when the client should give up.
    pub(crate) fn failed(&mut self) -> bool {
        self.failures += 1;
        let give_up = !self.renewable || self.failures >= AUTH_ATTEMPTS;
        if give_up {
            self.failures = 0;
        }
        give_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_refreshed_a_minute_before_it_expires_or_at_80_percent_when_short() {
        let now = 1_000_000;
        assert_eq!(refresh_at(now, now + 3_600_000), now + 3_540_000);
        assert_eq!(refresh_at(now, now + 300_000), now + 240_000);
        assert_eq!(refresh_at(now, now + 100_000), now + 80_000);
        assert_eq!(refresh_at(now, now + 500), now + 400);
        assert_eq!(refresh_at(now, now), now, "an expired credential: at once");
        assert_eq!(refresh_at(now, now - 5), now);
    }
}
