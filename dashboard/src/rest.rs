//! Changes a page makes through the REST API from its event handlers, and how a refusal
//! finds its place on the form. Event handlers run only in the browser, where
//! [`crate::client`] does the sending; the server build draws the same components and
//! never calls [`send`].

use leptos::prelude::*;
use serde::{Serialize, de::DeserializeOwned};

/// A call the API refused, or that never got an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The HTTP status; 0 when the request never reached the server.
    pub(crate) status: u16,
    /// The input the API blamed (its error body's `details.field`).
    pub(crate) field: Option<String>,
    pub(crate) message: String,
}

/// What is wrong with a form: a message shown next to the field it is about, or (`field`
/// `None`) above the form's buttons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) field: Option<&'static str>,
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn at(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            message: message.into(),
        }
    }

    /// Where a form with `fields` shows `failure`: on the field the API named, when the
    /// form has it; else on `value` when the server refused the value itself (400 invalid,
    /// 409 taken or overlapping, 422); else on the whole form (a role that may not, a
    /// server or network failure).
    pub(crate) fn from_failure(
        failure: Failure,
        fields: &[&'static str],
        value: &'static str,
    ) -> Self {
        let named = failure
            .field
            .as_deref()
            .and_then(|f| fields.iter().copied().find(|own| *own == f));
        let field = named.or(matches!(failure.status, 400 | 409 | 422).then_some(value));
        Self {
            field,
            message: failure.message,
        }
    }

    /// The message, when it belongs to `field` (`None`: the form's own).
    pub(crate) fn message_for(this: Option<&Self>, field: Option<&str>) -> Option<String> {
        this.filter(|p| p.field == field).map(|p| p.message.clone())
    }
}

/// Sends `method path` with the JSON `body` as the logged-in user and hands the answer to
/// `done` (an ended session goes to the log-in page instead). Only event handlers call
/// this, and they run in the browser only.
pub(crate) fn send<T: DeserializeOwned + 'static>(
    method: &'static str,
    path: String,
    body: Option<serde_json::Value>,
    done: impl FnOnce(Result<T, Failure>) + 'static,
) {
    #[cfg(feature = "hydrate")]
    crate::client::send(method, path, body, done);
    #[cfg(not(feature = "hydrate"))]
    let _ = (method, path, body, done);
}

/// [`send`] with `body` as JSON.
pub(crate) fn send_json<T: DeserializeOwned + 'static>(
    method: &'static str,
    path: String,
    body: &impl Serialize,
    done: impl FnOnce(Result<T, Failure>) + 'static,
) {
    match serde_json::to_value(body) {
        Ok(body) => send(method, path, Some(body), done),
        Err(e) => done(Err(Failure {
            status: 0,
            field: None,
            message: format!("the request could not be written: {e}"),
        })),
    }
}

/// Re-reads the list at `path` into `target` after a change, so the page shows what the
/// server holds (including what others changed meanwhile). A failed read leaves the list
/// as it was: the change itself succeeded, and the next one reads again.
pub(crate) fn reload<T: DeserializeOwned + Send + Sync + 'static>(
    path: &'static str,
    target: RwSignal<Vec<T>>,
) {
    send::<Vec<T>>("GET", path.to_owned(), None, move |answer| match answer {
        Ok(list) => target.set(list),
        Err(e) => leptos::logging::warn!("could not re-read {path}: {}", e.message),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u16, field: Option<&str>) -> Failure {
        Failure {
            status,
            field: field.map(str::to_owned),
            message: "no".into(),
        }
    }

    #[test]
    fn a_refusal_lands_on_the_field_it_is_about() {
        let fields = ["email", "role"];
        let on = |f: Failure| Problem::from_failure(f, &fields, "email").field;
        // The API named a field of this form.
        assert_eq!(on(failure(400, Some("role"))), Some("role"));
        // It named none, or one the form lacks: a refused value is the main field's.
        assert_eq!(on(failure(409, None)), Some("email"));
        assert_eq!(on(failure(400, Some("password"))), Some("email"));
        // Not about the value at all: the form as a whole.
        assert_eq!(on(failure(403, None)), None);
        assert_eq!(on(failure(500, None)), None);
        assert_eq!(on(failure(0, None)), None);
    }

    #[test]
    fn a_message_shows_only_at_its_place() {
        let problem = Problem::at("name", "taken");
        assert_eq!(
            Problem::message_for(Some(&problem), Some("name")).as_deref(),
            Some("taken")
        );
        assert_eq!(Problem::message_for(Some(&problem), None), None);
        assert_eq!(Problem::message_for(None, Some("name")), None);
    }
}
