//! The card's end of vpcd's socket protocol: each message is a 2-byte big-endian length and
//! that many bytes; a 1-byte message is a control command (power off/on, reset, get ATR), a
//! longer one an APDU, answered with the response APDU. (The vpicc crate speaks the same, but
//! keeps its socket to itself: the fixture needs a handle to pull the card out.)

use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use crate::card::YubiKeyCard;

const POWER_OFF: u8 = 0;
const POWER_ON: u8 = 1;
const RESET: u8 = 2;
const GET_ATR: u8 = 4;

/// Serves vpcd on `stream` until the socket closes (the card is pulled out) or fails;
/// counts the PINs sent in `verifications`.
pub(crate) fn serve(
    mut stream: TcpStream,
    serial: u32,
    verifications: Arc<AtomicUsize>,
) -> io::Result<()> {
    crate::virt::with_piv(|piv| {
        let mut card = YubiKeyCard::new(piv, serial, verifications);
        loop {
            let mut len = [0; 2];
            quick_ack(&stream);
            match stream.read_exact(&mut len) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                other => other?,
            }
            let mut message = vec![0; usize::from(u16::from_be_bytes(len))];
            quick_ack(&stream);
            stream.read_exact(&mut message)?;
            let response = match message.as_slice() {
                [POWER_OFF] => {
                    card.power_off();
                    continue;
                }
                [POWER_ON] | [RESET] => {
                    card.power_off();
                    continue;
                }
                [GET_ATR] => card.atr().to_vec(),
                [other] => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("unknown vpcd control command {other:#04x}"),
                    ));
                }
                apdu => card.apdu(apdu),
            };
            let len = u16::try_from(response.len())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "response too long"))?;
            let mut framed = len.to_be_bytes().to_vec();
            framed.extend_from_slice(&response);
            stream.write_all(&framed)?;
        }
    })
}

/// vpcd writes a message's length and its bytes in two sends with Nagle's algorithm on: the
/// bytes wait for the ACK of the length, which Linux delays by up to 40 ms. Acknowledging at
/// once makes an APDU take microseconds instead. The flag does not stick (the kernel goes
/// back to delayed ACKs on its own), so it is set again before every read.
#[cfg(target_os = "linux")]
fn quick_ack(stream: &TcpStream) {
    // Only a speed-up: a socket that refuses it still works.
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_stream: &TcpStream) {}
