//! Leader election over a `coordination.k8s.io/v1` Lease, the way Kubernetes' own
//! controllers do it, so that one agent of a DaemonSet collects the events no node
//! reports (see [`super::events`]).
//!
//! Every agent reads the Lease every retry period (2/15 of the lease duration: 2 s of
//! 15 s). The holder renews it (an update carrying the resourceVersion it read, so two
//! writers cannot both win: the loser gets `409 Conflict`). Another agent takes it over
//! only when the record has not changed for a whole lease duration *by its own clock*
//! (not by comparing `renewTime` with its clock, so skew between nodes does not matter),
//! or at once when the holder released it on a clean stop. A holder that cannot renew for
//! 2/3 of the duration stops collecting before anyone may take over.
//!
//! The Lease also carries where the cluster's events stand: on each renewal the leader
//! writes the position the server acknowledged in its term to the annotation
//! [`POSITION_ANNOTATION`]; a new leader resumes from it. So a takeover neither loses
//! events nor repeats more than those acknowledged since the last renewal (one retry
//! period), plus, if the old leader comes back, what it had read but not pushed when it
//! died (its disk buffer is sent then).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::metrics::{ErrorKind, Metrics};
use crate::positions::{ClusterEventsPos, EventsPos};

/// The Lease annotation holding the acknowledged position of the cluster's events, as
/// JSON `{"resource_version":"…","ts":<unix ns>}`.
pub const POSITION_ANNOTATION: &str = "kiroku/cluster-events-position";

/// Errors are retried no less often than this while leading (to renew in time) and
/// backed off up to this while following.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Which Lease, who we are, and how long a silent holder keeps it.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per agent process: `<node>_<random>`.
    pub identity: String,
    pub duration: Duration,
}

impl LeaseConfig {
    /// How often the Lease is read and renewed.
    pub fn retry_period(&self) -> Duration {
        self.duration * 2 / 15
    }

    /// A leader that could not renew for this long stops collecting.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    fn duration_secs(&self) -> i32 {
        self.duration.as_secs().clamp(1, i32::MAX as u64) as i32
    }
}

/// `<node or host>_<16 hex digits>`: readable in `kubectl get lease`, unique per process.
pub fn identity(node: Option<&str>) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let who = node
        .map(str::to_string)
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "kiroku-agent".into());
    format!("{who}_{:016x}", h.finish())
}

/// A term of leadership: its number (the Lease's `leaseTransitions` when we took it) and
/// where the previous leaders left the cluster's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub number: i64,
    pub position: Option<EventsPos>,
}

struct Leading {
    term: i64,
    last_renew: Instant,
    written: Option<EventsPos>,
}

/// One agent's side of the election.
pub struct Elector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    metrics: Arc<Metrics>,
    /// The record as last read (holder, renewal, transitions) and when it last changed,
    /// by our clock.
    observed: Option<(String, Instant)>,
    leading: Option<Leading>,
}

enum Step {
    Leading(Term),
    Following { holder: String },
}

