//! The parser's unit tests: what each rule turns a Dockerfile into.

use super::*;

fn only_stage(text: &str) -> Stage {
    let mut parsed = parse(text).unwrap_or_else(|e| panic!("{}", e.render("Dockerfile")));
    assert_eq!(parsed.stages.len(), 1);
    parsed.stages.remove(0)
}

fn kinds(text: &str) -> Vec<Kind> {
    only_stage(text)
        .instructions
        .into_iter()
        .map(|i| i.kind)
        .collect()
}

fn error(text: &str) -> String {
    let error = parse(text).expect_err("should not parse");
    format!("{}: {}", error.location, error.message)
}

#[test]
fn continued_lines_join_and_skip_comments_and_blank_lines() {
    let stage = only_stage(
        "FROM busybox\nRUN echo a \\\n  # a comment\n\n  && echo b \\  \n  && echo c\nUSER 1000\n",
    );
    let run = &stage.instructions[0];
    assert_eq!(run.source, "RUN echo a   && echo b   && echo c");
    assert_eq!(run.location, Location { line: 2, column: 1 });
    assert_eq!(stage.instructions[1].location.line, 7);
    let Kind::Run(Run {
        command: Command::Shell(text),
        ..
    }) = &run.kind
    else {
        panic!()
    };
    assert_eq!(text, "echo a   && echo b   && echo c");
}

#[test]
fn the_pieces_of_a_logical_line() {
    let lines = ["RUN a \\", "# skipped", "", "  b \\", "  c", "USER x"];
    let (pieces, next) = parser::logical_line(&lines, 0, '\\');
    let texts: Vec<(usize, &str)> = pieces.iter().map(|p| (p.line, p.text)).collect();
    assert_eq!(texts, vec![(0, "RUN a "), (3, "  b "), (4, "  c")]);
    assert_eq!(next, 5);
    let (pieces, next) = parser::logical_line(&["RUN a \\"], 0, '\\');
    assert_eq!(
        (pieces.len(), next),
        (1, 1),
        "the end of the file ends a continued line"
    );
    let (pieces, _) = parser::logical_line(&["RUN a `", "b"], 0, '`');
    assert_eq!(pieces[0].text, "RUN a ");
    let (pieces, next) = parser::logical_line(&["RUN echo \\\\", "COPY a b"], 0, '\\');
    assert_eq!(
        (pieces.len(), next),
        (1, 1),
        "an escaped escape does not continue"
    );
}

#[test]
fn directives_only_count_at_the_top() {
    let parsed =
        parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo `\n  hi\n")
            .unwrap();
    assert_eq!(parsed.directives.escape, '`');
    assert_eq!(
        parsed.directives.syntax.as_deref(),
        Some("docker/dockerfile:1")
    );
    assert_eq!(parsed.stages[0].instructions[0].source, "RUN echo   hi");
    let late = parse("FROM busybox\n# escape=`\nRUN echo \\\n hi\n").unwrap();
    assert_eq!(
        late.directives.escape, '\\',
        "a directive after an instruction is a comment"
    );
    let after_comment = parse("# hello\n# escape=`\nFROM busybox\n").unwrap();
    assert_eq!(after_comment.directives.escape, '\\');
    assert!(error("# escape=x\nFROM a\n").contains("invalid escape character"));
    assert!(error("# escape=`\n# escape=`\nFROM a\n").contains("only one escape"));
}

#[test]
fn exec_form_and_shell_form() {
    let kinds = kinds("FROM a\nCMD [\"echo\", \"hi\"]\nCMD [echo, hi]\nENTRYPOINT echo  hi  \nCMD []\nRUN [\"a\", 1]\n");
    assert_eq!(
        kinds[0],
        Kind::Cmd(Command::Exec(vec!["echo".into(), "hi".into()]))
    );
    assert_eq!(kinds[1], Kind::Cmd(Command::Shell("[echo, hi]".into())));
    assert_eq!(
        kinds[2],
        Kind::Entrypoint(Command::Shell("echo  hi".into()))
    );
    assert_eq!(kinds[3], Kind::Cmd(Command::Exec(vec![])));
    let Kind::Run(run) = &kinds[4] else { panic!() };
    assert_eq!(run.command, Command::Shell("[\"a\", 1]".into()));
}

