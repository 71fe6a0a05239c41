//! A chitchat [`Transport`] over a UDP socket bound beforehand.
//!
//! Chitchat binds its socket inside `spawn_chitchat`, but the node's gossip
//! identity (advertised address included) must be known before that. With a
//! `:0` bind the port is only known once bound, so the socket is bound here
//! first and handed to chitchat as is.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use chitchat::transport::{Socket, Transport, UdpSocket};

/// Hands its one pre-bound socket to the first `open`.
pub(crate) struct BoundUdp {
    socket: Mutex<Option<Box<dyn Socket>>>,
    local_addr: SocketAddr,
}

impl BoundUdp {
    /// Binds `listen` (port 0 picks a free port).
    pub(crate) async fn bind(listen: SocketAddr) -> anyhow::Result<Self> {
        let socket = UdpSocket::open(listen).await?;
        let local_addr = socket.local_addr().context("gossip socket address")?;
        Ok(BoundUdp {
            socket: Mutex::new(Some(Box::new(socket))),
            local_addr,
        })
    }

    /// The address actually bound.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

// `Transport` is an `async_trait`; this is the signature that macro expands
// to, written out to avoid a dependency for one method.
impl Transport for BoundUdp {
    fn open<'life0, 'async_trait>(
        &'life0 self,
        _listen_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Box<dyn Socket>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let socket = self
            .socket
            .lock()
            .map_err(|_| anyhow!("gossip socket lock poisoned"))
            .and_then(|mut slot| {
                slot.take()
                    .ok_or_else(|| anyhow!("the gossip socket was already handed out"))
            });
        Box::pin(std::future::ready(socket))
    }
}
