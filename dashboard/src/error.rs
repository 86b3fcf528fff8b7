//! What can go wrong drawing or running a page.

/// The dashboard's one error type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The page's data could not be written as JSON, or read back from it (on the server:
    /// the page's data; in the browser: the page's data or an API answer).
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The document has no `<script id="adit-page">` to hydrate from.
    #[cfg(feature = "hydrate")]
    #[error("the page has no data element #{0}")]
    MissingPageData(&'static str),
    /// A browser API failed (no network, a DOM call refused).
    #[cfg(feature = "hydrate")]
    #[error("browser: {0}")]
    Browser(String),
    /// The REST API answered with an error.
    #[error("{message} (HTTP {status})")]
    Api {
        status: u16,
        message: String,
        /// The input at fault, when the API names one (`details.field`).
        field: Option<String>,
    },
}
