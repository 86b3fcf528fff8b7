//! A small REST client for `/api/v1`, and where the CLI finds its server and token.

use std::path::{Path, PathBuf};

use adit_core::api;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::Error;

/// Where the API is and the token to call it with.
#[derive(Clone)]
pub struct ApiCredentials {
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for ApiCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiCredentials")
            .field("url", &self.url)
            .field("token", &"***")
            .finish()
    }
}

/// `~/.adit/credentials`, as `adit login` writes it.
#[derive(Serialize, Deserialize)]
pub(crate) struct CredentialsFile {
    pub(crate) api_url: String,
    pub(crate) api_token: String,
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl ApiCredentials {
    /// Flags (and their `ADIT_API_URL` / `ADIT_API_TOKEN` twins) first, then
    /// `~/.adit/credentials`, then the files a local `adit-server` writes in `~/.adit/server`.
    pub fn resolve(
        url: Option<String>,
        token: Option<String>,
        adit_home: &Path,
    ) -> Result<Self, Error> {
        let file: Option<CredentialsFile> = read_trimmed(&adit_home.join("credentials"))
            .and_then(|text| serde_json::from_str(&text).ok());
        let server_dir = adit_home.join("server");
        let url = url
            .or_else(|| file.as_ref().map(|f| f.api_url.clone()))
            .or_else(|| read_trimmed(&server_dir.join("api-url")));
        let token = token
            .or_else(|| file.as_ref().map(|f| f.api_token.clone()))
            .or_else(|| read_trimmed(&server_dir.join("admin-token")));
        match (url, token) {
            (Some(url), Some(token)) => Ok(Self {
                url: url.trim_end_matches('/').to_owned(),
                token,
            }),
            _ => Err(Error::Usage(format!(
                "no API server and token: pass --api-url and --api-token (or ADIT_API_URL / ADIT_API_TOKEN), \
                 or write {}",
                adit_home.join("credentials").display()
            ))),
        }
    }
}

/// `~/.adit`.
pub fn adit_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".adit")
}

/// Makes the directory `file` goes in: missing directories 0700, and `home` (`~/.adit`,
/// which holds API tokens and tunnel credentials) tightened to 0700 when it is that
/// directory. A directory the user named elsewhere keeps the permissions they gave it.
pub(crate) fn create_private_parent(file: &Path, home: &Path) -> Result<(), Error> {
    let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
    dir.create(parent).map_err(|e| Error::file(parent, e))?;
    #[cfg(unix)]
    if parent == home {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::file(parent, e))?;
    }
    Ok(())
}

