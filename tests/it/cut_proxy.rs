//! A loopback TCP proxy that cuts LDAP connections halfway: it listens on 127.0.0.1:0, forwards
//! each client connection to an upstream address both ways, and drops both sides of a
//! connection once the upstream has sent the client N complete LDAP messages.
//!
//! Messages are counted by their BER framing (tag 0x30, then the length octets, short or long
//! form), not by timing: the cut is at the same message on every run, with no sleeps. The
//! client gets exactly the first N messages, then end of stream. Plain LDAP only (TLS traffic is
//! not BER at this level).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A running proxy; stops accepting and closes its open connections on drop.
pub struct CutProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

/// What the accept thread and the connection threads share with the handle.
struct Shared {
    stop: AtomicBool,
    /// Connections accepted.
    connections: AtomicUsize,
    /// Connections cut after N messages.
    cuts: AtomicUsize,
    /// The most messages the upstream sent on one connection.
    most: AtomicUsize,
    /// Messages the upstream sent on all connections.
    total: AtomicUsize,
    /// Every socket opened, to shut them all down on drop.
    sockets: Mutex<Vec<TcpStream>>,
}

impl CutProxy {
    /// Starts a proxy in front of `upstream` that cuts every connection after the upstream's
    /// `after`-th complete message to the client.
    pub fn start(upstream: SocketAddr, after: usize) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            cuts: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            sockets: Mutex::new(Vec::new()),
        });
        let accept_shared = shared.clone();
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                accept_shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = accept_shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(client, upstream, after, &shared);
                });
            }
        });
        CutProxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The proxy's address (127.0.0.1 and a port the system chose).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ldap://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("ldap://{}", self.addr)
    }

    /// How many connections the proxy accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many connections it cut after N messages (the others ended on their own).
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// The most complete messages the upstream sent on one connection (a proxy that never cuts
    /// measures how many messages a whole read takes).
    pub fn most_messages(&self) -> usize {
        self.shared.most.load(Ordering::SeqCst)
    }

    /// The complete messages the upstream sent on all connections so far.
    pub fn messages(&self) -> usize {
        self.shared.total.load(Ordering::SeqCst)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for socket in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Forwards one connection until either side ends it or the upstream's `after`-th message.
fn serve(client: TcpStream, upstream: SocketAddr, after: usize, shared: &Shared) -> io::Result<()> {
    let server = match TcpStream::connect(upstream) {
        Ok(server) => server,
        Err(e) => {
            let _ = client.shutdown(Shutdown::Both);
            return Err(e);
        }
    };
    {
        let mut sockets = shared.sockets.lock().unwrap();
        sockets.push(client.try_clone()?);
        sockets.push(server.try_clone()?);
    }
    // Client to server: plain copy; its end closes the server's write side.
    let (mut from_client, mut to_server) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || {
        let _ = io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });

    // Server to client: whole messages only, counted.
    let (mut from_server, mut to_client) = (server.try_clone()?, client.try_clone()?);
    let mut pending: Vec<u8> = Vec::new();
    let mut sent = 0usize;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = from_server.read(&mut chunk)?;
        if n == 0 {
            // The server closed: pass on what is left and close the client's read side.
            to_client.write_all(&pending)?;
            let _ = to_client.shutdown(Shutdown::Write);
            return Ok(());
        }
        pending.extend_from_slice(&chunk[..n]);
        let mut complete = 0;
        while let Some(len) = message_len(&pending[complete..])? {
            complete += len;
            sent += 1;
            shared.most.fetch_max(sent, Ordering::SeqCst);
            shared.total.fetch_add(1, Ordering::SeqCst);
            if sent == after {
                to_client.write_all(&pending[..complete])?;
                shared.cuts.fetch_add(1, Ordering::SeqCst);
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        to_client.write_all(&pending[..complete])?;
        pending.drain(..complete);
    }
}

/// The length of the complete BER-framed LDAP message at the start of `buf` (tag 0x30, definite
/// length), `None` while it is incomplete.
pub fn message_len(buf: &[u8]) -> io::Result<Option<usize>> {
    let bad = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidData, what.to_owned()));
    let (Some(&tag), Some(&first)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if tag != 0x30 {
        return bad("an LDAP message starts with the SEQUENCE tag 0x30");
    }
    let (header, content) = if first < 0x80 {
        (2, first as usize)
    } else {
        let octets = (first & 0x7f) as usize;
        if octets == 0 || octets > 4 {
            return bad("LDAP uses definite lengths of at most 4 octets");
        }
        let Some(bytes) = buf.get(2..2 + octets) else {
            return Ok(None);
        };
        let content = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (2 + octets, content)
    };
    let total = header + content;
    Ok((buf.len() >= total).then_some(total))
}

