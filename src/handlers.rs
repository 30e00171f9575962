//! A simulator of the oversight platform's handlers, for tests and the
//! demo: they sign for, verify and dispose of the warnings the platform
//! simulator received, on a schedule drawn from a seed (most on time, some
//! signed late, some rectified late, some unfounded, a reopened warning
//! transferred), and report each change of state back both ways a platform
//! may: served on a paged API (`GET /api/dispositions?page=&size=&since=`,
//! bearer token) that the `dispositions` source pulls, or pushed to our
//! intake, signed like our push. Faults on demand: a duplicate, sequences
//! out of order, a bad signature, an unknown warning id.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::platform::PlatformSimulator;
use crate::warnings::Disposition;

/// How a disposition reaches us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Way {
    /// Served on the paged API.
    Pull,
    /// Pushed to the intake.
    Push,
}

/// A fault the handlers commit on purpose, on the next night's dispositions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "fault")]
pub enum HandlerFault {
    /// Every disposition is sent (or served) twice.
    Duplicate,
    /// The night's dispositions are held back and sent the next night,
    /// after that night's own: later sequences arrive before earlier ones.
    OutOfOrder,
    /// Pushes are signed with the wrong secret (refused; then sent again
    /// rightly).
    BadSignature,
    /// One extra disposition names a warning that does not exist.
    UnknownId,
}

/// One planned change of state.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    day: NaiveDate,
    state: &'static str,
    rectify_by: Option<NaiveDate>,
    data_error: bool,
}

/// A warning the handlers took over.
#[derive(Debug, Clone)]
struct Case {
    warning_id: String,
    uscc: String,
    unit: String,
    next_sequence: u32,
    steps: Vec<Step>,
    way: Way,
}

#[derive(Default)]
struct Shared {
    /// (warning id, round) already taken over.
    seen: BTreeMap<(String, u64), ()>,
    cases: Vec<Case>,
    /// Served on the API: (available since, record).
    served: Vec<(DateTime<Utc>, Value)>,
    faults: Vec<HandlerFault>,
    token: Option<String>,
    /// Dispositions made, by way.
    made: BTreeMap<String, u64>,
    /// Held back by [`HandlerFault::OutOfOrder`] until the next night.
    delayed: Vec<(Way, Disposition)>,
}

/// The handlers, with their API on 127.0.0.1.
pub struct HandlerSimulator {
    /// Where the API listens.
    pub addr: SocketAddr,
    seed: u64,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl Drop for HandlerSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The API path.
pub const API_PATH: &str = "/api/dispositions";

/// What one night of the handlers produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Night {
    /// Dispositions served on the API tonight.
    pub served: Vec<Disposition>,
    /// Dispositions to push to the intake tonight, in sending order (one
    /// request each).
    pub pushes: Vec<Disposition>,
    /// Faults committed.
    pub faults: Vec<HandlerFault>,
}

fn at_ten(day: NaiveDate) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.and_hms_opt(10, 0, 0).unwrap_or_default())
        .single()
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
}

