//! A no-echo prompt on the controlling terminal.
//!
//! Echo is turned off *before* the prompt is written, so nothing typed after the prompt
//! appears can be echoed (a prompt written first leaves a window in which a fast typist or a
//! script sees its input echoed). The line is read into one fixed, zeroized buffer that never
//! grows, so no copy of it is left behind in freed memory.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::PathBuf;

use envelope::SecretBytes;
use rustix::termios::{self, LocalModes, OptionalActions, Termios};
use zeroize::Zeroizing;

use crate::Error;

/// The longest line a terminal in canonical mode delivers (Linux's N_TTY buffer).
const MAX_LINE: usize = 4096;

/// Writes `prompt` to the controlling terminal with echo off and reads one line (without its
/// line ending) into locked memory.
pub fn read_hidden(prompt: &str) -> Result<SecretBytes, Error> {
    let io_error = |source: io::Error| Error::Io {
        action: "reading a hidden entry from",
        path: PathBuf::from("the terminal"),
        source,
    };
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| Error::NoTerminal)?;
    let echo_off = EchoOff::new(&tty).map_err(io_error)?;
    (&tty).write_all(prompt.as_bytes()).map_err(io_error)?;
    (&tty).flush().map_err(io_error)?;
    let line = read_line(&tty).map_err(io_error);
    drop(echo_off);
    let line = line?;
    Ok(SecretBytes::from_slice(&line)?)
}

/// One line from `tty`, without `\n` or `\r\n`. Longer input than a terminal line is cut
/// by the terminal itself.
fn read_line(mut tty: &File) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_LINE));
    let mut byte = Zeroizing::new([0u8; 1]);
    while line.len() < MAX_LINE {
        match tty.read(&mut byte[..]) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

/// The terminal with echo off (a typed newline is still shown, so the cursor moves on);
/// the settings it found are put back on drop.
struct EchoOff<'a> {
    tty: &'a File,
    saved: Termios,
}

impl<'a> EchoOff<'a> {
    fn new(tty: &'a File) -> io::Result<Self> {
        let saved = termios::tcgetattr(tty)?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        termios::tcsetattr(tty, OptionalActions::Now, &quiet)?;
        Ok(Self { tty, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        // Nothing more can be done if the terminal went away meanwhile.
        let _ = termios::tcsetattr(self.tty, OptionalActions::Now, &self.saved);
    }
}
