//! A throwaway OpenLDAP server per test: `slapd` as a foreground child process on a free
//! 127.0.0.1 port, with a generated `slapd.conf` and an mdb database in a temporary folder,
//! loaded with `slapadd` before it starts and killed (SIGKILL, then reaped) when dropped.
//!
//! The directory is `dc=example,dc=com` with the service account
//! `cn=idpsync,ou=services,dc=example,dc=com`, which is not the root DN, so the server's limits
//! apply to it: a size limit of 500 entries, soft and hard, that only a paged search may exceed
//! ([`LIMITS`]). The syncprov overlay keeps `contextCSN` on the suffix entry, and `slapadd -w`
//! writes its first value. [`Slapd::start_tls`] adds a generated CA and server certificate,
//! ldaps on a second port and StartTLS on the plain one.
//!
//! Needs `slapd`, `slapadd` and `ldap-utils` (`scripts/test` installs them), and `openssl` for TLS.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The suffix of every instance.
pub const BASE_DN: &str = "dc=example,dc=com";
/// The non-root service account the IdP binds as.
pub const BIND_DN: &str = "cn=idpsync,ou=services,dc=example,dc=com";
/// The service account's password.
pub const BIND_PASSWORD: &str = "idpsync-secret";
/// The root DN (no limits apply to it).
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=com";
/// The root DN's password.
pub const ROOT_PASSWORD: &str = "admin-secret";

/// The `limits` line for every bind but the root DN: a search returns at most 500 entries (soft
/// and hard limit), except a paged search, whose total is unlimited (`size.prtotal` defaults to
/// the hard limit, which would cap the paged search at 500 too).
pub const LIMITS: &str = "limits * size.soft=500 size.hard=500 size.prtotal=unlimited";

/// Where `slapd` may live when it is not on `PATH` (it is in `/usr/sbin` on Debian).
const SLAPD_PATHS: &[&str] = &[
    "/usr/sbin/slapd",
    "/usr/libexec/slapd",
    "/usr/local/libexec/slapd",
];
const SCHEMA_DIRS: &[&str] = &["/etc/ldap/schema", "/etc/openldap/schema"];
const MODULE_DIRS: &[&str] = &["/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap"];

/// How long a fresh instance may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The pause between two readiness probes.
const POLL: Duration = Duration::from_millis(10);
/// Attempts at a free port before giving up (another process may take a released port).
const PORT_ATTEMPTS: usize = 8;

/// A running `slapd`, killed and reaped on drop.
pub struct Slapd {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    ldaps_port: Option<u16>,
    /// The suffix, [`BASE_DN`].
    pub base_dn: String,
    /// The non-root service account, [`BIND_DN`].
    pub bind_dn: String,
    /// The service account's password, [`BIND_PASSWORD`].
    pub bind_password: String,
    /// The root DN, [`ROOT_DN`].
    pub root_dn: String,
    /// The root DN's password, [`ROOT_PASSWORD`].
    pub root_password: String,
}

impl Slapd {
    /// Starts an instance holding the base entries (suffix, `ou=services`, the service account)
    /// followed by `ldif` (entries only, parents first), and waits until it answers.
    pub fn start(ldif: &str) -> Slapd {
        Slapd::launch(ldif, false, free_port)
    }

    /// Like [`Slapd::start`], with TLS: a generated CA ([`Slapd::ca_file`]) and a server
    /// certificate it signed for `IP:127.0.0.1` and `DNS:localhost`, ldaps on a second port
    /// ([`Slapd::ldaps_url`]) and StartTLS on the plain one.
    pub fn start_tls(ldif: &str) -> Slapd {
        Slapd::launch(ldif, true, free_port)
    }

