//! Who each request comes from (spec 13): one [`Verifier`] per isolate,
//! built on first use from the environment (`BLAZE_AUTH`, the JSON of spec
//! 13.3; the secrets `BLAZE_HS256_SECRET` and `BLAZE_ADMIN_KEYS`), so its
//! key and token caches serve every object of the isolate, and the JWKS
//! fetches it asks for.
//!
//! A deployment is never open by omission (spec 13.3): the anonymous
//! identity is served only when `BLAZE_AUTH` is set, to a configuration or
//! to `none` (the explicit switch for a server with no identity provider,
//! e.g. in development). Without it, and when the configuration does not
//! parse (logged), only admin keys are accepted: every other request is
//! refused with `unauthenticated`, and the message names the setting.

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

/// The isolate's verifier, and why requests without a credential are
/// refused, if they are.
struct Auth {
    verifier: Verifier,
    anonymous_refused: Option<&'static str>,
}

/// `BLAZE_AUTH`'s value that turns identity off: no issuers, anonymous served.
const NO_IDENTITY: &str = "none";

/// Why anonymous requests are refused when `BLAZE_AUTH` is not set.
const UNCONFIGURED: &str = "this server has no identity configuration: set BLAZE_AUTH \
    (the issuers to trust, or \"none\" to serve anonymous requests; README, \"Identity\"); \
    until then only admin keys (BLAZE_ADMIN_KEYS) are accepted";

/// Why anonymous requests are refused when the configuration does not parse.
const BROKEN: &str = "the server's identity configuration (BLAZE_AUTH, BLAZE_HS256_SECRET) is \
    invalid: only admin keys are accepted until it is fixed";

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
                let setting = env_text(env, "BLAZE_AUTH");
                let setting = setting.as_deref().map(str::trim);
                let parsed = AuthConfig::from_parts(
                    setting.filter(|s| *s != NO_IDENTITY),
                    env_text(env, "BLAZE_HS256_SECRET").as_deref(),
                    admin_keys.as_deref(),
                );
                let (config, anonymous_refused) = match (parsed, setting) {
                    (Err(e), _) => {
                        let line = json!({"at": "auth_config", "error": e.to_string()});
                        worker::console_error!("{line}");
                        (
                            AuthConfig::refusing_tokens(admin_keys.as_deref()),
                            Some(BROKEN),
                        )
                    }
                    (Ok(config), None | Some("")) => {
                        let line = json!({"at": "auth_config", "warning": UNCONFIGURED});
                        console_log!("{line}");
                        (config, Some(UNCONFIGURED))
                    }
                    (Ok(config), Some(NO_IDENTITY)) => {
                        let line = json!({"at": "auth_config", "warning": "BLAZE_AUTH=none: \
                            no issuers; requests without a credential are anonymous"});
                        console_log!("{line}");
                        (config, None)
                    }
                    (Ok(config), Some(_)) => (config, None),
                };
                Rc::new(RefCell::new(Auth {
                    verifier: Verifier::new(config),
                    anonymous_refused,
                }))
            })
            .clone()
    })
}

/// Why a request without a credential is refused (no identity
/// configuration, or a broken one); `None` when the anonymous identity is served.
pub fn anonymous_refusal(env: &Env) -> Option<Rejection> {
    let why = auth(env).borrow().anonymous_refused;
    why.map(|msg| Rejection::new(ErrorCode::Unauthenticated, msg))
}

/// Verifies `credential` now if no JWKS must be fetched for it first;
/// `None` when one must (then [`verify`] does).
pub fn verify_now(env: &Env, credential: &str) -> Option<Result<Verified, AuthError>> {
    match auth(env).borrow_mut().verifier.verify(credential, now()) {
        Verdict::Verified(verified) => Some(Ok(verified)),
        Verdict::Rejected(refused) => Some(Err(refused)),
        Verdict::FetchKeys { .. } => None,
    }
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
