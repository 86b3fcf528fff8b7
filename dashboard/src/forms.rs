//! Where a refusal shows on a form, and the Settings lists, re-read after a change.

use leptos::{prelude::*, task::spawn_local};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    Error,
    api::{Api, use_api},
};

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
        let refused = matches!(error.status(), Some(400 | 409 | 422));
        let field = error
            .field()
            .and_then(|f| fields.iter().copied().find(|own| *own == f))
            .or(refused.then_some(value));
        Self {
            field,
            message: error.message(),
        }
    }

    /// The message, when it belongs to `field` (`None`: the form's own).
    pub(crate) fn message_for(this: Option<&Self>, field: Option<&str>) -> Option<String> {
        this.filter(|p| p.field == field).map(|p| p.message.clone())
    }
}

/// A Settings list: first what the page was drawn with; [`SettingsList::reload`] re-reads
/// it after a change (which includes what others changed meanwhile). An answer older than
/// the latest read is dropped.
pub(crate) struct SettingsList<T: Send + Sync + 'static> {
    pub(crate) items: RwSignal<Vec<T>>,
    collection: &'static str,
    reads: StoredValue<u64>,
    api: StoredValue<Api>,
}

impl<T: Send + Sync + 'static> Clone for SettingsList<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for SettingsList<T> {}

impl<T: DeserializeOwned + Send + Sync + 'static> SettingsList<T> {
    pub(crate) fn new(collection: &'static str, items: Vec<T>) -> Self {
        Self {
            items: RwSignal::new(items),
            collection,
            reads: StoredValue::new(0),
            api: StoredValue::new(use_api()),
        }
    }

    /// The page's API client.
    pub(crate) fn api(self) -> Api {
        self.api.get_value()
    }

    /// Re-reads the list. A failed read leaves it as it was: the change itself succeeded,
    /// and the next one reads again.
    pub(crate) fn reload(self) {
        let api = self.api.get_value();
        self.reads.update_value(|n| *n += 1);
        let this_read = self.reads.get_value();
        spawn_local(async move {
            match api.list::<T>(self.collection).await {
                Ok(list) if self.reads.get_value() == this_read => self.items.set(list),
                Ok(_) | Err(Error::SessionEnded) => {}
                Err(e) => leptos::logging::warn!("could not re-read {}: {e}", self.collection),
            }
        });
    }

    /// A form's create call, as an `Action`: `POST {collection}` with the dispatched body;
    /// `done` gets the answer (not an ended session's), and the list is re-read after a
    /// success.
    pub(crate) fn create_action<B, R>(
        self,
        done: impl Fn(Result<R, Error>) + 'static,
    ) -> Action<B, Result<R, Error>>
    where
        B: Serialize + Clone + Send + Sync + 'static,
        R: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let action = Action::new_local(move |body: &B| {
            let (api, body) = (self.api(), body.clone());
            async move { api.create::<R>(self.collection, &body).await }
        });
        Effect::new(move || match action.value().get() {
            None | Some(Err(Error::SessionEnded)) => {}
            Some(answer) => {
                if answer.is_ok() {
                    self.reload();
                }
                done(answer);
            }
        });
        action
    }

    /// A row's remove action: `DELETE {collection}/{id}`, then the list re-read; while it
    /// runs `busy` is set, and a refusal lands in `error`.
    pub(crate) fn remove_action(
        self,
        id: impl std::fmt::Display,
        busy: RwSignal<bool>,
        error: RwSignal<Option<String>>,
    ) -> Callback<()> {
        let id = id.to_string();
        Callback::new(move |()| {
            error.set(None);
            busy.set(true);
            let (api, id) = (self.api.get_value(), id.clone());
            spawn_local(async move {
                let answer = api.remove(self.collection, &id).await;
                busy.set(false);
                match answer {
                    Ok(()) => self.reload(),
                    Err(Error::SessionEnded) => {}
                    Err(e) => error.set(Some(e.message())),
                }
            });
        })
    }
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
        assert_eq!(on(Error::Json("unreadable".into())), None);
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
