use super::*;
use crate::yaml::load;

fn read(text: &str) -> (CloudConfig, Diagnostics) {
    CloudConfig::from_node(&load(text, 0).unwrap().unwrap())
}

fn errors(d: &Diagnostics) -> Vec<String> {
    d.items
        .iter()
        .filter(|x| x.severity == Severity::Error)
        .map(|x| x.to_string())
        .collect()
}

#[test]
fn users_in_every_cloud_init_form() {
    let (c, d) = read(
        "users:\n  - default\n  - bob, carol\n  - name: dave\n    groups: [adm, sudo]\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    lock_passwd: false\n    uid: 1500\n  - name: erin\n    groups: 'wheel, docker'\n    sudo: false\n",
    );
    assert!(!d.has_errors(), "{:?}", errors(&d));
    let users = c.users.unwrap();
    assert_eq!(users[0], UserEntry::Default);
    assert_eq!(users[1], UserEntry::Name("bob".into()));
    assert_eq!(users[2], UserEntry::Name("carol".into()));
    let UserEntry::Full(dave) = &users[3] else {
        panic!()
    };
    assert_eq!(dave.groups, ["adm", "sudo"]);
    assert_eq!(
        dave.sudo,
        Sudo::Rules(vec!["ALL=(ALL) NOPASSWD:ALL".into()])
    );
    assert!(!dave.password_locked());
    assert_eq!(dave.uid, Some(1500));
    let UserEntry::Full(erin) = &users[4] else {
        panic!()
    };
    assert_eq!(erin.groups, ["wheel", "docker"]);
    assert_eq!(erin.sudo, Sudo::Disabled);
    assert!(erin.password_locked(), "lock_passwd defaults to true");
}

#[test]
fn default_user_resolution() {
    let (c, _) = read("users:\n  - default\n  - name: default\n    groups: [docker]\n  - alice\n");
    let distro = User {
        name: "debian".into(),
        groups: vec!["adm".into()],
        sudo: Sudo::Rules(vec!["ALL=(ALL) NOPASSWD:ALL".into()]),
        ..User::default()
    };
    let users = normalize_users(c.users.as_deref(), &distro);
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].name, "debian");
    assert_eq!(users[0].groups, ["adm", "docker"]);
    assert_eq!(users[1].name, "alice");
    assert_eq!(normalize_users(None, &distro)[0].name, "debian");
    assert!(normalize_users(Some(&[]), &distro).is_empty());
}

#[test]
fn groups_in_every_form() {
    let (c, d) =
        read("groups:\n  - admins\n  - cloud-users: [alice, bob]\n  - cloud-users: carol\n");
    assert!(!d.has_errors());
    assert_eq!(
        c.groups[0],
        Group {
            name: "admins".into(),
            members: vec![]
        }
    );
    assert_eq!(c.groups[1].members, ["alice", "bob", "carol"]);
    let (c, _) = read("groups: {ops: [a], dev: b}\n");
    assert_eq!(c.groups.len(), 2);
    let (c, _) = read("groups: 'x, y'\n");
    assert_eq!(
        c.groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        ["x", "y"]
    );
}

#[test]
fn write_files_decoding_and_modes() {
    let (c, d) = read(
        "write_files:\n  - path: /a\n    content: aGk=\n    encoding: b64\n    permissions: '0600'\n  - path: /b\n    permissions: 0755\n  - path: /c\n    content: !!binary aGk=\n  - path: /d\n    permissions: '0o4711'\n    owner: bob:bob\n    defer: true\n",
    );
    assert!(!d.has_errors(), "{:?}", errors(&d));
    let w = &c.write_files;
    assert_eq!(
        (w[0].content.as_slice(), w[0].permissions),
        (&b"hi"[..], 0o600)
    );
    assert_eq!(
        (w[1].permissions, w[1].owner.as_str()),
        (0o755, "root:root")
    );
    assert_eq!(w[2].content, b"hi");
    assert_eq!((w[3].permissions, w[3].defer), (0o4711, true));
    let (_, d) = read(
        "write_files:\n  - content: x\n  - path: rel\n    permissions: '0999'\n    encoding: zip\n",
    );
    let e = errors(&d);
    assert!(
        e.iter()
            .any(|m| m.contains("write_files[0]") && m.contains("'path' is required")),
        "{e:?}"
    );
    assert!(e.iter().any(|m| m.contains("not an absolute path")));
    assert!(e.iter().any(|m| m.contains("octal file mode")));
    assert!(e.iter().any(|m| m.contains("unknown encoding")));
}

#[test]
fn commands_and_positions() {
    let (c, d) = read("runcmd:\n  - echo hi\n  - [ls, -l, 1, true]\n  -\n  - echo a: b\n");
    assert_eq!(c.runcmd[0], Command::Shell("echo hi".into()));
    assert_eq!(
        c.runcmd[1],
        Command::Argv(vec!["ls".into(), "-l".into(), "1".into(), "True".into()])
    );
    let e = errors(&d);
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("runcmd[3] (line 5, column 5)"), "{e:?}");
}

#[test]
fn hostnames_booleans_and_unknown_keys() {
    let (_, d) = read("hostname: bad_host!\nfqdn: short\npreserve_hostname: maybe\nfrobnicate: 1\npackages: [vim]\n");
    let e = errors(&d);
    assert!(
        e.iter()
            .any(|m| m.starts_with("error: hostname (line 1, column 11)")),
        "{e:?}"
    );
    assert!(e.iter().any(|m| m.contains("not fully qualified")));
    assert!(e
        .iter()
        .any(|m| m.contains("preserve_hostname") && m.contains("expected a boolean")));
    let warnings: Vec<_> = d
        .items
        .iter()
        .filter(|x| x.severity == Severity::Warning)
        .map(|x| x.path.clone())
        .collect();
    assert_eq!(warnings, ["packages", "frobnicate"]);
    let (c, d) = read("hostname: web1.example.com\nmanage_etc_hosts: localhost\n");
    assert!(!d.has_errors());
    assert_eq!(c.manage_etc_hosts, Some(ManageEtcHosts::Localhost));
}