    /// Starts an instance on ports from `next_port` (tried in turn while slapd fails to bind).
    fn launch(ldif: &str, tls: bool, mut next_port: impl FnMut() -> u16) -> Slapd {
        let dir = tempfile::Builder::new().prefix("slapd-").tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        if tls {
            make_certificates(&dir.path().join("tls"));
        }
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, config(dir.path(), tls)).unwrap();
        let data = dir.path().join("data.ldif");
        std::fs::write(&data, format!("{}{ldif}", base_ldif())).unwrap();
        // -q: no consistency checks (the data is ours, and it is fast); -w: write contextCSN.
        let mut slapadd = Command::new(sibling_exe("slapadd"));
        slapadd
            .arg("-q")
            .arg("-w")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&data);
        run_ok(slapadd, "", "slapadd");

        for _ in 0..PORT_ATTEMPTS {
            let port = next_port();
            let ldaps_port = if tls {
                match next_port() {
                    p if p == port => continue,
                    p => Some(p),
                }
            } else {
                None
            };
            let mut urls = format!("ldap://127.0.0.1:{port}/");
            if let Some(p) = ldaps_port {
                urls.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
            }
            let log = std::fs::File::create(dir.path().join("slapd.log")).unwrap();
            let mut command = Command::new(slapd_exe());
            // -d 0: stay in the foreground (no fork), so the child is slapd itself, logging nothing.
            command
                .arg("-f")
                .arg(&conf)
                .arg("-h")
                .arg(&urls)
                .arg("-d")
                .arg("0")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            die_with_parent(&mut command);
            let mut child = command.spawn().expect("slapd starts");
            if wait_ready(&mut child, port) {
                return Slapd {
                    dir,
                    child,
                    port,
                    ldaps_port,
                    base_dn: BASE_DN.into(),
                    bind_dn: BIND_DN.into(),
                    bind_password: BIND_PASSWORD.into(),
                    root_dn: ROOT_DN.into(),
                    root_password: ROOT_PASSWORD.into(),
                };
            }
            // slapd exited before answering: slapadd accepted the configuration, so a port was
            // taken between its release and slapd's bind. Try other ports.
        }
        let test = Command::new(slapd_exe())
            .arg("-Tt")
            .arg("-f")
            .arg(&conf)
            .output()
            .unwrap();
        panic!(
            "slapd did not start on any of {PORT_ATTEMPTS} free ports; slapd -Tt says:\n{}{}",
            String::from_utf8_lossy(&test.stdout),
            String::from_utf8_lossy(&test.stderr)
        );
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// The plain (ldap://, StartTLS) port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ldaps://127.0.0.1:PORT` of an instance started with [`Slapd::start_tls`].
    pub fn ldaps_url(&self) -> String {
        let port = self
            .ldaps_port
            .expect("ldaps_url needs an instance from Slapd::start_tls");
        format!("ldaps://127.0.0.1:{port}")
    }

    /// The PEM file of the CA that signed the server certificate ([`Slapd::start_tls`] only).
    pub fn ca_file(&self) -> PathBuf {
        assert!(
            self.ldaps_port.is_some(),
            "ca_file needs an instance from Slapd::start_tls"
        );
        self.dir.path().join("tls/ca.pem")
    }

    /// Applies `ldif` (change records, `changetype: modify` etc.) with `ldapmodify` as the root
    /// DN; panics when it fails.
    pub fn modify(&self, ldif: &str) {
        self.ldapmodify(&[], ldif, "ldapmodify");
    }

    /// Adds the entries of `ldif` with `ldapadd` (`ldapmodify -a`) as the root DN; panics when
    /// it fails.
    pub fn add(&self, ldif: &str) {
        self.ldapmodify(&["-a"], ldif, "ldapadd");
    }

    /// `ldapmodify` as the root DN with `extra` arguments, fed `ldif`.
    fn ldapmodify(&self, extra: &[&str], ldif: &str, what: &str) {
        let mut command = Command::new("ldapmodify");
        command.args(extra).args([
            "-x",
            "-H",
            &self.url(),
            "-D",
            &self.root_dn,
            "-w",
            &self.root_password,
        ]);
        run_ok(command, ldif, what);
    }

    /// `ldapsearch` bound as the service account, with `args` after the connection options
    /// (e.g. `-b BASE FILTER ATTRS`, `-E pr=100/noprompt`). Returns the exit status and the
    /// DNs of the entries it printed.
    pub fn search(&self, args: &[&str]) -> (i32, Vec<String>) {
        let mut command = Command::new("ldapsearch");
        command
            .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &self.url()])
            .args(["-D", &self.bind_dn, "-w", &self.bind_password])
            .args(args);
        let out = run(&mut command, "");
        let dns = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("dn: "))
            .map(str::to_owned)
            .collect();
        (out.status.code().unwrap_or(-1), dns)
    }

    /// One attribute's values on one entry, read as the root DN (`-s base`); `attr` may be
    /// operational (`contextCSN`, `entryUUID`).
    pub fn values(&self, dn: &str, attr: &str) -> Vec<String> {
        let mut command = Command::new("ldapsearch");
        command
            .args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &self.url()])
            .args(["-D", &self.root_dn, "-w", &self.root_password])
            .args(["-s", "base", "-b", dn, "(objectClass=*)", attr]);
        let out = run_ok(command, "", "ldapsearch");
        let prefix = format!("{attr}: ");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(str::to_owned)
            .collect()
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        // SIGKILL: a graceful stop takes seconds, and the database is thrown away anyway.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The entries every instance holds before the caller's LDIF: the suffix, `ou=services` and the
/// service account.
fn base_ldif() -> String {
    format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=services,{BASE_DN}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: {BIND_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n\
         cn: idpsync\nuserPassword: {BIND_PASSWORD}\n\n"
    )
}

