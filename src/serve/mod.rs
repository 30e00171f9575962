//! Stage 7, SERVE: the public lookup (一码通查). `qinglian serve` reads only
//! what a verified manifest lists — the `public` and `public_events`
//! datasets, nothing private — builds an in-memory [`Index`] of every
//! organization and serves its page, QR code, printable card and JSON.
//!
//! Versions switch atomically: a poller lists the manifests, indexes a
//! newer version off to the side and swaps one `Arc<Index>`; a request
//! takes the `Arc` once, so it is answered from one version whole even
//! while a switch happens. A version that fails verification is not taken
//! (and not tried again); the one serving goes on, and at start the newest
//! good version is served even when a newer one is broken.
//!
//! Hardening: per-client rate limit (429 with `Retry-After`), request
//! timeout, body limit, gzip, security headers (a Content-Security-Policy
//! that allows no script), `/healthz`, `/metrics`. Logs carry the route and
//! status, never a path's organization or a query string.

pub mod index;
mod names;
pub mod pages;
pub mod qr;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::NaiveDate;
use futures::TryStreamExt;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use object_store::ObjectStore;
use object_store::path::Path;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

pub use index::{Index, IndexError, NameIndexStats, Org};
use pages::TextSize;

use crate::catalog::Published;
use crate::keys::{self, KeyClass};

/// Why the lookup could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The project, pipeline or an option is wrong.
    #[error("{0}")]
    Config(String),
    /// The warehouse could not be opened or listed.
    #[error("warehouse: {0}")]
    Warehouse(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
}

/// `qinglian serve`: the public lookup on an address.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Warehouse URL, overriding the pipeline's.
    #[arg(long)]
    pub warehouse: Option<String>,
    /// Project directory.
    #[arg(long, default_value = ".")]
    pub project: PathBuf,
    /// Pipeline whose warehouse and `[public]` section to use.
    #[arg(long, default_value = "nightly")]
    pub pipeline: String,
    /// Permanent public address the QR codes encode, overriding `[public] base_url`.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Seconds between looks for a newer published version.
    #[arg(long, default_value_t = 30)]
    pub poll_seconds: u64,
    /// Requests per second allowed to one client address (0: no limit).
    #[arg(long, default_value_t = 20)]
    pub rate_per_second: u32,
    /// Requests one client may send at once above its rate.
    #[arg(long, default_value_t = 60)]
    pub burst: u32,
    /// Longest time to answer one request, seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout_seconds: u64,
    /// A folder served as files under `/files/<name>` (the pre-rendered
    /// baseline of the benchmarks).
    #[arg(long)]
    pub files: Option<PathBuf>,
}

/// What a running lookup needs.
#[derive(Clone)]
pub struct ServeConfig {
    /// Warehouse store.
    pub store: Arc<dyn ObjectStore>,
    /// Warehouse prefix.
    pub prefix: Path,
    /// Permanent base address of the pages (no trailing slash).
    pub base_url: String,
    /// Between looks for a newer version.
    pub poll: Duration,
    /// Requests per second per client (0: no limit).
    pub rate_per_second: u32,
    /// Burst above the rate.
    pub burst: u32,
    /// Longest time for one request.
    pub timeout: Duration,
    /// Folder served under `/files/`.
    pub files: Option<PathBuf>,
}

impl ServeConfig {
    /// Defaults for a store: poll every 30 s, 20 requests/s per client.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path, base_url: &str) -> Self {
        Self {
            store,
            prefix,
            base_url: base_url.trim_end_matches('/').to_string(),
            poll: Duration::from_secs(30),
            rate_per_second: 20,
            burst: 60,
            timeout: Duration::from_secs(10),
            files: None,
        }
    }
}

/// Longest accepted request body: the lookup takes no body at all.
const BODY_LIMIT: usize = 16 * 1024;
/// Longest accepted search query, characters.
const MAX_QUERY_CHARS: usize = 100;

/// The published versions and the one being served.
pub struct Catalog {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    current: RwLock<Arc<Index>>,
    rejected: Mutex<HashSet<String>>,
    refreshing: tokio::sync::Mutex<()>,
    metrics: Arc<ServeMetrics>,
}

/// A manifest found in the warehouse: its business date, attempt and path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    date: NaiveDate,
    attempt: u32,
    rel: String,
}

