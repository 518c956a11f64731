//! Client input on its way to a session's process, bounded in bytes per channel and per
//! connection, without ever making the connection wait on itself.
//!
//! Data a client sends on a session channel is queued here and written to the process by
//! a task of its own. Up to [`CHANNEL_LIMIT`] unread bytes per channel are queued at once;
//! past that, [`InputQueue::push`] waits for the process to read, and with it the
//! connection's loop, so TCP pushes back on the client. That wait is the only
//! back-pressure there is: russh re-opens a channel's SSH window as soon as data arrives,
//! not when the process has read it, so the window cannot hold a client back the way
//! OpenSSH's does.
//!
//! The wait must never be one the process is itself part of: a process blocked on writing
//! its output (an echoing `cat`) reads no input until the connection's loop carries that
//! output, which it cannot do while it waits here. So while any of the connection's output
//! is waiting to be carried ([`Flow::carrying`]), input is queued past the limit instead,
//! up to [`CHANNEL_HARD_LIMIT`] per channel and [`CONNECTION_HARD_LIMIT`] per connection,
//! where the wait is unconditional (a client that floods input while it never reads its
//! output reaches it). Closed channels give their share back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::process::ChildStdin;
use tokio::sync::{mpsc, Notify};

use egs_sys::pty;

/// Unread input one channel holds before the client is made to wait: OpenSSH's session
/// window (2 MiB).
pub const CHANNEL_LIMIT: usize = 2 * 1024 * 1024;

/// Unread input all channels of one connection hold before the client is made to wait.
pub const CONNECTION_LIMIT: usize = 8 * 1024 * 1024;

/// Unread input one channel may hold while the connection's output waits.
pub const CHANNEL_HARD_LIMIT: usize = 16 * 1024 * 1024;

/// Unread input one connection may hold while its output waits.
pub const CONNECTION_HARD_LIMIT: usize = 32 * 1024 * 1024;

/// One connection's flow: the input its channels hold unread, and the output its processes
/// are waiting to have carried.
#[derive(Default)]
pub struct Flow {
    queued: AtomicUsize,
    carrying: AtomicUsize,
    /// Some input was read, or some output began to wait.
    changed: Notify,
}

impl Flow {
    /// Bytes queued over all channels, not yet read by their processes.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Marks output as waiting to be carried until the guard is dropped: hold it across
    /// the `Handle::data` call that hands a process's output to the connection.
    pub fn carrying(&self) -> Carrying<'_> {
        self.carrying.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        Carrying(self)
    }

    fn output_waits(&self) -> bool {
        self.carrying.load(Ordering::SeqCst) > 0
    }
}

/// Output on its way to the connection; see [`Flow::carrying`].
pub struct Carrying<'a>(&'a Flow);

impl Drop for Carrying<'_> {
    fn drop(&mut self) {
        self.0.carrying.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where a process reads its input from.
pub enum Sink {
    /// The stdin pipe of a process without a terminal.
    Pipe(ChildStdin),
    /// The terminal of a process with one.
    Pty(pty::Master),
}

/// One channel's queue of input for its process.
pub struct InputQueue {
    chunks: mpsc::UnboundedSender<Bytes>,
    channel: Arc<AtomicUsize>,
    connection: Arc<Flow>,
}

impl InputQueue {
    /// Starts the task that writes queued input to `sink`. Dropping the queue ends the
    /// input once what is queued is written (end-of-file for a pipe).
    pub fn start(sink: Sink, connection: Arc<Flow>) -> Self {
        let (chunks, pending) = mpsc::unbounded_channel();
        let channel = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write_to(sink, pending, channel.clone(), connection.clone()));
        Self {
            chunks,
            channel,
            connection,
        }
    }

    /// Queues `data`, first waiting while this channel or its connection holds as much
    /// unread input as it may (see the module's documentation for when that is). Err: the
    /// process no longer reads its input.
    pub async fn push(&self, data: &[u8]) -> Result<(), StoppedReading> {
        loop {
            let changed = self.connection.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.chunks.is_closed() {
                return Err(StoppedReading);
            }
            let (channel, connection) = (self.queued(), self.connection.queued());
            let under = |channel_limit, connection_limit| {
                channel < channel_limit && connection < connection_limit
            };
            if under(CHANNEL_LIMIT, CONNECTION_LIMIT)
                || (self.connection.output_waits()
                    && under(CHANNEL_HARD_LIMIT, CONNECTION_HARD_LIMIT))
            {
                break;
            }
            tokio::select! {
                () = changed => {}
                () = self.chunks.closed() => return Err(StoppedReading),
            }
        }
        self.channel.fetch_add(data.len(), Ordering::SeqCst);
        self.connection
            .queued
            .fetch_add(data.len(), Ordering::SeqCst);
        self.chunks
            .send(Bytes::copy_from_slice(data))
            .map_err(|_| StoppedReading)
    }

    /// Bytes queued on this channel, not yet read by its process.
    pub fn queued(&self) -> usize {
        self.channel.load(Ordering::SeqCst)
    }
}