impl Elector {
    pub fn new(client: kube::Client, cfg: LeaseConfig, metrics: Arc<Metrics>) -> Elector {
        Elector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            metrics,
            observed: None,
            leading: None,
        }
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.cfg
    }

    /// Takes part in the election until `stop` is set: publishes `Some(term)` on `terms`
    /// when this agent becomes the leader and `None` when it stops being one, and writes
    /// the position from `acked` into the Lease while leading.
    pub async fn run(
        &mut self,
        terms: &watch::Sender<Option<Term>>,
        acked: &watch::Receiver<Option<ClusterEventsPos>>,
        stop: &mut watch::Receiver<bool>,
    ) {
        let mut backoff = self.cfg.retry_period();
        let mut last_holder = String::new();
        loop {
            if *stop.borrow() {
                return;
            }
            let pos = acked.borrow().clone();
            let wait = match self.step(pos).await {
                Ok(Step::Leading(term)) => {
                    let new = terms.send_if_modified(|t| {
                        if t.as_ref().map(|t| t.number) == Some(term.number) {
                            return false;
                        }
                        *t = Some(term.clone());
                        true
                    });
                    if new {
                        self.metrics.events_leader.set(1);
                        self.metrics.events_leader_terms.inc();
                        tracing::info!(lease = %self.lease_name(), identity = %self.cfg.identity,
                            term = term.number, resume_from = ?term.position.as_ref().map(|p| &p.resource_version),
                            "holding the events Lease: collecting the events no node reports");
                    }
                    backoff = self.cfg.retry_period();
                    self.cfg.retry_period()
                }
                Ok(Step::Following { holder }) => {
                    self.step_down(terms, "another agent holds the events Lease");
                    if holder != last_holder {
                        tracing::info!(lease = %self.lease_name(), holder = %holder,
                            "another agent collects the events no node reports");
                        last_holder = holder;
                    }
                    backoff = self.cfg.retry_period();
                    self.cfg.retry_period()
                }
                Err(e) => {
                    self.metrics.error(ErrorKind::Lease);
                    tracing::warn!(lease = %self.lease_name(), error = %e,
                        retry_in_ms = backoff.as_millis() as u64, "{}", hint(&e));
                    if let Some(l) = &self.leading
                        && l.last_renew.elapsed() >= self.cfg.renew_deadline()
                    {
                        self.step_down(terms, "could not renew the events Lease in time");
                    }
                    let wait = if self.leading.is_some() {
                        self.cfg.retry_period()
                    } else {
                        backoff
                    };
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }

    fn step_down(&mut self, terms: &watch::Sender<Option<Term>>, why: &str) {
        self.leading = None;
        let was = terms.send_if_modified(|t| t.take().is_some());
        if was {
            self.metrics.events_leader.set(0);
            tracing::warn!(lease = %self.lease_name(), reason = why,
                "no longer collecting the events no node reports");
        }
    }

    fn lease_name(&self) -> String {
        format!("{}/{}", self.cfg.namespace, self.cfg.name)
    }

    /// One read of the Lease and, when due, one write: create, renew or take over.
    async fn step(&mut self, acked: Option<ClusterEventsPos>) -> Result<Step, kube::Error> {
        let now = Instant::now();
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.taken_spec(0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(self.lead(0, None, now)),
                Err(e) if is_conflict(&e) => Ok(Step::Following {
                    holder: String::new(),
                }),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = format!(
            "{holder}|{:?}|{:?}",
            spec.renew_time.as_ref().map(|t| t.0),
            spec.lease_transitions
        );
        if self.observed.as_ref().is_none_or(|(r, _)| *r != record) {
            self.observed = Some((record, now));
        }
        let since = self.observed.as_ref().map(|(_, t)| *t).unwrap_or(now);

        if holder == self.cfg.identity
            && let Some(leading) = &self.leading
        {
            let term = leading.term;
            let write = acked
                .filter(|p| p.term == term)
                .map(|p| EventsPos {
                    resource_version: p.resource_version,
                    ts: p.ts,
                })
                .filter(|p| leading.written.as_ref() != Some(p));
            let mut spec = spec;
            spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
            spec.lease_duration_seconds = Some(self.cfg.duration_secs());
            lease.spec = Some(spec);
            if let Some(p) = &write {
                set_position(&mut lease, p);
            }
            return match self
                .api
                .replace(&self.cfg.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => {
                    if let Some(l) = &mut self.leading {
                        l.last_renew = now;
                        if write.is_some() {
                            l.written = write;
                        }
                    }
                    Ok(Step::Leading(Term {
                        number: term,
                        position: None,
                    }))
                }
                // Someone took it over: they saw no renewal for a whole lease duration.
                Err(e) if is_conflict(&e) => {
                    self.leading = None;
                    Ok(Step::Following { holder })
                }
                Err(e) => Err(e),
            };
        }

        let duration = spec
            .lease_duration_seconds
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64))
            .unwrap_or(self.cfg.duration);
        // Ours from a term we already gave up (renewals failed): take it anew.
        let free = holder.is_empty() || holder == self.cfg.identity || since.elapsed() >= duration;
        if !free {
            self.leading = None;
            return Ok(Step::Following { holder });
        }
        let term = i64::from(spec.lease_transitions.unwrap_or(0)) + 1;
        let position = position(&lease);
        lease.spec = Some(self.taken_spec(term as i32));
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(self.lead(term, position, now)),
            Err(e) if is_conflict(&e) => Ok(Step::Following { holder }),
            Err(e) => Err(e),
        }
    }

    fn lead(&mut self, term: i64, position: Option<EventsPos>, now: Instant) -> Step {
        self.leading = Some(Leading {
            term,
            last_renew: now,
            written: position.clone(),
        });
        Step::Leading(Term {
            number: term,
            position,
        })
    }

    fn taken_spec(&self, transitions: i32) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(self.cfg.duration_secs()),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// On a clean stop, after the last push: records `acked` (when it is this term's) and
    /// gives the Lease up, so another agent takes over at its next retry instead of after
    /// a whole lease duration.
    pub async fn release(&mut self, acked: Option<ClusterEventsPos>) {
        let Some(leading) = self.leading.take() else {
            return;
        };
        self.metrics.events_leader.set(0);
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
                return Ok(());
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
                return Ok(());
            }
            if let Some(p) = acked.filter(|p| p.term == leading.term) {
                set_position(
                    &mut lease,
                    &EventsPos {
                        resource_version: p.resource_version,
                        ts: p.ts,
                    },
                );
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
            lease.spec = Some(spec);
            self.api
                .replace(&self.cfg.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(lease = %self.lease_name(), "released the events Lease"),
            Err(e) => {
                self.metrics.error(ErrorKind::Lease);
                tracing::warn!(lease = %self.lease_name(), error = %e,
                    "could not release the events Lease; another agent takes over when it expires");
            }
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn hint(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(s) if s.code == 403 => {
            "cannot use the events Lease: grant the agent get, create and update on leases \
             (coordination.k8s.io) in its namespace (the Helm chart does), or pass --events node \
             and collect the cluster's events otherwise; retrying"
        }
        _ => "cannot read or write the events Lease; retrying",
    }
}

fn position(lease: &Lease) -> Option<EventsPos> {
    let raw = lease
        .metadata
        .annotations
        .as_ref()?
        .get(POSITION_ANNOTATION)?;
    match serde_json::from_str(raw) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(annotation = POSITION_ANNOTATION, value = %raw, error = %e,
                "the events Lease holds no readable position; listing the cluster's events anew");
            None
        }
    }
}

