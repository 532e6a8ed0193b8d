//! The floor under the forwarder: a relay that copies bytes between a
//! client's connection and one of its own to the upstream, with no HTTP and
//! no TLS of its own (the client's TLS session runs through it to the
//! upstream). All it adds to a direct request is one more loopback hop
//! each way and a process's wake-ups, what any proxy in the path adds
//! before it reads a single header.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// A running relay to the upstream at `to`.
pub struct Relay {
    pub addr: SocketAddr,
}

impl Relay {
    pub fn start(to: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((mut client, _)) = listener.accept().await else { continue };
                    tokio::spawn(async move {
                        let Ok(mut upstream) = TcpStream::connect(to).await else { return };
                        let _ = client.set_nodelay(true);
                        let _ = upstream.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    });
                }
            });
        });
        Relay { addr }
    }
}
