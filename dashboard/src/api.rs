//! The dashboard's one client of the REST API: a typed method per call the pages make,
//! and one rule for an ended session (401): the page goes to the log-in page, and the
//! caller gets [`Error::SessionEnded`], which it need not show. The pages use the same
//! API as scripts do; the session cookie is their credential, and calls that change state
//! carry the session's CSRF token. The client is in the page's context ([`use_api`]).
//!
//! Only the browser makes calls (from event handlers and effects); in the server's build
//! a call fails at once with [`Error::Browser`] and is never awaited.

use adit_core::{
    api::{
        Connector, CreateIpRoute, IpRoute, RenameTunnel, TrafficPoint, Tunnel, TunnelConfiguration,
        TunnelListQuery, TunnelPage, TunnelTokenBody,
    },
    ids::{RouteId, TunnelId},
    ingress::IngressConfig,
};
use leptos::prelude::*;
use serde::{Serialize, de::DeserializeOwned, de::IgnoredAny};
use serde_json::json;

use crate::Error;

/// The page's API client; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Api {
    csrf_token: Option<String>,
}

/// The page's [`Api`], which [`crate::page::App`] provides.
pub(crate) fn use_api() -> Api {
    use_context::<Api>().unwrap_or_default()
}

fn tunnel_path(id: TunnelId) -> String {
    format!("/api/v1/tunnels/{id}")
}

