//! The floor under the forwarder: a relay that copies bytes between a
//! client's connection and one of its own to the upstream, with no HTTP and
//! no TLS of its own (the client's TLS session runs through it to the
//! upstream). All it adds to a direct request is one more loopback hop
//! each way and a process's wake-ups, what any proxy in the path adds
//! before it reads a single header.

use std::net::SocketAddr;

use tokio::net::TcpStream;

/// A running relay to the upstream at `to`.
pub struct Relay {
    pub addr: SocketAddr,
}

impl Relay {
    pub fn start(to: SocketAddr) -> Self {
        let addr = super::loopback_server(move |mut client| async move {
            let Ok(mut upstream) = TcpStream::connect(to).await else { return };
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
        Relay { addr }
    }
}
