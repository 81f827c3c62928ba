//! Chapter 11 — building images: the Dockerfile parser, the instructions, layer
//! snapshots, the cache, multi-stage builds, `.dockerignore` and `commit`. See
//! chapters/11-build.md.
//!
//! Every build starts from the harness's busybox rootfs imported as an image, so
//! nothing is pulled. A RUN is a real container on the test host's own network.

mod support;

use std::path::{Path, PathBuf};

use support::{token, TestHost};

/// Imports the test host's busybox rootfs as the image `base-TOKEN:1`.
fn base_image(host: &TestHost) -> String {
    let tarball = host.dir.join("base.tar");
    std::fs::write(&tarball, support::images::tar_of_dir(&host.rootfs)).unwrap();
    let name = format!("base-{}:1", token());
    host.engine(&["import", tarball.to_str().unwrap(), &name])
        .output()
        .assert_success();
    name
}

/// A build context: a directory with `files` (path, contents) and a Dockerfile.
fn context(host: &TestHost, dockerfile: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = host.dir.join(format!("ctx-{}", token()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    for (path, contents) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

/// `build --progress plain --cgroup-parent P [args] DIR`.
fn build(host: &TestHost, dir: &Path, args: &[&str]) -> support::Output {
    host.build(dir, args).output()
}

/// `run --rm --network none IMAGE [args]`: its stdout.
fn run_image(host: &TestHost, image: &str, args: &[&str]) -> String {
    let mut all = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroup-parent",
        &host.cgroup_parent,
        image,
    ];
    all.extend_from_slice(args);
    let out = host.engine(&all).output();
    out.assert_success();
    out.stdout
}

fn inspect_config(host: &TestHost, image: &str) -> serde_json::Value {
    let out = host.engine(&["image", "inspect", image]).output();
    out.assert_success();
    let all: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect is not JSON ({e})\n{out}"));
    all[0].clone()
}

/// How many steps the plain progress said came from the cache.
fn cached_steps(out: &support::Output) -> usize {
    out.stderr
        .lines()
        .filter(|l| l.ends_with(" CACHED"))
        .count()
}

#[test]
fn each_instruction_shows_in_the_built_image() {
    let host = TestHost::new();
    let base = base_image(&host);
    let said = token();
    let name = format!("built-{}:1", token());
    let dockerfile = format!(
        r#"# a comment
ARG BASE={base}
FROM $BASE
ARG GREETING=hello
ENV SAID={said} \
    GREETING_COPY=${{GREETING}}-world
LABEL org.example.token="{said}" "two words"=yes
ENV FALLBACK=${{UNSET:-used}} EMPTY= ALT=${{GREETING:+set}} NONE=${{UNSET:+never}} KEPT=${{EMPTY-kept}} '$QUOTED'="$SAID 'x'"
WORKDIR /app
COPY --chown=1000:1000 --chmod=0750 tool.sh ./
COPY data/ /srv/data/
RUN echo "worker:x:1234:1234::/home/worker:/bin/sh" >> /etc/passwd && echo "$GREETING" > /app/greeting
USER worker
EXPOSE 8080 53/udp
STOPSIGNAL SIGINT
VOLUME /var/cache
HEALTHCHECK --interval=30s --retries=3 CMD ["true"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/sh", "-c", "echo \"$SAID $GREETING_COPY $(id -u) $(pwd) $(cat greeting) $0 $@\"", "entry"]
CMD ["from-cmd"]
"#
    );
    let dir = context(
        &host,
        &dockerfile,
        &[
            ("tool.sh", "#!/bin/sh\necho tool\n"),
            ("data/a.txt", "a\n"),
            ("data/sub/b.txt", "b\n"),
        ],
    );
    let out = build(&host, &dir, &["-t", &name]);
    out.assert_success();
    let said_line = run_image(&host, &name, &[]);
    assert_eq!(
        said_line.trim(),
        format!("{said} hello-world 1234 /app hello entry from-cmd"),
        "ENV, ARG, USER, WORKDIR, RUN, ENTRYPOINT and CMD together"
    );
    // Arguments replace CMD and reach the exec-form ENTRYPOINT.
    let replaced = run_image(&host, &name, &["given"]);
    assert!(replaced.trim().ends_with("entry given"), "{replaced}");
    // Ownership and modes of what COPY wrote; a directory's contents copied.
    let listing = host
        .engine(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--cgroup-parent",
            &host.cgroup_parent,
            "--entrypoint",
            "sh",
            &name,
            "-c",
            "stat -c '%u:%g %a' /app/tool.sh; cat /srv/data/a.txt /srv/data/sub/b.txt; stat -c '%u:%g' /srv/data/a.txt",
        ])
        .output();
    listing.assert_success();
    assert_eq!(listing.stdout, "1000:1000 750\na\nb\n0:0\n");
    let config = inspect_config(&host, &name);
    let run = &config["Config"];
    assert_eq!(run["Labels"]["org.example.token"], said.as_str());
    assert_eq!(run["Labels"]["two words"], "yes");
    assert!(run["ExposedPorts"].get("8080/tcp").is_some(), "{run}");
    assert!(run["ExposedPorts"].get("53/udp").is_some(), "{run}");
    assert_eq!(run["StopSignal"], "SIGINT");
    assert!(run["Volumes"].get("/var/cache").is_some(), "{run}");
    assert_eq!(
        run["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "true"])
    );
    assert_eq!(run["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(run["OnBuild"], serde_json::json!(["RUN echo triggered"]));
    assert_eq!(run["User"], "worker");
    assert_eq!(run["WorkingDir"], "/app");
    let env = run["Env"].to_string();
    assert!(
        env.contains(&format!("SAID={said}")) && !env.contains("GREETING="),
        "ARGs stay out of the image: {env}"
    );
    let expanded: Vec<&str> = run["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .filter(|e| {
            ["FALLBACK=", "ALT=", "NONE=", "KEPT=", "$QUOTED="]
                .iter()
                .any(|k| e.starts_with(k))
        })
        .collect();
    assert_eq!(
        expanded,
        [
            "FALLBACK=used",
            "ALT=set",
            "NONE=",
            "KEPT=kept",
            &format!("$QUOTED={said} 'x'")
        ],
        "${{VAR:-word}}, ${{VAR:+word}}, ${{VAR-word}} and quotes, as docker expands them, with the values from before the ENV"
    );
    // A child build runs the ONBUILD trigger right after its FROM.
    let child = context(&host, &format!("FROM {name}\nRUN true\n"), &[]);
    let out = build(&host, &child, &[]);
    out.assert_success();
    assert!(out.stderr.contains("triggered"), "{}", out.stderr);
}

#[test]
fn shell_and_exec_forms_follow_dockers_entrypoint_and_cmd_table() {
    let host = TestHost::new();
    let base = base_image(&host);
    let cases = [
        // (instructions, arguments to run, expected output)
        ("CMD echo shell-cmd $HOME", vec![], "shell-cmd /root"),
        (
            "ENTRYPOINT [\"echo\", \"exec-entry\"]\nCMD [\"default\"]",
            vec![],
            "exec-entry default",
        ),
        (
            "ENTRYPOINT [\"echo\", \"exec-entry\"]\nCMD [\"default\"]",
            vec!["given"],
            "exec-entry given",
        ),
        // A shell-form ENTRYPOINT ignores CMD and the run's arguments.
        (
            "ENTRYPOINT echo shell-entry\nCMD [\"ignored\"]",
            vec!["also-ignored"],
            "shell-entry",
        ),
        // SHELL changes what later shell forms run under.
        (
            "SHELL [\"/bin/sh\", \"-eu\", \"-c\"]\nCMD echo traced",
            vec![],
            "traced",
        ),
        // Invalid JSON falls back to the shell form, as docker's parser does.
        ("CMD [echo, not-json]", vec![], ""),
    ];
    for (instructions, args, expected) in cases {
        let name = format!("table-{}:1", token());
        let dir = context(&host, &format!("FROM {base}\n{instructions}\n"), &[]);
        build(&host, &dir, &["-q", "-t", &name]).assert_success();
        let mut all = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--cgroup-parent",
            &host.cgroup_parent,
            name.as_str(),
        ];
        all.extend(args.iter().copied());
        let out = host.engine(&all).output();
        if instructions.contains("not-json") {
            // `[echo, not-json]` is run by the shell: a command named "[echo,".
            out.assert_code(127);
            continue;
        }
        out.assert_success();
        assert_eq!(out.stdout.trim(), expected, "{instructions}");
    }
}

#[test]
fn a_rebuild_hits_the_cache_and_a_changed_file_misses_from_its_step_on() {
    let host = TestHost::new();
    let base = base_image(&host);
    let dockerfile = format!(
        "FROM {base}\nRUN cat /proc/sys/kernel/random/uuid > /first\nCOPY app.txt /app.txt\nRUN cat /proc/sys/kernel/random/uuid > /second\nCMD cat /first /app.txt /second\n"
    );
    let dir = context(&host, &dockerfile, &[("app.txt", "version 1\n")]);
    let first = build(&host, &dir, &["-t", "cache:1", "--iidfile", "/dev/stdout"]);
    first.assert_success();
    assert_eq!(cached_steps(&first), 0, "{}", first.stderr);
    let before = run_image(&host, "cache:1", &[]);
    // The same build again: every step from the cache, the same image.
    let again = build(&host, &dir, &["-t", "cache:2", "--iidfile", "/dev/stdout"]);
    again.assert_success();
    assert_eq!(cached_steps(&again), 3, "{}", again.stderr);
    assert_eq!(
        again.stdout, first.stdout,
        "a fully cached build gives the same image id"
    );
    // A new mtime is not a change.
    let file = dir.join("app.txt");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let touched = build(&host, &dir, &["-t", "cache:3"]);
    assert_eq!(cached_steps(&touched), 3, "{}", touched.stderr);
    // New contents: the COPY and what follows run again, the first RUN does not.
    std::fs::write(&file, "version 2\n").unwrap();
    let changed = build(&host, &dir, &["-t", "cache:4"]);
    changed.assert_success();
    assert_eq!(cached_steps(&changed), 1, "{}", changed.stderr);
    let after = run_image(&host, "cache:4", &[]);
    let lines: Vec<&str> = after.lines().collect();
    let old: Vec<&str> = before.lines().collect();
    assert_eq!(lines[0], old[0], "the first RUN came from the cache");
    assert_eq!(lines[1], "version 2");
    assert_ne!(lines[2], old[2], "the RUN after the COPY ran again");
    // --no-cache runs everything.
    let fresh = build(&host, &dir, &["--no-cache"]);
    assert_eq!(cached_steps(&fresh), 0, "{}", fresh.stderr);
}

#[test]
fn source_date_epoch_makes_a_rebuild_without_the_cache_give_the_same_image() {
    let host = TestHost::new();
    let base = base_image(&host);
    let dockerfile =
        format!("FROM {base}\nRUN echo made > /made && mkdir /d\nCOPY app.txt /d/\nENV A=1\n");
    let dir = context(&host, &dockerfile, &[("app.txt", "v1\n")]);
    let args = [
        "--no-cache",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        "--iidfile",
        "/dev/stdout",
    ];
    let first = build(&host, &dir, &args);
    first.assert_success();
    // A second later: new files, new mtimes, new history times, all clamped.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = build(&host, &dir, &args);
    second.assert_success();
    assert_eq!(
        second.stdout, first.stdout,
        "the same layers, config and history"
    );
    let config = inspect_config(&host, first.stdout.trim());
    assert_eq!(config["Created"], "2023-11-14T22:13:20Z", "{config}");
}

#[test]
fn dockerignore_excludes_files_and_exceptions_bring_them_back() {
    let host = TestHost::new();
    let base = base_image(&host);
    let dir = context(
        &host,
        &format!("FROM {base}\nCOPY . /ctx/\nCMD find /ctx -type f\n"),
        &[
            (
                ".dockerignore",
                "# build junk\n*.log\nsecrets\ndocs\n!docs/README.md\n**/*.tmp\n",
            ),
            ("keep.txt", "k"),
            ("build.log", "l"),
            ("secrets/key", "s"),
            ("docs/README.md", "r"),
            ("docs/internal.md", "i"),
            ("src/a.tmp", "t"),
            ("src/main.c", "m"),
        ],
    );
    let name = format!("ignore-{}:1", token());
    build(&host, &dir, &["-t", &name]).assert_success();
    let mut found: Vec<String> = run_image(&host, &name, &[])
        .lines()
        .map(String::from)
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/docs/README.md",
            "/ctx/keep.txt",
            "/ctx/src/main.c"
        ]
    );
    // An excluded source named directly is an error, as in docker.
    let named = context(
        &host,
        &format!("FROM {base}\nCOPY secrets/key /key\n"),
        &[(".dockerignore", "secrets\n"), ("secrets/key", "s")],
    );
    let out = build(&host, &named, &[]);
    out.assert_code(1);
    out.assert_stderr_contains("secrets/key");
    // Globs match what is left; a symlink to an excluded file or directory does
    // not bring it back (docker never sends it, so the link dangles).
    let globbed = context(
        &host,
        &format!("FROM {base}\nCOPY *.txt s?c/*.c /g/\nCMD ls /g\n"),
        &[
            (".dockerignore", "b.txt\n"),
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("src/m.c", "m"),
            ("x.md", "x"),
        ],
    );
    let name = format!("glob-{}:1", token());
    build(&host, &globbed, &["-t", &name]).assert_success();
    assert_eq!(run_image(&host, &name, &[]), "a.txt\nm.c\n");
    for source in ["alias", "aliasdir", "aliasdir/key"] {
        let linked = context(
            &host,
            &format!("FROM {base}\nCOPY {source} /leak\n"),
            &[(".dockerignore", "secrets\n"), ("secrets/key", "s")],
        );
        std::os::unix::fs::symlink("secrets/key", linked.join("alias")).unwrap();
        std::os::unix::fs::symlink("secrets", linked.join("aliasdir")).unwrap();
        let out = build(&host, &linked, &[]);
        assert_eq!(
            out.code, 1,
            "COPY {source} must not copy an excluded file\n{out}"
        );
        out.assert_stderr_contains(".dockerignore");
    }
}

