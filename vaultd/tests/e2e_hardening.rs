//! The daemon refuses to start on key, configuration or data files that others can read.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::Sandbox;

#[test]
fn a_server_key_readable_by_others_stops_the_start() {
    let sb = Sandbox::new();
    // First start creates the development directory; stop it cleanly.
    let daemon = sb.start();
    assert!(daemon.terminate().success());
    let key = sb.pki().server_key();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let Err(err) = sb.daemon().try_start() else {
        panic!("vaultd started with a server key readable by others")
    };
    assert!(
        err.contains("chmod 600") && err.contains("server.key"),
        "{err}"
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let data = sb.dev_dir().join("data").join("secrets.db");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let Err(err) = sb.daemon().try_start() else {
        panic!("vaultd started with a store readable by its group")
    };
    assert!(err.contains("secrets.db"), "{err}");
}
