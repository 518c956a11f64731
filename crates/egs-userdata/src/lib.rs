//! The user-data pipeline of EGS: from the bytes a datasource delivers to the parts
//! cloud-init would see and the merged cloud-config, exactly as cloud-init's
//! `UserDataProcessor` and cloud-config part handler do it (gzip at any level, MIME
//! multipart with the original EGS's tolerances, re-typing by first line, `#include`,
//! `#include-once`, `#cloud-config-archive`, `merge_how`), bounded in size and depth.
//!
//! I/O happens only behind the [`fetch::Fetcher`] trait (for `#include`).
//!
//! ```
//! use egs_userdata::{fetch::UrlFetcher, pipeline::{process, Limits}};
//! let data = b"#cloud-config\nhostname: web1\n";
//! let resolved = process(data, None, &UrlFetcher::default(), &Limits::default()).unwrap();
//! assert_eq!(resolved.parts[0].filename, "part-001");
//! let hostname = resolved.config.as_map().unwrap().get("hostname").unwrap();
//! assert_eq!(hostname.as_str(), Some("web1"));
//! ```

pub mod fetch;
pub mod gzip;
pub mod mime;
pub mod pipeline;
pub mod sniff;
