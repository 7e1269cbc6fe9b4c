//! The verifier's caches, keyed by the SHA-256 of the whole token only.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use crate::Verified;

/// A token's SHA-256.
pub(crate) type TokenHash = [u8; 32];

/// How many verified tokens are kept.
pub(crate) const VERIFIED_CAPACITY: usize = 10_000;

/// How many tokens with a bad signature are remembered.
pub(crate) const BAD_SIGNATURE_CAPACITY: usize = 1_000;

/// Which key verified a cached token, so that a key rotation can drop it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRef {
    /// The index of the JWKS issuer.
    pub(crate) issuer: usize,
    /// The key's `kid`.
    pub(crate) kid: Option<String>,
}

/// One verified token.
struct Entry {
    verified: Verified,
    /// The JWKS key that verified it (None for HS256).
    key: Option<KeyRef>,
    /// Insertion order, for evicting the oldest.
    seq: u64,
}

/// Verified tokens until they expire: bounded, evicting expired entries
/// first, then the oldest.
pub(crate) struct VerifiedCache {
    entries: HashMap<TokenHash, Entry>,
    order: BTreeMap<u64, TokenHash>,
    next_seq: u64,
    capacity: usize,
}

impl VerifiedCache {
    /// An empty cache of at most `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            capacity,
        }
    }

    /// The token's identity, if it was verified and is not expired at `now`.
    pub(crate) fn get(&mut self, hash: &TokenHash, now: u64) -> Option<Verified> {
        let entry = self.entries.get(hash)?;
        if entry.verified.expires.is_some_and(|e| now >= e) {
            self.remove(hash);
            return None;
        }
        Some(entry.verified.clone())
    }

    /// Remembers a verified token.
    pub(crate) fn insert(
        &mut self,
        hash: TokenHash,
        verified: Verified,
        key: Option<KeyRef>,
        now: u64,
    ) {
        self.remove(&hash);
        if self.entries.len() >= self.capacity {
            self.retain(|e| e.verified.expires.is_none_or(|x| now < x));
        }
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, hash);
        self.entries.insert(hash, Entry { verified, key, seq });
    }

    /// Drops the tokens verified by a key of `issuer` that `still_listed` no longer finds.
    pub(crate) fn drop_unlisted(&mut self, issuer: usize, still_listed: impl Fn(&KeyRef) -> bool) {
        self.retain(|e| {
            e.key
                .as_ref()
                .is_none_or(|k| k.issuer != issuer || still_listed(k))
        });
    }

    /// How many tokens are cached.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn remove(&mut self, hash: &TokenHash) {
        if let Some(entry) = self.entries.remove(hash) {
            self.order.remove(&entry.seq);
        }
    }

    fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        let order = &mut self.order;
        self.entries.retain(|_, e| {
            let kept = keep(e);
            if !kept {
                order.remove(&e.seq);
            }
            kept
        });
    }
}

/// Tokens whose signature did not verify, so a flood of one bad token does
/// not check its signature again: bounded, forgetting the oldest.
pub(crate) struct BadSignatures {
    set: HashSet<TokenHash>,
    order: VecDeque<TokenHash>,
    capacity: usize,
}

impl BadSignatures {
    /// An empty set of at most `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Whether the token's signature already failed.
    pub(crate) fn contains(&self, hash: &TokenHash) -> bool {
        self.set.contains(hash)
    }

    /// Remembers a token whose signature failed.
    pub(crate) fn insert(&mut self, hash: TokenHash) {
        if !self.set.insert(hash) {
            return;
        }
        self.order.push_back(hash);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.set.remove(&oldest);
            }
        }
    }

    /// Forgets everything (the keys changed).
    pub(crate) fn clear(&mut self) {
        self.set.clear();
        self.order.clear();
    }
}