/// The process stopped reading its input (it closed it, or it ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoppedReading;

/// Writes queued chunks to the process, giving their bytes back to the budgets as they
/// are written; when the process stops reading, what is still queued is dropped and given
/// back too, so a closed channel never holds its connection's budget.
async fn write_to(
    mut sink: Sink,
    mut pending: mpsc::UnboundedReceiver<Bytes>,
    channel: Arc<AtomicUsize>,
    connection: Arc<Flow>,
) {
    let give_back = |n: usize| {
        channel.fetch_sub(n, Ordering::SeqCst);
        connection.queued.fetch_sub(n, Ordering::SeqCst);
        connection.changed.notify_waiters();
    };
    while let Some(chunk) = pending.recv().await {
        let written = match &mut sink {
            Sink::Pipe(stdin) => stdin.write_all(&chunk).await,
            Sink::Pty(master) => master.write_all(&chunk).await,
        };
        give_back(chunk.len());
        if written.is_err() {
            break;
        }
    }
    pending.close();
    while let Ok(chunk) = pending.try_recv() {
        give_back(chunk.len());
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::process::Stdio;
    use std::time::Duration;

    /// A process that reads nothing until continued ([`resume`]), then counts its input.
    fn sleeper() -> tokio::process::Child {
        tokio::process::Command::new("sh")
            .args(["-c", "kill -STOP $$; exec wc -c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    fn resume(child: &tokio::process::Child) {
        let pid = child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status();
        assert!(status.unwrap().success());
    }

    #[tokio::test]
    async fn a_process_that_does_not_read_holds_at_most_the_channel_limit() {
        let connection = Arc::new(Flow::default());
        let mut child = sleeper();
        let queue = InputQueue::start(Sink::Pipe(child.stdin.take().unwrap()), connection);
        let chunk = vec![b'x'; 32 * 1024];
        let mut pushed = 0;
        // Pushes until a push has to wait: the pipe (64 KiB) and then the queue fill up.
        while tokio::time::timeout(Duration::from_millis(300), queue.push(&chunk))
            .await
            .is_ok()
        {
            pushed += chunk.len();
            assert!(pushed < 4 * CHANNEL_LIMIT, "the queue never pushed back");
        }
        assert!(queue.queued() >= CHANNEL_LIMIT, "{}", queue.queued());
        assert!(
            queue.queued() < CHANNEL_LIMIT + chunk.len(),
            "{}",
            queue.queued()
        );
        // Once the process reads, the queue drains and nothing was lost.
        resume(&child);
        drop(queue);
        let out = child.wait_with_output().await.unwrap();
        let counted: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(counted, pushed);
    }

    #[tokio::test]
    async fn the_connection_limit_spans_channels_and_closed_channels_give_their_share_back() {
        let connection = Arc::new(Flow::default());
        let chunk = vec![b'y'; 64 * 1024];
        let mut children = Vec::new();
        let mut queues = Vec::new();
        // Fill channels to just under their limit until the connection is full.
        'fill: for _ in 0..CONNECTION_LIMIT / CHANNEL_LIMIT + 2 {
            let mut child = sleeper();
            let queue =
                InputQueue::start(Sink::Pipe(child.stdin.take().unwrap()), connection.clone());
            while queue.queued() + chunk.len() < CHANNEL_LIMIT {
                let push = queue.push(&chunk);
                if tokio::time::timeout(Duration::from_millis(300), push)
                    .await
                    .is_err()
                {
                    queues.push(queue);
                    children.push(child);
                    break 'fill;
                }
            }
            queues.push(queue);
            children.push(child);
        }
        assert!(
            connection.queued() >= CONNECTION_LIMIT,
            "{}",
            connection.queued()
        );
        assert!(
            queues.len() > CONNECTION_LIMIT / CHANNEL_LIMIT,
            "{}",
            queues.len()
        );
        // Ending one process gives its channel's share back to the others.
        let held = queues[0].queued();
        children.remove(0).kill().await.unwrap();
        let full = queues.last().unwrap();
        tokio::time::timeout(Duration::from_secs(5), full.push(&chunk))
            .await
            .expect("room after a channel's process ended")
            .unwrap();
        assert!(held > 0);
        tokio::time::timeout(Duration::from_secs(5), async {
            while queues[0].queued() != 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the ended channel's input was given back");
        assert_eq!(queues[0].push(b"more").await, Err(StoppedReading));
    }
}
