//! Who may be between connect and login. Every host connection arrives from the same peer
//! (vsock CID 2, the VMM's socket, 127.0.0.1 in tests), so neither a per-peer cap nor
//! OpenSSH's random early drop (`MaxStartups`) can tell a flood from the operator. Instead:
//! at most `max` connections wait for login at once, and when all places are taken a
//! newcomer takes the place of the *oldest connection that has not finished key exchange*.
//! A flood of idle or slow connections therefore only ever evicts itself, while the
//! operator's client — which finishes key exchange in a fraction of a second and is then
//! no longer evictable — gets through. Connections also have a short deadline for key
//! exchange (enforced by the server) and the login grace time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The places for connections that have not logged in.
#[derive(Debug)]
pub struct Admission {
    max: usize,
    waiting: Mutex<VecDeque<Arc<Place>>>,
}

/// One admitted connection's place until it logs in or ends.
#[derive(Debug, Default)]
struct Place {
    kex_done: AtomicBool,
    evicted: Notify,
}

/// A connection's hold on its place; dropping it (login, or the end of the connection)
/// frees the place.
#[derive(Debug)]
pub struct Ticket {
    admission: Arc<Admission>,
    place: Arc<Place>,
}

/// What [`Admission::admit`] decided.
#[derive(Debug)]
pub enum Admitted {
    /// A free place.
    Free(Ticket),
    /// The place of the oldest connection still in key exchange, which is told to end.
    Evicting(Ticket),
    /// Every waiting connection has finished key exchange: the newcomer is refused.
    Full,
}

impl Admission {
    /// Places for `max` connections.
    pub fn new(max: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max,
            waiting: Mutex::new(VecDeque::new()),
        })
    }

    /// Admits a newcomer, evicting the oldest connection still in key exchange when full.
    pub fn admit(self: &Arc<Self>) -> Admitted {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let mut evicted = false;
        if waiting.len() >= self.max {
            let Some(oldest) = waiting
                .iter()
                .position(|p| !p.kex_done.load(Ordering::SeqCst))
            else {
                return Admitted::Full;
            };
            if let Some(place) = waiting.remove(oldest) {
                place.evicted.notify_one();
            }
            evicted = true;
        }
        let place = Arc::new(Place::default());
        waiting.push_back(place.clone());
        let ticket = Ticket {
            admission: self.clone(),
            place,
        };
        if evicted {
            Admitted::Evicting(ticket)
        } else {
            Admitted::Free(ticket)
        }
    }

    /// Connections waiting for login now.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Ticket {
    /// Key exchange is done (the client asked to authenticate): no longer evictable.
    pub fn kex_done(&self) {
        self.place.kex_done.store(true, Ordering::SeqCst);
    }

    /// Whether key exchange is done.
    pub fn is_kex_done(&self) -> bool {
        self.place.kex_done.load(Ordering::SeqCst)
    }

    /// Resolves when a newcomer took this place.
    pub async fn evicted(&self) {
        self.place.evicted.notified().await
    }

    /// A handle that watches this place after the ticket itself has moved on.
    pub fn watch(&self) -> Watch {
        Watch(self.place.clone())
    }
}

/// Watches a connection's place: whether it was evicted, whether key exchange is done.
#[derive(Debug, Clone)]
pub struct Watch(Arc<Place>);

impl Watch {
    /// Whether key exchange is done.
    pub fn is_kex_done(&self) -> bool {
        self.0.kex_done.load(Ordering::SeqCst)
    }

    /// Resolves when a newcomer took the place.
    pub async fn evicted(&self) {
        self.0.evicted.notified().await
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut waiting = self
            .admission
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        waiting.retain(|p| !Arc::ptr_eq(p, &self.place));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(a: Admitted) -> Ticket {
        match a {
            Admitted::Free(t) | Admitted::Evicting(t) => t,
            Admitted::Full => panic!("refused"),
        }
    }

    #[tokio::test]
    async fn newcomers_evict_the_oldest_connection_still_in_key_exchange() {
        let admission = Admission::new(3);
        let first = ticket(admission.admit());
        let second = ticket(admission.admit());
        let _third = ticket(admission.admit());
        second.kex_done();
        // Full: the oldest still in key exchange (first) makes room; second never does.
        let fourth = admission.admit();
        assert!(matches!(fourth, Admitted::Evicting(_)));
        tokio::time::timeout(std::time::Duration::from_secs(1), first.evicted())
            .await
            .expect("the oldest was told to go");
        assert_eq!(admission.waiting(), 3);
        drop(first);
        assert_eq!(admission.waiting(), 3, "an evicted ticket holds no place");
        let watch = second.watch();
        for _ in 0..10 {
            assert!(matches!(
                admission.admit(),
                Admitted::Evicting(_) | Admitted::Free(_)
            ));
        }
        assert!(watch.is_kex_done());
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), watch.evicted())
                .await
                .is_err(),
            "a connection past key exchange is never evicted"
        );
        // Everyone waiting is past key exchange: the newcomer is refused.
        let all_done = Admission::new(1);
        let only = ticket(all_done.admit());
        only.kex_done();
        assert!(matches!(all_done.admit(), Admitted::Full));
        drop(only);
        assert!(matches!(all_done.admit(), Admitted::Free(_)));
    }
}