impl Catalog {
    fn new(store: Arc<dyn ObjectStore>, prefix: Path, metrics: Arc<ServeMetrics>) -> Self {
        Self {
            store,
            prefix,
            current: RwLock::new(Arc::new(Index::default())),
            rejected: Mutex::new(HashSet::new()),
            refreshing: tokio::sync::Mutex::new(()),
            metrics,
        }
    }

    /// The version being served; hold it for the whole of a request.
    pub fn current(&self) -> Arc<Index> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn swap(&self, index: Index) {
        let index = Arc::new(index);
        match self.current.write() {
            Ok(mut g) => *g = index,
            Err(poisoned) => *poisoned.into_inner() = index,
        }
    }

    async fn candidates(&self) -> Result<Vec<Candidate>, ServeError> {
        let dir = crate::store::join(&self.prefix, crate::layout::MANIFESTS);
        let metas: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| ServeError::Warehouse(format!("{dir}: {e}")))?;
        let mut out: Vec<Candidate> = metas
            .into_iter()
            .filter_map(|m| {
                let rel = crate::store::relative(&self.prefix, &m.location);
                let mut parts = rel.rsplit('/');
                let file = parts.next()?.strip_suffix(".json")?;
                let date = parts.next()?.strip_prefix("dt=")?.parse().ok()?;
                let attempt = file.rsplit('-').next()?.parse().ok()?;
                Some(Candidate { date, attempt, rel })
            })
            .collect();
        out.sort_by(|a, b| b.cmp(a));
        Ok(out)
    }

    /// Takes the newest version newer than the one served that verifies;
    /// returns whether it switched. Broken versions are logged, counted and
    /// never tried again.
    pub async fn refresh(&self) -> Result<bool, ServeError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let served = self.current().key;
        for c in self.candidates().await? {
            if served.is_some_and(|k| (c.date, c.attempt) <= k) {
                break;
            }
            let rejected = self
                .rejected
                .lock()
                .map(|r| r.contains(&c.rel))
                .unwrap_or(false);
            if rejected {
                continue;
            }
            let started = Instant::now();
            let loaded =
                match Published::read(Arc::clone(&self.store), self.prefix.clone(), &c.rel).await {
                    Ok(p) => Index::load(&p).await,
                    Err(e) => Err(IndexError::Corrupt(e.to_string())),
                };
            match loaded {
                Ok(index) => {
                    let seconds = started.elapsed().as_secs_f64();
                    tracing::info!(
                        manifest = %c.rel,
                        organizations = index.len(),
                        ms = (seconds * 1000.0) as u64,
                        "public lookup switched to a new version"
                    );
                    self.metrics.switched(&index, seconds);
                    self.swap(index);
                    return Ok(true);
                }
                Err(e) => {
                    tracing::warn!(manifest = %c.rel, error = %e, "published version not taken: it does not verify");
                    self.metrics.rejected.inc();
                    if let Ok(mut r) = self.rejected.lock() {
                        r.insert(c.rel.clone());
                    }
                }
            }
        }
        Ok(false)
    }
}

type RouteStatus = Vec<(String, String)>;

/// The lookup's metrics, in the Prometheus text format at `/metrics`.
pub struct ServeMetrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Family<RouteStatus, Histogram, fn() -> Histogram>,
    version: Family<RouteStatus, Gauge>,
    organizations: Gauge,
    index_seconds: Gauge<f64, AtomicU64>,
    switches: Counter,
    rejected: Counter,
    limited: Counter,
}

impl ServeMetrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("qinglian_serve");
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register("requests", "Requests by route and status", requests.clone());
        fn latency_histogram() -> Histogram {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        }
        let latency = Family::<RouteStatus, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by route",
            latency.clone(),
        );
        let version = Family::<RouteStatus, Gauge>::default();
        registry.register(
            "version_info",
            "The published version served (1 on its run id)",
            version.clone(),
        );
        let organizations = Gauge::default();
        registry.register(
            "organizations",
            "Organizations in the version served",
            organizations.clone(),
        );
        let index_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "index_build_seconds",
            "Time to verify and index the version served",
            index_seconds.clone(),
        );
        let switches = Counter::default();
        registry.register("version_switches", "Versions taken", switches.clone());
        let rejected = Counter::default();
        registry.register(
            "versions_rejected",
            "Published versions not taken because they do not verify",
            rejected.clone(),
        );
        let limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused by the per-client rate limit",
            limited.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            version,
            organizations,
            index_seconds,
            switches,
            rejected,
            limited,
        }
    }

    fn switched(&self, index: &Index, seconds: f64) {
        self.version.clear();
        if let Some(v) = &index.version {
            self.version
                .get_or_create(&vec![("version".into(), v.clone())])
                .set(1);
        }
        self.organizations.set(index.len() as i64);
        self.index_seconds.set(seconds);
        self.switches.inc();
    }

    fn observe(&self, route: &str, status: StatusCode, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("route".into(), route.into()),
                ("status".into(), status.as_u16().to_string()),
            ])
            .inc();
        self.latency
            .get_or_create(&vec![("route".into(), route.into())])
            .observe(seconds);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

