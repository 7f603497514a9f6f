//! The metrics endpoint (SPEC §19): the machine's [`Metrics`] in Prometheus's text format, on
//! an address of its own (`STARLANE_METRICS`), apart from the gateway's so that it can stay
//! private while the site is public.
//!
//! `GET /metrics` answers the text ([`CONTENT_TYPE`]); anything else is 404. It is not counted
//! in the gateway's own metrics: a scrape is not a request to the cosmos.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tokio::net::TcpListener;

use super::plain;
use crate::metrics::{CONTENT_TYPE, Metrics};

/// The path the metrics are served at.
pub const METRICS_PATH: &str = "/metrics";

/// Serves `metrics` on `listener` until `shutdown` completes.
pub(crate) async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let router = Router::new().fallback(scrape).with_state(metrics);
    let served = axum::serve(listener, router).with_graceful_shutdown(shutdown);
    if let Err(err) = served.await {
        tracing::warn!(target: super::HTTP_TARGET, "the metrics endpoint stopped: {err}");
    }
}

/// `GET /metrics`, or 404.
async fn scrape(State(metrics): State<Arc<Metrics>>, request: Request) -> Response {
    if request.method() != Method::GET || request.uri().path() != METRICS_PATH {
        return plain(
            StatusCode::NOT_FOUND,
            format!("only GET {METRICS_PATH} is served here"),
        );
    }
    let mut response = Response::new(Body::from(metrics.render()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cosmic_space::{StatusCode as WaveStatus, WaveKind};
    use http_body_util::BodyExt;

    use super::*;

    async fn get(metrics: &Arc<Metrics>, method: Method, path: &str) -> (u16, String, String) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        let response = scrape(State(metrics.clone()), request).await;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .to_bytes();
        (
            status,
            content_type,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn get_metrics_is_the_text_format_and_anything_else_404() {
        let metrics = Arc::new(Metrics::new());
        metrics.wave(WaveKind::Ping, WaveStatus::OK, Duration::from_micros(7));
        let (status, content_type, body) = get(&metrics, Method::GET, "/metrics").await;
        assert_eq!(status, 200);
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(
            body.contains("starlane_waves_total{kind=\"ping\",status=\"200\"} 1\n"),
            "{body}"
        );
        for (method, path) in [
            (Method::GET, "/"),
            (Method::GET, "/metrics/x"),
            (Method::POST, "/metrics"),
            (Method::HEAD, "/metrics"),
        ] {
            let (status, _, _) = get(&metrics, method.clone(), path).await;
            assert_eq!(status, 404, "{method} {path}");
        }
    }
}