#[test]
fn a_multi_stage_build_keeps_only_what_the_final_stage_copies() {
    let host = TestHost::new();
    let base = base_image(&host);
    let said = token();
    let dockerfile = format!(
        r#"FROM {base} AS build
RUN mkdir /out && echo {said} > /out/app && echo junk > /build-only
FROM {base} AS unused
RUN exit 9
FROM {base}
COPY --from=build /out/app /app
CMD cat /app; test ! -e /build-only && echo clean
"#
    );
    let dir = context(&host, &dockerfile, &[]);
    let name = format!("multi-{}:1", token());
    let out = build(&host, &dir, &["-t", &name]);
    out.assert_success();
    assert!(
        !out.stderr.contains("exit 9"),
        "the unused stage is not built: {}",
        out.stderr
    );
    assert_eq!(run_image(&host, &name, &[]), format!("{said}\nclean\n"));
    // --target builds up to a stage: here the one that fails.
    let out = build(&host, &dir, &["--target", "unused"]);
    out.assert_code(1);
    out.assert_stderr_contains("exit code: 9");
    let out = build(&host, &dir, &["--target", "nope"]);
    out.assert_code(1);
    out.assert_stderr_contains("build, unused");
}

#[test]
fn a_failing_run_stops_the_build_with_its_output_and_leaves_nothing() {
    let host = TestHost::new();
    let base = base_image(&host);
    // A RUN whose container cannot be made names its line too.
    let nobody = context(
        &host,
        &format!("FROM {base}\nUSER no-such-user\nRUN true\n"),
        &[],
    );
    let out = build(&host, &nobody, &[]);
    out.assert_code(1);
    out.assert_stderr_contains("Dockerfile:3:1:");
    out.assert_stderr_contains("no-such-user");
    // What a build killed with SIGKILL left (its pid is gone) is swept by the next.
    std::fs::create_dir_all(host.state.join("builds/999999999-0123456789abcdef/upper")).unwrap();
    let said = token();
    let dir = context(
        &host,
        &format!("FROM {base}\nRUN echo {said}; echo to-stderr >&2; exit 3\nRUN echo never\n"),
        &[],
    );
    let name = format!("failing-{}:1", token());
    let out = build(&host, &dir, &["-t", &name]);
    out.assert_code(1);
    out.assert_stderr_contains(&said);
    out.assert_stderr_contains("to-stderr");
    out.assert_stderr_contains("did not complete successfully: exit code: 3");
    assert!(!out.stderr.contains("never"), "{}", out.stderr);
    let images = host.engine(&["images"]).output();
    assert!(
        !images.stdout.contains("failing-"),
        "no image is named: {}",
        images.stdout
    );
    let ps = host.engine(&["ps", "-a", "-q"]).output();
    assert_eq!(ps.stdout.trim(), "", "the step's container is gone");
    assert!(
        std::fs::read_dir(host.state.join("builds")).map_or(true, |d| d.count() == 0),
        "no step directory is left"
    );
    // A build killed with SIGKILL in the middle of a RUN leaves that step's
    // container: `builder prune` removes it (and its cgroup, which the test
    // host's drop checks).
    let slow = context(&host, &format!("FROM {base}\nRUN sleep 30\n"), &[]);
    let killed = host
        .build(&slow, &[])
        .output_to(&host.dir.join("killed-build.out"))
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while host.engine(&["ps", "-q"]).output().stdout.trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN step never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // While the build runs, its step is the build's.
    let step = host
        .engine(&["ps", "-q"])
        .output()
        .stdout
        .trim()
        .to_string();
    host.engine(&["rm", "-f", &step])
        .output()
        .assert_code(1)
        .assert_stderr_contains("a step of a build that still runs");
    killed.signal(nix::sys::signal::Signal::SIGKILL);
    killed.wait();
    host.engine(&["builder", "prune"]).output().assert_success();
    let ps = host.engine(&["ps", "-a", "-q"]).output();
    assert_eq!(ps.stdout.trim(), "", "the killed build's step is gone");
}

