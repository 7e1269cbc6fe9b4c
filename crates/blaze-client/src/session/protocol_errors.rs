//! Protocol errors in a row: the server sent what the spec does not allow,
//! the connection was dropped, and a new one tried. After
//! [`PROTOCOL_ERROR_ATTEMPTS`] in a row the session stops (every request and
//! listener fails with the protocol error), so a server that breaks the
//! protocol on every connection is not asked again forever; a connection
//! that had been open for [`PROTOCOL_ERROR_WINDOW_MS`] starts the count again.

/// Protocol errors in a row after which the session gives up.
pub(crate) const PROTOCOL_ERROR_ATTEMPTS: u32 = 3;
/// A connection welcomed this long before its protocol error starts the count again.
pub(crate) const PROTOCOL_ERROR_WINDOW_MS: u64 = 60_000;

/// The count of protocol errors in a row, and when the connection was welcomed.
#[derive(Debug, Default)]
pub(crate) struct ProtocolErrors {
    in_a_row: u32,
    welcomed_at: u64,
}

impl ProtocolErrors {
    /// A connection was welcomed at `now` (milliseconds).
    pub(crate) fn welcomed(&mut self, now: u64) {
        self.welcomed_at = now;
    }

    /// The welcomed connection broke the protocol at `now`: true when that
    /// makes [`PROTOCOL_ERROR_ATTEMPTS`] in a row (and the count starts over).
    pub(crate) fn broke(&mut self, now: u64) -> bool {
        if now.saturating_sub(self.welcomed_at) >= PROTOCOL_ERROR_WINDOW_MS {
            self.in_a_row = 0;
        }
        self.in_a_row += 1;
        if self.in_a_row < PROTOCOL_ERROR_ATTEMPTS {
            return false;
        }
        self.in_a_row = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether each error, `(welcomed, broke)` in milliseconds, gives up.
    fn check(errors: &[(u64, u64)], expected: &[bool]) {
        let mut count = ProtocolErrors::default();
        let got: Vec<bool> = errors
            .iter()
            .map(|&(welcomed, broke)| {
                count.welcomed(welcomed);
                count.broke(broke)
            })
            .collect();
        assert_eq!(got, expected, "{errors:?}");
    }

    #[test]
    fn gives_up_at_the_third_in_a_row_and_starts_over() {
        let quick = [(0, 10), (20, 30), (40, 50), (60, 70), (80, 90), (100, 110)];
        check(&quick, &[false, false, true, false, false, true]);
    }

    #[test]
    fn a_connection_open_for_the_window_starts_the_count_again() {
        let w = PROTOCOL_ERROR_WINDOW_MS;
        check(
            &[
                (0, 10),
                (20, 30),
                (40, 40 + w),
                (50 + w, 60 + w),
                (70 + w, 80 + w),
            ],
            &[false, false, false, false, true],
        );
        check(&[(0, 10), (20, 30), (40, 39 + w)], &[false, false, true]);
    }
}
