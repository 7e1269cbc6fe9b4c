//! The work one commit may do, in bytes materialised (`Limits::max_commit_bytes`).
//!
//! Every copy a commit makes is charged before it is made: each document it
//! loads or stages, each value a JSON Patch operation adds, replaces or copies,
//! each merge patch applied (and, in the engine, each document's index entries). A charge beyond the budget is `commit_too_large`,
//! so a hostile batch is refused before it spends the memory, not after.

use blaze_protocol::{ErrorCode, Limits};

use crate::Rejection;

/// The bytes one commit has materialised so far, against its limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitBudget {
    spent: usize,
    max: usize,
}

impl CommitBudget {
    /// An unspent budget of `limits.max_commit_bytes`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            spent: 0,
            max: limits.max_commit_bytes,
        }
    }

    /// Records `bytes` about to be materialised; refuses once the total passes the limit.
    pub fn charge(&mut self, bytes: usize) -> Result<(), Rejection> {
        self.spent = self.spent.saturating_add(bytes);
        if self.spent > self.max {
            let msg = format!("the commit materialises more than {} bytes", self.max);
            return Err(Rejection::new(ErrorCode::CommitTooLarge, msg));
        }
        Ok(())
    }

    /// The bytes charged so far.
    pub fn spent(&self) -> usize {
        self.spent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_the_charge_that_passes_the_limit() {
        let limits = Limits {
            max_commit_bytes: 10,
            ..Limits::default()
        };
        let mut budget = CommitBudget::new(&limits);
        assert!(budget.charge(6).is_ok());
        assert!(budget.charge(4).is_ok());
        let refused = budget.charge(1).unwrap_err();
        assert_eq!(refused.code, ErrorCode::CommitTooLarge);
        assert_eq!(budget.spent(), 11);
    }
}
