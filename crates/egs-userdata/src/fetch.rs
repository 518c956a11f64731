//! Fetching `#include` URLs: the [`Fetcher`] trait the pipeline uses, and
//! [`UrlFetcher`], the real one for `file://`, `http://` and `https://` with timeouts,
//! bounded retries, a size cap and an optional `#include-once` cache.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Why an include could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Only `file`, `http` and `https` are fetched.
    #[error("'{0}': unsupported URL scheme (file, http and https are supported)")]
    UnsupportedScheme(String),
    /// The server answered with an error status.
    #[error("'{url}': HTTP status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The content is larger than allowed.
    #[error("'{url}': larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// Network or file error.
    #[error("'{url}': {message}")]
    Failed {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// Fetches included documents. `once` marks `#include-once` URLs, which an implementation
/// may serve from a cache on later runs.
pub trait Fetcher {
    /// The bytes behind `url`.
    fn fetch(&self, url: &str, once: bool) -> Result<Vec<u8>, FetchError>;
}

/// The real fetcher.
#[derive(Debug, Clone)]
pub struct UrlFetcher {
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// Attempts for errors worth retrying (connection failures, timeouts, 5xx, 408, 429).
    pub attempts: u32,
    /// Wait before the second attempt; doubles, at most 4 s.
    pub initial_backoff: Duration,
    /// Largest document accepted.
    pub max_bytes: usize,
    /// Where `#include-once` results are kept between runs (cloud-init's `urlcache`).
    pub once_cache: Option<PathBuf>,
}

impl Default for UrlFetcher {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 3,
            initial_backoff: Duration::from_secs(1),
            max_bytes: 10 * 1024 * 1024,
            once_cache: None,
        }
    }
}

enum Attempt {
    Done(Result<Vec<u8>, FetchError>),
    Retry(FetchError),
}

impl Fetcher for UrlFetcher {
    fn fetch(&self, url: &str, once: bool) -> Result<Vec<u8>, FetchError> {
        let cache_file = self
            .once_cache
            .as_ref()
            .filter(|_| once)
            .map(|dir| dir.join(hex::encode(Sha256::digest(url.as_bytes()))));
        if let Some(data) = cache_file.as_ref().and_then(|f| std::fs::read(f).ok()) {
            return Ok(data);
        }
        let data = self.fetch_uncached(url)?;
        if let Some(file) = cache_file {
            // A cache that cannot be written only costs a fetch next time.
            if file
                .parent()
                .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
            {
                let _ = egs_sys::fs::write_atomic(&file, &data, 0o600);
            }
        }
        Ok(data)
    }
}

impl UrlFetcher {
    fn fetch_uncached(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        // cloud-init's read_file_or_url: a bare absolute path is a local file.
        if url.starts_with('/') {
            return self.read_file(url, url);
        }
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("file") => self.read_file(url, &url["file://".len()..]),
            Some("http") | Some("https") => self.fetch_http(url),
            _ => Err(FetchError::UnsupportedScheme(url.to_string())),
        }
    }

    fn read_file(&self, url: &str, path: &str) -> Result<Vec<u8>, FetchError> {
        let failed = |e: std::io::Error| FetchError::Failed {
            url: url.to_string(),
            message: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(failed)?;
        let mut data = Vec::new();
        file.take(self.max_bytes as u64 + 1)
            .read_to_end(&mut data)
            .map_err(failed)?;
        if data.len() > self.max_bytes {
            return Err(FetchError::TooLarge {
                url: url.to_string(),
                limit: self.max_bytes,
            });
        }
        Ok(data)
    }

    fn fetch_http(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .max_redirects(5)
            .user_agent(concat!("egs/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut backoff = self.initial_backoff;
        let mut last = None;
        for attempt in 0..self.attempts.max(1) {
            if attempt > 0 {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(4));
            }
            match self.attempt(&agent, url) {
                Attempt::Done(result) => return result,
                Attempt::Retry(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn attempt(&self, agent: &ureq::Agent, url: &str) -> Attempt {
        let failed = |message: String| FetchError::Failed {
            url: url.to_string(),
            message,
        };
        let mut response = match agent.get(url).call() {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(failed(e.to_string())),
        };
        let status = response.status().as_u16();
        if status >= 400 {
            let error = FetchError::Status {
                url: url.to_string(),
                status,
            };
            return if status >= 500 || status == 408 || status == 429 {
                Attempt::Retry(error)
            } else {
                Attempt::Done(Err(error))
            };
        }
        let too_large = FetchError::TooLarge {
            url: url.to_string(),
            limit: self.max_bytes,
        };
        if response
            .body()
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Attempt::Done(Err(too_large));
        }
        match response
            .body_mut()
            .with_config()
            .limit(self.max_bytes as u64)
            .read_to_vec()
        {
            Ok(data) => Attempt::Done(Ok(data)),
            Err(ureq::Error::BodyExceedsLimit(_)) => Attempt::Done(Err(too_large)),
            Err(e) => Attempt::Retry(failed(e.to_string())),
        }
    }
}