impl HandlerSimulator {
    /// Starts the API on 127.0.0.1:`port`; `token` is the bearer token it
    /// asks for (none: open).
    pub async fn start(port: u16, seed: u64, token: Option<String>) -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(Shared {
            token,
            ..Shared::default()
        }));
        let app = Router::new()
            .route(API_PATH, get(api))
            .with_state(Arc::clone(&shared));
        let (addr, task) = crate::listen::serve_at(app, ("127.0.0.1", port)).await?;
        Ok(Self {
            addr,
            seed,
            shared,
            task,
        })
    }

    /// The API URL for the `dispositions` source.
    pub fn url(&self) -> String {
        format!("http://{}{API_PATH}", self.addr)
    }

    /// Faults for the next night.
    pub fn inject(&self, faults: impl IntoIterator<Item = HandlerFault>) {
        if let Ok(mut s) = self.shared.lock() {
            s.faults.extend(faults);
        }
    }

    /// Dispositions made so far, by way (`pull`, `push`).
    pub fn made(&self) -> BTreeMap<String, u64> {
        self.shared
            .lock()
            .map(|s| s.made.clone())
            .unwrap_or_default()
    }

    /// The schedule of one warning, drawn from the seed and its id.
    fn plan(&self, id: &str, round: u64, from: NaiveDate) -> (Vec<Step>, Way) {
        let mut h = Sha256::new();
        h.update(self.seed.to_le_bytes());
        h.update(id.as_bytes());
        h.update(round.to_le_bytes());
        let digest = h.finalize();
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&digest);
        let mut rng = rand_chacha::ChaCha8Rng::from_seed(seed);
        let d = |n: i64| from + chrono::TimeDelta::days(n);
        let way = if rng.random_bool(0.5) {
            Way::Pull
        } else {
            Way::Push
        };
        let step = |day, state| Step {
            day,
            state,
            rectify_by: None,
            data_error: false,
        };
        if round > 1 {
            // A reopened warning goes to discipline inspection.
            return (vec![step(d(1), "signed"), step(d(2), "transferred")], way);
        }
        let roll: f64 = rng.random();
        let steps = if roll < 0.45 {
            // On time.
            vec![
                step(d(1), "signed"),
                step(d(2), "verifying"),
                Step {
                    rectify_by: Some(d(10)),
                    ..step(d(3), "rectifying")
                },
                step(d(7), "feedback"),
                step(d(8), "closed"),
            ]
        } else if roll < 0.65 {
            // Signed late.
            vec![
                step(d(8), "signed"),
                step(d(9), "verifying"),
                Step {
                    rectify_by: Some(d(20)),
                    ..step(d(10), "rectifying")
                },
            ]
        } else if roll < 0.85 {
            // Rectified late.
            vec![
                step(d(1), "signed"),
                step(d(2), "verifying"),
                Step {
                    rectify_by: Some(d(4)),
                    ..step(d(3), "rectifying")
                },
                step(d(9), "feedback"),
                step(d(10), "closed"),
            ]
        } else {
            let data_error = rng.random_bool(0.5);
            vec![
                step(d(1), "signed"),
                step(d(2), "verifying"),
                Step {
                    data_error,
                    ..step(d(3), "unfounded")
                },
            ]
        };
        (steps, way)
    }

    /// Plays the night of `day`: takes over the warnings the platform has
    /// received since, and makes every disposition dated `day`. Those to
    /// be pulled are served from now on; those to be pushed are returned
    /// for [`HandlerSimulator::push`].
    pub fn play(&self, platform: &PlatformSimulator, day: NaiveDate) -> Night {
        let received: Vec<Value> = platform
            .warning_batches()
            .into_iter()
            .flat_map(|b| {
                b.body
                    .get("records")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let Ok(mut s) = self.shared.lock() else {
            return Night::default();
        };
        for r in received {
            let (Some(id), Some(round)) = (
                r.get("warning_id").and_then(Value::as_str),
                r.get("round").and_then(Value::as_u64),
            ) else {
                continue;
            };
            if s.seen.insert((id.to_string(), round), ()).is_some() {
                continue;
            }
            // Handlers start the day after the platform received it.
            let (steps, way) = self.plan(id, round, day - chrono::TimeDelta::days(1));
            let next = r.get("next_sequence").and_then(Value::as_u64).unwrap_or(1) as u32;
            s.cases.push(Case {
                warning_id: id.to_string(),
                uscc: r
                    .get("uscc")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                unit: r
                    .get("responsible_unit")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                next_sequence: next,
                steps: steps.into_iter().filter(|st| st.day >= day).collect(),
                way,
            });
        }
        let faults = std::mem::take(&mut s.faults);
        let mut night = Night {
            faults: faults.clone(),
            ..Night::default()
        };
        let mut made = Vec::new();
        for case in &mut s.cases {
            let mut tonight = Vec::new();
            // Every step due, those of days that passed without a night included.
            while case.steps.first().is_some_and(|st| st.day <= day) {
                let st = case.steps.remove(0);
                tonight.push(Disposition {
                    warning_id: case.warning_id.clone(),
                    sequence: case.next_sequence,
                    uscc: case.uscc.clone(),
                    state: st.state.to_string(),
                    time: at_ten(st.day),
                    handling_unit: case.unit.clone(),
                    handler: Some("经办人".into()),
                    result_code: Some(format!("R-{}", st.state)),
                    result_text: None,
                    rectify_by: st.rectify_by,
                    completed_on: (st.state == "feedback").then_some(st.day),
                    data_error: st.data_error,
                });
                case.next_sequence += 1;
            }
            made.extend(tonight.into_iter().map(|d| (case.way, d)));
        }
        let delayed = std::mem::take(&mut s.delayed);
        if faults.contains(&HandlerFault::OutOfOrder) {
            s.delayed = made;
            made = Vec::new();
        }
        made.extend(delayed);
        if faults.contains(&HandlerFault::UnknownId)
            && let Some((way, d)) = made.first().cloned()
        {
            made.push((
                way,
                Disposition {
                    warning_id: "YJ-0000000000000000".into(),
                    sequence: 1,
                    ..d
                },
            ));
        }
        let copies = if faults.contains(&HandlerFault::Duplicate) {
            2
        } else {
            1
        };
        let now = Utc::now();
        for (way, d) in made {
            *s.made
                .entry(
                    match way {
                        Way::Pull => "pull",
                        Way::Push => "push",
                    }
                    .to_string(),
                )
                .or_default() += 1;
            for _ in 0..copies {
                match way {
                    Way::Pull => {
                        s.served.push((now, json!(d)));
                        night.served.push(d.clone());
                    }
                    Way::Push => night.pushes.push(d.clone()),
                }
            }
        }
        night
    }

    /// Pushes a night's dispositions to the intake at `url`, one request
    /// each, signed with `secret` (with [`HandlerFault::BadSignature`]
    /// first with a wrong one). Returns each answer's status and body.
    pub async fn push(
        &self,
        night: &Night,
        url: &str,
        secret: &[u8],
    ) -> Result<Vec<(u16, Value)>, String> {
        let client = reqwest::Client::new();
        let path = url::Url::parse(url)
            .map_err(|e| e.to_string())?
            .path()
            .to_string();
        let mut answers = Vec::new();
        for (i, d) in night.pushes.iter().enumerate() {
            let body = serde_json::to_string(&json!({"format": 1, "records": [d]}))
                .map_err(|e| e.to_string())?;
            let key = format!("disp-{}-{}-{i}", d.warning_id, d.sequence);
            let mut secrets: Vec<&[u8]> = Vec::new();
            if night.faults.contains(&HandlerFault::BadSignature) {
                secrets.push(b"not-the-shared-secret");
            }
            secrets.push(secret);
            for s in secrets {
                let ts = Utc::now().timestamp();
                let signature = crate::deliver::sign(
                    s,
                    &crate::deliver::SignedRequest {
                        timestamp: ts,
                        method: "POST",
                        path: &path,
                        idempotency_key: &key,
                        body: body.as_bytes(),
                    },
                );
                let response = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(crate::deliver::IDEMPOTENCY_HEADER, &key)
                    .header(crate::deliver::TIMESTAMP_HEADER, ts.to_string())
                    .header(crate::deliver::SIGNATURE_HEADER, signature)
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| format!("pushing to the intake: {e}"))?;
                let status = response.status().as_u16();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                answers.push((status, answer));
            }
        }
        Ok(answers)
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    page: Option<usize>,
    size: Option<usize>,
    since: Option<String>,
}

async fn api(
    State(shared): State<Arc<Mutex<Shared>>>,
    Query(q): Query<Page>,
    headers: HeaderMap,
) -> Response {
    let Ok(s) = shared.lock() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "poisoned").into_response();
    };
    if let Some(token) = &s.token {
        let sent = headers
            .get(reqwest::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if sent != Some(format!("Bearer {token}").as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "bad token"})),
            )
                .into_response();
        }
    }
    let since = q
        .since
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let (page, size) = (
        q.page.unwrap_or(1).max(1),
        q.size.unwrap_or(100).clamp(1, 1000),
    );
    let records: Vec<&Value> = s
        .served
        .iter()
        .filter(|(at, _)| since.is_none_or(|since| *at >= since))
        .map(|(_, r)| r)
        .collect();
    let chunk: Vec<&Value> = records
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .copied()
        .collect();
    axum::Json(json!({"records": chunk, "page": page})).into_response()
}
