//! A session channel as one owned byte stream that does not own the channel: the SFTP loop
//! reads and writes the channel's data directly (no pipe and copy tasks between it and
//! the channel), while the server keeps the channel to send the exit status after the
//! last reply and then close it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use russh::{ChannelMsg, ChannelReadHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

type Waiting = Pin<Box<dyn Future<Output = (ChannelReadHalf, Option<ChannelMsg>)> + Send>>;

enum Reading {
    Idle(ChannelReadHalf),
    Waiting(Waiting),
    /// The client sent EOF (the half is kept: the channel lives on until the server
    /// closes it) or the channel closed.
    Ended(Option<ChannelReadHalf>),
}

/// The channel's data as a stream: reads what the client sends (until its EOF), writes
/// through `writer` (the channel's [`russh::ChannelWriteHalf::make_writer`]). Dropping it
/// tells the [`oneshot::Receiver`] handed out by [`ChannelPipe::new`].
pub struct ChannelPipe<W> {
    reading: Reading,
    /// Data received and not yet read.
    received: Bytes,
    writer: W,
    _dropped: oneshot::Sender<()>,
}

impl<W: AsyncWrite + Unpin> ChannelPipe<W> {
    /// The stream over `read_half` and `writer`, and what resolves when it is dropped.
    pub fn new(read_half: ChannelReadHalf, writer: W) -> (ChannelPipe<W>, oneshot::Receiver<()>) {
        let (dropped, on_drop) = oneshot::channel();
        let pipe = ChannelPipe {
            reading: Reading::Idle(read_half),
            received: Bytes::new(),
            writer,
            _dropped: dropped,
        };
        (pipe, on_drop)
    }
}

impl<W> ChannelPipe<W> {
    /// A reply that cannot be sent means the client is gone: the requests it queued are
    /// not carried out, the next read is the end.
    fn stop_reading_on_error<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if result.is_err() {
            self.reading = Reading::Ended(None);
            self.received = Bytes::new();
        }
        result
    }
}

impl<W: Unpin> AsyncRead for ChannelPipe<W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.received.is_empty() {
                let n = buf.remaining().min(self.received.len());
                buf.put_slice(&self.received[..n]);
                self.received.advance(n);
                return Poll::Ready(Ok(()));
            }
            match std::mem::replace(&mut self.reading, Reading::Ended(None)) {
                Reading::Ended(half) => {
                    self.reading = Reading::Ended(half);
                    return Poll::Ready(Ok(()));
                }
                Reading::Idle(mut half) => {
                    self.reading = Reading::Waiting(Box::pin(async move {
                        let msg = half.wait().await;
                        (half, msg)
                    }));
                }
                Reading::Waiting(mut waiting) => {
                    let (half, msg) = match waiting.as_mut().poll(cx) {
                        Poll::Ready(done) => done,
                        Poll::Pending => {
                            self.reading = Reading::Waiting(waiting);
                            return Poll::Pending;
                        }
                    };
                    match msg {
                        Some(ChannelMsg::Data { data }) => {
                            self.reading = Reading::Idle(half);
                            self.received = data;
                        }
                        Some(ChannelMsg::Eof) => self.reading = Reading::Ended(Some(half)),
                        None => {}
                        // Window adjustments and the like: not data.
                        Some(_) => self.reading = Reading::Idle(half),
                    }
                }
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for ChannelPipe<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = ready!(Pin::new(&mut self.writer).poll_write(cx, data));
        Poll::Ready(self.stop_reading_on_error(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = ready!(Pin::new(&mut self.writer).poll_flush(cx));
        Poll::Ready(self.stop_reading_on_error(flushed))
    }

    /// Only flushes: the channel's EOF and close are the server's, after the exit status.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.writer).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }
}
