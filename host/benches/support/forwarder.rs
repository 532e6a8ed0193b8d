//! The floor for any proxy on this machine: a forwarding proxy that does
//! nothing but pass a request on (hyper in, reqwest out, kept-alive both
//! ways, no vault, no audit, no sandbox). What it costs against a direct
//! request is what putting any process in the path costs when client,
//! proxy and upstream share two cores.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::upstream::Upstream;

/// A running forwarder: `GET /v1/models` goes to `api.openai.com` on the
/// bench's upstream, with the key it was given.
pub struct Forwarder {
    pub addr: SocketAddr,
}

impl Forwarder {
    pub fn start(upstream: &Upstream, key: &str) -> Self {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .no_proxy()
            .add_root_certificate(reqwest::Certificate::from_pem(&upstream.ca_pem()).unwrap())
            .resolve("api.openai.com", upstream.addr)
            .build()
            .unwrap();
        let bearer = format!("Bearer {key}");
        let addr = super::loopback_server(move |tcp| {
            let (client, bearer) = (client.clone(), bearer.clone());
            async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (client, bearer) = (client.clone(), bearer.clone());
                    async move { Ok::<_, Infallible>(forward(&client, &bearer, req).await) }
                });
                let io = hyper_util::rt::TokioIo::new(tcp);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            }
        });
        Forwarder { addr }
    }
}

async fn forward(client: &reqwest::Client, bearer: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let url = format!("https://api.openai.com{}", req.uri().path());
    let answer = client.get(url).header("authorization", bearer).send().await.unwrap();
    let status = answer.status();
    let body = answer.bytes().await.unwrap();
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
}
