//! WebSocket close codes and their reasons (`spec/protocol.md` section 10.1).

use crate::ErrorCode;

/// Why the server closes a connection: the close code and reason it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000 `closed`: the server answers the client's own close.
    Normal,
    /// 4002 `handshake_required`: the first frame was not a valid `hello`.
    HandshakeRequired,
    /// 4002 `unsupported_protocol`: `hello` named a version the server does not speak.
    UnsupportedProtocol,
    /// 4008 `slow_consumer`: the client fell too far behind reading its frames.
    SlowConsumer,
    /// 1011 `internal`: the server could not keep the connection's state exact.
    Internal,
    /// 4001 `unauthenticated`: `hello` (or `auth`) carried a credential the
    /// server could not verify; fetch a fresh token, then reconnect.
    Unauthenticated,
    /// 4001 `token_expired`: the connection's credential expired and no fresh
    /// one came; fetch a fresh token, reconnect and resume.
    TokenExpired,
}

impl CloseCode {
    /// The numeric WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::HandshakeRequired | Self::UnsupportedProtocol => 4002,
            Self::SlowConsumer => 4008,
            Self::Internal => 1011,
            Self::Unauthenticated | Self::TokenExpired => 4001,
        }
    }

    /// The close reason text.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "closed",
            Self::HandshakeRequired => ErrorCode::HandshakeRequired.as_str(),
            Self::UnsupportedProtocol => ErrorCode::UnsupportedProtocol.as_str(),
            Self::SlowConsumer => "slow_consumer",
            Self::Internal => ErrorCode::Internal.as_str(),
            Self::Unauthenticated => ErrorCode::Unauthenticated.as_str(),
            Self::TokenExpired => "token_expired",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_reasons_of_the_spec() {
        let all = [
            (CloseCode::Normal, 1000, "closed"),
            (CloseCode::HandshakeRequired, 4002, "handshake_required"),
            (CloseCode::UnsupportedProtocol, 4002, "unsupported_protocol"),
            (CloseCode::SlowConsumer, 4008, "slow_consumer"),
            (CloseCode::Internal, 1011, "internal"),
            (CloseCode::Unauthenticated, 4001, "unauthenticated"),
            (CloseCode::TokenExpired, 4001, "token_expired"),
        ];
        for (close, code, reason) in all {
            assert_eq!((close.code(), close.reason()), (code, reason), "{close:?}");
        }
    }
}