#[test]
fn chpasswd_forms() {
    let (c, d) = read("chpasswd:\n  expire: false\n  users:\n    - {name: a, password: $6$salt$hash}\n    - {name: b, password: pw, type: text}\n    - {name: c, type: RANDOM}\n");
    assert!(!d.has_errors(), "{:?}", errors(&d));
    let ch = c.chpasswd.unwrap();
    assert_eq!(ch.expire, Some(false));
    assert_eq!(
        ch.changes.iter().map(|x| x.kind).collect::<Vec<_>>(),
        [PasswordKind::Hash, PasswordKind::Text, PasswordKind::Random]
    );
    let (c, _) = read("chpasswd:\n  list: |\n    root:secret\n    bob:R\n");
    let ch = c.chpasswd.unwrap();
    assert_eq!(ch.changes[1].kind, PasswordKind::Random);
}

#[test]
fn power_state_and_portability() {
    let (c, d) = read("power_state:\n  mode: reboot\n  delay: '+5'\n  condition: test -f /x\n");
    assert!(!d.has_errors());
    let p = c.power_state.unwrap();
    assert_eq!((p.mode, p.delay_minutes), (PowerMode::Reboot, 5));
    let doc = load(
        "bootcmd: [x]\nlicense: {product_key: k}\nusers: [{name: a, uid: 5}]\n",
        0,
    )
    .unwrap()
    .unwrap();
    let map = doc.as_map().unwrap();
    let w: Vec<_> = portability(map, Target::Windows)
        .items
        .into_iter()
        .map(|x| x.path)
        .collect();
    assert_eq!(w, ["bootcmd", "users[0].uid"]);
    let l: Vec<_> = portability(map, Target::Linux)
        .items
        .into_iter()
        .map(|x| x.path)
        .collect();
    assert_eq!(l, ["license"]);
    assert!(portability(map, Target::All).items.is_empty());
}

/// Issue 16: a name that would be a second `chpasswd` line, an option or a field separator
/// is an error naming the key, and it never reaches the typed config (so never a tool).
#[test]
fn hostile_account_names_are_errors_and_dropped() {
    let (c, d) = read(
        "chpasswd:\n  users:\n    - {name: \"nobody:*\\nroot\", password: x, type: text}\n    - {name: bob, password: y, type: text}\n  list: \"-rf:pw\\n\"\nusers:\n  - \"-rf, alice\"\n  - name: \"a b\"\n  - name: carol\n    groups: [adm, \"x:y\"]\n    primary_group: \"..\"\ngroups:\n  - \"g\\nh\"\n  - ok: [\"--help\", dave]\n",
    );
    let errors = errors(&d);
    for (path, name) in [
        ("chpasswd.users[0].name", "'nobody:*\\nroot'"),
        ("chpasswd.list[0]", "'-rf'"),
        ("users[0]", "'-rf'"),
        ("users[1].name", "'a b'"),
        ("users[2].groups", "'x:y'"),
        ("users[2].primary_group", "'..'"),
        ("groups[0]", "'g\\nh'"),
        ("groups[1].ok", "'--help'"),
    ] {
        let wanted = format!("{name} is not a valid user or group name");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("error: {path} (")) && e.contains(&wanted)),
            "{path}: {wanted}\nnot in {errors:#?}"
        );
    }
    let changes = &c.chpasswd.as_ref().unwrap().changes;
    assert_eq!(
        changes.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["bob"]
    );
    let users = c.users.unwrap();
    assert_eq!(users.len(), 2, "{users:?}");
    assert_eq!(users[0], UserEntry::Name("alice".into()));
    let UserEntry::Full(carol) = &users[1] else {
        panic!()
    };
    assert_eq!(carol.groups, ["adm"]);
    assert_eq!(carol.primary_group, None);
    assert_eq!(c.groups.len(), 1);
    assert_eq!(c.groups[0].members, ["dave"]);
}

/// Issue 23 (2): cloud-init writes an empty file for an entry without `content` whatever
/// its encoding (Python's gzip reads no bytes as nothing), and writes the content of an
/// unknown encoding as text (its schema still refuses the encoding).
#[test]
fn write_files_without_content_or_with_an_unknown_encoding_as_cloud_init_writes_them() {
    for encoding in [
        "gz",
        "gzip",
        "gz+b64",
        "gzip+base64",
        "b64",
        "base64",
        "text/plain",
    ] {
        let (c, d) = read(&format!(
            "write_files:\n  - path: /a\n    encoding: {encoding}\n"
        ));
        assert!(errors(&d).is_empty(), "{encoding}: {:?}", errors(&d));
        assert_eq!(c.write_files[0].content, b"", "{encoding}");
        let (c, _) = read(&format!(
            "write_files:\n  - path: /a\n    encoding: {encoding}\n    content: ''\n"
        ));
        assert_eq!(c.write_files[0].content, b"", "{encoding}");
    }
    let (c, d) = read("write_files:\n  - path: /a\n    encoding: zip\n    content: hello\n");
    assert!(errors(&d)
        .iter()
        .any(|m| m.contains("unknown encoding 'zip'")));
    assert_eq!(c.write_files[0].content, b"hello");
    // Broken gzip that is not empty is still refused.
    let (c, d) = read("write_files:\n  - path: /a\n    encoding: gz\n    content: abc\n");
    assert!(errors(&d).iter().any(|m| m.contains("not valid gzip")));
    assert!(c.write_files.is_empty());
}