#[test]
fn env_label_and_arg_keep_raw_words() {
    let kinds = kinds(
        "FROM a\nENV A=1 B=\"two words\" C=${A:-x}\nENV OLD hello  world\nLABEL \"com.x\"=\"y z\" v=1\nARG NAME ARG2=def\n",
    );
    assert_eq!(
        kinds[0],
        Kind::Env(vec![
            ("A".into(), "1".into()),
            ("B".into(), "\"two words\"".into()),
            ("C".into(), "${A:-x}".into())
        ])
    );
    assert_eq!(
        kinds[1],
        Kind::Env(vec![("OLD".into(), "hello  world".into())])
    );
    assert_eq!(
        kinds[2],
        Kind::Label(vec![
            ("\"com.x\"".into(), "\"y z\"".into()),
            ("v".into(), "1".into())
        ])
    );
    assert_eq!(
        kinds[3],
        Kind::Arg(vec![
            ("NAME".into(), None),
            ("ARG2".into(), Some("def".into()))
        ])
    );
    assert!(error("FROM a\nENV A\n").contains("ENV A needs a value"));
    assert!(error("FROM a\nENV A=1 B\n").contains("expected KEY=value"));
    assert!(error("FROM a\nENV =1\n").contains("can not be blank"));
}

#[test]
fn copy_flags_and_forms() {
    let kinds = kinds(
        "FROM a\nCOPY --from=build --chown=1:2 --chmod=0755 --link a b* /dst/\nCOPY [\"a b\", \"/c d/\"]\nADD x.tar.gz /\n",
    );
    let Kind::Copy(copy) = &kinds[0] else {
        panic!()
    };
    assert_eq!(copy.sources, vec!["a", "b*"]);
    assert_eq!(copy.dest, "/dst/");
    assert_eq!(copy.from.as_deref(), Some("build"));
    assert_eq!(copy.chown.as_deref(), Some("1:2"));
    assert_eq!(copy.chmod.as_deref(), Some("0755"));
    assert!(copy.link);
    let Kind::Copy(copy) = &kinds[1] else {
        panic!()
    };
    assert_eq!(
        (copy.sources.clone(), copy.dest.as_str()),
        (vec!["a b".to_string()], "/c d/")
    );
    assert!(matches!(&kinds[2], Kind::Add(add) if add.dest == "/"));
    assert!(error("FROM a\nADD --from=x a b\n").contains("unknown flag --from for ADD"));
    assert!(error("FROM a\nCOPY onlyone\n").contains("needs a source and a destination"));
    assert!(error("FROM a\nRUN --mount=type=cache,target=/x make\n")
        .contains("does not support RUN --mount"));
    assert!(error("FROM a\nCOPY --from= a b\n").contains("needs a value"));
    assert!(error("FROM a\nCOPY --chown=1 --chown=2 a b\n").contains("duplicate flag"));
}

#[test]
fn heredocs_take_the_lines_after_the_instruction() {
    let stage = only_stage(
        "FROM a\nRUN <<EOF\necho $HOME\nEOF\nCOPY <<-\"END\" <<two /x/\n\t\tkept $X\n\tEND\nsecond\ntwo\nUSER me\n",
    );
    let Kind::Run(run) = &stage.instructions[0].kind else {
        panic!()
    };
    assert_eq!(run.command, Command::Shell("<<EOF".into()));
    assert_eq!(
        run.heredocs[0],
        Heredoc {
            name: "EOF".into(),
            content: "echo $HOME\n".into(),
            expand: true
        }
    );
    let Kind::Copy(copy) = &stage.instructions[1].kind else {
        panic!()
    };
    assert_eq!(copy.sources, vec!["<<-\"END\"", "<<two"]);
    assert_eq!(
        copy.heredocs[0],
        Heredoc {
            name: "END".into(),
            content: "kept $X\n".into(),
            expand: false
        }
    );
    assert_eq!(copy.heredocs[1].content, "second\n");
    assert_eq!(stage.instructions[1].source, "COPY <<-\"END\" <<two /x/");
    assert_eq!(stage.instructions[2].location.line, 10);
    assert!(error("FROM a\nRUN <<EOF\necho\n").starts_with("2:5: unterminated heredoc <<EOF"));
    let stage = only_stage("FROM a\nRUN cat 3<<EOF\nbody\nEOF\n");
    let Kind::Run(run) = &stage.instructions[0].kind else {
        panic!()
    };
    assert_eq!(
        run.heredocs[0].content, "body\n",
        "a heredoc may name its descriptor"
    );
}