pub struct ApiClient {
    credentials: ApiCredentials,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

fn segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl ApiClient {
    pub fn new(credentials: ApiCredentials) -> Result<Self, Error> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            credentials,
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// A client for the calls that need no token (logging in).
    pub fn anonymous(url: &str) -> Result<Self, Error> {
        Self::new(ApiCredentials {
            url: url.trim_end_matches('/').to_owned(),
            token: String::new(),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<T, Error> {
        let url = format!("{}/api/v1{path}", self.credentials.url);
        let unreachable = |message: String| Error::Unreachable {
            url: url.clone(),
            message,
        };
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = Request::builder().method(method).uri(&url);
        if !self.credentials.token.is_empty() {
            request = request.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.credentials.token),
            );
        }
        let request = request
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let error: api::ApiError = serde_json::from_slice(&body).unwrap_or(api::ApiError {
                code: "http_error".into(),
                message: format!("the API answered {status}"),
                details: serde_json::Value::Null,
            });
            return Err(Error::Api {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
            });
        }
        let body = if status == StatusCode::NO_CONTENT || body.is_empty() {
            Bytes::from_static(b"null")
        } else {
            body
        };
        serde_json::from_slice(&body).map_err(|e| unreachable(format!("unexpected answer: {e}")))
    }

    pub async fn create_tunnel(&self, name: &str) -> Result<api::Tunnel, Error> {
        self.call(
            Method::POST,
            "/tunnels",
            Some(serde_json::json!({ "name": name })),
        )
        .await
    }

    pub async fn list_tunnels(&self) -> Result<Vec<api::Tunnel>, Error> {
        self.call(Method::GET, "/tunnels", None).await
    }

    pub async fn tunnel(&self, tunnel: &str) -> Result<api::Tunnel, Error> {
        self.call(Method::GET, &format!("/tunnels/{}", segment(tunnel)), None)
            .await
    }

    pub async fn delete_tunnel(&self, tunnel: &str, force: bool) -> Result<api::Tunnel, Error> {
        self.call(
            Method::DELETE,
            &format!("/tunnels/{}?force={force}", segment(tunnel)),
            None,
        )
        .await
    }

    /// Drops the tunnel's connectors (or the one named) and their connections.
    pub async fn cleanup_connections(
        &self,
        tunnel: &str,
        connector: Option<&str>,
    ) -> Result<api::CleanupConnections, Error> {
        let mut path = format!("/tunnels/{}/connections", segment(tunnel));
        if let Some(connector) = connector {
            path.push_str(&format!("?connector_id={}", segment(connector)));
        }
        self.call(Method::DELETE, &path, None).await
    }

    pub async fn tunnel_token(&self, tunnel: &str) -> Result<String, Error> {
        let body: api::TunnelTokenBody = self
            .call(
                Method::GET,
                &format!("/tunnels/{}/token", segment(tunnel)),
                None,
            )
            .await?;
        Ok(body.token)
    }

    pub async fn create_route(&self, tunnel: &str, hostname: &str) -> Result<api::Route, Error> {
        self.call(
            Method::POST,
            &format!("/tunnels/{}/routes", segment(tunnel)),
            Some(serde_json::json!({ "hostname": hostname })),
        )
        .await
    }

    pub async fn create_ip_route(
        &self,
        tunnel: &str,
        network: &str,
        comment: &str,
    ) -> Result<api::IpRoute, Error> {
        self.call(
            Method::POST,
            "/ip-routes",
            Some(serde_json::json!({ "tunnel": tunnel, "network": network, "comment": comment })),
        )
        .await
    }

    pub async fn ip_routes(&self) -> Result<Vec<api::IpRoute>, Error> {
        self.call(Method::GET, "/ip-routes", None).await
    }

    /// Deletes a private-network route named by id or CIDR.
    pub async fn delete_ip_route(&self, route: &str) -> Result<(), Error> {
        self.call(
            Method::DELETE,
            &format!("/ip-routes/{}", segment(route)),
            None,
        )
        .await
    }

    pub async fn match_ip_route(&self, ip: &str) -> Result<api::IpRoute, Error> {
        self.call(
            Method::GET,
            &format!("/ip-routes/match/{}", segment(ip)),
            None,
        )
        .await
    }

    /// Asks for a quick tunnel (no credentials needed).
    pub async fn create_quick_tunnel(&self) -> Result<api::QuickTunnel, Error> {
        self.call(Method::POST, "/quick-tunnels", None).await
    }

    pub async fn connectors(&self, tunnel: &str) -> Result<Vec<api::Connector>, Error> {
        self.call(
            Method::GET,
            &format!("/tunnels/{}/connectors", segment(tunnel)),
            None,
        )
        .await
    }

    /// Starts `adit login` (no credentials needed).
    pub async fn start_device_login(&self, client: &str) -> Result<api::DeviceLogin, Error> {
        self.call(
            Method::POST,
            "/auth/device",
            Some(serde_json::json!({ "client": client })),
        )
        .await
    }

    /// One poll of `adit login`: `Error::Api` with `authorization_pending` until approved.
    pub async fn redeem_device_code(&self, device_code: &str) -> Result<api::DeviceToken, Error> {
        self.call(
            Method::POST,
            "/auth/device/token",
            Some(serde_json::json!({ "device_code": device_code })),
        )
        .await
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_adit_home_is_made_and_kept_private() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("user/.adit");
        create_private_parent(&home.join("credentials"), &home).unwrap();
        assert_eq!(
            (mode(&root.path().join("user")), mode(&home)),
            (0o700, 0o700)
        );
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_parent(&home.join("tunnel.json"), &home).unwrap();
        assert_eq!(mode(&home), 0o700, "an older ~/.adit is tightened");
        // A directory the user chose elsewhere is theirs.
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_parent(&shared.join("tunnel.json"), &home).unwrap();
        assert_eq!(mode(&shared), 0o755);
    }
}
