//! `UrlFetcher` against a real HTTP server on 127.0.0.1 and real files: status handling,
//! retries, size caps, timeouts and the `#include-once` cache.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use egs_userdata::fetch::{FetchError, Fetcher, UrlFetcher};

/// A one-thread HTTP server answering each request with the next canned response
/// (`None` = accept, read the request and never answer).
struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
}

fn serve(responses: Vec<Option<Vec<u8>>>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/doc", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for (stream, response) in listener.incoming().zip(responses) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            match response {
                Some(bytes) => {
                    let _ = stream.write_all(&bytes);
                }
                None => held.push(stream),
            }
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    Server { url, hits }
}

fn ok(body: &str) -> Option<Vec<u8>> {
    Some(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn status(code: u16) -> Option<Vec<u8>> {
    Some(
        format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes(),
    )
}

fn fetcher() -> UrlFetcher {
    UrlFetcher {
        timeout: Duration::from_millis(500),
        attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_bytes: 1024,
        once_cache: None,
    }
}

#[test]
fn fetches_and_does_not_retry_client_errors() {
    let s = serve(vec![ok("#cloud-config\n")]);
    assert_eq!(fetcher().fetch(&s.url, false).unwrap(), b"#cloud-config\n");
    let s = serve(vec![status(404), ok("never")]);
    assert_eq!(
        fetcher().fetch(&s.url, false),
        Err(FetchError::Status {
            url: s.url.clone(),
            status: 404
        })
    );
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn retries_server_errors_then_succeeds_or_gives_up() {
    let s = serve(vec![status(503), status(500), ok("third time")]);
    assert_eq!(fetcher().fetch(&s.url, false).unwrap(), b"third time");
    assert_eq!(s.hits.load(Ordering::SeqCst), 3);
    let s = serve(vec![status(503), status(503), status(503), ok("too late")]);
    assert!(matches!(
        fetcher().fetch(&s.url, false),
        Err(FetchError::Status { status: 503, .. })
    ));
    assert_eq!(s.hits.load(Ordering::SeqCst), 3);
}

#[test]
fn refuses_oversized_documents_with_or_without_length() {
    let big = "x".repeat(2048);
    let s = serve(vec![ok(&big)]);
    assert!(matches!(
        fetcher().fetch(&s.url, false),
        Err(FetchError::TooLarge { limit: 1024, .. })
    ));
    let unsized_body = format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{big}").into_bytes();
    let s = serve(vec![Some(unsized_body)]);
    assert!(matches!(
        fetcher().fetch(&s.url, false),
        Err(FetchError::TooLarge { .. })
    ));
}

#[test]
fn a_silent_server_times_out() {
    let s = serve(vec![None, None, None]);
    let err = fetcher().fetch(&s.url, false).unwrap_err();
    assert!(matches!(err, FetchError::Failed { .. }), "{err}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 3, "timeouts are retried");
}

#[test]
fn files_schemes_and_the_include_once_cache() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.yaml");
    std::fs::write(&doc, "#cloud-config\n").unwrap();
    let f = fetcher();
    assert_eq!(
        f.fetch(&format!("file://{}", doc.display()), false)
            .unwrap(),
        b"#cloud-config\n"
    );
    assert!(matches!(
        f.fetch("file:///nonexistent/egs", false),
        Err(FetchError::Failed { .. })
    ));
    std::fs::write(&doc, "x".repeat(2000)).unwrap();
    assert!(matches!(
        f.fetch(&format!("file://{}", doc.display()), false),
        Err(FetchError::TooLarge { .. })
    ));
    assert!(matches!(
        f.fetch("ftp://example.invalid/x", false),
        Err(FetchError::UnsupportedScheme(_))
    ));
    // Issue 23 (6): a bare absolute path is a local file, as cloud-init's
    // read_file_or_url reads it — through the whole pipeline too. (cloud-init's rule is a
    // leading '/', so this is a Unix check; Windows paths start with a drive.)
    if cfg!(unix) {
        std::fs::write(&doc, "#cloud-config\nhostname: from-a-path\n").unwrap();
        assert_eq!(
            f.fetch(&doc.display().to_string(), false).unwrap(),
            b"#cloud-config\nhostname: from-a-path\n"
        );
        let user_data = format!("#include\n{}\n", doc.display());
        let processed = egs_userdata::pipeline::process(
            user_data.as_bytes(),
            None,
            &f,
            &egs_userdata::pipeline::Limits::default(),
        )
        .unwrap();
        let hostname = processed.config.as_map().unwrap().get("hostname").cloned();
        assert_eq!(
            hostname.and_then(|h| h.python_str()).as_deref(),
            Some("from-a-path")
        );
        assert!(matches!(
            f.fetch("/nonexistent/egs", false),
            Err(FetchError::Failed { .. })
        ));
    }

    let cache = dir.path().join("urlcache");
    let cached = UrlFetcher {
        once_cache: Some(cache.clone()),
        ..fetcher()
    };
    let s = serve(vec![ok("first"), ok("second")]);
    assert_eq!(cached.fetch(&s.url, true).unwrap(), b"first");
    assert_eq!(
        cached.fetch(&s.url, true).unwrap(),
        b"first",
        "#include-once is served from the cache"
    );
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        cached.fetch(&s.url, false).unwrap(),
        b"second",
        "#include always fetches"
    );
    let entry = std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap();
    if cfg!(unix) {
        assert_eq!(
            egs_sys::fs::mode(&entry.path()).map(|m| m & 0o777),
            Some(0o600)
        );
    }
}
