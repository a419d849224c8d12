//! `main_in_private_token`, as a benchmark binary uses it: `main` runs in a child process
//! whose SOFTHSM2_CONF names the private token.

use std::env;

/// What this binary calls its one test when a runner (cargo-nextest) asks with `--list`.
const TEST_NAME: &str = "main_runs_in_a_child_with_the_private_token";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        if !args.iter().any(|arg| arg == "--ignored") {
            println!("{TEST_NAME}: test");
        }
        return;
    }
    softhsm_tests::main_in_private_token(|hsm| {
        assert_eq!(
            env::var_os("SOFTHSM2_CONF").as_deref(),
            Some(hsm.conf().as_os_str())
        );
        let output = hsm
            .pkcs11_tool()
            .arg("--list-token-slots")
            .output()
            .expect("run pkcs11-tool");
        let slots = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{slots}");
        assert!(slots.contains("token label        : vault-test"), "{slots}");
        println!(
            "{TEST_NAME}: ok (main ran with token {})",
            hsm.token_label()
        );
    });
}