/// The corpus's files of one kind (`good` or `bad`), sorted.
fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/dockerfiles")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `build --check -f FILE` on an empty context: parse and plan, nothing built.
fn check(host: &TestHost, file: &Path) -> support::Output {
    let empty = host.dir.join("empty-context");
    std::fs::create_dir_all(&empty).unwrap();
    host.engine(&[
        "build",
        "--check",
        "-f",
        file.to_str().unwrap(),
        empty.to_str().unwrap(),
    ])
    .output()
}

#[test]
fn the_parser_accepts_the_good_corpus_and_locates_each_error_in_the_bad_one() {
    let host = TestHost::new();
    let good = corpus("good");
    assert!(good.len() >= 15, "the good corpus is there");
    for file in &good {
        let out = check(&host, file);
        assert_eq!(
            out.code,
            0,
            "{} should parse:\n{}",
            file.display(),
            out.stderr
        );
    }
    let mut report = String::new();
    for file in &corpus("bad") {
        let out = check(&host, file);
        assert_eq!(
            out.code,
            1,
            "{} should not parse:\n{}",
            file.display(),
            out.stderr
        );
        let name = file.file_name().unwrap().to_string_lossy();
        let file_dir = file.parent().unwrap().to_str().unwrap();
        let message: Vec<String> = out
            .stderr
            .lines()
            .filter(|l| !l.contains(": hint: "))
            .map(|l| l.replace(file_dir, "[CORPUS]"))
            .collect();
        report.push_str(&format!("== {name}\n{}\n", message.join("\n")));
    }
    crate::snapshot!(host, &[], "ch11_parse_errors", report);
}

