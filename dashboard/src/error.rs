//! What can go wrong drawing or running a page.

/// The dashboard's one error type. `Clone`, so a call's outcome can live in a signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The page's data could not be written as JSON, or read back from it (on the server:
    /// the page's data; in the browser: the page's data or an API answer).
    #[error("JSON: {0}")]
    Json(String),
    /// The document has no `<script id="adit-page">` to hydrate from.
    #[cfg(feature = "hydrate")]
    #[error("the page has no data element #{0}")]
    MissingPageData(&'static str),
    /// A browser API failed (no network, a DOM call refused), or there is no browser (the
    /// server's build never calls the API).
    #[error("browser: {0}")]
    Browser(String),
    /// The session is over: the page is on its way to the log-in page, and there is
    /// nothing to show where the call was made.
    #[error("the session has ended")]
    SessionEnded,
    /// The REST API answered with an error.
    #[error("{message} (HTTP {status})")]
    Api {
        status: u16,
        message: String,
        /// The input at fault, when the API names one (`details.field`).
        field: Option<String>,
    },
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::Json(error.to_string())
    }
}

impl Error {
    /// What to tell people: the API's own message (without the status), in words.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Api { message, .. } => crate::pages::routing::readable(message),
            other => other.to_string(),
        }
    }

    /// The input the API named (`details.field`).
    pub(crate) fn field(&self) -> Option<&str> {
        match self {
            Self::Api { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of an API refusal.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}