struct App {
    catalog: Arc<Catalog>,
    base_url: String,
    metrics: Arc<ServeMetrics>,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    files: Option<PathBuf>,
}

/// A running lookup.
pub struct Server {
    addr: SocketAddr,
    catalog: Arc<Catalog>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Loads the newest good version, binds `addr` (port 0 picks one) and
    /// serves until [`Server::stop`]; polls for newer versions meanwhile.
    pub async fn start(config: ServeConfig, addr: SocketAddr) -> Result<Self, ServeError> {
        let metrics = Arc::new(ServeMetrics::new());
        let catalog = Arc::new(Catalog::new(
            Arc::clone(&config.store),
            config.prefix.clone(),
            Arc::clone(&metrics),
        ));
        catalog.refresh().await?;
        if catalog.current().version.is_none() {
            tracing::warn!("no published version verifies yet: serving 503 until one does");
        }
        let limiter = NonZeroU32::new(config.rate_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.burst.max(config.rate_per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let app = Arc::new(App {
            catalog: Arc::clone(&catalog),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            metrics,
            limiter,
            files: config.files.clone(),
        });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ServeError::Bind {
                addr,
                message: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| ServeError::Bind {
            addr,
            message: e.to_string(),
        })?;
        let shutdown = CancellationToken::new();
        let router = router(Arc::clone(&app), config.timeout);
        let stop = shutdown.clone();
        let poller = {
            let app = Arc::clone(&app);
            let stop = shutdown.clone();
            let poll = config.poll.max(Duration::from_millis(50));
            async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(poll) => {
                            if let Err(e) = app.catalog.refresh().await {
                                tracing::warn!(error = %e, "cannot look for a newer published version");
                            }
                            if let Some(l) = &app.limiter {
                                l.retain_recent();
                            }
                        }
                    }
                }
            }
        };
        let task = tokio::spawn(async move {
            let poller = tokio::spawn(poller);
            let served = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the public lookup stopped");
            }
            poller.abort();
        });
        Ok(Self {
            addr,
            catalog,
            shutdown,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The versions.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Stops accepting, lets requests in flight finish.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    /// Serves until the token is cancelled.
    pub async fn serve_until(self, token: CancellationToken) {
        token.cancelled().await;
        self.stop().await;
    }
}

/// The configuration of `qinglian serve` from its arguments.
pub fn config_of(args: &ServeArgs) -> Result<ServeConfig, ServeError> {
    let project = crate::project::Project::load(&args.project).map_err(|errors| {
        ServeError::Config(
            errors
                .0
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\nerror: "),
        )
    })?;
    let pipeline = project.pipelines.get(&args.pipeline).ok_or_else(|| {
        ServeError::Config(format!("no pipeline {:?} in pipelines/", args.pipeline))
    })?;
    let (store, prefix, _) =
        crate::run::open_warehouse(pipeline, args.warehouse.as_deref(), &Default::default())
            .map_err(|e| ServeError::Warehouse(e.to_string()))?;
    let base = match &args.base_url {
        Some(b) => b.clone(),
        None => crate::project::expand_env(&pipeline.public.base_url, |n| std::env::var(n).ok())
            .map_err(|e| {
                ServeError::Config(format!(
                    "pipelines/{}.toml: public.base_url: {e}",
                    pipeline.name
                ))
            })?,
    };
    let parsed = url::Url::parse(&base)
        .map_err(|e| ServeError::Config(format!("base URL {base:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
        return Err(ServeError::Config(format!(
            "base URL {base:?}: expected an http(s) address without a query"
        )));
    }
    Ok(ServeConfig {
        poll: Duration::from_secs(args.poll_seconds.max(1)),
        rate_per_second: args.rate_per_second,
        burst: args.burst,
        timeout: Duration::from_secs(args.timeout_seconds.max(1)),
        files: args.files.clone(),
        ..ServeConfig::new(store, prefix, &base)
    })
}

/// Runs `qinglian serve` until SIGINT or SIGTERM.
pub async fn execute(args: ServeArgs) -> Result<(), ServeError> {
    let config = config_of(&args)?;
    let base = config.base_url.clone();
    let server = Server::start(config, args.addr).await?;
    let index = server.catalog().current();
    eprintln!(
        "serving the public lookup at {} ({} organizations, version {}; QR codes point to {base}/o/<USCC>); Ctrl-C stops",
        server.url(),
        index.len(),
        index.version.as_deref().unwrap_or("none yet"),
    );
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        crate::listen::shutdown_signal().await;
        cancel.cancel();
    });
    server.serve_until(token).await;
    Ok(())
}

impl ServeArgs {
    /// The demo's lookup: its warehouse, on `addr`, QR codes pointing to
    /// `addr` unless `QINGLIAN_PUBLIC_URL` names the public address.
    pub fn for_demo(project: &std::path::Path, warehouse: &str, addr: SocketAddr) -> Self {
        let public = std::env::var("QINGLIAN_PUBLIC_URL")
            .ok()
            .filter(|u| !u.is_empty());
        Self {
            addr,
            warehouse: Some(warehouse.to_string()),
            project: project.to_path_buf(),
            pipeline: "nightly".into(),
            base_url: Some(public.unwrap_or_else(|| format!("http://{addr}"))),
            poll_seconds: 30,
            rate_per_second: 20,
            burst: 60,
            timeout_seconds: 10,
            files: None,
        }
    }
}

/// The demo's last line: one organization's lookup address, and how to
/// open it.
pub async fn demo_lookup(args: &ServeArgs, serving: bool) -> Result<String, ServeError> {
    let config = config_of(args)?;
    Ok(match sample_address(&config).await? {
        Some(url) if serving => format!("public lookup (一码通查): {url} (Ctrl-C stops)"),
        Some(url) => format!(
            "public lookup (一码通查): {url} (run `qinglian serve --warehouse {}`, or `qinglian demo --serve`)",
            args.warehouse.as_deref().unwrap_or("warehouse")
        ),
        None => "public lookup: no published version verifies".to_string(),
    })
}

/// The lookup address of one organization of the newest good version in
/// a warehouse (what the demo prints), or `None` when none verifies.
pub async fn sample_address(config: &ServeConfig) -> Result<Option<String>, ServeError> {
    let catalog = Catalog::new(
        Arc::clone(&config.store),
        config.prefix.clone(),
        Arc::new(ServeMetrics::new()),
    );
    catalog.refresh().await?;
    let index = catalog.current();
    Ok(index
        .sample()
        .map(|o| format!("{}/o/{}", config.base_url, o.uscc)))
}

fn router(app: Arc<App>, timeout: Duration) -> Router {
    use tower_http::compression::CompressionLayer;
    use tower_http::limit::RequestBodyLimitLayer;
    use tower_http::timeout::TimeoutLayer;
    Router::new()
        .route("/", get(home))
        .route("/search", get(search))
        .route("/o/{uscc}", get(org))
        .route("/o/{uscc}/card", get(card))
        .route("/o/{uscc}/qr.svg", get(qr_svg))
        .route("/o/{uscc}/qr.png", get(qr_png))
        .route("/api/v1/orgs/{uscc}", get(api_org))
        .route("/static/site.css", get(css))
        .route("/files/{name}", get(file))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(Arc::clone(&app))
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            rate_limit,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn_with_state(app, observe))
}

