//! Serving a router on `127.0.0.1:0` from a thread of its own, stopped on drop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::oneshot;

/// A fake server that is listening.
pub struct Running {
    /// Its address.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    https: bool,
}

impl Running {
    /// `http://127.0.0.1:PORT` (or `https://` over TLS), without a trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves the router `make` builds (given the server's own base URL) until the handle drops.
pub fn spawn(make: impl FnOnce(String) -> Router + Send + 'static) -> Running {
    serve(make, None)
}

/// A server certificate chain and its key, PEM files.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// Its private key.
    pub key: std::path::PathBuf,
}

/// Builds a fake's shared state from its base URL, serves the router `routes` makes over it
/// (over TLS when `tls` is given), and hands back both: the state is how a test flips switches
/// and reads counters while the server runs.
pub fn serve_with_state<S: Send + Sync + 'static>(
    tls: Option<Tls>,
    state: impl FnOnce(String) -> S + Send + 'static,
    routes: impl FnOnce(Arc<S>) -> Router + Send + 'static,
) -> (Running, Arc<S>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let make = move |base| {
        let state = Arc::new(state(base));
        tx.send(state.clone()).expect("the starter waits");
        routes(state)
    };
    let server = serve(make, tls);
    let state = rx.recv().expect("the server started");
    (server, state)
}

fn serve(make: impl FnOnce(String) -> Router + Send + 'static, tls: Option<Tls>) -> Running {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("local address");
    let (stop, stopped) = oneshot::channel::<()>();
    let https = tls.is_some();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            match tls {
                None => {
                    let router = make(format!("http://{addr}"));
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                }
                Some(tls) => {
                    let router = make(format!("https://{addr}"));
                    tokio::select! {
                        _ = serve_tls(listener, router, tls) => {}
                        _ = stopped => {}
                    }
                }
            }
        });
        // Connections still open (a client mid-retry) are dropped with the runtime.
        runtime.shutdown_background();
    });
    Running {
        addr,
        stop: Some(stop),
        thread: Some(thread),
        https,
    }
}

/// Accepts TLS connections and serves `router` on each (HTTP/1.1 or HTTP/2).
async fn serve_tls(listener: tokio::net::TcpListener, router: Router, tls: Tls) {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(&tls.cert)
        .expect("a PEM certificate file")
        .collect::<Result<_, _>>()
        .expect("PEM certificates");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&tls.key).expect("a PEM key");
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("a certificate and its key");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            // A client that refuses our certificate ends its handshake here.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}
