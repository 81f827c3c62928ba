//! The engine's layers, checked: arrows only point down (ARCHITECTURE.md, "Layers").
//!
//! cli → engine → runtime → the kernel-concept modules → sys. A module may use its
//! own layer's modules and any layer below; `errors`, `note` and the crate root
//! (`ENGINE`) are for everyone.

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest::project_root;

    /// Each top-level module of solutions/src and its layer (higher calls lower).
    const LAYERS: &[(&str, u8)] = &[
        ("cli", 4),
        ("engine", 3),
        ("runtime", 2),
        ("registry", 2),
        ("cgroups", 1),
        ("clock", 1),
        ("dockerfile", 1),
        ("images", 1),
        ("env", 1),
        ("id", 1),
        ("init", 1),
        ("mountinfo", 1),
        ("namespaces", 1),
        ("network", 1),
        ("privileges", 1),
        ("process", 1),
        ("rootfs", 1),
        ("safe_path", 1),
        ("seccomp", 1),
        ("signals", 1),
        ("terminal", 1),
        ("sys", 0),
        ("errors", 0),
        ("note", 0),
    ];

    fn layer(module: &str) -> Option<u8> {
        LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
    }

    /// The top-level modules a file names as `crate::MODULE`.
    fn uses(text: &str) -> Vec<String> {
        text.match_indices("crate::")
            .map(|(at, _)| {
                text[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|name| !name.is_empty() && name != "ENGINE")
            .collect()
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_module_uses_one_above_it() {
        let src = project_root().join("solutions/src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut wrong = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&src).unwrap();
            let first = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let own = layer(&module).unwrap_or_else(|| {
                panic!("solutions/src/{first}: add it to LAYERS in xtask/src/layers.rs")
            });
            let text = std::fs::read_to_string(&file).unwrap();
            for used in uses(&text) {
                let Some(theirs) = layer(&used) else {
                    wrong.push(format!(
                        "{}: crate::{used} is not a known module",
                        relative.display()
                    ));
                    continue;
                };
                if theirs > own {
                    wrong.push(format!(
                        "{} (layer {own}) uses crate::{used} (layer {theirs})",
                        relative.display()
                    ));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "arrows must point down:\n{}",
            wrong.join("\n")
        );
    }
}
