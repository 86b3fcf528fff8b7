//! A secret (a tunnel or API token, a password) that never prints: `Debug` and `Display`
//! show `***`, so a secret inside a logged or debug-printed struct stays out of the logs.
//! Its text is reached only through [`Secret::expose`], which names every place that does.

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(format = Password))]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret's text, for the one place that needs it (hashing, a header, a file).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    /// Any text is a secret (command-line flags parse through this).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_but_serializes_as_its_text() {
        let secret = Secret::new("hunter2-but-longer");
        assert_eq!(format!("{secret:?} {secret}"), "*** ***");
        assert_eq!(
            format!("{:?}", Some(secret.clone())),
            "Some(***)",
            "nested in a struct's Debug too"
        );
        assert_eq!(
            serde_json::to_string(&secret).unwrap(),
            r#""hunter2-but-longer""#
        );
        let back: Secret = serde_json::from_str(r#""hunter2-but-longer""#).unwrap();
        assert_eq!(back.expose(), "hunter2-but-longer");
    }
}