/// The route a path belongs to, for metrics and logs (never the path
/// itself, which names an organization, nor its query).
fn route_of(path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [""] => "/",
        ["search"] => "/search",
        ["o", _] => "/o/{uscc}",
        ["o", _, "card"] => "/o/{uscc}/card",
        ["o", _, "qr.svg"] => "/o/{uscc}/qr.svg",
        ["o", _, "qr.png"] => "/o/{uscc}/qr.png",
        ["api", "v1", "orgs", _] => "/api/v1/orgs/{uscc}",
        ["static", _] => "/static",
        ["files", _] => "/files",
        ["healthz"] => "/healthz",
        ["metrics"] => "/metrics",
        _ => "other",
    }
}

async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = route_of(req.uri().path());
    let started = Instant::now();
    let response = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status();
    app.metrics.observe(route, status, seconds);
    tracing::debug!(
        route,
        status = status.as_u16(),
        us = (seconds * 1e6) as u64,
        "request"
    );
    response
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn rate_limit(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let exempt = matches!(req.uri().path(), "/healthz" | "/metrics");
    if let (Some(limiter), false) = (&app.limiter, exempt) {
        let ip = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(ip) = ip
            && let Err(not_until) = limiter.check_key(&ip)
        {
            app.metrics.limited.inc();
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let index = app.catalog.current();
            let mut r = html(
                StatusCode::TOO_MANY_REQUESTS,
                pages::error_page(
                    &index,
                    "请求过于频繁",
                    &format!("请 {} 秒后再试。", seconds.max(1)),
                    TextSize::Normal,
                ),
            );
            if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    next.run(req).await
}

fn html(status: StatusCode, page: Result<String, pages::PageError>) -> Response {
    match page {
        Ok(body) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=60"),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a public page could not be rendered");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "服务暂时不可用",
            )
                .into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    size: Option<String>,
    q: Option<String>,
    page: Option<String>,
}

fn size_of(q: &PageQuery) -> TextSize {
    TextSize::from_param(q.size.as_deref())
}

async fn home(State(app): State<Arc<App>>, Query(q): Query<PageQuery>) -> Response {
    let index = app.catalog.current();
    html(
        StatusCode::OK,
        pages::search_page(&index, None, None, 0, size_of(&q)),
    )
}

async fn search(State(app): State<Arc<App>>, Query(q): Query<PageQuery>) -> Response {
    let index = app.catalog.current();
    let size = size_of(&q);
    let keep = if size == TextSize::Large {
        "?size=large"
    } else {
        ""
    };
    let query = q.q.as_deref().map(str::trim).unwrap_or_default();
    if query.is_empty() {
        return Redirect::to(&format!("/{keep}")).into_response();
    }
    if query.chars().count() > MAX_QUERY_CHARS {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error_page(
                &index,
                "查询内容过长",
                &format!("请输入不超过 {MAX_QUERY_CHARS} 个字的名称或代码。"),
                size,
            ),
        );
    }
    let check = keys::classify(query);
    match check.class {
        KeyClass::Valid => {
            return Redirect::to(&format!("/o/{}{keep}", check.normalized)).into_response();
        }
        KeyClass::Repaired
        | KeyClass::BadChecksum
        | KeyClass::BadOrgCodeChecksum
        | KeyClass::OrgCodeOnly
        | KeyClass::RegNoOnly => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::invalid_page(&index, query, &check, size),
            );
        }
        KeyClass::NameOnly | KeyClass::Missing => {}
    }
    let page = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, index::MAX_RESULTS)
        - 1;
    let results = index.search(query, page, pages::PER_PAGE);
    html(
        StatusCode::OK,
        pages::search_page(&index, Some(query), Some(&results), page, size),
    )
}

