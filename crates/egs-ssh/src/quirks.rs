//! Clients that need something russh does not do, recognised by their identification
//! string (as OpenSSH's `compat.c` recognises them).
//!
//! One today: paramiko sends `SSH_MSG_SERVICE_REQUEST "ssh-userauth"` again before each
//! authentication attempt and waits for the answer before it sends the attempt. OpenSSH
//! answers the repeat; russh ignores it, so after a refused key a paramiko client would
//! wait until the login grace time ends the connection (30 s). The daemon cannot answer
//! in russh's place (the packets are encrypted below it), so it ends the connection at
//! once instead, with the reason in the log: a refused paramiko client fails fast, as
//! asyncssh's server makes it fail. Only a paramiko client that sends something after a
//! refusal and makes no new attempt within [`REPEAT_WAIT`] is ended, so a paramiko that
//! stops repeating the request keeps working.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a paramiko client's packet after a refusal may go without a new attempt.
pub const REPEAT_WAIT: Duration = Duration::from_secs(1);

/// The longest identification line looked at (RFC 4253 allows 255 bytes).
const MAX_IDENTIFICATION: usize = 255;

/// The client's identification line (`SSH-2.0-softwareversion comments`), read off the
/// first bytes the client sends.
#[derive(Debug, Default)]
pub struct Identification {
    line: Vec<u8>,
    complete: bool,
    ended: bool,
}

impl Identification {
    /// Feeds bytes as they arrive from the client; the line ends at its first `\n`.
    pub fn observe(&mut self, bytes: &[u8]) {
        if self.complete {
            return;
        }
        let end = bytes.iter().position(|&b| b == b'\n');
        let take = end.map_or(bytes.len(), |n| n + 1);
        let room = MAX_IDENTIFICATION.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..take.min(room)]);
        self.ended = end.is_some() && take <= room;
        self.complete = self.ended || self.line.len() >= MAX_IDENTIFICATION;
    }

    /// Whether the whole line was seen.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Whether the client is paramiko (`SSH-2.0-paramiko_3.4.0`).
    pub fn is_paramiko(&self) -> bool {
        self.ended
            && self
                .line
                .strip_prefix(b"SSH-2.0-")
                .is_some_and(|software| software.starts_with(b"paramiko_"))
    }
}

/// The client's authentication attempts as the handler answers them, for the stream
/// below russh: which attempt was the last, and whether it was refused.
#[derive(Debug, Default)]
pub struct Attempts {
    /// The number of the last attempt, times two, plus one if it was refused.
    last: AtomicU64,
}

impl Attempts {
    /// The handler answered an attempt.
    pub fn answered(&self, refused: bool) {
        let number = self.last.load(Ordering::SeqCst) / 2 + 1;
        self.last
            .store(number * 2 + u64::from(refused), Ordering::SeqCst);
    }

    /// The last attempt's number, if it was refused.
    pub fn refused(&self) -> Option<u64> {
        let last = self.last.load(Ordering::SeqCst);
        (last % 2 == 1).then_some(last / 2)
    }
}

/// Why a paramiko client's connection is ended after a refusal.
pub const PARAMIKO_REPEAT: &str = "the client (paramiko) asked for the ssh-userauth service again after a refused key, which this server does not answer: ending the connection now rather than at the login grace time (give paramiko only the egs key)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identification_is_the_first_line_in_whatever_pieces_it_arrives() {
        let mut id = Identification::default();
        id.observe(b"SSH-2.0-para");
        assert!(!id.is_complete() && !id.is_paramiko());
        id.observe(b"miko_3.4.0\r\n\x00\x00\x01\x0c");
        assert!(id.is_complete() && id.is_paramiko());
        id.observe(b"SSH-2.0-OpenSSH_9.2\r\n");
        assert!(id.is_paramiko(), "later bytes change nothing");
        for other in [
            &b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"[..],
            b"SSH-2.0-Go\r\n",
            b"SSH-2.0-x paramiko_3.4.0\r\n",
            b"SSH-1.99-paramiko_1.0\r\n",
        ] {
            let mut id = Identification::default();
            id.observe(other);
            assert!(id.is_complete() && !id.is_paramiko(), "{other:?}");
        }
    }

    #[test]
    fn attempts_are_numbered_and_remember_only_the_last_verdict() {
        let attempts = Attempts::default();
        assert_eq!(attempts.refused(), None);
        attempts.answered(true);
        assert_eq!(attempts.refused(), Some(1));
        attempts.answered(true);
        assert_eq!(
            attempts.refused(),
            Some(2),
            "a new refusal is a new attempt"
        );
        attempts.answered(false);
        assert_eq!(attempts.refused(), None);
    }

    #[test]
    fn an_endless_line_stops_being_read_at_the_rfc_limit() {
        let mut id = Identification::default();
        for _ in 0..1000 {
            id.observe(b"SSH-2.0-paramiko_");
        }
        assert!(id.is_complete());
        assert_eq!(id.line.len(), MAX_IDENTIFICATION);
        assert!(!id.is_paramiko(), "no line end: not an identification");
    }
}
