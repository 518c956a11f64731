//! Probing datasources in priority order within one shared readiness budget, as the
//! original EGS does: a source that is present but not ready is asked again with growing
//! back-off (its hint, doubled each time, within `[min, max]`); a lower-priority source that
//! is ready meanwhile wins; a source that is absent or broken is dropped. Only the waits
//! count against the budget. No datasource at all is a clean outcome, not an error.

use std::time::Duration;

use crate::env::Environment;
use crate::{DataSource, DataSourceResult, Probe};

/// Waiting between probes; the real one sleeps, tests advance a counter.
pub trait Clock {
    /// Waits for `d`.
    fn sleep(&mut self, d: Duration);
}

/// Sleeps for real.
#[derive(Debug, Default)]
pub struct RealClock;

impl Clock for RealClock {
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// The readiness budget and back-off bounds.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Total waiting allowed.
    pub total: Duration,
    /// Shortest back-off.
    pub min_backoff: Duration,
    /// Longest back-off.
    pub max_backoff: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            total: Duration::from_secs(15 * 60),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// What the locator found.
#[derive(Debug, Default)]
pub struct Located {
    /// The winning datasource's data, if any.
    pub result: Option<DataSourceResult>,
    /// Sources that were present but broken, with why.
    pub failures: Vec<String>,
    /// Sources still not ready when the budget ran out, with why.
    pub timed_out: Vec<String>,
    /// Time spent waiting.
    pub waited: Duration,
}

struct Pending<'a> {
    source: &'a mut dyn DataSource,
    next: Duration,
    backoff: Option<Duration>,
    reason: String,
}

/// Probes `sources` (already in priority order) until one is ready or none is left.
pub fn locate(
    sources: &mut [&mut dyn DataSource],
    env: &dyn Environment,
    budget: &Budget,
    clock: &mut dyn Clock,
) -> Located {
    let max_backoff = budget
        .max_backoff
        .max(budget.min_backoff)
        .max(Duration::from_millis(1));
    let mut pending: Vec<Pending> = sources
        .iter_mut()
        .map(|s| Pending {
            source: &mut **s,
            next: Duration::ZERO,
            backoff: None,
            reason: String::new(),
        })
        .collect();
    let mut located = Located::default();
    let mut elapsed = Duration::ZERO;
    while !pending.is_empty() {
        let mut i = 0;
        while i < pending.len() {
            if pending[i].next > elapsed {
                i += 1;
                continue;
            }
            let name = pending[i].source.name();
            match pending[i].source.probe(env) {
                Probe::Ready(result) => {
                    located.result = Some(*result);
                    located.waited = elapsed;
                    return located;
                }
                Probe::NotApplicable => {
                    pending.remove(i);
                }
                Probe::Failed(reason) => {
                    located.failures.push(reason);
                    pending.remove(i);
                }
                Probe::Wait { reason, hint } => {
                    let p = &mut pending[i];
                    let backoff = match p.backoff {
                        None => hint.max(budget.min_backoff),
                        Some(previous) => (previous * 2).max(hint),
                    }
                    .clamp(budget.min_backoff, max_backoff);
                    p.backoff = Some(backoff);
                    p.next = elapsed + backoff;
                    p.reason = format!("{name}: {reason}");
                    if p.next >= budget.total {
                        located.timed_out.push(p.reason.clone());
                        pending.remove(i);
                    } else {
                        i += 1;
                    }
                }
            }
        }
        let Some(soonest) = pending.iter().map(|p| p.next).min() else {
            break;
        };
        let wait = soonest
            .saturating_sub(elapsed)
            .max(budget.min_backoff.min(Duration::from_millis(1)));
        clock.sleep(wait);
        elapsed += wait;
    }
    located.waited = elapsed;
    located
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SystemEnvironment;

    struct Scripted {
        name: &'static str,
        answers: Vec<Probe>,
        probes: usize,
    }

    impl DataSource for Scripted {
        fn name(&self) -> &'static str {
            self.name
        }
        fn probe(&mut self, _env: &dyn Environment) -> Probe {
            self.probes += 1;
            if self.answers.len() > 1 {
                self.answers.remove(0)
            } else {
                match &self.answers[0] {
                    Probe::Wait { reason, hint } => Probe::Wait {
                        reason: reason.clone(),
                        hint: *hint,
                    },
                    Probe::NotApplicable => Probe::NotApplicable,
                    _ => self.answers.remove(0),
                }
            }
        }
    }

    #[derive(Default)]
    struct FakeClock(Vec<Duration>);
    impl Clock for FakeClock {
        fn sleep(&mut self, d: Duration) {
            self.0.push(d);
        }
    }

    fn ready(id: &str) -> Probe {
        Probe::Ready(Box::new(DataSourceResult {
            instance_id: id.into(),
            ..DataSourceResult::default()
        }))
    }

    fn wait(secs: u64) -> Probe {
        Probe::Wait {
            reason: "not yet".into(),
            hint: Duration::from_secs(secs),
        }
    }

    fn env() -> SystemEnvironment {
        SystemEnvironment {
            root: "/nonexistent".into(),
            devices: Some(vec![]),
        }
    }

    #[test]
    fn backoff_doubles_from_the_hint_and_a_lower_priority_source_wins_meanwhile() {
        let mut high = Scripted {
            name: "high",
            answers: vec![wait(5)],
            probes: 0,
        };
        let mut low = Scripted {
            name: "low",
            answers: vec![Probe::NotApplicable],
            probes: 0,
        };
        let mut clock = FakeClock::default();
        let budget = Budget {
            total: Duration::from_secs(100),
            ..Budget::default()
        };
        let located = locate(&mut [&mut high, &mut low], &env(), &budget, &mut clock);
        assert!(located.result.is_none());
        let secs: Vec<u64> = clock.0.iter().map(Duration::as_secs).collect();
        assert_eq!(
            secs,
            [5, 10, 20, 40],
            "5, 10, 20, 40 and then 60 would pass the 100 s budget"
        );
        assert_eq!(located.timed_out, ["high: not yet"]);

        let mut high = Scripted {
            name: "high",
            answers: vec![wait(1)],
            probes: 0,
        };
        let mut low = Scripted {
            name: "low",
            answers: vec![ready("iid-low")],
            probes: 0,
        };
        let located = locate(
            &mut [&mut high, &mut low],
            &env(),
            &Budget::default(),
            &mut FakeClock::default(),
        );
        assert_eq!(located.result.unwrap().instance_id, "iid-low");
        assert_eq!(high.probes, 1);
    }

    #[test]
    fn failures_are_reported_and_the_next_source_is_tried() {
        let mut broken = Scripted {
            name: "broken",
            answers: vec![Probe::Failed("cidata has no meta-data".into())],
            probes: 0,
        };
        let mut good = Scripted {
            name: "good",
            answers: vec![wait(1), ready("iid-1")],
            probes: 0,
        };
        let mut clock = FakeClock::default();
        let located = locate(
            &mut [&mut broken, &mut good],
            &env(),
            &Budget::default(),
            &mut clock,
        );
        assert_eq!(located.result.unwrap().instance_id, "iid-1");
        assert_eq!(located.failures, ["cidata has no meta-data"]);
        assert_eq!(located.waited, Duration::from_secs(1));
        let none = locate(&mut [], &env(), &Budget::default(), &mut clock);
        assert!(none.result.is_none() && none.failures.is_empty());
    }
}