/// The generated `slapd.conf` for the instance in `dir`.
fn config(dir: &Path, tls: bool) -> String {
    let schema = first_dir(SCHEMA_DIRS, "core.schema");
    let mut conf = String::new();
    for name in ["core", "cosine", "inetorgperson", "nis"] {
        conf.push_str(&format!(
            "include \"{}\"\n",
            schema.join(format!("{name}.schema")).display()
        ));
    }
    // Debian builds back_mdb and syncprov as modules; other builds may link them in.
    if let Some(modules) = MODULE_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("back_mdb.la").exists() || d.join("back_mdb.so").exists())
    {
        conf.push_str(&format!(
            "modulepath \"{}\"\nmoduleload back_mdb\n",
            modules.display()
        ));
        if modules.join("syncprov.la").exists() || modules.join("syncprov.so").exists() {
            conf.push_str("moduleload syncprov\n");
        }
    }
    if tls {
        let tls = dir.join("tls");
        conf.push_str(&format!(
            "TLSCACertificateFile \"{}\"\nTLSCertificateFile \"{}\"\nTLSCertificateKeyFile \"{}\"\n",
            tls.join("ca.pem").display(),
            tls.join("cert.pem").display(),
            tls.join("key.pem").display()
        ));
    }
    conf.push_str(&format!(
        "\ndatabase mdb\n\
         maxsize 67108864\n\
         dbnosync\n\
         suffix \"{BASE_DN}\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw {ROOT_PASSWORD}\n\
         directory \"{}\"\n\
         index objectClass eq\n\
         index entryCSN,entryUUID eq\n\
         {LIMITS}\n\
         access to attrs=userPassword by self write by anonymous auth by * none\n\
         access to * by * read\n\
         overlay syncprov\n\
         syncprov-checkpoint 100 10\n",
        dir.join("db").display()
    ));
    conf
}

/// A CA (`ca.pem`) and a server certificate it signed (`cert.pem`, `key.pem`) for 127.0.0.1, in
/// `dir`. Two certificates because rustls refuses a self-signed certificate that is its own CA.
pub fn make_certificates(dir: &Path) {
    std::fs::create_dir(dir).unwrap();
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "2",
                "-subj",
                "/CN=idpsync test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let mut command = Command::new("openssl");
        command.current_dir(dir).args(&args);
        run_ok(command, "", "openssl (needed for the TLS tests)");
    }
}

