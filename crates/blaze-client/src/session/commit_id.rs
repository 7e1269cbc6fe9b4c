//! Commit ids: the client-chosen name of one commit, which lets the session
//! re-send a commit after a reconnect without applying it twice.

use blaze_protocol::CommitId;

/// The characters a commit id may use: `A-Z a-z 0-9 - _`.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// How long a generated id is: 22 characters of 6 bits each, 132 bits (a
/// random UUID has 122).
pub(crate) const LENGTH: usize = 22;

/// A fresh commit id drawn from `rng`.
pub(crate) fn random(rng: &mut fastrand::Rng) -> CommitId {
    let id: String = (0..LENGTH)
        .map(|_| char::from(ALPHABET[rng.usize(..ALPHABET.len())]))
        .collect();
    CommitId::try_from(id).expect("drawn from the commit id alphabet")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_use_the_allowed_characters_and_do_not_repeat() {
        let mut rng = fastrand::Rng::with_seed(7);
        let ids: Vec<String> = (0..1000).map(|_| random(&mut rng).into()).collect();
        for id in &ids {
            assert_eq!(id.len(), LENGTH);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{id}"
            );
        }
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let used: std::collections::BTreeSet<u8> = ids.iter().flat_map(|id| id.bytes()).collect();
        assert_eq!(used.len(), ALPHABET.len(), "every character is drawn");
    }
}