/// `page=…&per_page=…&name=…` for a tunnel list query (always a page: `page` is given).
fn list_query(query: &TunnelListQuery) -> String {
    let mut out = format!("page={}&per_page={}", query.page(), query.per_page());
    if let Some(search) = query.search() {
        out.push_str("&name=");
        for byte in search.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(byte));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

impl Api {
    pub(crate) fn new(csrf_token: Option<String>) -> Self {
        Self { csrf_token }
    }

    /// `method path` with an optional JSON body; the answer's JSON (`null` when it has no
    /// body) as `T`, or the API's error. The one place an ended session is handled.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, Error> {
        #[cfg(feature = "hydrate")]
        {
            let answer =
                crate::client::fetch(method, path, body.as_ref(), self.csrf_token.as_deref()).await;
            if let Err(Error::Api { status: 401, .. }) = answer {
                crate::client::go_to_login();
                return Err(Error::SessionEnded);
            }
            answer
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = (method, path, body, &self.csrf_token);
            Err(Error::Browser("the server makes no API calls".into()))
        }
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Error> {
        self.call("GET", path, None).await
    }

    /// `method path` with `body` as JSON.
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        self.call(method, path, Some(serde_json::to_value(body)?))
            .await
    }

    /// `DELETE path`, whatever it answers.
    pub(crate) async fn delete(&self, path: &str) -> Result<(), Error> {
        self.call::<IgnoredAny>("DELETE", path, None)
            .await
            .map(|_| ())
    }

    // ---- tunnels ----

    pub(crate) async fn tunnels(&self) -> Result<Vec<Tunnel>, Error> {
        self.get("/api/v1/tunnels").await
    }

    /// One page of the tunnel list, searched on the server.
    pub(crate) async fn tunnel_page(&self, query: &TunnelListQuery) -> Result<TunnelPage, Error> {
        self.get(&format!("/api/v1/tunnels?{}", list_query(query)))
            .await
    }

    pub(crate) async fn tunnel(&self, id: TunnelId) -> Result<Tunnel, Error> {
        self.get(&tunnel_path(id)).await
    }

    /// A remotely managed tunnel named `name`.
    pub(crate) async fn create_tunnel(&self, name: &str) -> Result<Tunnel, Error> {
        let body = json!({ "name": name, "config_src": "remote" });
        self.send("POST", "/api/v1/tunnels", &body).await
    }

    pub(crate) async fn rename_tunnel(&self, id: TunnelId, name: String) -> Result<Tunnel, Error> {
        self.send("PATCH", &tunnel_path(id), &RenameTunnel { name })
            .await
    }

    /// Deletes the tunnel; `force` even while connectors are connected.
    pub(crate) async fn delete_tunnel(&self, id: TunnelId, force: bool) -> Result<(), Error> {
        let query = if force { "?force=true" } else { "" };
        self.delete(&format!("{}{query}", tunnel_path(id))).await
    }

    pub(crate) async fn tunnel_token(&self, id: TunnelId) -> Result<String, Error> {
        let body: TunnelTokenBody = self.get(&format!("{}/token", tunnel_path(id))).await?;
        Ok(body.token)
    }

    /// A new secret: the old token stops working. The new token.
    pub(crate) async fn rotate_secret(&self, id: TunnelId) -> Result<String, Error> {
        let body: TunnelTokenBody = self
            .call("POST", &format!("{}/rotate-secret", tunnel_path(id)), None)
            .await?;
        Ok(body.token)
    }

    pub(crate) async fn connectors(&self, id: TunnelId) -> Result<Vec<Connector>, Error> {
        self.get(&format!("{}/connectors", tunnel_path(id))).await
    }

    pub(crate) async fn configuration(&self, id: TunnelId) -> Result<TunnelConfiguration, Error> {
        self.get(&format!("{}/configurations", tunnel_path(id)))
            .await
    }

    pub(crate) async fn put_configuration(
        &self,
        id: TunnelId,
        config: &IngressConfig,
    ) -> Result<TunnelConfiguration, Error> {
        let body = json!({ "config": config });
        self.send("PUT", &format!("{}/configurations", tunnel_path(id)), &body)
            .await
    }

    /// The last `minutes` of the tunnel's traffic, minute by minute.
    pub(crate) async fn traffic(
        &self,
        id: TunnelId,
        minutes: u32,
    ) -> Result<Vec<TrafficPoint>, Error> {
        self.get(&format!("{}/traffic?minutes={minutes}", tunnel_path(id)))
            .await
    }

    // ---- private networks ----

    /// The account's private networks.
    pub(crate) async fn ip_routes(&self) -> Result<Vec<IpRoute>, Error> {
        self.get("/api/v1/ip-routes").await
    }

    pub(crate) async fn add_ip_route(&self, route: &CreateIpRoute) -> Result<IpRoute, Error> {
        self.send("POST", "/api/v1/ip-routes", route).await
    }

    pub(crate) async fn delete_ip_route(&self, id: RouteId) -> Result<(), Error> {
        self.delete(&format!("/api/v1/ip-routes/{id}")).await
    }

    // ---- the Settings collections (zones, tokens, users) ----

    /// Every item of `collection` (`/api/v1/zones`, …).
    pub(crate) async fn list<T: DeserializeOwned>(
        &self,
        collection: &str,
    ) -> Result<Vec<T>, Error> {
        self.get(collection).await
    }

    /// A new item of `collection` from `body`.
    pub(crate) async fn create<T: DeserializeOwned>(
        &self,
        collection: &str,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        self.send("POST", collection, body).await
    }

    /// Item `id` of `collection` changed as `body` says.
    pub(crate) async fn update<T: DeserializeOwned>(
        &self,
        collection: &str,
        id: impl std::fmt::Display,
        body: &impl Serialize,
    ) -> Result<T, Error> {
        self.send("PATCH", &format!("{collection}/{id}"), body)
            .await
    }

    /// Removes item `id` of `collection`.
    pub(crate) async fn remove(
        &self,
        collection: &str,
        id: impl std::fmt::Display,
    ) -> Result<(), Error> {
        self.delete(&format!("{collection}/{id}")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_query_always_names_its_page_and_encodes_the_search() {
        assert_eq!(
            list_query(&TunnelListQuery::default()),
            "page=1&per_page=20"
        );
        let query = TunnelListQuery {
            page: Some(3),
            per_page: Some(50),
            name: Some(" web & é%_ ".into()),
        };
        assert_eq!(
            list_query(&query),
            "page=3&per_page=50&name=web%20%26%20%C3%A9%25_"
        );
    }
}