/// Waits until the server on `port` answers an LDAP request. False when it exited first.
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if answers_bind(port) {
            return true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slapd on port {port} did not answer within {READY_TIMEOUT:?}");
        }
        std::thread::sleep(POLL);
    }
}

/// Whether an anonymous simple bind on `port` gets an LDAP response.
fn answers_bind(port: u16) -> bool {
    // BindRequest, message id 1: version 3, empty name, empty simple password.
    const BIND: [u8; 14] = [
        0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00,
    ];
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    // Short: a port taken by another program accepts and never answers; the caller polls again.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(250)));
    let mut reply = [0u8; 2];
    stream.write_all(&BIND).is_ok() && stream.read_exact(&mut reply).is_ok() && reply[0] == 0x30
}

/// Makes the child die with SIGKILL if the thread that started it ends without dropping the
/// [`Slapd`] (a test binary killed by a timeout), so no server outlives the tests.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::ffi::{c_int, c_ulong};
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn prctl(option: c_int, ...) -> c_int;
    }
    const PR_SET_PDEATHSIG: c_int = 1;
    const SIGKILL: c_ulong = 9;
    // SAFETY: prctl is a plain system call, async-signal-safe between fork and exec.
    unsafe {
        command.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// The first of `candidates` holding `probe`.
fn first_dir(candidates: &[&str], probe: &str) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.join(probe).exists())
        .unwrap_or_else(|| {
            panic!("none of {candidates:?} holds {probe}; install slapd (scripts/test does)")
        })
}

/// The `slapd` executable: on `PATH` or in a usual place.
fn slapd_exe() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("slapd").is_file() {
                return dir.join("slapd");
            }
        }
    }
    SLAPD_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect(
            "slapd is not installed; scripts/test installs it (apt-get install slapd ldap-utils)",
        )
}

/// A tool installed beside `slapd` (Debian puts `slapadd` in /usr/sbin too).
fn sibling_exe(name: &str) -> PathBuf {
    let beside = slapd_exe().with_file_name(name);
    if beside.exists() {
        beside
    } else {
        PathBuf::from(name)
    }
}

