//! The credential `blaze` connects with: `--token` or `--key`, else the
//! environment's `BLAZE_TOKEN` or `BLAZE_KEY` (a flag wins over the
//! environment; two credentials at once are a usage error).

use blaze_client::Credentials;

/// The credential from the flags, else from `env` (empty variables count as unset).
pub fn credentials(
    token: Option<String>,
    key: Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Credentials, String> {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    let one =
        match (token, key) {
            (Some(_), Some(_)) => return Err("give --token or --key, not both".into()),
            (Some(credential), None) | (None, Some(credential)) => Some(credential),
            (None, None) => match (var("BLAZE_TOKEN"), var("BLAZE_KEY")) {
                (Some(_), Some(_)) => return Err(
                    "BLAZE_TOKEN and BLAZE_KEY are both set: unset one, or pass --token or --key"
                        .into(),
                ),
                (Some(credential), None) | (None, Some(credential)) => Some(credential),
                (None, None) => None,
            },
        };
    Ok(one.map_or(Credentials::None, Credentials::Fixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| value.to_string())
        }
    }

    fn fixed(credentials: Result<Credentials, String>) -> Option<String> {
        match credentials.unwrap() {
            Credentials::Fixed(credential) => Some(credential),
            Credentials::None => None,
            Credentials::Provider(_) => panic!("the CLI has no provider"),
        }
    }

    #[test]
    fn a_flag_wins_over_the_environment() {
        let both = [("BLAZE_TOKEN", "env-token"), ("BLAZE_KEY", "env-key")];
        assert_eq!(
            fixed(credentials(Some("t".into()), None, env(&both))),
            Some("t".into())
        );
        assert_eq!(
            fixed(credentials(None, Some("k".into()), env(&both))),
            Some("k".into())
        );
        assert_eq!(
            fixed(credentials(None, None, env(&[("BLAZE_KEY", "env-key")]))),
            Some("env-key".into())
        );
        assert_eq!(
            fixed(credentials(
                None,
                None,
                env(&[("BLAZE_TOKEN", "env-token")])
            )),
            Some("env-token".into())
        );
        assert_eq!(
            fixed(credentials(
                None,
                None,
                env(&[("BLAZE_TOKEN", ""), ("BLAZE_KEY", "k")])
            )),
            Some("k".into()),
            "an empty variable is unset"
        );
        assert_eq!(fixed(credentials(None, None, env(&[]))), None);
    }

    #[test]
    fn two_credentials_at_once_are_refused() {
        assert!(credentials(Some("t".into()), Some("k".into()), env(&[])).is_err());
        let both = [("BLAZE_TOKEN", "t"), ("BLAZE_KEY", "k")];
        assert!(credentials(None, None, env(&both)).is_err());
    }
}
