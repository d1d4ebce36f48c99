//! An [`App`] served on a free loopback port for one test, and a client for it.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::time::Duration;

use fastagentic::App;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A served app, stopped when dropped.
pub struct Server {
    base: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    /// Serves `app` on a free port of 127.0.0.1.
    pub async fn start(app: App) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.serve_with(listener, async move {
            let _ = stopped.await;
        }));
        Server {
            base,
            stop: Some(stop),
        }
    }

    /// The URL of `path` on it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST path` with `body` as JSON.
    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        client()
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        client().get(self.url(path)).send().await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client that gives up after 10 s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The response's body as JSON.
pub async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// A response header's value, if present and text.
pub fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}