/// What a USCC in a path leads to.
enum Lookup<'a> {
    Found(&'a Org),
    /// A dirty form of a valid code: redirect to the canonical one.
    Canonical(String),
    Invalid(keys::KeyCheck),
    Unknown(String),
    NothingPublished,
}

fn lookup<'a>(index: &'a Index, raw: &str) -> Lookup<'a> {
    let check = keys::classify(raw);
    if check.class != KeyClass::Valid {
        return Lookup::Invalid(check);
    }
    if check.normalized != raw {
        return Lookup::Canonical(check.normalized);
    }
    if index.version.is_none() {
        return Lookup::NothingPublished;
    }
    match index.get(&check.normalized) {
        Some(o) => Lookup::Found(o),
        None => Lookup::Unknown(check.normalized),
    }
}

/// The answer for a USCC that does not lead to an organization page.
fn page_problem(
    index: &Index,
    raw: &str,
    found: Lookup<'_>,
    suffix: &str,
    size: TextSize,
) -> Response {
    match found {
        Lookup::Found(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Lookup::Canonical(c) => Redirect::permanent(&format!("/o/{c}{suffix}")).into_response(),
        Lookup::Invalid(check) => html(
            StatusCode::BAD_REQUEST,
            pages::invalid_page(index, raw, &check, size),
        ),
        Lookup::Unknown(u) => html(
            StatusCode::NOT_FOUND,
            pages::error_page(
                index,
                "未找到该组织",
                &format!("统一社会信用代码 {u} 有效，但不在本市登记的社会组织中。"),
                size,
            ),
        ),
        Lookup::NothingPublished => html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::error_page(index, "暂无数据", "公开数据尚未发布，请稍后再试。", size),
        ),
    }
}