/// A port that was free a moment ago (the listener is released before returning).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `command` with `stdin`, panicking with both streams when it fails.
fn run_ok(mut command: Command, stdin: &str, what: &str) -> Output {
    let out = run(&mut command, stdin);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `command` with `stdin` to completion.
fn run(command: &mut Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    // Written from another thread so a large input cannot deadlock against a full output pipe.
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// `n` users under `ou=people`.
fn people(n: usize) -> String {
    let mut ldif =
        format!("dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n\n");
    for i in 0..n {
        ldif.push_str(&format!(
                "dn: uid=p{i:04},ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nuid: p{i:04}\ncn: P {i}\nsn: P\n\n"
            ));
    }
    ldif
}

#[test]
fn slapd_limits_plain_searches_to_500_and_pages_through_everything() {
    let slapd = Slapd::start(&people(1200));
    let base = format!("ou=people,{BASE_DN}");
    let args = ["-b", &base, "(objectClass=inetOrgPerson)", "1.1"];

    // Without paging: 500 entries, then "Size limit exceeded" (4).
    let (code, dns) = slapd.search(&args);
    assert_eq!((code, dns.len()), (4, 500));
    // Asking for more does not lift the hard limit.
    let (code, dns) = slapd.search(&[&["-z", "1000"][..], &args].concat());
    assert_eq!((code, dns.len()), (4, 500));
    // Paged, with pages below, at and above the limit: everything.
    for page in ["pr=200/noprompt", "pr=500/noprompt", "pr=1000/noprompt"] {
        let (code, dns) = slapd.search(&[&["-E", page][..], &args].concat());
        assert_eq!((code, dns.len()), (0, 1200), "{page}");
    }
    // The root DN is not limited (the limits are the service account's, not the data's).
    let out = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &slapd.url(),
            "-D",
            ROOT_DN,
            "-w",
            ROOT_PASSWORD,
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches("dn: ").count(),
        1200
    );
}

#[test]
fn slapd_bind_refused_with_a_wrong_password() {
    let slapd = Slapd::start("");
    let out = Command::new("ldapsearch")
        .args(["-x", "-H", &slapd.url(), "-D", BIND_DN, "-w", "wrong"])
        .args(["-b", BASE_DN, "-s", "base"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(49), "invalid credentials");
    let (code, dns) = slapd.search(&["-b", BASE_DN, "-s", "base"]);
    assert_eq!((code, dns), (0, vec![BASE_DN.to_owned()]));
}

#[test]
fn slapd_keeps_context_csn_and_entry_uuid() {
    let slapd = Slapd::start(&people(2));
    let before = slapd.values(&slapd.base_dn, "contextCSN");
    assert_eq!(before.len(), 1, "slapadd -w writes contextCSN");
    let dn = format!("uid=p0001,ou=people,{BASE_DN}");
    assert_eq!(slapd.values(&dn, "entryUUID").len(), 1);
    slapd.modify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: sn\nsn: Q\n"
    ));
    let after = slapd.values(BASE_DN, "contextCSN");
    assert_eq!(after.len(), 1);
    assert_ne!(before, after, "syncprov moves contextCSN on a write");
    assert_eq!(slapd.values(&dn, "sn"), ["Q"]);
    slapd.add(&format!(
        "dn: uid=p0002,ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nuid: p0002\ncn: P 2\nsn: P\n"
    ));
    assert_ne!(slapd.values(BASE_DN, "contextCSN"), after, "and on an add");
    // The naming context the unchanged check starts from.
    assert_eq!(slapd.values("", "namingContexts"), [BASE_DN]);
}

#[test]
fn slapd_instances_run_side_by_side_and_die_on_drop() {
    let a = Slapd::start("");
    let b = Slapd::start("");
    assert_ne!(a.port(), b.port());
    let (pid, port) = (a.pid(), a.port());
    drop(a);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "slapd {pid} was killed and reaped"
    );
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(answers_bind(b.port()));
}

#[test]
fn slapd_tls_serves_ldaps_and_starttls_with_the_generated_ca() {
    let slapd = Slapd::start_tls("");
    let ca = slapd.ca_file();
    let ca = ca.to_str().unwrap();
    let probe = |url: &str, extra: &[&str], ca: Option<&str>| {
        let mut command = Command::new("ldapsearch");
        command
            .args(["-x", "-LLL", "-H", url, "-b", BASE_DN, "-s", "base", "1.1"])
            .args(extra)
            .env_clear()
            .env("LDAPTLS_REQCERT", "demand");
        if let Some(ca) = ca {
            command.env("LDAPTLS_CACERT", ca);
        }
        command.output().unwrap().status.code()
    };
    assert_eq!(probe(&slapd.ldaps_url(), &[], Some(ca)), Some(0));
    assert_eq!(probe(&slapd.url(), &["-ZZ"], Some(ca)), Some(0));
    // Without the CA the certificate is not trusted.
    assert_ne!(probe(&slapd.ldaps_url(), &[], None), Some(0));
    assert_ne!(probe(&slapd.url(), &["-ZZ"], None), Some(0));
    // The plain port still answers plain LDAP.
    assert_eq!(probe(&slapd.url(), &[], None), Some(0));
}

#[test]
fn slapd_moves_to_another_port_when_its_port_is_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let mut offered = vec![taken_port];
    let slapd = Slapd::launch("", false, || {
        let port = if offered.len() == 1 {
            taken_port
        } else {
            free_port()
        };
        offered.push(port);
        port
    });
    assert_ne!(slapd.port(), taken_port);
    assert!(
        offered.len() >= 3,
        "the taken port was tried first: {offered:?}"
    );
    assert!(answers_bind(slapd.port()));
}