#[test]
fn the_parser_survives_random_bytes_and_mutated_dockerfiles() {
    let host = TestHost::new();
    let seeds: Vec<Vec<u8>> = corpus("good")
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let mut state: u64 = 0x9e3779b97f4a7c15 ^ std::process::id() as u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..40 {
        let mut bytes = if round % 4 == 0 {
            (0..(next() % 400)).map(|_| next() as u8).collect()
        } else {
            seeds[(next() as usize) % seeds.len()].clone()
        };
        for _ in 0..(next() % 8) {
            if bytes.is_empty() {
                break;
            }
            let at = (next() as usize) % bytes.len();
            let alphabet = b"\\\n\"'[]{}$<-=#` \tFROMRUNx\0";
            bytes[at] = alphabet[(next() as usize) % alphabet.len()];
        }
        let file = host.dir.join("fuzz.Dockerfile");
        std::fs::write(&file, &bytes).unwrap();
        let out = check(&host, &file);
        assert!(
            out.code == 0 || (out.code == 1 && out.stderr.contains("error:")),
            "round {round}: the check must accept or reject, never crash:\n{}\n{:?}",
            out.stderr,
            String::from_utf8_lossy(&bytes)
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn heredocs_add_archives_and_a_context_on_stdin() {
    let host = TestHost::new();
    let base = base_image(&host);
    let said = token();
    // A tar for ADD to unpack.
    let archive = support::images::gzip(&support::images::layer(&[support::images::Entry::File(
        "inner/from-tar.txt".into(),
        format!("{said}\n").into_bytes(),
        0o644,
    )]));
    let dockerfile = format!(
        r#"FROM {base}
ARG WHO=heredoc
RUN <<EOF
echo "script line one" > /one
echo "{said}" >> /one
EOF
COPY <<EOF /etc/greeting
hello $WHO
EOF
ADD bundle.tar.gz /unpacked/
CMD cat /one /etc/greeting /unpacked/inner/from-tar.txt
"#
    );
    let dir = context(&host, &dockerfile, &[]);
    std::fs::write(dir.join("bundle.tar.gz"), &archive).unwrap();
    // The context sent as a tar on stdin, as `docker build - < ctx.tar`.
    let tar = support::images::tar_of_dir(&dir);
    let name = format!("heredoc-{}:1", token());
    let out = host
        .engine(&[
            "build",
            "--progress",
            "plain",
            "--cgroup-parent",
            &host.cgroup_parent,
            "-t",
            &name,
            "-",
        ])
        .stdin(&tar)
        .output();
    out.assert_success();
    assert_eq!(
        run_image(&host, &name, &[]),
        format!("script line one\n{said}\nhello heredoc\n{said}\n")
    );
    // ADD of a URL is refused with what to do instead.
    let remote = context(
        &host,
        &format!("FROM {base}\nADD https://example.com/x /x\n"),
        &[],
    );
    let out = build(&host, &remote, &[]);
    out.assert_code(1);
    out.assert_stderr_contains("RUN step");
}

#[test]
fn hostile_contexts_and_images_cannot_make_the_build_write_outside() {
    let host = TestHost::new();
    let canary_dir = host.dir.join("canary-dir");
    std::fs::create_dir_all(&canary_dir).unwrap();
    let secret = host.canary("secret", "host secret");
    // An image whose /out is a symlink to a directory of the host, and whose
    // /etc/passwd names nobody: COPY must write into the image, not the host.
    let rootfs = &host.rootfs;
    std::os::unix::fs::symlink(&canary_dir, rootfs.join("out")).unwrap();
    let base = base_image(&host);
    let dir = context(&host, &format!("FROM {base}\nCOPY note.txt /out/note.txt\nCOPY link /copied-link\nCMD ls -l /copied-link; cat /out/note.txt\n"), &[("note.txt", "inside\n")]);
    std::os::unix::fs::symlink(&secret, dir.join("link")).unwrap();
    let name = format!("hostile-{}:1", token());
    build(&host, &dir, &["-t", &name]).assert_success();
    // The context's Dockerfile is the context's: a symlink to a host file is
    // followed only inside the context, and a FIFO cannot hang the build.
    let linked = context(&host, "unused", &[]);
    std::fs::remove_file(linked.join("Dockerfile")).unwrap();
    std::os::unix::fs::symlink(&secret, linked.join("Dockerfile")).unwrap();
    let out = build(&host, &linked, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        !out.stderr.contains("host secret"),
        "the host file was read: {out}"
    );
    let fifo = context(&host, "unused", &[]);
    std::fs::remove_file(fifo.join("Dockerfile")).unwrap();
    nix::unistd::mkfifo(
        &fifo.join("Dockerfile"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let out = build(&host, &fifo, &["--check"]);
    assert_eq!(out.code, 1, "{out}");
    out.assert_stderr_contains("FIFO");
    assert_eq!(
        std::fs::read_dir(&canary_dir).unwrap().count(),
        0,
        "nothing written through the image's symlink"
    );
    let shown = run_image(&host, &name, &[]);
    assert!(
        shown.contains(&format!("-> {}", secret.display())),
        "the context's symlink is copied as a link: {shown}"
    );
    assert!(shown.ends_with("inside\n"), "{shown}");
    assert!(!shown.contains("host secret"));
    // ADD of a tar whose names climb out is refused; the canary stays.
    let climbing = support::images::layer(&[support::images::Entry::File(
        format!("../../../..{}", secret.display()),
        b"overwritten".to_vec(),
        0o644,
    )]);
    let dir = context(&host, &format!("FROM {base}\nADD evil.tar /x/\n"), &[]);
    std::fs::write(dir.join("evil.tar"), climbing).unwrap();
    let out = build(&host, &dir, &[]);
    out.assert_code(1);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host secret");
    // A source that climbs out of the context names a file inside it, or none.
    let dir = context(
        &host,
        &format!(
            "FROM {base}\nCOPY ../../../../{} /stolen\n",
            secret.display()
        ),
        &[],
    );
    let out = build(&host, &dir, &[]);
    out.assert_code(1);
    out.assert_stderr_contains("not in the build context");
}

#[test]
fn commit_makes_an_image_of_a_containers_changes() {
    let host = TestHost::new();
    let base = base_image(&host);
    let said = token();
    let id = host
        .engine(&[
            "run",
            "-d",
            "--network",
            "none",
            "--cgroup-parent",
            &host.cgroup_parent,
            &base,
            "sh",
            "-c",
            &format!("echo {said} > /made && rm /bin/true && sleep 30"),
        ])
        .output();
    id.assert_success();
    let id = id.stdout.trim().to_string();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let name = format!("committed-{}:1", token());
    let out = host
        .engine(&[
            "commit",
            "-m",
            "by the test",
            "-c",
            "CMD cat /made",
            "-c",
            "ENV COMMITTED=yes",
            &id,
            &name,
        ])
        .output();
    out.assert_success();
    host.engine(&["rm", "-f", &id]).output().assert_success();
    assert_eq!(run_image(&host, &name, &[]), format!("{said}\n"));
    let gone = host
        .engine(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--cgroup-parent",
            &host.cgroup_parent,
            &name,
            "sh",
            "-c",
            "test -e /bin/true || echo deleted; echo $COMMITTED",
        ])
        .output();
    assert_eq!(
        gone.stdout, "deleted\nyes\n",
        "a deletion is a whiteout in the new layer"
    );
    let history = host.engine(&["history", &name]).output();
    history.assert_success();
    history.assert_stdout_contains("by the test");
    let refused = host.engine(&["commit", "-c", "RUN true", "nope"]).output();
    assert_ne!(refused.code, 0);
}

#[test]
fn a_built_image_saved_loads_and_runs_under_podman() {
    let host = TestHost::new();
    let podman = "/usr/bin/podman";
    assert!(
        Path::new(podman).exists(),
        "this test needs podman: apt-get install podman (cargo xtask test installs it)"
    );
    let base = base_image(&host);
    let said = token();
    let dir = context(
        &host,
        &format!("FROM {base}\nRUN echo {said} > /said\nCOPY msg /msg\nRUN rm /bin/false\nCMD cat /said /msg; test -e /bin/false || echo whiteout\n"),
        &[("msg", "copied\n")],
    );
    let name = format!("localhost/podman-{}:1", token());
    build(&host, &dir, &["-t", &name]).assert_success();
    let archive = host.dir.join("built.tar");
    host.engine(&["save", "-o", archive.to_str().unwrap(), &name])
        .output()
        .assert_success();
    let store = host.dir.join("podman");
    let _leftovers = support::cgroups::PodmanLeftovers(&host.cgroup_parent);
    // runc, not crun: crun refuses the cgroup v1 hybrid layout of some hosts.
    let podman = format!(
        "{podman} --root {0}/root --runroot {0}/run --storage-driver vfs --cgroup-manager cgroupfs --events-backend none --runtime /usr/sbin/runc",
        store.display()
    );
    let script = format!(
        "{podman} load -i {} >/dev/null && {podman} run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 {name}",
        archive.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "$ {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{said}\ncopied\nwhiteout\n")
    );
}