fn set_position(lease: &mut Lease, p: &EventsPos) {
    if let Ok(v) = serde_json::to_string(p) {
        lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(POSITION_ANNOTATION.to_string(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::FakeKube;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn elector(kube: &FakeKube, who: &str, duration: Duration) -> Elector {
        let mut config = kube::Config::new(kube.url().parse().unwrap());
        config.default_namespace = "logging".into();
        let client = kube::Client::try_from(config).unwrap();
        let cfg = LeaseConfig {
            namespace: "logging".into(),
            name: "kiroku-agent".into(),
            identity: who.into(),
            duration,
        };
        Elector::new(client, cfg, Metrics::new())
    }

    fn acked(rv: &str, term: i64) -> Option<ClusterEventsPos> {
        Some(ClusterEventsPos {
            resource_version: rv.into(),
            ts: 7,
            term,
        })
    }

    fn leading(s: Step) -> Term {
        match s {
            Step::Leading(t) => t,
            Step::Following { holder } => panic!("following {holder}"),
        }
    }

    fn following(s: Step) -> String {
        match s {
            Step::Leading(t) => panic!("leading {t:?}"),
            Step::Following { holder } => holder,
        }
    }

    fn annotation(kube: &FakeKube) -> Option<String> {
        kube.lease("logging", "kiroku-agent")?["metadata"]["annotations"][POSITION_ANNOTATION]
            .as_str()
            .map(str::to_string)
    }

    #[test]
    fn one_leader_and_a_takeover_only_after_a_silent_lease_duration() {
        let kube = FakeKube::start().unwrap();
        rt().block_on(async {
            let (mut a, mut b) = (
                elector(&kube, "a", Duration::from_secs(2)),
                elector(&kube, "b", Duration::from_secs(2)),
            );
            let t = leading(a.step(None).await.unwrap());
            assert_eq!(
                t,
                Term {
                    number: 0,
                    position: None
                },
                "created"
            );
            assert_eq!(following(b.step(None).await.unwrap()), "a");
            // A renewal carries this term's acknowledged position into the Lease.
            leading(a.step(acked("42", 0)).await.unwrap());
            assert_eq!(
                annotation(&kube).as_deref(),
                Some(r#"{"resource_version":"42","ts":7}"#)
            );
            // Not a position of an older term (in flight when leadership changed hands).
            leading(a.step(acked("41", -1)).await.unwrap());
            assert!(annotation(&kube).unwrap().contains("\"42\""));
            let renewed = kube.lease("logging", "kiroku-agent").unwrap();
            assert_eq!(renewed["spec"]["leaseDurationSeconds"], 2);
            // B saw the record change just now: A is alive.
            assert_eq!(following(b.step(None).await.unwrap()), "a");
            tokio::time::sleep(Duration::from_millis(1000)).await;
            assert_eq!(following(b.step(None).await.unwrap()), "a");
            // A goes silent for a whole lease duration by B's clock: B takes over and
            // resumes from where A's acknowledged position left the events.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let t = leading(b.step(None).await.unwrap());
            assert_eq!(
                t,
                Term {
                    number: 1,
                    position: Some(EventsPos {
                        resource_version: "42".into(),
                        ts: 7
                    })
                }
            );
            assert_eq!(
                kube.lease_holder("logging", "kiroku-agent").as_deref(),
                Some("b")
            );
            // A comes back: its renewal finds B's record and it follows.
            assert_eq!(following(a.step(acked("43", 0)).await.unwrap()), "b");
            assert!(a.leading.is_none());
            assert!(annotation(&kube).unwrap().contains("\"42\""));
        });
    }

    #[test]
    fn lost_races_are_following_not_errors() {
        let kube = FakeKube::start().unwrap();
        rt().block_on(async {
            let mut a = elector(&kube, "a", Duration::from_secs(1));
            leading(a.step(None).await.unwrap());
            // Another writer got there first: the renewal is refused with 409.
            kube.conflict_lease_updates(1);
            following(a.step(None).await.unwrap());
            assert!(a.leading.is_none());
            // An expired holder's Lease taken over by someone else between read and write.
            kube.put_lease(
                "logging",
                "kiroku-agent",
                serde_json::json!({"holderIdentity": "gone", "leaseDurationSeconds": 1, "leaseTransitions": 4}),
                serde_json::json!({}),
            );
            following(a.step(None).await.unwrap());
            tokio::time::sleep(Duration::from_millis(1100)).await;
            kube.conflict_lease_updates(1);
            assert_eq!(following(a.step(None).await.unwrap()), "gone");
            let t = leading(a.step(None).await.unwrap());
            assert_eq!(t.number, 5, "leaseTransitions counts terms");
        });
    }

    #[test]
    fn a_released_lease_is_taken_at_once_with_the_last_position() {
        let kube = FakeKube::start().unwrap();
        rt().block_on(async {
            let (mut a, mut b) = (
                elector(&kube, "a", Duration::from_secs(15)),
                elector(&kube, "b", Duration::from_secs(15)),
            );
            leading(a.step(None).await.unwrap());
            following(b.step(None).await.unwrap());
            a.release(acked("99", 0)).await;
            assert_eq!(kube.lease_holder("logging", "kiroku-agent"), None);
            let t = leading(b.step(None).await.unwrap());
            assert_eq!(
                t.position.map(|p| p.resource_version).as_deref(),
                Some("99")
            );
            // Releasing when not leading touches nothing.
            a.release(acked("100", 0)).await;
            assert_eq!(
                kube.lease_holder("logging", "kiroku-agent").as_deref(),
                Some("b")
            );
        });
    }

    #[test]
    fn forbidden_leases_are_reported_with_what_to_grant() {
        let kube = FakeKube::start().unwrap();
        kube.forbid_leases(true);
        rt().block_on(async {
            let mut a = elector(&kube, "a", Duration::from_secs(1));
            let Err(e) = a.step(None).await else {
                panic!("a 403 must be an error")
            };
            assert!(hint(&e).contains("grant the agent get, create and update on leases"));
        });
    }

    #[test]
    fn a_leader_that_cannot_renew_steps_down_before_others_may_take_over() {
        let kube = FakeKube::start().unwrap();
        let (terms_tx, mut terms) = watch::channel(None);
        let (_acked_tx, acked) = watch::channel(None);
        let (stop_tx, mut stop) = watch::channel(false);
        rt().block_on(async {
            let mut a = elector(&kube, "a", Duration::from_secs(3));
            let metrics = a.metrics.clone();
            let task = tokio::spawn(async move {
                a.run(&terms_tx, &acked, &mut stop).await;
            });
            terms.wait_for(|t| t.is_some()).await.unwrap();
            assert_eq!(metrics.events_leader.get(), 1);
            let since = Instant::now();
            kube.fail_requests(u32::MAX);
            terms.wait_for(|t| t.is_none()).await.unwrap();
            let took = since.elapsed();
            assert!(
                took >= Duration::from_millis(1500) && took < Duration::from_secs(3),
                "stepped down after {took:?}: within the renew deadline, before the lease expires"
            );
            assert_eq!(metrics.events_leader.get(), 0);
            assert!(metrics.errors(ErrorKind::Lease) >= 2);
            stop_tx.send(true).unwrap();
            task.await.unwrap();
        });
    }
}
