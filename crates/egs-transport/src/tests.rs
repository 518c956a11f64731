use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn service_id_and_port_map_both_ways() {
    assert_eq!(service_id_for_port(VSOCK_PORT), SERVICE_ID);
    assert_eq!(port_for_service_id(SERVICE_ID), Ok(5002));
    assert_eq!(
        port_for_service_id("{0000138A-FACB-11E6-BD58-64006A7986D3}"),
        Ok(5002)
    );
    assert_eq!(
        port_for_service_id(&service_id_for_port(0xdead_beef)),
        Ok(0xdead_beef)
    );
    let err = port_for_service_id("0000138a-facb-11e6-bd58-64006a7986d4").unwrap_err();
    assert!(err.to_string().contains("not a vsock-template"), "{err}");
    assert!(port_for_service_id("xyz0138a-facb-11e6-bd58-64006a7986d3").is_err());
}

#[test]
fn listen_addresses() {
    assert_eq!(
        parse_listen("vsock", false),
        Ok(Endpoint::Vsock {
            cid: VMADDR_CID_ANY,
            port: 5002
        })
    );
    assert_eq!(
        parse_listen("vsock:7000", false),
        Ok(Endpoint::Vsock {
            cid: VMADDR_CID_ANY,
            port: 7000
        })
    );
    assert_eq!(
        parse_listen("unix:/run/egs.sock", false),
        Ok(Endpoint::Unix("/run/egs.sock".into()))
    );
    assert_eq!(
        parse_listen("tcp:[::1]:22", false),
        Ok(Endpoint::Tcp("[::1]:22".parse().unwrap()))
    );
    let err = parse_listen("tcp:0.0.0.0:2222", false).unwrap_err();
    assert!(err.to_string().contains("not a loopback address"), "{err}");
    assert!(parse_listen("tcp:0.0.0.0:2222", true).is_ok());
    assert!(parse_listen("vsock:x", false)
        .unwrap_err()
        .to_string()
        .contains("'x'"));
    assert!(parse_listen("unix:", false).is_err());
    assert!(parse_listen("http://x", false).is_err());
}

#[test]
fn targets() {
    assert_eq!(
        parse_target("vsock:42"),
        Ok(Endpoint::Vsock {
            cid: 42,
            port: 5002
        })
    );
    assert_eq!(
        parse_target("vsock:42:22"),
        Ok(Endpoint::Vsock { cid: 42, port: 22 })
    );
    assert_eq!(
        parse_target("fc:/run/fc/v.sock"),
        Ok(Endpoint::Firecracker {
            socket: "/run/fc/v.sock".into(),
            port: 5002
        })
    );
    assert_eq!(
        parse_target("fc:/run/a:b/v.sock:6000"),
        Ok(Endpoint::Firecracker {
            socket: "/run/a:b/v.sock".into(),
            port: 6000
        })
    );
    assert!(parse_target("tcp:10.0.0.1:22").is_err());
    assert!(parse_target("vsock:").is_err());
    assert_eq!(parse_target("vsock:3").unwrap().to_string(), "vsock:3:5002");
}

/// Hyper-V socket addresses parse and print the same on every OS: the original's bare VM
/// id and `hv:` as targets, `hv` (the parent partition) and `hv:any` for a listening guest.
#[test]
fn hyper_v_addresses() {
    let vm: Guid = "6f3a1c2e-1111-4222-8333-944445555666".parse().unwrap();
    let egs = egs_service_id();
    assert_eq!(egs.to_string(), SERVICE_ID);
    for text in [
        "6F3A1C2E-1111-4222-8333-944445555666",
        "{6f3a1c2e-1111-4222-8333-944445555666}",
        "hv:6f3a1c2e-1111-4222-8333-944445555666",
    ] {
        assert_eq!(
            parse_target(text),
            Ok(Endpoint::HyperV {
                vm_id: vm,
                service_id: egs
            }),
            "{text}"
        );
    }
    let target = parse_target("hv:6f3a1c2e-1111-4222-8333-944445555666").unwrap();
    assert_eq!(
        target.to_string(),
        "hv:6f3a1c2e-1111-4222-8333-944445555666"
    );
    assert_eq!(parse_target(&target.to_string()), Ok(target));
    let other = parse_target(&format!("hv:{vm}:{}", service_id_for_port(22))).unwrap();
    assert_eq!(
        other.to_string(),
        format!("hv:{vm}:00000016-facb-11e6-bd58-64006a7986d3")
    );
    assert_eq!(
        parse_listen("hv", false),
        Ok(Endpoint::HyperV {
            vm_id: Guid::PARENT,
            service_id: egs
        })
    );
    assert_eq!(
        parse_listen("hv:any", false),
        Ok(Endpoint::HyperV {
            vm_id: Guid::WILDCARD,
            service_id: egs
        })
    );
    let err = parse_target("hv:not-a-guid").unwrap_err();
    assert!(
        err.to_string().contains("'not-a-guid' is not a GUID"),
        "{err}"
    );
}

