//! How the Settings forms call the REST API — through [`action::call`], with JSON bodies,
//! sending an ended session to the log-in page — and where a refusal shows on a form.

use leptos::prelude::*;
use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, action};

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

    /// Where a form with `fields` shows the failed call's `error`: on the field the API
    /// named, when the form has it; else on `value` when the server refused the value
    /// itself (400 invalid, 409 taken or overlapping, 422); else on the whole form (a role
    /// that may not, a server or network failure).
    pub(crate) fn from_error(error: &Error, fields: &[&'static str], value: &'static str) -> Self {
        let (message, named) = action::failure(error);
        let refused = matches!(
            error,
            Error::Api {
                status: 400 | 409 | 422,
                ..
            }
        );
        let field = named
            .as_deref()
            .and_then(|f| fields.iter().copied().find(|own| *own == f))
            .or(refused.then_some(value));
        Self { field, message }
    }

    /// The message, when it belongs to `field` (`None`: the form's own).
    pub(crate) fn message_for(this: Option<&Self>, field: Option<&str>) -> Option<String> {
        this.filter(|p| p.field == field).map(|p| p.message.clone())
    }
}

/// `method path` (with an optional JSON `body`) as the logged-in user; `done` gets the
/// answer, except when the session is over: then the page goes to the log-in page, as
/// the live pages do.
pub(crate) fn send<T: DeserializeOwned + 'static>(
    method: &'static str,
    path: String,
    body: Option<serde_json::Value>,
    done: impl FnOnce(Result<T, Error>) + 'static,
) {
    action::call(method, path, body, move |answer| match answer {
        Err(Error::Api { status: 401, .. }) => action::go_to("/login"),
        answer => done(answer),
    });
}

/// [`send`] with `body` as JSON.
pub(crate) fn send_json<T: DeserializeOwned + 'static>(
    method: &'static str,
    path: String,
    body: &impl Serialize,
    done: impl FnOnce(Result<T, Error>) + 'static,
) {
    match serde_json::to_value(body) {
        Ok(body) => send(method, path, Some(body), done),
        Err(e) => done(Err(e.into())),
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
        Err(e) => leptos::logging::warn!("could not re-read {path}: {e}"),
    });
}

/// A row's remove action: `DELETE {collection}/{id}`, then the list re-read from
/// `collection`; while it runs `busy` is set, and a refusal lands in `error`.
pub(crate) fn remove_then_reload<T: DeserializeOwned + Send + Sync + 'static>(
    collection: &'static str,
    id: impl std::fmt::Display,
    list: RwSignal<Vec<T>>,
    busy: RwSignal<bool>,
    error: RwSignal<Option<String>>,
) -> Callback<()> {
    let path = format!("{collection}/{id}");
    Callback::new(move |()| {
        error.set(None);
        busy.set(true);
        // Whatever the DELETE answers (nothing, or the removed object), the list is what
        // the page shows next.
        send::<serde_json::Value>("DELETE", path.clone(), None, move |answer| {
            busy.set(false);
            match answer {
                Ok(_) => reload(collection, list),
                Err(e) => error.set(Some(action::failure(&e).0)),
            }
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, field: Option<&str>) -> Error {
        Error::Api {
            status,
            field: field.map(str::to_owned),
            message: "no".into(),
        }
    }

    #[test]
    fn a_refusal_lands_on_the_field_it_is_about() {
        let fields = ["email", "role"];
        let on = |e: Error| Problem::from_error(&e, &fields, "email").field;
        // The API named a field of this form.
        assert_eq!(on(refused(400, Some("role"))), Some("role"));
        // It named none, or one the form lacks: a refused value is the main field's.
        assert_eq!(on(refused(409, None)), Some("email"));
        assert_eq!(on(refused(400, Some("password"))), Some("email"));
        // Not about the value at all: the form as a whole.
        assert_eq!(on(refused(403, None)), None);
        assert_eq!(on(refused(500, None)), None);
        let unreadable = serde_json::from_str::<u8>("x").unwrap_err();
        assert_eq!(on(Error::Json(unreadable)), None);
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
