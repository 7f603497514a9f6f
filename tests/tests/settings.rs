//! The machine's settings end to end (SPEC §13, §16, §19): `starlane serve --help` shows every
//! setting with its environment variable and its place in `starlane.toml`, never a secret;
//! and a bad value stops `serve` before anything starts, naming where it came from — the
//! flag, the variable or the line of `starlane.toml`.

use std::path::Path;
use std::process::{Command, Output};

use cosmic_hyperspace::control::{ENV_HOME, ENV_SECRET_KEY, SETTINGS_FILE, Setting};
use tests::{starlane_bin, stderr, stdout};

/// `starlane ARGS` with only `envs` in its environment (and `PATH`).
fn starlane_alone(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(starlane_bin())
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run starlane: {e}"))
}

#[test]
fn serve_help_shows_every_setting_with_its_variable_and_no_secret() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let password = "hunter2-never-shown";
    let registry = format!("postgres://starlane:{password}@db:5432/cosmos");
    let nats = format!("nats://bus:{password}@nats-1:4222");
    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let out = starlane_alone(
        dir.path(),
        &["serve", "--help"],
        &[
            ("STARLANE_REGISTRY", &registry),
            ("STARLANE_NATS", &nats),
            ("STARLANE_SECRET_KEY", key),
            ("STARLANE_HTTP", "127.0.0.1:9999"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let help = stdout(&out);
    for setting in Setting::ALL {
        let line = help
            .lines()
            .find(|line| {
                line.trim_start()
                    .starts_with(&format!("{} <", setting.flag))
            })
            .unwrap_or_else(|| panic!("no {} in the help:\n{help}", setting.flag));
        assert!(
            line.contains(&format!("[env: {}", setting.env)),
            "{} does not show {}: {line}",
            setting.flag,
            setting.env
        );
        assert!(
            line.contains(&format!("starlane.toml: {}", setting.file_name())),
            "{} does not show its key in starlane.toml: {line}",
            setting.flag
        );
    }
    for env in [ENV_HOME, ENV_SECRET_KEY] {
        assert!(help.contains(env), "no {env} in the help:\n{help}");
    }
    // Values from the environment show where they cannot hurt, never where they might.
    assert!(
        help.contains("[env: STARLANE_HTTP=127.0.0.1:9999]"),
        "{help}"
    );
    assert!(!help.contains(password), "{help}");
    assert!(!help.contains(&key[..16]), "{help}");
}

#[test]
fn a_bad_setting_stops_serve_naming_its_flag_its_variable_or_its_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap_or_else(|e| panic!("{e}"));
    let home_var = home
        .to_str()
        .unwrap_or_else(|| panic!("a path that is not UTF-8"));
    let refused = |args: &[&str], envs: &[(&str, &str)]| {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let mut vars = vec![(ENV_HOME, home_var)];
        vars.extend_from_slice(envs);
        let out = starlane_alone(dir.path(), &all, &vars);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} {envs:?}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out), "", "nothing was served");
        stderr(&out)
    };

    // The variable, as the variable: clap reads it too, for the help, but the error names it.
    assert_eq!(
        refused(&[], &[("STARLANE_GRACE", "soon")]),
        "error: STARLANE_GRACE = 'soon' is not a number of seconds: write a whole number from 0 \
         to 3600\n"
    );
    // The flag beats the variable, and is named as the flag.
    assert_eq!(
        refused(
            &["--http", "localhost"],
            &[("STARLANE_HTTP", "127.0.0.1:0")]
        ),
        "error: --http = 'localhost' is not a listen address: write IP:PORT, e.g. \
         127.0.0.1:8080\n"
    );
    assert_eq!(
        refused(&["--log-format=xml"], &[("STARLANE_LOG_FORMAT", "json")]),
        "error: --log-format = 'xml' is not a log format: write text or json\n"
    );

    // starlane.toml: a value by its line and key, a key that is none by the file and line.
    let file = home.join(SETTINGS_FILE);
    std::fs::write(&file, "stars = 2\n\n[host]\nguest-queue = 0\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        refused(&[], &[]),
        "error: starlane.toml line 4 ([host] guest-queue) = '0' is not a number of calls: write \
         a whole number from 1 to 65536\n"
    );
    std::fs::write(&file, "[http]\nlisten = \"127.0.0.1:0\"\nport = 8080\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        refused(&[], &[]),
        format!(
            "error: {}:3: unknown setting 'port' in [http]: [http] takes listen, wait, max-body, \
             read-timeout, default-space\n",
            file.display()
        )
    );
    // A password in the file is not shown in the error either.
    std::fs::write(&file, "[registry]\nurl = \"mysql://root:hunter2@db/x\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = refused(&[], &[]);
    assert!(
        err.starts_with(
            "error: starlane.toml line 2 ([registry] url) = 'mysql://root:***@db/x' is not a \
             registry"
        ),
        "{err}"
    );
}