/// On Linux a Hyper-V VM id says where it works instead of failing obscurely.
#[cfg(not(windows))]
#[tokio::test]
async fn hyper_v_targets_explain_themselves_off_windows() {
    let target = parse_target("6f3a1c2e-1111-4222-8333-944445555666").unwrap();
    let why = check_reachable(&target).unwrap_err();
    assert!(why.to_string().contains("use egs-tool there"), "{why}");
    assert_eq!(check_reachable(&parse_target("vsock:3").unwrap()), Ok(()));
    let Err(err) = connect(&target).await else {
        panic!("connected to a Hyper-V VM id")
    };
    assert!(err.to_string().contains("Windows Hyper-V host"), "{err}");
    let Err(err) = Listener::bind(&parse_listen("hv", false).unwrap()).await else {
        panic!("listened on a Hyper-V socket")
    };
    assert!(err.to_string().contains("--listen vsock"), "{err}");
}

async fn echo_once(listener: Listener) {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await.unwrap();
    s.write_all(&buf).await.unwrap();
}

#[tokio::test]
async fn unix_and_tcp_carry_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut endpoints = vec![Endpoint::Tcp("127.0.0.1:0".parse().unwrap())];
    // Windows' AF_UNIX is built on WinSock, which Wine 8 lacks (binding says so there).
    if cfg!(unix) {
        endpoints.push(Endpoint::Unix(dir.path().join("s.sock")));
    }
    for endpoint in endpoints {
        let listener = Listener::bind(&endpoint).await.unwrap();
        let target = parse_target(&listener.local()).unwrap();
        let server = tokio::spawn(echo_once(listener));
        let mut s = connect(&target).await.unwrap();
        s.write_all(b"hello").await.unwrap();
        let mut back = [0u8; 5];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        server.await.unwrap();
    }
    // The Unix socket file goes with the listener.
    assert!(!dir.path().join("s.sock").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn unix_bind_refuses_to_replace_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    std::fs::write(&path, "keep").unwrap();
    let Err(err) = Listener::bind(&Endpoint::Unix(path.clone())).await else {
        panic!("bound over a file")
    };
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep");
}

/// Issue 16: a second daemon on a socket path another process still serves gets a clear
/// error instead of silently taking the path (and the clients) over; a stale socket file
/// is still replaced.
#[cfg(unix)]
#[tokio::test]
async fn unix_bind_refuses_a_socket_in_use_and_replaces_a_stale_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let endpoint = Endpoint::Unix(path.clone());
    let first = Listener::bind(&endpoint).await.unwrap();
    let Err(err) = Listener::bind(&endpoint).await else {
        panic!("a live socket was taken over")
    };
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains("is in use"), "{err}");
    assert!(path.exists(), "the first listener keeps its socket");
    drop(first);
    // A socket file nobody listens on (a daemon that was killed) is stale.
    let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(stale);
    assert!(path.exists());
    Listener::bind(&endpoint).await.unwrap();
}

#[cfg(unix)]
/// A stand-in for Firecracker's vsock Unix socket: reads `CONNECT <port>\n`, answers with
/// `reply`, then (if accepted) echoes, with the first echoed bytes sent in the same write
/// as the OK line.
async fn hybrid_relay(listener: tokio::net::UnixListener, reply: &'static str) -> String {
    let (mut s, _) = listener.accept().await.unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while byte[0] != b'\n' {
        s.read_exact(&mut byte).await.unwrap();
        line.push(byte[0]);
    }
    if reply == "OK 1073741824\n" {
        s.write_all(format!("{reply}early").as_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
    } else {
        s.write_all(reply.as_bytes()).await.unwrap();
    }
    String::from_utf8(line).unwrap()
}

#[cfg(unix)]
#[tokio::test]
async fn firecracker_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.sock");
    let relay = tokio::spawn(hybrid_relay(
        tokio::net::UnixListener::bind(&path).unwrap(),
        "OK 1073741824\n",
    ));
    let target = parse_target(&format!("fc:{}", path.display())).unwrap();
    let mut s = connect(&target).await.unwrap();
    let mut early = [0u8; 5];
    s.read_exact(&mut early).await.unwrap();
    assert_eq!(&early, b"early", "bytes after the OK line are the guest's");
    s.write_all(b"hello").await.unwrap();
    let mut back = [0u8; 5];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello");
    assert_eq!(relay.await.unwrap(), "CONNECT 5002\n");
}

#[cfg(unix)]
#[tokio::test]
async fn firecracker_refusal_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.sock");
    for reply in ["", "NO\n", "OK \n", "OK 12 13\n"] {
        let relay = tokio::spawn(hybrid_relay(
            tokio::net::UnixListener::bind(&path).unwrap(),
            reply,
        ));
        let target = Endpoint::Firecracker {
            socket: path.clone(),
            port: 5002,
        };
        let Err(err) = connect(&target).await else {
            panic!("accepted {reply:?}")
        };
        assert!(err.to_string().contains("CONNECT 5002"), "{err}");
        relay.await.unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}
