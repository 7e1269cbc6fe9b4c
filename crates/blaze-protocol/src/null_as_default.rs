//! Optional fields: `null` means the same as leaving the field out (spec 10.2).

use serde::{Deserialize, Deserializer};

/// Deserializes an optional field whose absence means its default, reading
/// `null` as absent.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