async fn org(
    State(app): State<Arc<App>>,
    UrlPath(raw): UrlPath<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let index = app.catalog.current();
    let size = size_of(&q);
    match lookup(&index, &raw) {
        Lookup::Found(o) => html(StatusCode::OK, pages::org_page(&index, o, size)),
        other => page_problem(&index, &raw, other, "", size),
    }
}

async fn card(
    State(app): State<Arc<App>>,
    UrlPath(raw): UrlPath<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let index = app.catalog.current();
    let size = size_of(&q);
    match lookup(&index, &raw) {
        Lookup::Found(o) => html(StatusCode::OK, pages::card_page(&index, o, size)),
        other => page_problem(&index, &raw, other, "/card", size),
    }
}

fn qr_response(
    app: &App,
    raw: &str,
    suffix: &str,
    draw: impl Fn(&str) -> Result<Vec<u8>, qr::QrError>,
    content_type: &'static str,
) -> Response {
    let index = app.catalog.current();
    match lookup(&index, raw) {
        Lookup::Found(o) => match draw(&format!("{}/o/{}", app.base_url, o.uscc)) {
            Ok(body) => (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type),
                    // The code holds only the permanent address: it never changes.
                    (header::CACHE_CONTROL, "public, max-age=86400"),
                ],
                body,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "a QR code could not be drawn");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        },
        other => page_problem(&index, raw, other, suffix, TextSize::Normal),
    }
}

async fn qr_svg(State(app): State<Arc<App>>, UrlPath(raw): UrlPath<String>) -> Response {
    qr_response(
        &app,
        &raw,
        "/qr.svg",
        |u| qr::svg(u, 8).map(String::into_bytes),
        "image/svg+xml",
    )
}

async fn qr_png(State(app): State<Arc<App>>, UrlPath(raw): UrlPath<String>) -> Response {
    qr_response(&app, &raw, "/qr.png", |u| qr::png(u, 8), "image/png")
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

async fn api_org(
    State(app): State<Arc<App>>,
    UrlPath(raw): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let index = app.catalog.current();
    let check = keys::classify(&raw);
    if check.class != KeyClass::Valid {
        let (name, message) = pages::key_problem(&check);
        return json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({
                "error": "invalid_uscc",
                "class": check.class.as_str(),
                "check": name,
                "message": message,
                "reason": check.reason.map(|r| r.to_string()),
            }),
        );
    }
    let Some(version) = index.version.clone() else {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({"error": "nothing_published"}),
        );
    };
    let etag = format!("\"{version}\"");
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "public, max-age=60".to_string()),
    ];
    let Some(o) = index.get(&check.normalized) else {
        return (
            cache,
            json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"error": "not_found", "uscc": check.normalized, "version": version}),
            ),
        )
            .into_response();
    };
    if etag_matches(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let body = serde_json::json!({
        "version": version,
        "business_date": index.business_date,
        "url": format!("{}/o/{}", app.base_url, o.uscc),
        "organization": o,
    });
    (cache, json(StatusCode::OK, &body)).into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        pages::SITE_CSS,
    )
        .into_response()
}

async fn file(State(app): State<Arc<App>>, UrlPath(name): UrlPath<String>) -> Response {
    let allowed = !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    let Some(dir) = app.files.as_ref().filter(|_| allowed) else {
        return not_found(State(app)).await;
    };
    match tokio::fs::read(dir.join(&name)).await {
        Ok(bytes) => {
            let kind = if name.ends_with(".html") {
                "text/html; charset=utf-8"
            } else if name.ends_with(".json") {
                "application/json"
            } else {
                "application/octet-stream"
            };
            ([(header::CONTENT_TYPE, kind)], Body::from(bytes)).into_response()
        }
        Err(_) => not_found(State(app)).await,
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let index = app.catalog.current();
    match &index.version {
        Some(v) => (StatusCode::OK, format!("ok {v} {}\n", index.len())).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "no published version\n").into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

async fn not_found(State(app): State<Arc<App>>) -> Response {
    let index = app.catalog.current();
    html(
        StatusCode::NOT_FOUND,
        pages::error_page(&index, "页面不存在", "没有这个页面。", TextSize::Normal),
    )
}