/// A fake LDAP message: tag 0x30, the length in the given form, then `content` bytes of `fill`.
fn framed(content: usize, long_octets: usize, fill: u8) -> Vec<u8> {
    let mut out = vec![0x30];
    if long_octets == 0 {
        assert!(content < 0x80);
        out.push(content as u8);
    } else {
        out.push(0x80 | long_octets as u8);
        for i in (0..long_octets).rev() {
            out.push((content >> (8 * i)) as u8);
        }
    }
    out.extend(std::iter::repeat_n(fill, content));
    out
}

/// An upstream that reads `expect` bytes, answers with `messages` (written in odd-sized
/// pieces), then reads until the proxy closes the connection: returns the request, and whether
/// the connection was closed (end of stream or reset) rather than left open.
fn fake_upstream(expect: usize, messages: Vec<u8>) -> (SocketAddr, JoinHandle<(Vec<u8>, bool)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        // A guard against a hang, not a synchronisation: the proxy closes at once.
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut request = vec![0u8; expect];
        socket.read_exact(&mut request).unwrap();
        for piece in messages.chunks(7) {
            if socket.write_all(piece).is_err() {
                break;
            }
        }
        let mut rest = Vec::new();
        let ended = match socket.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        (request, ended)
    });
    (addr, handle)
}

#[test]
fn cut_proxy_parses_ber_lengths() {
    assert_eq!(message_len(&[]).unwrap(), None);
    assert_eq!(message_len(&[0x30]).unwrap(), None);
    assert_eq!(message_len(&[0x30, 0x00]).unwrap(), Some(2));
    assert_eq!(message_len(&[0x30, 0x02, 0x01]).unwrap(), None);
    assert_eq!(
        message_len(&[0x30, 0x02, 0x01, 0x02, 0x30]).unwrap(),
        Some(4)
    );
    assert_eq!(message_len(&[0x30, 0x82, 0x01]).unwrap(), None);
    let long = framed(300, 2, 7);
    assert_eq!(message_len(&long).unwrap(), Some(304));
    assert_eq!(message_len(&long[..303]).unwrap(), None);
    assert_eq!(message_len(&framed(5, 1, 0)).unwrap(), Some(8));
    assert!(message_len(&[0x04, 0x00]).is_err());
    assert!(message_len(&[0x30, 0x80]).is_err(), "indefinite length");
}

#[test]
fn cut_proxy_forwards_exactly_n_messages_then_drops_both_sides() {
    let messages = [
        framed(10, 0, 1),
        framed(200, 1, 2),
        framed(70_000, 3, 3),
        framed(0, 0, 4),
        framed(1000, 2, 5),
    ];
    let all: Vec<u8> = messages.concat();
    let (upstream, server) = fake_upstream(5, all.clone());
    let proxy = CutProxy::start(upstream, 3);
    let mut client = TcpStream::connect(proxy.addr()).unwrap();
    client.write_all(b"hello").unwrap();
    let mut received = Vec::new();
    // The proxy closes the connection: end of stream, or a reset if bytes were still in flight.
    let _ = client.read_to_end(&mut received);
    assert_eq!(
        received,
        messages[..3].concat(),
        "exactly three whole messages"
    );
    let (request, ended) = server.join().unwrap();
    assert_eq!(request, b"hello", "the client's bytes reach the upstream");
    assert!(ended, "the upstream's connection is closed too");
    assert_eq!((proxy.connections(), proxy.cuts()), (1, 1));
    assert_eq!(proxy.most_messages(), 3);
}

#[test]
fn cut_proxy_passes_everything_when_n_is_not_reached() {
    let all: Vec<u8> = [framed(3, 0, 1), framed(130, 1, 2)].concat();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let answer = all.clone();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut request = [0u8; 2];
        socket.read_exact(&mut request).unwrap();
        socket.write_all(&answer).unwrap();
        // Closes: the proxy passes the end of stream on.
    });
    let proxy = CutProxy::start(upstream, 10);
    let mut client = TcpStream::connect(proxy.url().trim_start_matches("ldap://")).unwrap();
    client.write_all(b"hi").unwrap();
    let mut received = Vec::new();
    client.read_to_end(&mut received).unwrap();
    server.join().unwrap();
    assert_eq!(received, all);
    assert_eq!((proxy.connections(), proxy.cuts()), (1, 0));
    assert_eq!((proxy.most_messages(), proxy.messages()), (2, 2));
}
