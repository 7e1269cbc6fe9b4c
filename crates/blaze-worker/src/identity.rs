//! Who each request comes from (spec 13): one [`Verifier`] per isolate,
//! built on first use from the environment (`BLAZE_AUTH`, the JSON of spec
//! 13.3; the secrets `BLAZE_HS256_SECRET` and `BLAZE_ADMIN_KEYS`), so its
//! key and token caches serve every object of the isolate, and the JWKS
//! fetches it asks for.
//!
//! No configuration at all verifies nothing and leaves the anonymous
//! identity open (access rules decide what it may do). A configuration that
//! does not parse is logged, and then only admin keys are accepted: every
//! token and every anonymous request is refused with `unauthenticated`
//! until it is fixed (never open).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use blaze_auth::{AuthConfig, AuthError, Reason, Verdict, Verified, Verifier};
use blaze_core::Rejection;
use blaze_protocol::ErrorCode;
use futures_util::future::{select, Either};
use serde_json::json;
use worker::{console_log, Delay, Env, Fetch, Url};

/// How long a JWKS fetch may take; a slower one counts as failed (the
/// issuer's last good keys are kept).
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);

/// The isolate's verifier, and why its configuration was refused, if it was.
struct Auth {
    verifier: Verifier,
    broken: Option<String>,
}

thread_local! {
    static AUTH: RefCell<Option<Rc<RefCell<Auth>>>> = const { RefCell::new(None) };
}

fn now() -> u64 {
    js_sys::Date::now() as u64
}

/// A string from the environment: a `[vars]` entry, a `--var` or a secret.
fn env_text(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// The isolate's verifier, built from `env` on first use.
fn auth(env: &Env) -> Rc<RefCell<Auth>> {
    AUTH.with(|cell| {
        cell.borrow_mut()
            .get_or_insert_with(|| {
                let admin_keys = env_text(env, "BLAZE_ADMIN_KEYS");
                let parsed = AuthConfig::from_parts(
                    env_text(env, "BLAZE_AUTH").as_deref(),
                    env_text(env, "BLAZE_HS256_SECRET").as_deref(),
                    admin_keys.as_deref(),
                );
                let (config, broken) = match parsed {
                    Ok(config) if config.is_empty() => {
                        let line = json!({"at": "auth_config", "warning": "no identity \
                            configuration (BLAZE_AUTH, BLAZE_HS256_SECRET, BLAZE_ADMIN_KEYS): \
                            no credential verifies, requests without one are anonymous"});
                        console_log!("{line}");
                        (config, None)
                    }
                    Ok(config) => (config, None),
                    Err(e) => {
                        let line = json!({"at": "auth_config", "error": e.to_string()});
                        worker::console_error!("{line}");
                        let config = AuthConfig::refusing_tokens(admin_keys.as_deref());
                        (config, Some(e.to_string()))
                    }
                };
                Rc::new(RefCell::new(Auth {
                    verifier: Verifier::new(config),
                    broken,
                }))
            })
            .clone()
    })
}

/// Why a request without a credential is refused, when the identity
/// configuration is broken; `None` when the anonymous identity is served.
pub fn anonymous_refusal(env: &Env) -> Option<Rejection> {
    auth(env).borrow().broken.as_ref().map(|_| {
        let msg = "the server's identity configuration (BLAZE_AUTH, BLAZE_HS256_SECRET) is \
                   invalid: only admin keys are accepted until it is fixed";
        Rejection::new(ErrorCode::Unauthenticated, msg)
    })
}

/// Verifies `credential` now, fetching its issuer's JWKS when the verifier
/// asks (once per call).
pub async fn verify(env: &Env, credential: &str) -> Result<Verified, AuthError> {
    let auth = auth(env);
    let mut fetched = false;
    loop {
        let verdict = auth.borrow_mut().verifier.verify(credential, now());
        match verdict {
            Verdict::Verified(verified) => return Ok(verified),
            Verdict::Rejected(refused) => return Err(refused),
            Verdict::FetchKeys { .. } if fetched => return Err(AuthError::new(Reason::UnknownKid)),
            Verdict::FetchKeys { url } => {
                fetched = true;
                let body = fetch_jwks(&url).await;
                let body = body.as_deref().map_err(Clone::clone);
                auth.borrow_mut().verifier.handle_jwks(&url, body, now());
            }
        }
    }
}

/// The body of a JWKS URL, or why it could not be had (within [`JWKS_TIMEOUT`]).
async fn fetch_jwks(url: &str) -> Result<String, String> {
    let fetch = async {
        let url = Url::parse(url).map_err(|e| e.to_string())?;
        let mut answer = Fetch::Url(url).send().await.map_err(|e| e.to_string())?;
        if answer.status_code() != 200 {
            return Err(format!("status {}", answer.status_code()));
        }
        answer.text().await.map_err(|e| e.to_string())
    };
    let timeout = Delay::from(JWKS_TIMEOUT);
    let fetched = match select(Box::pin(fetch), timeout).await {
        Either::Left((fetched, _)) => fetched,
        Either::Right(_) => Err(format!("no answer within {JWKS_TIMEOUT:?}")),
    };
    let line = json!({"at": "jwks", "url": url, "error": fetched.as_ref().err()});
    console_log!("{line}");
    fetched
}