#[test]
fn stages_names_and_order() {
    let parsed = parse("ARG V=1\nFROM --platform=$BUILDPLATFORM busybox:$V AS Build\nFROM build\nfrom scratch as final\n").unwrap();
    assert_eq!(parsed.global_args.len(), 1);
    let names: Vec<Option<&str>> = parsed.stages.iter().map(|s| s.name.as_deref()).collect();
    assert_eq!(names, vec![Some("build"), None, Some("final")]);
    assert_eq!(parsed.stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(parsed.stages[0].base, "busybox:$V");
    assert!(error("FROM a AS x\nFROM b AS X\n").contains("duplicate stage name \"x\""));
    assert!(error("FROM a AS 1x\n").contains("invalid stage name"));
    assert!(error("FROM a b\n").contains("FROM needs an image"));
    assert!(error("RUN echo\nFROM a\n").starts_with("1:1: RUN before the first FROM"));
}

#[test]
fn what_docker_rejects() {
    assert!(error("").contains("no instructions"));
    assert!(error("# only\n\n  # comments\n").contains("no instructions"));
    assert!(error("ARG A\n").contains("no FROM"));
    assert_eq!(
        error("FROM a\n  RNU echo\n"),
        "2:3: unknown instruction: RNU (did you mean RUN?)"
    );
    assert_eq!(
        error("FROM a\nFROBNICATE\n"),
        "2:1: unknown instruction: FROBNICATE"
    );
    assert!(error("FROM a\nSHELL /bin/sh -c\n").contains("JSON form"));
    assert!(
        error("FROM a\nHEALTHCHECK --interval=soon CMD true\n").contains("invalid --interval=soon")
    );
    assert!(error("FROM a\nHEALTHCHECK RUN true\n").contains("unknown type \"RUN\""));
    assert!(error("FROM a\nONBUILD FROM b\n").contains("ONBUILD FROM is not allowed"));
    assert!(error("FROM a\nWORKDIR\n").contains("WORKDIR needs a directory"));
    assert!(error("FROM a\nRUN\n").contains("RUN needs a command"));
}

#[test]
fn errors_point_into_continued_lines() {
    let error = parse("FROM a\nCOPY --chown=1 \\\n   --bogus=2 a b\n").unwrap_err();
    assert_eq!(error.location, Location { line: 3, column: 4 });
    assert_eq!(error.line_text, "   --bogus=2 a b");
    assert_eq!(
        error.render("Dockerfile"),
        "Dockerfile:3:4: unknown flag --bogus for COPY (it takes --from, --chown, --chmod, --link)\n 3 |    --bogus=2 a b\n   |    ^"
    );
}

#[test]
fn config_instructions() {
    let kinds = kinds(
        "FROM a\nHEALTHCHECK --interval=5s --retries=3 CMD wget -q -O- localhost\nHEALTHCHECK NONE\nONBUILD RUN make\nEXPOSE 80 53/udp\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nSTOPSIGNAL SIGINT\nMAINTAINER me <me@x>\nSHELL [\"/bin/ash\", \"-eo\", \"pipefail\", \"-c\"]\n",
    );
    let Kind::Healthcheck(Healthcheck::Check {
        test,
        interval,
        retries,
        ..
    }) = &kinds[0]
    else {
        panic!()
    };
    assert_eq!(test, &Command::Shell("wget -q -O- localhost".into()));
    assert_eq!((interval.as_deref(), *retries), (Some("5s"), Some(3)));
    assert_eq!(kinds[1], Kind::Healthcheck(Healthcheck::Disable));
    let Kind::Onbuild(inner) = &kinds[2] else {
        panic!()
    };
    assert_eq!(inner.source, "RUN make");
    assert_eq!(kinds[3], Kind::Expose(vec!["80".into(), "53/udp".into()]));
    assert_eq!(kinds[4], Kind::Volume(vec!["/a".into(), "/b".into()]));
    assert_eq!(kinds[5], Kind::Volume(vec!["/c".into(), "/d".into()]));
    assert_eq!(kinds[7], Kind::Maintainer("me <me@x>".into()));
}

#[test]
fn random_and_mutated_input_never_panics() {
    let seed = "# syntax=x\nARG A=1\nFROM a AS b\nRUN <<EOF\nx\nEOF\nCOPY --from=b [\"a\", \"b\"]\nENV A=\"b\" \\\n C=d\nHEALTHCHECK CMD [\"x\"]\nONBUILD COPY a b\n";
    let alphabet = "\\\n\"'[]{}$<-=#` \tFROMRUNx\0é";
    let alphabet: Vec<char> = alphabet.chars().collect();
    let mut state: u64 = 0x2545f4914f6cdd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..3000 {
        let mut chars: Vec<char> = if round % 5 == 0 {
            (0..next() % 200)
                .map(|_| alphabet[next() as usize % alphabet.len()])
                .collect()
        } else {
            seed.chars().collect()
        };
        for _ in 0..1 + next() % 6 {
            if chars.is_empty() {
                break;
            }
            let at = next() as usize % chars.len();
            match next() % 3 {
                0 => chars[at] = alphabet[next() as usize % alphabet.len()],
                1 => drop(chars.remove(at)),
                _ => chars.insert(at, alphabet[next() as usize % alphabet.len()]),
            }
        }
        let text: String = chars.into_iter().collect();
        if let Err(error) = parse(&text) {
            let _ = error.render("Dockerfile");
        }
    }
}
